/* Path strings. The host resolves every path inside the rootfs itself
 * (openat2 RESOLVE_IN_ROOT: symlinks and ".." handled as Linux does), so the
 * guest only joins relative paths to a base; lexical normalisation is for
 * the cwd string that getcwd reports and for matching in-kernel names.
 * /proc/<pid>/root and cwd are links into another process's root: the
 * lexical rules stop where they would cross one (qk_path_proc_link). */
#include <qk/fs.h>
#include <qk/kernel.h>

int qk_path_join(char *out, int size, const char *base, const char *rel)
{
  size_t rl = strlen(rel);
  if (rel[0] == '/') {
    if (rl + 1 > (size_t)size)
      return -QK_ENAMETOOLONG;
    memcpy(out, rel, rl + 1);
    return (int)rl;
  }
  size_t bl = strlen(base);
  while (bl > 1 && base[bl - 1] == '/')
    bl--;
  size_t sep = (bl == 1 && base[0] == '/') ? 0 : 1;
  if (bl + sep + rl + 1 > (size_t)size)
    return -QK_ENAMETOOLONG;
  memcpy(out, base, bl);
  if (sep)
    out[bl] = '/';
  memcpy(out + bl + sep, rel, rl + 1);
  return (int)(bl + sep + rl);
}

static bool digits(const char *s, size_t n)
{
  if (!n || n > 9)
    return false;
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9')
      return false;
  return true;
}

int qk_path_proc_link(const char *p, uint64_t n)
{
  int kind;
  if (n > 5 && !memcmp(p + n - 5, "/root", 5)) {
    kind = QK_PATH_LINK_ROOT;
    n -= 5;
  } else if (n > 4 && !memcmp(p + n - 4, "/cwd", 4)) {
    kind = QK_PATH_LINK_CWD;
    n -= 4;
  } else {
    return 0;
  }
  if (n < 7 || memcmp(p, "/proc/", 6))
    return 0;
  const char *s = p + 6; /* <pid>, self, thread-self, or <pid>/task/<tid> */
  size_t m = n - 6, i = 0;
  if (m == 11 && !memcmp(s, "thread-self", 11))
    return kind;
  while (i < m && s[i] != '/')
    i++;
  if (!digits(s, i) && !(i == 4 && !memcmp(s, "self", 4)))
    return 0;
  if (i == m)
    return kind;
  return m - i > 6 && !memcmp(s + i, "/task/", 6) && digits(s + i + 6, m - i - 6) ? kind : 0;
}

int qk_path_normalize(char *p)
{
  /* r reads, w writes (w never passes r): each kept component is written
   * after a separator, ".." rewinds w to before the last one but never
   * below floor: the root, or the end of a /proc/<pid>/root link walked
   * through (".." at another process's root stays there, as at one's
   * own). After a /proc/<pid>/cwd link the rest is kept as it is: its
   * ".." is the other process's cwd's parent, which only the lookup knows. */
  char *r = p, *w = p + 1, *floor = p + 1, *base = p; /* base: the path in floor's root */
  p[0] = '/';
  while (*r) {
    while (*r == '/')
      r++;
    if (!*r)
      break;
    char *c = r;
    while (*r && *r != '/')
      r++;
    size_t n = (size_t)(r - c);
    if (n == 1 && c[0] == '.')
      continue;
    if (n == 2 && c[0] == '.' && c[1] == '.') {
      while (w > floor && w[-1] != '/')
        w--;
      if (w > floor)
        w--;
      continue;
    }
    if (w > p + 1)
      *w++ = '/';
    memmove(w, c, n);
    w += n;
    if (*r && (n == 4 || n == 3)) {
      int k = qk_path_proc_link(base, (size_t)(w - base));
      if (k == QK_PATH_LINK_ROOT) {
        floor = base = w;
      } else if (k == QK_PATH_LINK_CWD) {
        size_t rl = strlen(r);
        memmove(w, r, rl);
        w += rl;
        break;
      }
    }
  }
  *w = 0;
  return (int)(w - p);
}
