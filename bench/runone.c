/* Runs one command and reports what the benchmarks need: wall time from
 * fork to reap, the CPU time (user + system) of the child and of the
 * descendants it reaped, its peak RSS and its exit status, as one line
 * "WALL_NS CPU_NS MAXRSS_KIB STATUS" written to REPORT_FILE.
 *
 *   runone REPORT_FILE OUT_FILE COMMAND [ARG]...
 *
 * The child's stdout goes to OUT_FILE (/dev/null to drop it), stdin is
 * /dev/null, stderr is inherited. Why a C program: Linux carries the
 * peak RSS of the address space a child had before exec(2) into its
 * ru_maxrss, so a child forked (or posix_spawn'ed) from a Python process
 * of 90 MB reports at least 90 MB. Forked from this one, of about 1 MB,
 * it reports its own. Built by bench/suite.py and bench/peers/run with cc. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
  struct rusage ru;
  long long t0, t1;
  int status, code;
  pid_t pid;
  FILE *report;

  if (argc < 4) {
    fprintf(stderr, "usage: runone REPORT_FILE OUT_FILE COMMAND [ARG]...\n");
    return 2;
  }
  t0 = now_ns();
  pid = fork();
  if (pid < 0) {
    perror("runone: fork");
    return 2;
  }
  if (pid == 0) {
    int in = open("/dev/null", O_RDONLY);
    int out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);

    if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0) {
      perror("runone");
      _exit(127);
    }
    close(in);
    close(out);
    execvp(argv[3], argv + 3);
    perror(argv[3]);
    _exit(127);
  }
  if (wait4(pid, &status, 0, &ru) < 0) {
    perror("runone: wait4");
    return 2;
  }
  t1 = now_ns();
  code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  report = fopen(argv[1], "w");
  if (report == NULL) {
    perror(argv[1]);
    return 2;
  }
  fprintf(report, "%lld %lld %ld %d\n", t1 - t0,
          (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
              (long long)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL,
          ru.ru_maxrss, code);
  fclose(report);
  return 0;
}
