/* /proc/<pid>/net (and /proc/net, a link to self/net as on Linux).
 *
 * Every guest process is in the pod's network namespace, which is the
 * sandbox's: the files that show the network (dev, tcp, udp, route,
 * snmp, ...) are the host's own /proc/thread-self/net files, read whole by
 * QK_OP_PROCNET_READ when the file is opened (the snapshot proc.c keeps,
 * so reads in small chunks see one consistent table). The socket inode
 * numbers in tcp/udp are the host's; a /proc/<pid>/fd link of a host
 * socket reads the same number (one QK_OP_FSTAT when the link is read).
 * unix lists the guest's own AF_UNIX sockets (net/unix.c), which never
 * reach the host. The directory lists only the files the host has (one
 * QK_OP_PROCNET_READ probe, kept for the VM's life). */
#include <qk/fs.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/net.h>
#include <qk/qcall.h>

#include "../net/net_internal.h"
#include "../net/unix_internal.h"
#include "proc_internal.h"

#define NET_UNIX (-1) /* generated here, not read from the host */

static const struct {
  const char *name;
  int host; /* enum qk_procnet, or NET_UNIX */
} files[] = {
    {"dev", QK_PROCNET_DEV},
    {"tcp", QK_PROCNET_TCP},
    {"tcp6", QK_PROCNET_TCP6},
    {"udp", QK_PROCNET_UDP},
    {"udp6", QK_PROCNET_UDP6},
    {"raw", QK_PROCNET_RAW},
    {"raw6", QK_PROCNET_RAW6},
    {"route", QK_PROCNET_ROUTE},
    {"if_inet6", QK_PROCNET_IF_INET6},
    {"snmp", QK_PROCNET_SNMP},
    {"netstat", QK_PROCNET_NETSTAT},
    {"sockstat", QK_PROCNET_SOCKSTAT},
    {"sockstat6", QK_PROCNET_SOCKSTAT6},
    {"unix", NET_UNIX},
};

/* Which host files exist (bit per enum qk_procnet); probed once. */
static bool host_probed;
static uint32_t host_mask;

static bool present(int i)
{
  if (files[i].host == NET_UNIX)
    return true;
  if (!host_probed) {
    int64_t r = qk_qcall(QK_OP_PROCNET_READ, QK_PROCNET_PROBE, 0, 0, 0, 0, 0);
    host_mask = r > 0 ? (uint32_t)r : 0;
    host_probed = true;
  }
  return host_mask & (1u << files[i].host);
}

int qk_proc_net_count(void)
{
  return (int)QK_ARRAY_SIZE(files);
}

const char *qk_proc_net_name(int i)
{
  return i >= 0 && i < qk_proc_net_count() && present(i) ? files[i].name : NULL;
}

int qk_proc_net_find(const char *c, size_t n)
{
  for (int i = 0; i < qk_proc_net_count(); i++)
    if (strlen(files[i].name) == n && !strncmp(files[i].name, c, n))
      return present(i) ? i : -1;
  return -1;
}

/* The host's file appended to o. A file that does not fit BUF_MAX keeps
 * its whole lines up to there; one that changed size between the probe of
 * its length and the read is read again. */
static void gen_host(struct pbuf *o, int which)
{
  size_t room = 16384 - 1;
  for (int tries = 0; tries < 4; tries++) {
    pb_grow(o, room);
    if (o->oom)
      return;
    room = o->cap - o->len - 1;
    int64_t r = qk_qcall(QK_OP_PROCNET_READ, (uint64_t)which, qk_va_to_pa(o->b + o->len), room, 0, 0, 0);
    if (r < 0)
      return; /* gone since the probe: an empty file */
    if ((uint64_t)r <= room) {
      o->len += (size_t)r;
      o->b[o->len] = 0;
      return;
    }
    if (room >= BUF_MAX - 1 - o->len || tries == 3) {
      size_t keep = room;
      while (keep && o->b[o->len + keep - 1] != '\n')
        keep--;
      o->len += keep;
      o->b[o->len] = 0;
      return;
    }
    room = (size_t)r + 4096 < BUF_MAX - 1 - o->len ? (size_t)r + 4096 : BUF_MAX - 1 - o->len;
  }
}

/* Linux's /proc/net/unix: one line per socket; kernel addresses shown as
 * zeros (kptr_restrict's view for a reader without CAP_SYSLOG). */
static void gen_unix(struct pbuf *o)
{
  pb_puts(o, "Num       RefCount Protocol Flags    Type St Inode Path\n");
  for (struct unix_end *e = qk_unix_all; e && !o->oom; e = e->next) {
    uint32_t refs = e->file ? e->file->refs + 1 : 1;
    pb_printf(o, "0000000000000000: %08X 00000000 %08X %04X %02X %5lu", refs,
              e->state == U_LISTEN ? 0x10000u : 0u, (unsigned)e->type,
              e->state == U_CONNECTED ? 3u : 1u, (unsigned long)e->ino);
    if (e->name.len > 2) {
      /* sun_path: a path with its NUL counted in len; an abstract name
       * starts with NUL, shown as '@' like every NUL in it */
      const uint8_t *p = e->name.addr + 2;
      size_t n = e->name.len - 2, i = 0;
      char line[2 + NAME_MAX_UN + 1];
      size_t k = 0;
      line[k++] = ' ';
      if (p[0])
        n--;
      else
        line[k++] = '@', i = 1;
      for (; i < n; i++)
        line[k++] = p[i] ? (char)p[i] : '@';
      pb_mem(o, line, k);
    }
    pb_puts(o, "\n");
  }
}

void gen_net(struct pbuf *o, int i)
{
  if (i < 0 || i >= qk_proc_net_count())
    return;
  if (files[i].host == NET_UNIX)
    gen_unix(o);
  else
    gen_host(o, files[i].host);
}

int qk_proc_net_sock_link(struct qk_file *f, char *buf, size_t len)
{
  uint64_t ino = 0;
  struct l_stat *st = qk_kmalloc(sizeof(*st));
  if (!st)
    return -QK_ENOMEM;
  /* Host sockets: the host's inode (socket.c's fstat asks the host once
   * and keeps it); unix and TSoR sockets: the guest's numbers. */
  if (f->ops->fstat && f->ops->fstat(f, qk_va_to_pa(st)) == 0 &&
      (st->st_mode & L_S_IFMT) == 0140000)
    ino = st->st_ino;
  qk_kfree(st);
  if (!ino)
    return 0;
  qk_snprintf(buf, len, "socket:[%lu]", (unsigned long)ino);
  return 1;
}
