/* Path strings. The host resolves every path inside the rootfs itself
 * (openat2 RESOLVE_IN_ROOT: symlinks and ".." handled as Linux does), so the
 * guest only joins relative paths to a base; lexical normalisation is for
 * the cwd string that getcwd reports and for matching in-kernel names. */
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

int qk_path_normalize(char *p)
{
  /* r reads, w writes (w never passes r): each kept component is written
   * after a separator, ".." rewinds w to before the last one. */
  char *r = p, *w = p + 1;
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
      while (w > p + 1 && w[-1] != '/')
        w--;
      if (w > p + 1)
        w--;
      continue;
    }
    if (w > p + 1)
      *w++ = '/';
    memmove(w, c, n);
    w += n;
  }
  *w = 0;
  return (int)(w - p);
}
