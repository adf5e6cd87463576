/* Tests of the child-process runner with real children (/bin/sh, cat,
 * yes, head, sleep, python3). Every test runs its own loop, checks that
 * on_exit fired exactly once, that the loop closes cleanly (no handle
 * left) and that no file descriptor leaked. */
#include "helpers.h"

#include "proc.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  int exit_calls;
  ice__proc_result_t res;
  char *out; /* copies: the result is only valid during on_exit */
  size_t out_len;
  char *tail;
  char **lines;
  size_t *line_lens;
  size_t nlines;
  size_t line_bytes;
  int keep_lines;   /* 0: only count them (for huge stderr) */
  uint64_t exit_ms; /* uv_now when on_exit ran */
  uv_loop_t *loop;
} run_t;

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int n = 0;

  assert_non_null(d);
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] != '.')
      n++;
  }
  closedir(d);
  return n;
}

static void on_line(void *data, const char *line, size_t len) {
  run_t *r = data;

  r->line_bytes += len;
  assert_null(memchr(line, '\n', len));
  if (r->keep_lines) {
    if ((r->nlines & (r->nlines - 1)) == 0) { /* grow at powers of 2 */
      size_t cap = r->nlines == 0 ? 1 : r->nlines * 2;

      r->lines = realloc(r->lines, cap * sizeof(*r->lines));
      r->line_lens = realloc(r->line_lens, cap * sizeof(*r->line_lens));
      assert_non_null(r->lines);
      assert_non_null(r->line_lens);
    }
    r->lines[r->nlines] = malloc(len + 1);
    assert_non_null(r->lines[r->nlines]);
    memcpy(r->lines[r->nlines], line, len);
    r->lines[r->nlines][len] = '\0';
    r->line_lens[r->nlines] = len;
  }
  r->nlines++;
}

static void on_exit_cb(void *data, const ice__proc_result_t *res) {
  run_t *r = data;

  r->exit_calls++;
  r->res = *res;
  assert_non_null(res->out);
  assert_int_equal(res->out[res->out_len], '\0');
  assert_non_null(res->stderr_tail);
  assert_true(strlen(res->stderr_tail) <= 2048);
  r->out = malloc(res->out_len + 1);
  assert_non_null(r->out);
  memcpy(r->out, res->out, res->out_len + 1);
  r->out_len = res->out_len;
  r->tail = strdup(res->stderr_tail);
  assert_non_null(r->tail);
  r->res.out = NULL;
  r->res.stderr_tail = NULL;
  if (r->loop != NULL)
    r->exit_ms = uv_now(r->loop);
}

static void run_free(run_t *r) {
  for (size_t i = 0; r->keep_lines && i < r->nlines; i++)
    free(r->lines[i]);
  free(r->lines);
  free(r->line_lens);
  free(r->out);
  free(r->tail);
}

static ice__proc_opts_t opts_for(const char *const *argv, run_t *r) {
  ice__proc_opts_t o;

  memset(&o, 0, sizeof(o));
  o.argv = argv;
  o.on_stderr_line = on_line;
  o.on_exit = on_exit_cb;
  o.data = r;
  r->keep_lines = 1;
  return o;
}

/* Starts one child on a fresh loop, runs it to completion and checks the
 * invariants every test shares. */
static void run_once(ice__proc_opts_t *o, run_t *r) {
  uv_loop_t loop;
  ice__proc_t *p = NULL;
  int fds = count_fds();

  assert_int_equal(uv_loop_init(&loop), 0);
  r->loop = &loop;
  assert_int_equal(ice__proc_start(&loop, o, &p), 0);
  assert_non_null(p);
  assert_true(ice__proc_pid(p) > 0);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(r->exit_calls, 1);
  assert_int_equal(r->res.spawn_error, 0);
  assert_int_equal(uv_loop_close(&loop), 0);
  r->loop = NULL;
  assert_int_equal(count_fds(), fds);
}

/* Dead means no such process, or a zombie nobody reaps (in a container
 * PID 1 may never reap orphans). Polls briefly: the kernel finishes a
 * SIGKILL asynchronously. */
static int pid_dead(int pid) {
  for (int i = 0; i < 200; i++) {
    char path[64];
    char buf[512];
    FILE *f;
    char *rp;

    if (kill(pid, 0) != 0 && errno == ESRCH)
      return 1;
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    f = fopen(path, "r");
    if (f != NULL) {
      size_t n = fread(buf, 1, sizeof(buf) - 1, f);

      fclose(f);
      buf[n] = '\0';
      rp = strrchr(buf, ')');
      if (rp != NULL && (rp[2] == 'Z' || rp[2] == 'X'))
        return 1;
    }
    usleep(10000);
  }
  return 0;
}

static void test_cat_roundtrip(void **state) {
  const char *argv[] = {"cat", NULL};
  size_t n = 5 * 1024 * 1024;
  char *in = malloc(n);
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);

  assert_non_null(in);
  for (size_t i = 0; i < n; i++)
    in[i] = (char)('a' + i % 26);
  o.stdin_data = in;
  o.stdin_len = n;
  run_once(&o, &r);
  free(in); /* the proc copied it; freeing late only keeps it simple */
  assert_int_equal(r.res.exit_status, 0);
  assert_int_equal(r.res.term_signal, 0);
  assert_int_equal(r.res.killed, 0);
  assert_int_equal(r.out_len, n);
  for (size_t i = 0; i < n; i += 4093)
    assert_int_equal(r.out[i], 'a' + i % 26);
  assert_int_equal(r.out[n - 1], 'a' + (n - 1) % 26);
  /* We reap the child ourselves, so its rusage is known. */
  assert_true(r.res.cpu_seconds >= 0 && r.res.cpu_seconds < 60);
  assert_true(r.res.max_rss_kb > 0);
  run_free(&r);
}

/* The caller may free stdin_data as soon as start returns. */
static void test_stdin_copied(void **state) {
  const char *argv[] = {"cat", NULL};
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);
  uv_loop_t loop;
  ice__proc_t *p;
  char *in = strdup("{\"a\":1}\n");

  assert_non_null(in);
  o.stdin_data = in;
  o.stdin_len = strlen(in);
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(ice__proc_start(&loop, &o, &p), 0);
  memset(in, 'X', strlen(in));
  free(in);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(r.exit_calls, 1);
  assert_string_equal(r.out, "{\"a\":1}\n");
  assert_int_equal(uv_loop_close(&loop), 0);
  run_free(&r);
}

static void test_no_stdin(void **state) {
  const char *argv[] = {"cat", NULL};
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);

  run_once(&o, &r);
  assert_int_equal(r.res.exit_status, 0);
  assert_int_equal(r.out_len, 0);
  assert_string_equal(r.out, "");
  assert_string_equal(r.tail, "");
  assert_int_equal(r.nlines, 0);
  run_free(&r);
}

static void test_exit_codes(void **state) {
  static const struct {
    const char *script;
    int status;
  } cases[] = {{"exit 0", 0}, {"exit 3", 3}, {"exit 75", 75}, {"false", 1}};

  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const char *argv[] = {"/bin/sh", "-c", cases[i].script, NULL};
    run_t r = {0};
    ice__proc_opts_t o = opts_for(argv, &r);

    run_once(&o, &r);
    assert_int_equal(r.res.exit_status, cases[i].status);
    assert_int_equal(r.res.term_signal, 0);
    assert_int_equal(r.res.killed, 0);
    assert_int_equal(r.res.output_exceeded, 0);
    run_free(&r);
  }
}

static void test_term_signal(void **state) {
  const char *argv[] = {"/bin/sh", "-c", "echo before; kill -TERM $$", NULL};
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);

  run_once(&o, &r);
  assert_int_equal(r.res.term_signal, SIGTERM);
  assert_int_equal(r.res.killed, 0);
  assert_string_equal(r.out, "before\n");
  run_free(&r);
}

static void test_stderr_lines(void **state) {
  const char *argv[] = {"/bin/sh", "-c",
                        "printf 'one\\ntwo\\r\\n\\nthree' >&2; echo out", NULL};
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);

  run_once(&o, &r);
  assert_int_equal(r.nlines, 4);
  assert_string_equal(r.lines[0], "one");
  assert_string_equal(r.lines[1], "two");
  assert_string_equal(r.lines[2], "");
  assert_string_equal(r.lines[3], "three");
  assert_string_equal(r.tail, "one\ntwo\n\nthree");
  assert_string_equal(r.out, "out\n");
  run_free(&r);
}

static void test_stderr_final_crlf(void **state) {
  const char *argv[] = {"/bin/sh", "-c", "printf 'a\\r\\nb\\r' >&2", NULL};
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);

  run_once(&o, &r);
  assert_int_equal(r.nlines, 2);
  assert_string_equal(r.lines[0], "a");
  assert_string_equal(r.lines[1], "b");
  run_free(&r);
}

/* No callback: lines still feed the tail. */
static void test_stderr_no_callback(void **state) {
  const char *argv[] = {"/bin/sh", "-c", "echo boom >&2; exit 2", NULL};
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);

  o.on_stderr_line = NULL;
  run_once(&o, &r);
  assert_int_equal(r.res.exit_status, 2);
  assert_int_equal(r.nlines, 0);
  assert_string_equal(r.tail, "boom");
  run_free(&r);
}

static void test_stderr_many_lines(void **state) {
  const char *argv[] = {
      "python3", "-c",
      "import sys\n"
      "for i in range(20000): sys.stderr.write('line %d\\n' % i)\n",
      NULL};
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);
  char want[32];

  run_once(&o, &r);
  assert_int_equal(r.nlines, 20000);
  for (size_t i = 0; i < r.nlines; i += 997) {
    snprintf(want, sizeof(want), "line %zu", i);
    assert_string_equal(r.lines[i], want);
  }
  /* The tail holds whole lines only, ending with the last one. */
  assert_true(strlen(r.tail) > 2000);
  assert_true(strlen(r.tail) <= 2048);
  assert_int_equal(strncmp(r.tail, "line ", 5), 0);
  assert_non_null(strstr(r.tail, "\nline 19999"));
  assert_string_equal(r.tail + strlen(r.tail) - 10, "line 19999");
  run_free(&r);
}

/* Megabytes without a newline come back in bounded chunks. */
static void test_stderr_long_line(void **state) {
  const char *argv[] = {"python3", "-c",
                        "import sys\n"
                        "sys.stderr.write('x' * 3000000)\n"
                        "sys.stderr.write('\\nend\\n')\n",
                        NULL};
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);

  run_once(&o, &r);
  assert_true(r.nlines >= 3000000 / 65536 + 2);
  assert_int_equal(r.line_bytes, 3000000 + 3);
  for (size_t i = 0; i + 1 < r.nlines; i++)
    assert_true(r.line_lens[i] <= 64 * 1024);
  assert_string_equal(r.lines[r.nlines - 1], "end");
  /* A single 2 KiB+ line is cut to its last 2048 bytes. */
  assert_true(strlen(r.tail) <= 2048);
  assert_string_equal(r.tail + strlen(r.tail) - 4, "\nend");
  run_free(&r);
}

/* The tail cuts at a line start unless that would waste half of it. */
static void test_stderr_tail_cuts(void **state) {
  const char *argv[] = {"python3", "-c",
                        "import sys\n"
                        "sys.stderr.write('a' * 1100 + '\\n' + 'b' * 1500)\n",
                        NULL};
  const char *argv2[] = {"python3", "-c",
                         "import sys\n"
                         "sys.stderr.write('a' * 1500 + '\\n' + 'b' * 1000)\n",
                         NULL};
  run_t r = {0};
  run_t r2 = {0};
  ice__proc_opts_t o = opts_for(argv, &r);
  ice__proc_opts_t o2 = opts_for(argv2, &r2);

  run_once(&o, &r);
  assert_int_equal(strlen(r.tail), 1500);
  assert_int_equal(strspn(r.tail, "b"), 1500);
  run_free(&r);

  run_once(&o2, &r2);
  assert_int_equal(strlen(r2.tail), 2048);
  assert_int_equal(strspn(r2.tail, "a"), 1047);
  assert_int_equal(r2.tail[1047], '\n');
  assert_int_equal(strspn(r2.tail + 1048, "b"), 1000);
  run_free(&r2);
}

/* A CR that ends a full chunk is held back so CRLF still strips. */
static void test_stderr_cr_at_chunk_end(void **state) {
  const char *argv[] = {"python3", "-c",
                        "import sys\n"
                        "sys.stderr.write('y' * 65535 + '\\r\\n')\n"
                        "sys.stderr.write('z' * 70000 + '\\r')\n",
                        NULL};
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);
  size_t ys = 0;
  size_t zs = 0;

  run_once(&o, &r);
  for (size_t i = 0; i < r.nlines; i++) {
    assert_null(memchr(r.lines[i], '\r', r.line_lens[i]));
    for (size_t j = 0; j < r.line_lens[i]; j++) {
      ys += r.lines[i][j] == 'y';
      zs += r.lines[i][j] == 'z';
    }
  }
  assert_int_equal(ys, 65535);
  assert_int_equal(zs, 70000);
  run_free(&r);
}

static void big_stdin_ignored(const char *const *argv) {
  size_t n = 10 * 1024 * 1024;
  char *in = calloc(1, n);
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);

  assert_non_null(in);
  o.stdin_data = in;
  o.stdin_len = n;
  run_once(&o, &r);
  free(in);
  assert_int_equal(r.res.exit_status, 0);
  assert_int_equal(r.res.term_signal, 0);
  run_free(&r);
}

static void test_stdin_never_read(void **state) {
  const char *t[] = {"true", NULL};
  const char *s[] = {"sleep", "0.1", NULL};

  big_stdin_ignored(t);
  big_stdin_ignored(s);
}

static void test_stdin_closed_then_output(void **state) {
  const char *argv[] = {"/bin/sh", "-c",
                        "exec 0<&-; sleep 0.05; echo done; echo err >&2", NULL};

  size_t n = 10 * 1024 * 1024;
  char *in = calloc(1, n);
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);

  assert_non_null(in);
  o.stdin_data = in;
  o.stdin_len = n;
  run_once(&o, &r);
  free(in);
  assert_int_equal(r.res.exit_status, 0);
  assert_string_equal(r.out, "done\n");
  assert_string_equal(r.tail, "err");
  run_free(&r);
}

static void test_output_cap_yes(void **state) {
  const char *argv[] = {"yes", NULL};
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);

  o.max_output_bytes = 1024 * 1024;
  run_once(&o, &r);
  assert_int_equal(r.res.output_exceeded, 1);
  assert_int_equal(r.res.killed, 1);
  assert_int_equal(r.res.term_signal, SIGKILL);
  assert_int_equal(r.out_len, 1024 * 1024);
  assert_memory_equal(r.out, "y\ny\ny\n", 6);
  run_free(&r);
}

static void test_output_cap_100mb(void **state) {
  const char *argv[] = {"head", "-c", "100000000", "/dev/zero", NULL};
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);

  o.max_output_bytes = 1024 * 1024;
  run_once(&o, &r);
  assert_int_equal(r.res.output_exceeded, 1);
  assert_int_equal(r.res.killed, 1);
  assert_int_equal(r.out_len, 1024 * 1024);
  run_free(&r);
}

/* Exactly at the cap is fine; unlimited output grows as needed. */
static void test_output_at_cap_and_unlimited(void **state) {
  const char *argv[] = {"head", "-c", "20000000", "/dev/zero", NULL};
  run_t r = {0};
  run_t r2 = {0};
  ice__proc_opts_t o = opts_for(argv, &r);
  ice__proc_opts_t o2 = opts_for(argv, &r2);

  o.max_output_bytes = 20000000;
  run_once(&o, &r);
  assert_int_equal(r.res.output_exceeded, 0);
  assert_int_equal(r.res.killed, 0);
  assert_int_equal(r.res.exit_status, 0);
  assert_int_equal(r.out_len, 20000000);
  run_free(&r);

  run_once(&o2, &r2);
  assert_int_equal(r2.res.output_exceeded, 0);
  assert_int_equal(r2.out_len, 20000000);
  run_free(&r2);
}

static void test_missing_program(void **state) {
  const char *argv[] = {"/nonexistent/ice-no-such-program", NULL};
  const char *argv2[] = {"ice-no-such-program-in-path", "x", NULL};
  const char *argv3[] = {"true", NULL};
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);
  uv_loop_t loop;
  ice__proc_t *p = (ice__proc_t *)&loop;
  int fds = count_fds();

  int step = -1;

  assert_int_equal(uv_loop_init(&loop), 0);
  o.stdin_data = "ignored";
  o.stdin_len = 7;
  o.failed_step = &step;
  assert_int_equal(ice__proc_start(&loop, &o, &p), UV_ENOENT);
  assert_null(p);
  assert_int_equal(step, ICE__PROC_STEP_EXEC);
  o.argv = argv2;
  step = -1;
  assert_int_equal(ice__proc_start(&loop, &o, &p), UV_ENOENT);
  assert_int_equal(step, ICE__PROC_STEP_EXEC);
  /* The child says it was chdir that failed, not the command. */
  o.argv = argv3;
  o.cwd = "/nonexistent/dir";
  step = -1;
  assert_int_equal(ice__proc_start(&loop, &o, &p), UV_ENOENT);
  assert_int_equal(step, ICE__PROC_STEP_CWD);
  o.cwd = "/etc/passwd";
  assert_int_equal(ice__proc_start(&loop, &o, &p), UV_ENOTDIR);
  assert_int_equal(step, ICE__PROC_STEP_CWD);
  /* Nothing is left to close; the loop ends at once. */
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(r.exit_calls, 0);
  assert_int_equal(uv_loop_close(&loop), 0);
  assert_int_equal(count_fds(), fds);
  run_free(&r);
}

static void test_bad_args(void **state) {
  const char *argv[] = {NULL};
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);
  uv_loop_t loop;
  ice__proc_t *p;

  int step = -1;

  assert_int_equal(uv_loop_init(&loop), 0);
  o.failed_step = &step;
  assert_int_equal(ice__proc_start(&loop, &o, &p), UV_EINVAL);
  assert_int_equal(step, ICE__PROC_STEP_NONE);
  o.argv = NULL;
  assert_int_equal(ice__proc_start(&loop, &o, &p), UV_EINVAL);
  ice__proc_kill(NULL);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&loop), 0);
  run_free(&r);
}

static void kill_timer_cb(uv_timer_t *t) {
  ice__proc_t *p = t->data;

  ice__proc_kill(p);
  ice__proc_kill(p); /* idempotent */
  uv_close((uv_handle_t *)t, NULL);
}

/* Runs argv, calls ice__proc_kill after `ms`, returns the run. */
static void run_and_kill(ice__proc_opts_t *o, run_t *r, uint64_t ms, int *pid) {
  uv_loop_t loop;
  uv_timer_t t;
  ice__proc_t *p;
  int fds = count_fds();

  assert_int_equal(uv_loop_init(&loop), 0);
  r->loop = &loop;
  assert_int_equal(ice__proc_start(&loop, o, &p), 0);
  *pid = ice__proc_pid(p);
  uv_timer_init(&loop, &t);
  t.data = p;
  uv_timer_start(&t, kill_timer_cb, ms, 0);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(r->exit_calls, 1);
  assert_int_equal(uv_loop_close(&loop), 0);
  r->loop = NULL;
  assert_int_equal(count_fds(), fds);
}

static void test_kill_sleep(void **state) {
  const char *argv[] = {"sleep", "100", NULL};
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);
  int pid;
  time_t t0 = time(NULL);

  run_and_kill(&o, &r, 50, &pid);
  assert_int_equal(r.res.killed, 1);
  assert_int_equal(r.res.term_signal, SIGKILL);
  assert_true(time(NULL) - t0 < 10);
  errno = 0;
  assert_int_equal(kill(pid, 0), -1);
  assert_int_equal(errno, ESRCH);
  run_free(&r);
}

/* A child that never reads 10 MB of stdin, killed mid-write. */
static void test_kill_pending_stdin(void **state) {
  const char *argv[] = {"sleep", "100", NULL};
  size_t n = 10 * 1024 * 1024;
  char *in = calloc(1, n);
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);
  int pid;

  assert_non_null(in);
  o.stdin_data = in;
  o.stdin_len = n;
  run_and_kill(&o, &r, 50, &pid);
  free(in);
  assert_int_equal(r.res.killed, 1);
  assert_int_equal(r.res.term_signal, SIGKILL);
  run_free(&r);
}

/* Kills the child once the file t->data names holds a line (a loaded
 * machine may take long to get there: no fixed delay). */
typedef struct {
  ice__proc_t *p;
  const char *file;
} kill_when_t;

static void kill_when_cb(uv_timer_t *t) {
  kill_when_t *k = t->data;
  FILE *f = fopen(k->file, "r");
  int line = 0;

  if (f != NULL) {
    line = fgetc(f) != EOF;
    fclose(f);
  }
  if (!line)
    return;
  ice__proc_kill(k->p);
  uv_close((uv_handle_t *)t, NULL);
}

static void test_grandchild_killed_with_group(void **state) {
  char file[] = "/tmp/ice-test-gpid.XXXXXX", cmd[128];
  int fd = mkstemp(file);
  const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);
  uv_loop_t loop;
  uv_timer_t t;
  kill_when_t k;
  char buf[32] = "";
  int gpid;

  assert_true(fd >= 0);
  close(fd);
  snprintf(cmd, sizeof(cmd), "sleep 100 & echo $! > %s.tmp; mv %s.tmp %s; wait",
           file, file, file);
  assert_int_equal(uv_loop_init(&loop), 0);
  r.loop = &loop;
  assert_int_equal(ice__proc_start(&loop, &o, &k.p), 0);
  k.file = file;
  uv_timer_init(&loop, &t);
  t.data = &k;
  uv_timer_start(&t, kill_when_cb, 10, 10);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(r.exit_calls, 1);
  assert_int_equal(uv_loop_close(&loop), 0);
  assert_int_equal(r.res.killed, 1);
  {
    FILE *f = fopen(file, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof(buf), f));
    fclose(f);
  }
  unlink(file);
  gpid = atoi(buf);
  assert_true(gpid > 0);
  assert_true(pid_dead(gpid));
  run_free(&r);
}

/* The parent exits on its own; the grandchild holding stdout must be
 * killed with the group, or EOF would never come. */
static void test_grandchild_killed_after_exit(void **state) {
  const char *argv[] = {"/bin/sh", "-c", "sleep 100 & echo $!", NULL};
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);
  uv_loop_t loop;
  ice__proc_t *p;
  int gpid;

  assert_int_equal(uv_loop_init(&loop), 0);
  r.loop = &loop;
  assert_int_equal(ice__proc_start(&loop, &o, &p), 0);
  uv_update_time(&loop);
  uint64_t t0 = uv_now(&loop);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(r.exit_calls, 1);
  assert_int_equal(r.res.exit_status, 0);
  assert_int_equal(r.res.killed, 0);
  assert_true(r.exit_ms - t0 < 900); /* not the drain timeout */
  gpid = atoi(r.out);
  assert_true(gpid > 0);
  assert_true(pid_dead(gpid));
  assert_int_equal(uv_loop_close(&loop), 0);
  run_free(&r);
}

/* A descendant that left the group keeps stdout and stderr open; the
 * proc gives up after its drain delay. A kill after exit is a no-op. */
static void test_escaped_descendant(void **state) {
  const char *argv[] = {
      "/bin/sh", "-c",
      "setsid sleep 30 & echo $!; printf 'partial' >&2; sleep 0.3; exit 4",
      NULL};
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);
  int pid;
  int gpid;

  /* The kill lands between exit (~0.3 s) and on_exit (~1.3 s). */
  run_and_kill(&o, &r, 700, &pid);
  assert_int_equal(r.res.killed, 0);
  assert_int_equal(r.res.exit_status, 4);
  assert_string_equal(r.tail, "partial");
  gpid = atoi(r.out);
  assert_true(gpid > 0);
  assert_int_equal(kill(gpid, SIGKILL), 0);
  run_free(&r);
}

static void block_check_cb(uv_check_t *c) {
  usleep(1500 * 1000); /* a synchronous stretch elsewhere in the engine */
  uv_close((uv_handle_t *)c, NULL);
}

/* The block runs in the check phase, after I/O: the next turn then starts
 * with timers that are long overdue. */
static void block_cb(uv_timer_t *t) {
  uv_check_start(t->data, block_check_cb);
  uv_close((uv_handle_t *)t, NULL);
}

/* The drain timer fires late because the loop was blocked past it: output
 * that arrived in time (here from an escaped descendant, 0.3 s after the
 * exit) is still read before the pipes are given up. The sleep 0.2 lets
 * the descendant leave the group before the exit kills the group. */
static void test_drain_after_busy_loop(void **state) {
  const char *argv[] = {
      "/bin/sh", "-c", "setsid sh -c 'sleep 0.5; echo late' & sleep 0.2", NULL};
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);
  uv_loop_t loop;
  uv_timer_t t;
  uv_check_t c;
  ice__proc_t *p;

  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(ice__proc_start(&loop, &o, &p), 0);
  uv_timer_init(&loop, &t);
  uv_check_init(&loop, &c);
  t.data = &c;
  uv_timer_start(&t, block_cb, 400, 0);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(r.exit_calls, 1);
  assert_int_equal(r.res.exit_status, 0);
  assert_string_equal(r.out, "late\n");
  assert_int_equal(uv_loop_close(&loop), 0);
  run_free(&r);
}

static void test_concurrent_200(void **state) {
  enum { N = 200 };
  static run_t runs[N];
  static char nums[N][8];
  static const char *argvs[N][6];
  uv_loop_t loop;
  int fds = count_fds();

  memset(runs, 0, sizeof(runs));
  assert_int_equal(uv_loop_init(&loop), 0);
  for (int i = 0; i < N; i++) {
    ice__proc_opts_t o;
    ice__proc_t *p;

    snprintf(nums[i], sizeof(nums[i]), "%d", i);
    argvs[i][0] = "/bin/sh";
    argvs[i][1] = "-c";
    argvs[i][2] = "echo $1; echo e$1 >&2";
    argvs[i][3] = "sh";
    argvs[i][4] = nums[i];
    argvs[i][5] = NULL;
    o = opts_for(argvs[i], &runs[i]);
    assert_int_equal(ice__proc_start(&loop, &o, &p), 0);
  }
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  for (int i = 0; i < N; i++) {
    char want[16];

    assert_int_equal(runs[i].exit_calls, 1);
    assert_int_equal(runs[i].res.exit_status, 0);
    snprintf(want, sizeof(want), "%d\n", i);
    assert_string_equal(runs[i].out, want);
    snprintf(want, sizeof(want), "e%d", i);
    assert_string_equal(runs[i].tail, want);
    run_free(&runs[i]);
  }
  assert_int_equal(uv_loop_close(&loop), 0);
  assert_int_equal(count_fds(), fds);
}

/* Exec errors other than "not found": a directory, no execute permission,
 * a file without #! (run by /bin/sh, as execvp does), PATH from env. */
static void test_exec_errors(void **state) {
  char dir[] = "/tmp/ice-proc-test-XXXXXX";
  char path[64];
  const char *argv[] = {dir, NULL};
  const char *argv2[] = {path, "arg1", NULL};
  const char *argv3[] = {"ice-proc-script", "arg2", NULL};
  char pathenv[80];
  const char *env[] = {pathenv, NULL};
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);
  uv_loop_t loop;
  ice__proc_t *p;
  int step = -1;
  FILE *f;

  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof(path), "%s/ice-proc-script", dir);
  snprintf(pathenv, sizeof(pathenv), "PATH=/nonexistent::%s", dir);
  f = fopen(path, "w");
  assert_non_null(f);
  fputs("echo \"script $1\"\n", f);
  fclose(f);
  assert_int_equal(uv_loop_init(&loop), 0);
  o.failed_step = &step;
  assert_int_equal(ice__proc_start(&loop, &o, &p), UV_EISDIR);
  assert_int_equal(step, ICE__PROC_STEP_EXEC);
  o.argv = argv2;
  assert_int_equal(ice__proc_start(&loop, &o, &p), UV_EACCES);
  /* Found in PATH but not executable: EACCES, not "not found". */
  o.argv = argv3;
  o.env = env;
  assert_int_equal(ice__proc_start(&loop, &o, &p), UV_EACCES);
  assert_int_equal(uv_loop_close(&loop), 0);
  assert_int_equal(chmod(path, 0700), 0);

  o.argv = argv2;
  o.env = NULL;
  run_once(&o, &r);
  assert_string_equal(r.out, "script arg1\n");
  run_free(&r);
  memset(&r, 0, sizeof(r));
  o.argv = argv3;
  o.env = env;
  run_once(&o, &r);
  assert_string_equal(r.out, "script arg2\n");
  run_free(&r);
  unlink(path);
  rmdir(dir);
}

/* The child starts with default dispositions (the engine ignores SIGPIPE)
 * and nothing blocked, whatever the engine's thread had. */
static void test_child_signals(void **state) {
  const char *argv[] = {"grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status",
                        NULL};
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);
  sigset_t set, old;

  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  assert_int_equal(pthread_sigmask(SIG_BLOCK, &set, &old), 0);
  run_once(&o, &r);
  assert_int_equal(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
  assert_string_equal(r.out, "SigBlk:\t0000000000000000\n"
                             "SigIgn:\t0000000000000000\n");
  run_free(&r);
}

/* An engine started with fd 0 closed: the pipes must not land on 0-2,
 * where the child's dup2 would clobber them (and libuv asserts fd > 2
 * when it closes them). The loop's own fds are libuv's business: they are
 * made first, including the spare fd that the first stream handle opens
 * (uv__stream_init), which would otherwise take fd 0. */
static void test_stdio_closed_in_engine(void **state) {
  const char *argv[] = {"cat", NULL};
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);
  uv_loop_t loop;
  uv_pipe_t spare;
  ice__proc_t *p;
  int saved = dup(0);

  assert_true(saved > 2);
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(uv_pipe_init(&loop, &spare, 0), 0);
  uv_close((uv_handle_t *)&spare, NULL);
  close(0);
  o.stdin_data = "through the pipe";
  o.stdin_len = strlen(o.stdin_data);
  assert_int_equal(ice__proc_start(&loop, &o, &p), 0);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(dup2(saved, 0), 0);
  close(saved);
  assert_int_equal(uv_loop_close(&loop), 0);
  assert_int_equal(r.exit_calls, 1);
  assert_int_equal(r.res.exit_status, 0);
  assert_string_equal(r.out, "through the pipe");
  run_free(&r);
}

/* Kills the helper process after it started a child without running its
 * loop: the child must die with it (PR_SET_PDEATHSIG). */
static void test_dies_with_engine(void **state) {
  int fds[2];
  int child = 0;
  int status;
  pid_t helper;

  assert_int_equal(pipe(fds), 0);
  helper = fork();
  assert_true(helper >= 0);
  if (helper == 0) {
    const char *argv[] = {"sleep", "100", NULL};
    ice__proc_opts_t o;
    uv_loop_t loop;
    ice__proc_t *p;

    memset(&o, 0, sizeof(o));
    o.argv = argv;
    if (uv_loop_init(&loop) != 0 || ice__proc_start(&loop, &o, &p) != 0)
      _exit(1);
    child = ice__proc_pid(p);
    if (write(fds[1], &child, sizeof(child)) != sizeof(child))
      _exit(1);
    pause();
    _exit(1);
  }
  close(fds[1]);
  assert_int_equal(read(fds[0], &child, sizeof(child)), sizeof(child));
  close(fds[0]);
  assert_true(child > 0);
  assert_int_equal(kill(child, 0), 0);
  assert_int_equal(kill(helper, SIGKILL), 0);
  assert_int_equal(waitpid(helper, &status, 0), helper);
  assert_true(pid_dead(child));
}

/* Without pidfd_open (Linux < 5.3) exits are seen through SIGCHLD: the
 * same behaviour, rusage included. */
static void test_sigchld_fallback(void **state) {
  const char *argv[] = {"/bin/sh", "-c", "echo out; echo err >&2; exit 3",
                        NULL};
  const char *fast[] = {"true", NULL};
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);

  ice__proc_no_pidfd = 1;
  run_once(&o, &r);
  assert_int_equal(r.res.exit_status, 3);
  assert_string_equal(r.out, "out\n");
  assert_string_equal(r.tail, "err");
  assert_true(r.res.max_rss_kb > 0);
  run_free(&r);
  /* A child that is gone before the watcher starts is still seen. */
  memset(&r, 0, sizeof(r));
  o = opts_for(fast, &r);
  run_once(&o, &r);
  assert_int_equal(r.res.exit_status, 0);
  run_free(&r);
  test_kill_sleep(state);
  test_grandchild_killed_after_exit(state);
  test_concurrent_200(state);
  ice__proc_no_pidfd = 0;
}

/* Someone else reaps our children (here the kernel: SIGCHLD ignored).
 * The proc still ends; the status is -1 when it was lost, or the real one
 * when our peek saw the child before it went. */
static void test_reaped_by_someone_else(void **state) {
  const char *argv[] = {"/bin/sh", "-c", "exit 3", NULL};
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);
  struct sigaction sa;
  struct sigaction old;

  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = SIG_IGN; /* children are reaped by the kernel */
  sigemptyset(&sa.sa_mask);
  assert_int_equal(sigaction(SIGCHLD, &sa, &old), 0);
  for (int i = 0; i < 2; i++) {
    ice__proc_no_pidfd = i;
    memset(&r, 0, sizeof(r));
    o = opts_for(argv, &r);
    run_once(&o, &r);
    assert_true(r.res.exit_status == -1 || r.res.exit_status == 3);
    assert_int_equal(r.res.term_signal, 0);
    run_free(&r);
  }
  ice__proc_no_pidfd = 0;
  assert_int_equal(sigaction(SIGCHLD, &old, NULL), 0);
}

/* Neither the tail nor a chunk of a long line starts or ends inside a
 * UTF-8 character. */
static void test_stderr_utf8_cuts(void **state) {
  const char *argv[] = {"python3", "-c",
                        "import sys\n"
                        "w = sys.stderr.buffer.write\n"
                        "w(b'x' * 65535 + b'\\xc3\\xa9' + b'y' * 10 + b'\\n')\n"
                        "w(b'\\xc3\\xa9' * 3000 + b'x')\n",
                        NULL};
  const char *argv2[] = {"python3", "-c",
                         "import sys\n"
                         "w = sys.stderr.buffer.write\n"
                         "w(b'\\xc3\\xa9' * 1000 + b'\\n' + b'b' * 100)\n",
                         NULL};
  run_t r = {0};
  run_t r2 = {0};
  ice__proc_opts_t o = opts_for(argv, &r);
  ice__proc_opts_t o2 = opts_for(argv2, &r2);

  run_once(&o, &r);
  assert_true(r.nlines >= 3);
  assert_int_equal(r.line_lens[0], 65535);
  assert_string_equal(r.lines[1], "\xc3\xa9yyyyyyyyyy");
  /* 6001 bytes: the last 2048 start inside an 'é', so one byte less. */
  assert_int_equal(strlen(r.tail), 2047);
  assert_int_equal(r.res.stderr_tail_len, 2047);
  assert_memory_equal(r.tail, "\xc3\xa9", 2);
  run_free(&r);

  run_once(&o2, &r2);
  assert_int_equal(strlen(r2.tail), 2047);
  assert_memory_equal(r2.tail, "\xc3\xa9", 2);
  assert_string_equal(r2.tail + 2047 - 101,
                      "\nbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
                      "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
  run_free(&r2);
}

/* NUL bytes on stderr stay in the tail; its length says where it ends. */
static void test_stderr_nul(void **state) {
  const char *argv[] = {"/bin/sh", "-c", "printf 'a\\000b\\nend' >&2", NULL};
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);

  run_once(&o, &r);
  assert_int_equal(r.res.stderr_tail_len, 7);
  assert_int_equal(r.line_lens[0], 3);
  run_free(&r);
}

static void test_cwd_env(void **state) {
  const char *argv[] = {"/bin/sh", "-c", "pwd; echo \"$FOO\"; echo \"$HOME\"",
                        NULL};
  const char *env[] = {"FOO=bar baz", "PATH=/usr/bin:/bin", NULL};
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);

  o.cwd = "/";
  o.env = env;
  run_once(&o, &r);
  assert_string_equal(r.out, "/\nbar baz\n\n");
  run_free(&r);
}

static void test_env_inherited(void **state) {
  const char *argv[] = {"/bin/sh", "-c", "echo \"$ICE_PROC_TEST\"", NULL};
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);

  setenv("ICE_PROC_TEST", "inherited", 1);
  run_once(&o, &r);
  unsetenv("ICE_PROC_TEST");
  assert_string_equal(r.out, "inherited\n");
  run_free(&r);
}

/* A page shared with every child: what the atfork handler below saw. */
static volatile int *atfork_seen;

static void atfork_child(void) {
  if (atfork_seen != NULL)
    *atfork_seen = 1;
}

/* The child of a tool makes system calls only until it execs: no fork
 * handler of the program that embeds the engine runs in it (one that
 * takes a lock could wait forever for a thread that does not exist in
 * the child), and nothing of the engine's address space is copied. */
static void test_no_fork_handlers(void **state) {
  const char *argv[] = {"/bin/sh", "-c", "echo ran", NULL};
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);
  volatile int *seen = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  pid_t pid;

  assert_true(seen != MAP_FAILED);
  atfork_seen = seen;
  assert_int_equal(pthread_atfork(NULL, NULL, atfork_child), 0);
  /* The handler works: a fork runs it. */
  pid = fork();
  if (pid == 0)
    _exit(0);
  assert_true(pid > 0);
  assert_int_equal(waitpid(pid, NULL, 0), pid);
  assert_int_equal(*seen, 1);
  *seen = 0;
  run_once(&o, &r);
  assert_string_equal(r.out, "ran\n");
  assert_int_equal(*seen, 0);
  atfork_seen = NULL;
  munmap((void *)seen, 4096);
  run_free(&r);
}

static void test_no_on_exit(void **state) {
  const char *argv[] = {"/bin/sh", "-c", "echo hi; echo x >&2", NULL};
  ice__proc_opts_t o;
  uv_loop_t loop;
  ice__proc_t *p;

  memset(&o, 0, sizeof(o));
  o.argv = argv;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(ice__proc_start(&loop, &o, &p), 0);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void dummy_handler(int sig) {}

static void test_sigpipe(void **state) {
  const char *argv[] = {"true", NULL};
  struct sigaction sa;
  struct sigaction mine;
  run_t r = {0};
  ice__proc_opts_t o = opts_for(argv, &r);

  run_once(&o, &r);
  run_free(&r);
  assert_int_equal(sigaction(SIGPIPE, NULL, &sa), 0);
  assert_true(sa.sa_handler == SIG_IGN);

  /* A handler the embedding program installed is left alone. */
  memset(&mine, 0, sizeof(mine));
  mine.sa_handler = dummy_handler;
  sigemptyset(&mine.sa_mask);
  assert_int_equal(sigaction(SIGPIPE, &mine, NULL), 0);
  memset(&r, 0, sizeof(r));
  o = opts_for(argv, &r);
  run_once(&o, &r);
  run_free(&r);
  assert_int_equal(sigaction(SIGPIPE, NULL, &sa), 0);
  assert_true(sa.sa_handler == dummy_handler);
  mine.sa_handler = SIG_DFL;
  assert_int_equal(sigaction(SIGPIPE, &mine, NULL), 0);
}

/* A batch of every kind of run leaves the fd count unchanged. */
static void test_fd_batch(void **state) {
  int before = count_fds();

  for (int i = 0; i < 3; i++) {
    test_exit_codes(state);
    test_missing_program(state);
    test_kill_sleep(state);
    test_output_cap_yes(state);
    test_stdin_closed_then_output(state);
  }
  assert_int_equal(count_fds(), before);
}

/* libuv keeps a few process-wide fds (signal lock pipe) once it has seen
 * a child; spawn one first so the per-test fd counts are stable. */
static int warm_up(void **state) {
  uv_loop_t loop;
  uv_process_t proc;
  uv_process_options_t po;
  char *args[] = {"true", NULL};

  memset(&po, 0, sizeof(po));
  po.file = "true";
  po.args = args;
  if (uv_loop_init(&loop) != 0)
    return -1;
  if (uv_spawn(&loop, &proc, &po) == 0)
    uv_run(&loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&proc, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  return uv_loop_close(&loop);
}

/* ---- async_start --------------------------------------------------------- */

static int g_started, g_deg_calls, g_deg_early, g_deg_late;
static unsigned g_deg_mask;

static void on_deg(void *data, unsigned mask) {
  run_t *r = data;

  g_deg_calls++;
  g_deg_mask = mask;
  g_deg_early |= !g_started;
  g_deg_late |= r->exit_calls != 0 || r->nlines != 0;
}

/* async_start without namespaces (a vfork child): the records are read
 * when clone returns, but what they say still comes on the loop, after
 * start returned and before the first stderr line and the exit; a failure
 * before exec comes with the exit, and on_degraded not at all. */
static void test_async_start(void **state) {
  const char *argv[] = {"sh", "-c", "echo out; echo err >&2", NULL};
  const char *missing[] = {"/nonexistent/ice-no-such-program", NULL};
  json_t *strict_off = json_pack("{s:b}", "strict", 0);
  ice__sandbox_conf_t c;
  char err[256];
  ice__proc_opts_t o;
  uv_loop_t loop;
  ice__proc_t *p = NULL;
  run_t r = {0};
  int fds = count_fds();

  (void)state;
  ice__sandbox_conf_init(&c);
  assert_int_equal(
      ice__sandbox_conf_parse(&c, strict_off, ".", err, sizeof(err)), 0);
  json_decref(strict_off);
  setenv("ICE_SANDBOX_REFUSE", "sandbox", 1); /* no sandbox, all missing */
  assert_int_equal(uv_loop_init(&loop), 0);

  o = opts_for(argv, &r);
  o.async_start = 1;
  o.sandbox = &c;
  o.on_degraded = on_deg;
  g_started = g_deg_calls = g_deg_early = g_deg_late = 0;
  assert_int_equal(ice__proc_start(&loop, &o, &p), 0);
  g_started = 1;
  assert_int_equal(g_deg_calls, 0);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(r.exit_calls, 1);
  assert_int_equal(r.res.spawn_error, 0);
  assert_int_equal(r.res.exit_status, 0);
  assert_string_equal(r.out, "out\n");
  assert_int_equal(r.nlines, 1);
  assert_string_equal(r.lines[0], "err");
  assert_int_equal(g_deg_calls, 1);
  assert_true(g_deg_mask != 0);
  assert_false(g_deg_early);
  assert_false(g_deg_late);
  run_free(&r);

  memset(&r, 0, sizeof(r));
  o = opts_for(missing, &r);
  o.async_start = 1;
  o.sandbox = &c;
  o.on_degraded = on_deg;
  g_deg_calls = 0;
  assert_int_equal(ice__proc_start(&loop, &o, &p), 0);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(r.exit_calls, 1);
  assert_int_equal(r.res.spawn_error, UV_ENOENT);
  assert_int_equal(r.res.failed_step, ICE__PROC_STEP_EXEC);
  assert_int_equal(g_deg_calls, 0);
  run_free(&r);

  unsetenv("ICE_SANDBOX_REFUSE");
  ice__sandbox_conf_free(&c);
  assert_int_equal(uv_loop_close(&loop), 0);
  assert_int_equal(count_fds(), fds);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      /* First: fork gets slower as the (sanitizer) heap grows. */
      cmocka_unit_test(test_concurrent_200),
      cmocka_unit_test(test_cat_roundtrip),
      cmocka_unit_test(test_no_fork_handlers),
      cmocka_unit_test(test_stdin_copied),
      cmocka_unit_test(test_no_stdin),
      cmocka_unit_test(test_exit_codes),
      cmocka_unit_test(test_term_signal),
      cmocka_unit_test(test_stderr_lines),
      cmocka_unit_test(test_stderr_final_crlf),
      cmocka_unit_test(test_stderr_no_callback),
      cmocka_unit_test(test_stderr_many_lines),
      cmocka_unit_test(test_stderr_long_line),
      cmocka_unit_test(test_stderr_tail_cuts),
      cmocka_unit_test(test_stderr_cr_at_chunk_end),
      cmocka_unit_test(test_stdin_never_read),
      cmocka_unit_test(test_stdin_closed_then_output),
      cmocka_unit_test(test_output_cap_yes),
      cmocka_unit_test(test_output_cap_100mb),
      cmocka_unit_test(test_output_at_cap_and_unlimited),
      cmocka_unit_test(test_missing_program),
      cmocka_unit_test(test_bad_args),
      cmocka_unit_test(test_kill_sleep),
      cmocka_unit_test(test_kill_pending_stdin),
      cmocka_unit_test(test_grandchild_killed_with_group),
      cmocka_unit_test(test_grandchild_killed_after_exit),
      cmocka_unit_test(test_escaped_descendant),
      cmocka_unit_test(test_drain_after_busy_loop),
      cmocka_unit_test(test_cwd_env),
      cmocka_unit_test(test_env_inherited),
      cmocka_unit_test(test_no_on_exit),
      cmocka_unit_test(test_sigpipe),
      cmocka_unit_test(test_fd_batch),
      cmocka_unit_test(test_exec_errors),
      cmocka_unit_test(test_child_signals),
      cmocka_unit_test(test_stdio_closed_in_engine),
      cmocka_unit_test(test_dies_with_engine),
      cmocka_unit_test(test_sigchld_fallback),
      cmocka_unit_test(test_reaped_by_someone_else),
      cmocka_unit_test(test_stderr_utf8_cuts),
      cmocka_unit_test(test_stderr_nul),
      cmocka_unit_test(test_async_start),
  };

  return cmocka_run_group_tests(tests, warm_up, NULL);
}
