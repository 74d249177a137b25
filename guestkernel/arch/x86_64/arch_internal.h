/* Arch-private hooks used by guestkernel/qcall/ (not part of qk/arch.h). */
#ifndef QK_ARCH_INTERNAL_H
#define QK_ARCH_INTERNAL_H

#include <stdint.h>

/* Set at boot when syscalls run in the CPL3 kernel worker (arch.c). */
extern uint8_t qk_worker_mode;

/* 32-bit port write. Port I/O faults in the CPL3 worker on PVM-style hosts
 * (IOPL is not honoured for ring 3 there), so it then goes through ring 0. */
void qk_arch_port_out32(uint16_t port, uint32_t v);

/* QK_HOST_WORKER_MMIO_WAIT (set by qcall.c at boot): in the worker,
 * QK_PORT_WAIT is a store to the kick page. */
extern uint8_t qk_qcall_mmio_wait;

#endif
