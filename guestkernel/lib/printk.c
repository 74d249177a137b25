/* Kernel log lines to the host (QK_OP_LOG), one request per line. */
#include <qk/kernel.h>
#include <qk/arch.h>
#include <qk/qcall.h>

void qk_printk(int level, const char *fmt, ...)
{
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  int n = qk_vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  if (n > (int)sizeof(buf) - 1)
    n = (int)sizeof(buf) - 1;
  if (qk_qcall(QK_OP_LOG, (uint64_t)level, qk_va_to_pa(buf), (uint64_t)n, 0, 0, 0) < 0) {
    /* No ring (very early boot): the console port, slow but always there. */
    qk_arch_console_write(buf, (uint64_t)n);
    qk_arch_console_write("\n", 1);
  }
}

void qk_kpanic(const char *fmt, ...)
{
  char buf[QK_PANIC_MSG_SIZE];
  va_list ap;
  va_start(ap, fmt);
  qk_vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  qk_arch_panic(buf);
}
