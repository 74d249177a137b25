/* Host-side ELF loader for the container's initial process.
 *
 * Contract:
 * - sbx_elf_parse() validates an ELF image held in memory: every header
 *   field is checked against the buffer and the user address range; a
 *   hostile or truncated file is an error (-ENOEXEC and a message), never a
 *   crash. It is the fuzzing entry point.
 * - sbx_elf_load_process() opens the executable (and its PT_INTERP
 *   interpreter) inside the rootfs with openat2(RESOLVE_IN_ROOT |
 *   RESOLVE_NO_MAGICLINKS), copies the segments into fresh guest frames,
 *   maps them in a new page table whose upper half is shared with the
 *   kernel's (new entries only), builds the initial stack (argv, envp,
 *   auxv) and fills *out. Static, static-PIE and dynamic (PT_INTERP)
 *   executables are accepted; scripts are not (-ENOEXEC).
 * - On failure the frames already taken are not returned (the VM is being
 *   torn down anyway); *err says why.
 */
#ifndef SBX_ELF_LOADER_H
#define SBX_ELF_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <quark/common.h>

#include "../../guestkernel/abi/qk_abi.h"
#include "../arch/x86_64/pagetable.h"
#include "../mem/guest_mem.h"

#define SBX_ELF_MAX_SEGMENTS 16
#define SBX_ELF_MAX_FILE (512u << 20)
#define SBX_PIE_BASE 0x0000555555554000ull
#define SBX_INTERP_BASE 0x00007f0000000000ull
#define SBX_STACK_TOP QK_USER_TOP
#define SBX_STACK_SIZE (8ull << 20)
#define SBX_STACK_POPULATED (256ull << 10)
#define SBX_MAX_ARG_BYTES (128u << 10) /* argv + envp strings and pointers */

struct sbx_elf_seg {
  uint64_t vaddr, memsz, offset, filesz;
  uint32_t flags; /* PF_R/W/X */
};

struct sbx_elf_info {
  uint16_t type; /* ET_EXEC or ET_DYN */
  uint64_t entry;
  uint64_t phoff;
  uint16_t phnum;
  uint64_t phdr_vaddr; /* AT_PHDR before bias, 0 if unknown */
  uint64_t min_vaddr, max_vaddr; /* page-aligned extent of PT_LOADs */
  uint64_t max_align;
  unsigned nsegs;
  struct sbx_elf_seg segs[SBX_ELF_MAX_SEGMENTS];
  char interp[256]; /* PT_INTERP path, "" if none */
};

int sbx_elf_parse(const uint8_t *buf, size_t len, struct sbx_elf_info *info, q_error **err);

struct sbx_proc_spec {
  const char *const *argv; /* argv[0] is also the executable path (PATH-searched without '/') */
  size_t argc;
  const char *const *envp;
  size_t envc;
  const char *cwd;      /* absolute, inside the rootfs */
  uint32_t uid, gid;
  uint64_t hwcap, hwcap2;
  /* Instead of argv[0]: a built-in program that calls pause() forever (the
   * pod VM's boot process, so the guest's scheduler, and the control
   * commands it serves, run in the kernel worker from the start). */
  bool builtin_idle;
};

struct sbx_proc_image {
  uint64_t cr3, entry, sp, brk, stack_populated;
  uint32_t nvmas;
  struct qk_vma_desc vmas[QK_MAX_BOOT_VMAS];
  char exe[256]; /* absolute path of the executable inside the rootfs */
};

/* Reads path (resolved inside rootfd) into a malloc'd buffer of at most max
 * bytes. Regular files only. */
int sbx_read_in_root(int rootfd, const char *path, size_t max, uint8_t **buf, size_t *len, q_error **err);

int sbx_elf_load_process(struct sbx_mem *mem, struct sbx_falloc *fa, const struct sbx_pt *kernel_pt, int rootfd,
                         const struct sbx_proc_spec *spec, struct sbx_proc_image *out, q_error **err);

#endif
