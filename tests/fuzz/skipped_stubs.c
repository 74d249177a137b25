/* Stand-ins for the functions of QUARK_FUZZ_SKIP_SOURCES (fuzz.cmake): files
 * clang refuses to compile today. Linked into every fuzz target; weak, so
 * the real definitions win as soon as their files compile and are linked
 * again. Prototypes are spelled with opaque pointers on purpose: this file
 * must build whatever module headers a target can see. */
#include <errno.h>
#include <stddef.h>

#include <quark/common.h>

/* network/exec.c */
__attribute__((weak)) int net_exec_plugin(const void *c, const char *path, const char *type,
                                          const char *command, const void *rt, const char *config,
                                          size_t config_len, char **out, q_error **err)
{
  (void)c, (void)path, (void)type, (void)command, (void)rt, (void)config, (void)config_len;
  (void)out;
  return q_error_make(err, ENOSYS, "CNI plugins are not run by the fuzzers");
}

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
