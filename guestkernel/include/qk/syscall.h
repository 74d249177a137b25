/* The syscall layer: one table from x86-64 numbers to handlers. Handlers
 * are plain C returning a value or a negated errno; they read user memory
 * only through mm.h's checked accessors. Numbers with no handler return
 * -ENOSYS and are logged once each. */
#ifndef QK_SYSCALL_H
#define QK_SYSCALL_H

#include <stdint.h>

typedef int64_t (*qk_sys_fn)(uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                             uint64_t a5);

#define QK_NR_SYSCALLS 462


#endif
