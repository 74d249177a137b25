/* Stand-ins for the functions of QUARK_FUZZ_SKIP_SOURCES (fuzz.cmake): files
 * clang refuses to compile today. Linked into every fuzz target and weak,
 * so a real definition linked beside them wins; but a weak definition also
 * keeps the linker from pulling the real file out of its library for that
 * symbol, so remove a file's stubs together with its skip entry.
 * Prototypes use opaque pointers on purpose: this file must build whatever
 * module headers a target can see. */
#include <errno.h>
#include <stddef.h>

#include <quark/common.h>

/* cri/image/rootfs.c */
__attribute__((weak)) int img_rootfs_create(void *st, const char *ref_or_id,
                                            const char *container_id, const char *dest_dir,
                                            q_error **err)
{
  (void)st, (void)ref_or_id, (void)container_id, (void)dest_dir;
  return q_error_make(err, ENOSYS, "container root filesystems are not built by the fuzzers");
}

__attribute__((weak)) int img_rootfs_remove(void *st, const char *container_id, q_error **err)
{
  (void)st, (void)container_id;
  return q_error_make(err, ENOSYS, "container root filesystems are not built by the fuzzers");
}
