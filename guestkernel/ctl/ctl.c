/* The pod control channel, guest side (include/qk/ctl.h). Everything the
 * host wrote is read once into kernel memory and checked before use: the
 * host may be buggy, and the ring is shared memory. */
#include <qk/ctl.h>
#include <qk/lib.h>
#include <qk/mm.h>
#include <qk/qcall.h>

#include "../abi/qk_errno.h"

static struct qk_ctl_area *area;
static int polling;

void qk_ctl_init(struct qk_boot_info *bi)
{
  if (!bi->ctl_gpa || (bi->ctl_gpa & (QK_PAGE_SIZE - 1)) ||
      bi->ctl_gpa + sizeof(struct qk_ctl_area) > bi->mem_size)
    return;
  struct qk_ctl_area *a = qk_pa_to_va(bi->ctl_gpa);
  if (a->magic != QK_CTL_MAGIC || a->version != QK_CTL_VERSION) {
    qk_printk(QK_LOG_WARN, "pod control area: magic %x version %u not served", a->magic,
              a->version);
    return;
  }
  area = a;
  __atomic_store_n(&area->guest_version, QK_CTL_VERSION, __ATOMIC_RELEASE);
}

void qk_ctl_process_free(struct qk_ctl_process *p)
{
  if (!p)
    return;
  for (uint32_t i = 0; p->argv && i < p->argc; i++)
    qk_kfree(p->argv[i]);
  for (uint32_t i = 0; p->envp && i < p->envc; i++)
    qk_kfree(p->envp[i]);
  qk_kfree(p->argv);
  qk_kfree(p->envp);
  qk_kfree(p->groups);
  qk_kfree(p->cwd);
  qk_kfree(p->sec_filter);
  qk_kfree(p);
}

static char *dup_str(const char *s, size_t n)
{
  char *d = qk_kmalloc(n + 1);
  if (d) {
    memcpy(d, s, n);
    d[n] = 0;
  }
  return d;
}

/* Copies and validates the spec of cmd (payload snapshot first: the host
 * must not change it, but if it does we read each byte once). */
static int copy_spec(const struct qk_ctl_cmd *cmd, struct qk_ctl_process **out)
{
  *out = NULL;
  if (cmd->payload_off > QK_CTL_PAYLOAD_SIZE ||
      cmd->payload_len > QK_CTL_PAYLOAD_SIZE - cmd->payload_off ||
      cmd->payload_len < sizeof(struct qk_ctl_spec))
    return -QK_EINVAL;
  uint8_t *buf = qk_kmalloc(cmd->payload_len);
  if (!buf)
    return -QK_ENOMEM;
  memcpy(buf, area->payload + cmd->payload_off, cmd->payload_len);
  struct qk_ctl_spec s;
  memcpy(&s, buf, sizeof s);
  uint32_t len = cmd->payload_len;
  int r = -QK_EINVAL;
  struct qk_ctl_process *p = NULL;
  if (s.version != QK_CTL_VERSION || s.argc == 0 || s.argc > QK_CTL_MAX_ARGS ||
      s.envc > QK_CTL_MAX_ARGS - s.argc || s.strings_off > len ||
      s.strings_len > len - s.strings_off || s.ngroups > 65536 || s.groups_off > len ||
      (uint64_t)s.ngroups * 4 > len - s.groups_off)
    goto out;
  r = -QK_ENOMEM;
  if (!(p = qk_kmalloc(sizeof *p)))
    goto out;
  memset(p, 0, sizeof *p);
  p->flags = s.flags;
  p->uid = s.uid;
  p->gid = s.gid;
  p->root_hfd = s.root_hfd;
  for (int i = 0; i < 3; i++)
    p->stdio_hfd[i] = s.stdio_hfd[i];
  p->mem_limit = s.mem_limit;
  p->pids_max = s.pids_max;
  p->pidns_cid = s.pidns_cid; /* checked by the task layer (task/container.c) */
  if (s.sec_len) { /* security block (qk_ctl_sec), checked like the rest */
    struct qk_ctl_sec sec;
    if (s.sec_off > len || s.sec_len > len - s.sec_off || s.sec_len < sizeof sec)
      goto out;
    memcpy(&sec, buf + s.sec_off, sizeof sec);
    if (sec.filter_len > QK_SEC_MAX_FILTER ||
        (uint64_t)sec.filter_len * 8 > s.sec_len - sizeof sec)
      goto out;
    p->sec_flags = sec.flags;
    p->sec_caps = sec.caps;
    if (sec.filter_len) {
      if (!(p->sec_filter = qk_kmalloc((size_t)sec.filter_len * 8)))
        goto out;
      memcpy(p->sec_filter, buf + s.sec_off + sizeof sec, (size_t)sec.filter_len * 8);
      p->sec_filter_len = sec.filter_len;
    }
  }
  p->argv = qk_kmalloc((s.argc + 1) * sizeof(char *));
  p->envp = qk_kmalloc((s.envc + 1) * sizeof(char *));
  p->groups = qk_kmalloc((s.ngroups ? s.ngroups : 1) * 4);
  if (!p->argv || !p->envp || !p->groups)
    goto out;
  memset(p->argv, 0, (s.argc + 1) * sizeof(char *));
  memset(p->envp, 0, (s.envc + 1) * sizeof(char *));
  memcpy(p->groups, buf + s.groups_off, (size_t)s.ngroups * 4);
  p->ngroups = s.ngroups;
  const char *str = (const char *)buf + s.strings_off;
  size_t left = s.strings_len;
  /* argv, envp, then cwd: argc + envc + 1 strings. */
  for (uint32_t i = 0; i < s.argc + s.envc + 1; i++) {
    size_t n = strnlen(str, left);
    r = -QK_EINVAL;
    if (n == left)
      goto out;
    char *d = dup_str(str, n);
    r = -QK_ENOMEM;
    if (!d)
      goto out;
    if (i < s.argc)
      p->argv[p->argc++] = d;
    else if (i < s.argc + s.envc)
      p->envp[p->envc++] = d;
    else
      p->cwd = d;
    str += n + 1;
    left -= n + 1;
  }
  r = -QK_EINVAL;
  if (p->cwd[0] != '/')
    goto out;
  *out = p;
  p = NULL;
  r = 0;
out:
  qk_ctl_process_free(p);
  qk_kfree(buf);
  return r;
}

static int post(struct qk_ctl_event *ev)
{
  if (!area)
    return -QK_ENOSYS;
  return (int)qk_qcall(QK_OP_CTL_EVENT, qk_va_to_pa(ev), sizeof *ev, 0, 0, 0, 0);
}

int qk_ctl_container_started(uint32_t cid, int32_t pid)
{
  struct qk_ctl_event ev = {.type = QK_CTL_EV_STARTED, .cid = cid, .v = {(uint64_t)pid}};
  return post(&ev);
}

int qk_ctl_container_exited(uint32_t cid, int32_t status, uint32_t flags)
{
  struct qk_ctl_event ev = {.type = QK_CTL_EV_EXITED, .cid = cid, .status = status, .flags = flags};
  return post(&ev);
}

int qk_ctl_exec_exited(uint32_t cid, uint32_t xid, int32_t status, uint32_t flags)
{
  struct qk_ctl_event ev = {
      .type = QK_CTL_EV_EXEC_EXITED, .cid = cid, .xid = xid, .status = status, .flags = flags};
  return post(&ev);
}

static int64_t dispatch(const struct qk_ctl_cmd *c)
{
  struct qk_ctl_process *spec;
  int r;
  if (c->cid >= QK_CTL_MAX_CONTAINERS &&
      !(c->cid == QK_CTL_POD && (c->op == QK_CTL_STATS || c->op == QK_CTL_SHUTDOWN)))
    return -QK_EINVAL;
  switch (c->op) {
  case QK_CTL_CREATE:
  case QK_CTL_EXEC:
    if ((r = copy_spec(c, &spec)) < 0)
      return r;
    r = c->op == QK_CTL_CREATE ? qk_container_create(c->cid, spec)
                               : qk_exec_spawn(c->cid, c->xid, spec);
    if (r < 0)
      qk_ctl_process_free(spec);
    return r;
  case QK_CTL_START:
    return qk_container_start(c->cid);
  case QK_CTL_SIGNAL:
    return c->arg >= 1 && c->arg <= 64 ? qk_container_signal(c->cid, c->arg) : -QK_EINVAL;
  case QK_CTL_EXEC_KILL:
    return c->arg >= 1 && c->arg <= 64 ? qk_exec_kill(c->cid, c->xid, c->arg) : -QK_EINVAL;
  case QK_CTL_DELETE:
    return qk_container_delete(c->cid);
  case QK_CTL_STATS: {
    struct qk_ctl_stats st = {0};
    if ((r = qk_stats(c->cid, &st)) < 0)
      return r;
    struct qk_ctl_event ev = {.type = QK_CTL_EV_STATS,
                              .cid = c->cid,
                              .seq = c->seq,
                              .v = {st.memory_bytes, st.cpu_ns, st.processes}};
    return post(&ev);
  }
  case QK_CTL_SHUTDOWN:
    /* Acknowledged first; then the whole guest stops with the signal's status. */
    return 0;
  case QK_CTL_UPDATE: {
    struct qk_ctl_resources res;
    if (c->payload_off > QK_CTL_PAYLOAD_SIZE ||
        c->payload_len > QK_CTL_PAYLOAD_SIZE - c->payload_off || c->payload_len < sizeof res)
      return -QK_EINVAL;
    memcpy(&res, area->payload + c->payload_off, sizeof res);
    return qk_container_update(c->cid, res.mem_limit);
  }
  default:
    return -QK_ENOSYS;
  }
}

unsigned qk_ctl_poll(void)
{
  if (!area || __atomic_exchange_n(&polling, 1, __ATOMIC_ACQUIRE))
    return 0;
  qk_container_stdio_tick();
  unsigned served = 0;
  for (;;) {
    uint32_t head = area->cmd_head;
    if (__atomic_load_n(&area->cmd_tail, __ATOMIC_ACQUIRE) == head)
      break;
    struct qk_ctl_cmd c;
    memcpy(&c, &area->cmd[head & (QK_CTL_ENTRIES - 1)], sizeof c);
    int64_t r = dispatch(&c);
    /* The payload may be reused once the ACK is out: consume, then ack. */
    __atomic_store_n(&area->cmd_head, head + 1, __ATOMIC_RELEASE);
    struct qk_ctl_event ack = {
        .type = QK_CTL_EV_ACK, .cid = c.cid, .xid = c.xid, .seq = c.seq, .result = r};
    post(&ack);
    served++;
    if (c.op == QK_CTL_SHUTDOWN)
      qk_qcall(QK_OP_EXIT, c.arg > 0 && c.arg <= 64 ? 128 + (uint64_t)c.arg : 0, 0, 0, 0, 0, 0);
  }
  __atomic_store_n(&polling, 0, __ATOMIC_RELEASE);
  return served;
}

int qk_ctl_idle_prepare(void)
{
  if (!area)
    return 1;
  __atomic_store_n(&area->guest_sleeping, 1, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&area->cmd_tail, __ATOMIC_SEQ_CST) != area->cmd_head) {
    __atomic_store_n(&area->guest_sleeping, 0, __ATOMIC_RELAXED);
    return 0;
  }
  return 1;
}

void qk_ctl_idle_done(void)
{
  if (area)
    __atomic_store_n(&area->guest_sleeping, 0, __ATOMIC_RELAXED);
}
