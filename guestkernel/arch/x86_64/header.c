/* The kernel image header: the host reads it from the ELF section
 * ".qk_header" to check the ABI version and to build the IDT and LSTAR. */
#include "../../abi/qk_abi.h"

extern char qk_arch_vector_stubs[], qk_arch_syscall_entry[], qk_arch_syscall_ustub[];

__attribute__((section(".qk_header"), used, aligned(8)))
const struct qk_kernel_header qk_kernel_header = {
    .magic = QK_KERNEL_MAGIC,
    .abi_version = QK_ABI_VERSION,
    .flags = 0,
    .vector_stubs = (uint64_t)qk_arch_vector_stubs,
    .vector_stub_stride = 16,
    .vector_count = 256,
    .syscall_entry = (uint64_t)qk_arch_syscall_entry,
    .syscall_user_stub = (uint64_t)qk_arch_syscall_ustub,
};
