/* Shared by t_signals and t_jobctl: a sleep that survives signals, and the
 * scenario harness (each scenario in a child process with an alarm as a
 * hang watchdog; its failures count in the parent). */
#ifndef SIGTEST_H
#define SIGTEST_H

#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../guest/progs/t.h"

#define WATCHDOG_S 60

static void pause_ms(int ms)
{
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) && errno == EINTR)
    ;
}

/* Runs fn in a child process unless only names another scenario. */
static void scenario(const char *name, const char *only, void (*fn)(void))
{
  if (only && strcmp(only, name))
    return;
  fflush(stdout);
  pid_t c = fork();
  if (c == 0) {
    alarm(WATCHDOG_S);
    t_checks = t_fails = 0;
    fn();
    fflush(stdout);
    _exit(t_fails ? 1 : 0);
  }
  int st = 0;
  CHECK_EQ(waitpid(c, &st, 0), c);
  if (!WIFEXITED(st) || WEXITSTATUS(st)) {
    printf("FAIL scenario %s: status 0x%x%s\n", name, st,
           WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM ? " (hung: watchdog)" : "");
    t_fails++;
  } else {
    printf("ok: %s\n", name);
  }
  t_checks++;
}

/* main's start: line-buffered stdout; the one scenario argv[1] names
 * ("all" or none: every one). Use as S(s_name) for scenario s_name. */
static const char *scenario_only(int argc, char **argv)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  return argc > 1 && strcmp(argv[1], "all") ? argv[1] : NULL;
}
#define S(f) scenario(#f + 2, only, f)

#endif
