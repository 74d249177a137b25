/* Kernel side of the vDSO (vdso/vdso_map.c): the image (vdso.c, built as
 * a shared object and embedded with .incbin) and its data page. */
#ifndef QK_VDSO_H
#define QK_VDSO_H

#include <stdint.h>

struct qk_mm;

/* Maps the data page (read) and the image (read+exec) into mm, just below
 * its stack limit; returns the image's address (AT_SYSINFO_EHDR) or a
 * negated errno. The frames are the kernel's own: fork shares them, munmap
 * drops them, mprotect to writable gives a private copy (mm/ treats frames
 * outside the page allocator as shared). */
int64_t qk_vdso_map(struct qk_mm *mm);

/* Publishes the clock (kernel/time.c): ns = base + ((tsc - tsc_base) * mult >> 32). */
void qk_vdso_set_clock(uint64_t tsc_base, uint64_t mult, uint64_t mono_base_ns,
                       uint64_t real_base_ns);

#endif
