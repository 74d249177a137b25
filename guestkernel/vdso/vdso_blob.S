/* The vDSO image (vdso.so from this directory's rules), page aligned and
 * padded to whole pages so that no kernel data shares its frames. */
	.section .rodata.qk_vdso, "a"
	.balign 4096
	.globl qk_vdso_image
qk_vdso_image:
	.incbin "vdso.so"
	.balign 4096, 0
	.globl qk_vdso_image_end
qk_vdso_image_end:
	.section .note.GNU-stack, "", @progbits
