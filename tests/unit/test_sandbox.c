/* Tests of the process sandbox (sandbox.c through proc.c) with real
 * children: the configuration and its checks, what a tool sees inside
 * (user, capabilities, no_new_privs, seccomp, namespaces, the read-only
 * view), each limit named by the verdict, kill of the whole namespace,
 * strict and degraded runs through the ICE_SANDBOX_REFUSE hook, a cgroup
 * base given by ICE_CGROUP (a plain directory here: the bookkeeping, not
 * the kernel's enforcement), and, as root, the same from an engine that
 * runs as nobody. Every test checks that on_exit fired once, that the loop
 * closes cleanly and that no descriptor leaked. */
#include "helpers.h"

#include "proc.h"
#include "sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char work[] = "/tmp/ice-sbx-unit-XXXXXX"; /* cwd and TMPDIR live here */
static char tmpdir[sizeof(work) + 8];
static const char *run_cwd; /* the tool's cwd when not `work` */

typedef struct {
  int exit_calls;
  ice__proc_result_t res;
  char out[8192];
  char err[8192];
  size_t err_len;
  char limit[256];
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

  if (r->err_len + len + 2 < sizeof(r->err)) {
    memcpy(r->err + r->err_len, line, len);
    r->err_len += len;
    r->err[r->err_len++] = '\n';
    r->err[r->err_len] = '\0';
  }
}

static void on_exit_cb(void *data, const ice__proc_result_t *res) {
  run_t *r = data;

  r->exit_calls++;
  r->res = *res;
  snprintf(r->out, sizeof(r->out), "%s", res->out);
  snprintf(r->limit, sizeof(r->limit), "%s",
           res->limit != NULL ? res->limit : "");
  r->res.out = NULL;
  r->res.stderr_tail = NULL;
  r->res.limit = NULL;
}

/* A configuration with the defaults, parsed from YAML-free JSON text. */
static void conf(ice__sandbox_conf_t *c, const char *json) {
  json_t *o = json != NULL ? th_json(json) : NULL;
  char err[256];

  ice__sandbox_conf_init(c);
  assert_int_equal(ice__sandbox_conf_parse(c, o, work, err, sizeof(err)), 0);
  json_decref(o);
}

/* Runs sh -c script in the sandbox c on a fresh loop, to the end. Returns
 * what ice__proc_start returned; *degraded and msg are filled. */
static int run_sh(const ice__sandbox_conf_t *c, const char *script, run_t *r,
                  unsigned *degraded, char *msg, size_t msglen) {
  const char *argv[] = {"sh", "-c", script, NULL};
  char tmp_var[sizeof(tmpdir) + 8];
  const char *env[] = {tmp_var, "PATH=/usr/local/bin:/usr/bin:/bin", NULL};
  ice__proc_opts_t o;
  uv_loop_t loop;
  ice__proc_t *p = NULL;
  int rc, step = -1;

  snprintf(tmp_var, sizeof(tmp_var), "TMPDIR=%s", tmpdir);
  memset(r, 0, sizeof(*r));
  memset(&o, 0, sizeof(o));
  o.argv = argv;
  o.env = env;
  o.cwd = run_cwd != NULL ? run_cwd : work;
  o.on_stderr_line = on_line;
  o.on_exit = on_exit_cb;
  o.data = r;
  o.sandbox = c;
  o.tmpdir = tmpdir;
  o.degraded = degraded;
  o.errbuf = msg;
  o.errlen = msglen;
  o.failed_step = &step;
  o.max_output_bytes = 1 << 20;
  assert_int_equal(uv_loop_init(&loop), 0);
  rc = ice__proc_start(&loop, &o, &p);
  if (rc == 0) {
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r->exit_calls, 1);
  } else {
    assert_null(p);
    assert_int_equal(step, ICE__PROC_STEP_SANDBOX);
  }
  assert_int_equal(uv_loop_close(&loop), 0);
  return rc;
}

/* Runs script and expects it to start. */
static void run_ok(const ice__sandbox_conf_t *c, const char *script, run_t *r) {
  char msg[512] = "";
  unsigned deg = 0;
  int fds = count_fds();

  assert_int_equal(run_sh(c, script, r, &deg, msg, sizeof(msg)), 0);
  assert_int_equal(deg, 0);
  assert_int_equal(count_fds(), fds);
}

/* Is a process whose command line is `sleep ARG` still running? Polls for
 * up to 2 s: the kernel finishes a SIGKILL asynchronously. */
static int sleep_running(const char *arg) {
  char want[64];
  size_t wlen = (size_t)snprintf(want, sizeof(want), "sleep%c%s", '\0', arg);

  for (int i = 0; i < 200; i++) {
    DIR *d = opendir("/proc");
    struct dirent *de;
    int found = 0;

    assert_non_null(d);
    while (!found && (de = readdir(d)) != NULL) {
      char path[300], buf[128];
      FILE *f;
      size_t n;

      if (de->d_name[0] < '0' || de->d_name[0] > '9')
        continue;
      snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
      if ((f = fopen(path, "r")) == NULL)
        continue;
      n = fread(buf, 1, sizeof(buf), f);
      fclose(f);
      found = n > wlen && memcmp(buf, want, wlen + 1) == 0;
    }
    closedir(d);
    if (!found)
      return 0;
    usleep(10000);
  }
  return 1;
}

static int setup(void **state) {
  ice__sandbox_conf_t c;
  run_t r;

  (void)state;
  assert_non_null(mkdtemp(work));
  chmod(work, 0755);
  snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", work);
  assert_int_equal(mkdir(tmpdir, 0777), 0);
  chmod(tmpdir, 01777);
  unsetenv("ICE_SANDBOX_REFUSE");
  /* Warm up: the seccomp programs and id-map namespaces are made once and
   * kept, which would look like leaked descriptors to the first test. */
  conf(&c, NULL);
  assert_int_equal(run_sh(&c, "true", &r, NULL, NULL, 0), 0);
  ice__sandbox_conf_free(&c);
  conf(&c, "{\"network\": true}");
  assert_int_equal(run_sh(&c, "true", &r, NULL, NULL, 0), 0);
  ice__sandbox_conf_free(&c);
  return 0;
}

static int teardown(void **state) {
  char cmd[128];

  (void)state;
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", work);
  return system(cmd) == 0 ? 0 : -1;
}

/* ---- configuration ------------------------------------------------------ */

static void test_conf_defaults(void **state) {
  ice__sandbox_conf_t c;

  (void)state;
  conf(&c, NULL);
  assert_int_equal(c.memory_mb, 512);
  assert_int_equal(c.cpu_seconds, 10);
  assert_int_equal(c.max_processes, 64);
  assert_int_equal(c.max_open_files, 256);
  assert_int_equal(c.max_file_bytes, 64 << 20);
  assert_int_equal(c.max_output_bytes, 1 << 20);
  assert_int_equal(c.network, 0);
  assert_int_equal(c.fs_full, 0);
  assert_int_equal(c.strict, 1);
  assert_null(c.writable);
  assert_string_equal(c.dir, work);
  ice__sandbox_conf_free(&c);
}

static void test_conf_fields(void **state) {
  ice__sandbox_conf_t c;
  char want[256];

  (void)state;
  conf(&c,
       "{\"memory_mb\": 64, \"cpu_seconds\": 1.2, \"max_processes\": 3,"
       " \"max_open_files\": 10, \"max_output_bytes\": 5,"
       " \"max_file_bytes\": 7, \"network\": true, \"filesystem\": \"full\","
       " \"writable\": [\"out\", \"/abs/x\"], \"strict\": false}");
  assert_int_equal(c.memory_mb, 64);
  assert_int_equal(c.cpu_seconds, 2); /* whole seconds, rounded up */
  assert_int_equal(c.max_processes, 3);
  assert_int_equal(c.max_open_files, 10);
  assert_int_equal(c.max_output_bytes, 5);
  assert_int_equal(c.max_file_bytes, 7);
  assert_int_equal(c.network, 1);
  assert_int_equal(c.fs_full, 1);
  assert_int_equal(c.strict, 0);
  snprintf(want, sizeof(want), "%s/out", work);
  assert_string_equal(c.writable[0], want);
  assert_string_equal(c.writable[1], "/abs/x");
  assert_null(c.writable[2]);
  ice__sandbox_conf_free(&c);
}

static void test_check_fields(void **state) {
  static const struct {
    const char *key, *json, *msg;
  } bad[] = {
      {"memory_mb", "0", "must be an integer >= 1"},
      {"memory_mb", "1e3", "must be an integer >= 1"},
      {"memory_mb", "9000000000000000", "must be an integer <= 4398046511104"},
      {"max_processes", "\"8\"", "must be an integer >= 1"},
      {"cpu_seconds", "0", "must be a number of seconds > 0"},
      {"cpu_seconds", "true", "must be a number of seconds > 0"},
      {"network", "1", "must be true or false"},
      {"strict", "null", "must be true or false"},
      {"filesystem", "\"rw\"", "must be \"read-only\" or \"full\""},
      {"writable", "\"x\"", "must be a list of paths"},
      {"writable", "[\"a\", \"\"]", "[1] must be a non-empty path"},
      {"colour", "1", "unknown field"},
  };
  char buf[128], err[256];
  ice__sandbox_conf_t c;
  json_t *o;

  (void)state;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    json_t *v = th_json(bad[i].json);
    const char *m = ice__sandbox_check_field(bad[i].key, v, buf, sizeof(buf));

    assert_non_null(m);
    assert_string_equal(m, bad[i].msg);
    json_decref(v);
  }
  o = th_json("3");
  assert_null(ice__sandbox_check_field("cpu_seconds", o, buf, sizeof(buf)));
  json_decref(o);
  /* parse says which field, and keeps nothing half-read. */
  o = th_json("{\"network\": false, \"max_open_files\": -1}");
  ice__sandbox_conf_init(&c);
  assert_int_equal(ice__sandbox_conf_parse(&c, o, work, err, sizeof(err)), -1);
  assert_string_equal(err, "sandbox.max_open_files: must be an integer >= 1");
  ice__sandbox_conf_free(&c);
  json_decref(o);
  o = th_json("[]");
  ice__sandbox_conf_init(&c);
  assert_int_equal(ice__sandbox_conf_parse(&c, o, work, err, sizeof(err)), -1);
  assert_string_equal(err, "sandbox must be an object");
  ice__sandbox_conf_free(&c);
  json_decref(o);
  for (const char *const *f = ice__sandbox_fields; *f != NULL; f++) {
    o = th_json("null");
    assert_string_not_equal(ice__sandbox_check_field(*f, o, buf, sizeof(buf)),
                            "unknown field");
    json_decref(o);
  }
}

static void test_missing_names(void **state) {
  json_t *a = ice__sandbox_missing_json(ICE__SBX_NET | ICE__SBX_SECCOMP);

  (void)state;
  th_assert_json(a, "[\"network namespace\",\"seccomp filter\"]");
  json_decref(a);
  a = ice__sandbox_missing_json(0);
  th_assert_json(a, "[]");
  json_decref(a);
}

/* ---- inside ------------------------------------------------------------- */

/* The tool's user, no capabilities, no_new_privs, a seccomp filter, pid 2
 * under the namespace's init, no network but lo, its TMPDIR writable and
 * everything else read-only. */
static void test_inside(void **state) {
  ice__sandbox_conf_t c;
  run_t r;
  char want[128];

  (void)state;
  conf(&c, NULL);
  run_ok(&c,
         "id -u; echo $$; grep -E '^(CapEff|CapBnd|CapAmb|NoNewPrivs|"
         "Seccomp):' /proc/self/status | tr -d '\\t'; grep -c : "
         "/proc/net/dev; : > \"$TMPDIR/ok\" && echo tmp-ok; (echo > ./nope) "
         "2>/dev/null || echo ro; (echo > /tmp/ice-sbx-nope) 2>/dev/null "
         "|| echo tmp-ro",
         &r);
  assert_int_equal(r.res.exit_status, 0);
  snprintf(want, sizeof(want), "%d\n", geteuid() == 0 ? 65534 : (int)geteuid());
  assert_memory_equal(r.out, want, strlen(want));
  assert_non_null(strstr(r.out, "\n2\n"));
  assert_non_null(strstr(r.out, "CapEff:0000000000000000\n"));
  assert_non_null(strstr(r.out, "CapBnd:0000000000000000\n"));
  assert_non_null(strstr(r.out, "CapAmb:0000000000000000\n"));
  assert_non_null(strstr(r.out, "NoNewPrivs:1\n"));
  assert_non_null(strstr(r.out, "Seccomp:2\n"));
  assert_non_null(strstr(r.out, "\n1\ntmp-ok\nro\ntmp-ro\n"));
  ice__sandbox_conf_free(&c);
}

/* /dev/shm is the tool's own small tmpfs: POSIX semaphores work (Python's
 * multiprocessing), and nothing written there reaches the host's. */
static void test_dev_shm(void **state) {
  ice__sandbox_conf_t c;
  run_t r;
  char script[300], host[128];

  (void)state;
  snprintf(host, sizeof(host), "/dev/shm/ice-sbx-%d", (int)getpid());
  snprintf(script, sizeof(script),
           "python3 -c 'import multiprocessing as m; m.Lock(); "
           "print(\"sem-ok\")' && echo x > %s && df -k /dev/shm | tail -1 "
           "| awk '{print $2}'",
           host);
  conf(&c, "{\"memory_mb\": 32}");
  run_ok(&c, script, &r);
  assert_string_equal(r.out, "sem-ok\n32768\n");
  assert_int_equal(access(host, F_OK), -1);
  ice__sandbox_conf_free(&c);
}

/* The host's network, when asked for, and then no socket filter. */
static void test_network_true(void **state) {
  ice__sandbox_conf_t c;
  run_t r;

  (void)state;
  conf(&c, "{\"network\": true}");
  run_ok(&c,
         "grep -c : /proc/net/dev; python3 -c 'import socket; "
         "socket.socket(); print(\"socket-ok\")'",
         &r);
  assert_int_equal(r.res.exit_status, 0);
  assert_non_null(strstr(r.out, "socket-ok"));
  ice__sandbox_conf_free(&c);
  conf(&c, NULL);
  run_ok(&c, "python3 -c 'import socket; socket.socket(socket.AF_UNIX)'", &r);
  assert_int_equal(r.res.exit_status, 1);
  assert_non_null(strstr(r.err, "Permission denied"));
  ice__sandbox_conf_free(&c);
}

/* ---- limits ------------------------------------------------------------- */

static void test_cpu_limit(void **state) {
  ice__sandbox_conf_t c;
  run_t r;

  (void)state;
  conf(&c, "{\"cpu_seconds\": 1}");
  run_ok(&c, "while :; do :; done", &r);
  assert_int_equal(r.res.term_signal, SIGXCPU);
  assert_string_equal(r.limit, "cpu: the tool used up its 1 s of CPU time "
                               "(cpu_seconds)");
  /* rusage's split into user and system time is sampled; on a loaded VM
   * its sum can trail the run time the limit counts. */
  assert_true(r.res.cpu_seconds > 0.3);
  ice__sandbox_conf_free(&c);
}

static void test_memory_limit(void **state) {
  ice__sandbox_conf_t c;
  run_t r;

  (void)state;
  /* RLIMIT_DATA: as root on a cgroup v1 host the engine would make a
   * memory cgroup (87-sandbox.sh checks that path). */
  setenv("ICE_CGROUP", "off", 1);
  ice__sandbox_cgroup_reprobe();
  conf(&c, "{\"memory_mb\": 96}");
  run_ok(&c,
         "exec python3 -c 'a = []\nwhile True: a.append(b\"x\" * (1 << 20))'",
         &r);
  assert_int_equal(r.res.exit_status, 1);
  assert_non_null(strstr(r.err, "MemoryError"));
  assert_true(strncmp(r.limit, "memory: the tool failed after using ", 36) ==
              0);
  assert_non_null(strstr(r.limit, "of its 96 MiB (memory_mb)"));
  ice__sandbox_conf_free(&c);
  unsetenv("ICE_CGROUP");
  ice__sandbox_cgroup_reprobe();
  /* The same tool failing for another reason, small: not memory. */
  conf(&c, "{\"memory_mb\": 96}");
  run_ok(&c, "exit 3", &r);
  assert_int_equal(r.res.exit_status, 3);
  assert_string_equal(r.limit, "");
  ice__sandbox_conf_free(&c);
}

static void test_processes_limit(void **state) {
  ice__sandbox_conf_t c;
  run_t r;
  char script[128];

  (void)state;
  conf(&c, "{\"max_processes\": 8}");
  snprintf(script, sizeof(script), "while :; do sleep 97.%d & done",
           (int)getpid());
  run_ok(&c, script, &r);
  assert_int_not_equal(r.res.exit_status, 0);
  assert_string_equal(r.limit, "processes: the tool failed at its limit of 8 "
                               "processes (max_processes)");
  snprintf(script, sizeof(script), "97.%d", (int)getpid());
  assert_false(sleep_running(script));
  ice__sandbox_conf_free(&c);
}

static void test_file_size_limit(void **state) {
  ice__sandbox_conf_t c;
  run_t r;

  (void)state;
  conf(&c, "{\"max_file_bytes\": 100000}");
  run_ok(&c, "exec head -c 200000 /dev/zero > \"$TMPDIR/big\"", &r);
  assert_int_equal(r.res.term_signal, SIGXFSZ);
  assert_string_equal(r.limit,
                      "file size: the tool wrote past its limit of 100000 "
                      "bytes (max_file_bytes)");
  ice__sandbox_conf_free(&c);
  conf(&c, "{\"max_open_files\": 5}");
  run_ok(&c, "ulimit -n; ulimit -c", &r);
  assert_string_equal(r.out, "5\n0\n");
  ice__sandbox_conf_free(&c);
}

/* The verdict's rules on their own (SPEC §5.2), with made-up ends. */
static void test_verdict_rules(void **state) {
  ice__sandbox_conf_t c;
  ice__sandbox_t *s;
  char err[256], m[256];

  (void)state;
  conf(&c, "{\"memory_mb\": 100000, \"cpu_seconds\": 2, "
           "\"max_processes\": 5}");
  assert_int_equal(ice__sandbox_prepare(&c, tmpdir, work, &s, err, sizeof(err)),
                   0);
  assert_int_equal(ice__sandbox_verdict(s, 0, SIGXCPU, 0.5, 0, -1, m, 256), 1);
  assert_true(strncmp(m, "cpu: ", 5) == 0);
  /* A SIGXCPU long before the limit was sent by the tool: no verdict, the
   * node fails as killed by that signal. */
  m[0] = '\0';
  assert_int_equal(ice__sandbox_verdict(s, 0, SIGXCPU, 0.1, 0, -1, m, 256), 0);
  assert_string_equal(m, "");
  assert_int_equal(ice__sandbox_verdict(s, 0, SIGKILL, 2.0, 0, -1, m, 256), 1);
  assert_true(strncmp(m, "cpu: ", 5) == 0);
  assert_int_equal(ice__sandbox_verdict(s, 0, SIGKILL, 1.9, 0, -1, m, 256), 0);
  /* 75 % of 100000 MiB, failing: memory; succeeding: nothing. */
  assert_int_equal(
      ice__sandbox_verdict(s, 1, 0, 0, 75000LL * 1024, -1, m, sizeof(m)), 1);
  assert_string_equal(m, "memory: the tool failed after using 75000 MiB of "
                         "its 100000 MiB (memory_mb)");
  assert_int_equal(
      ice__sandbox_verdict(s, 0, 0, 0, 99000LL * 1024, -1, m, sizeof(m)), 0);
  assert_int_equal(
      ice__sandbox_verdict(s, 1, 0, 0, 74000LL * 1024, -1, m, sizeof(m)), 0);
  /* Processes: at the limit and failing. */
  assert_int_equal(ice__sandbox_verdict(s, 2, 0, 0, 0, 5, m, sizeof(m)), 1);
  assert_true(strncmp(m, "processes: ", 11) == 0);
  assert_int_equal(ice__sandbox_verdict(s, 2, 0, 0, 0, 4, m, sizeof(m)), 0);
  assert_int_equal(ice__sandbox_verdict(s, 0, 0, 0, 0, 9, m, sizeof(m)), 0);
  assert_int_equal(ice__sandbox_verdict(s, 0, SIGXFSZ, 0, 0, -1, m, 256), 1);
  assert_true(strncmp(m, "file size: ", 11) == 0);
  assert_int_equal(ice__sandbox_verdict(s, 0, SIGSEGV, 0, 0, -1, m, 256), 0);
  ice__sandbox_free(s);
  ice__sandbox_conf_free(&c);
}

/* The messages of a child's failure reports. */
static void test_describe(void **state) {
  ice__sandbox_conf_t c;
  ice__sandbox_t *s;
  ice__sandbox_report_t r;
  char err[256], m[512];

  (void)state;
  conf(&c, NULL);
  assert_int_equal(ice__sandbox_prepare(&c, tmpdir, work, &s, err, sizeof(err)),
                   0);
  memset(&r, 0, sizeof(r));
  r.kind = ICE__SBX_REPORT_FAIL;
  r.step = ICE__PROC_STEP_SANDBOX;
  r.err = EPERM;
  r.mech = ICE__SBX_USER;
  ice__sandbox_describe(s, &r, m, sizeof(m));
  assert_string_equal(m, "sandbox: the kernel refused the user namespace "
                         "(Operation not permitted); sandbox.strict is true, "
                         "so the tool does not run without it");
  r.mech = 0;
  r.what = ICE__SBX_WHAT_MOUNT;
  r.arg = 0; /* the plan's first step: every mount private */
  r.err = EINVAL;
  ice__sandbox_describe(s, &r, m, sizeof(m));
  assert_string_equal(m, "sandbox: cannot set up the mount at '/': Invalid "
                         "argument");
  r.what = ICE__SBX_WHAT_SECCOMP;
  ice__sandbox_describe(s, &r, m, sizeof(m));
  assert_string_equal(m, "sandbox: loading the seccomp filter: Invalid "
                         "argument");
  r.what = ICE__SBX_WHAT_NONE;
  ice__sandbox_describe(s, &r, m, sizeof(m));
  assert_string_equal(m, "sandbox: Invalid argument");
  assert_string_equal(ice__sandbox_message(s), "");
  assert_true(ice__sandbox_clone_flags(s) & CLONE_NEWPID);
  ice__sandbox_free(s);
  ice__sandbox_conf_free(&c);
}

/* ---- ending ------------------------------------------------------------- */

static void on_exit_kill(void *data, const ice__proc_result_t *res) {
  on_exit_cb(data, res);
}

static void kill_later(uv_timer_t *t) {
  ice__proc_kill(t->data);
  uv_close((uv_handle_t *)t, NULL);
}

/* A kill takes the namespace down: the init, the tool, and what it left,
 * setsid or not. */
/* Threads start and exit while tools are cloned, as in an embedding
 * program (Python threads). As root the child drops to nobody: glibc's
 * setgroups and setresuid would signal every thread it knows of and wait
 * for each, forever for one that was starting or exiting at the clone.
 * alarm() turns such a hang into a failure. */
static atomic_int churn_stop;

static void *idle_thread(void *arg) {
  return arg;
}

static void *churn(void *arg) {
  while (!atomic_load(&churn_stop)) {
    pthread_t t;

    if (pthread_create(&t, NULL, idle_thread, NULL) == 0)
      pthread_join(t, NULL);
  }
  return arg;
}

static void test_threads_churn_while_cloning(void **state) {
  ice__sandbox_conf_t c;
  pthread_t th[2];
  run_t r;

  (void)state;
  conf(&c, "{}");
  atomic_store(&churn_stop, 0);
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&th[i], NULL, churn, NULL), 0);
  alarm(120);
  for (int i = 0; i < 60; i++) {
    run_ok(&c, "exit 0", &r);
    assert_int_equal(r.res.exit_status, 0);
  }
  alarm(0);
  atomic_store(&churn_stop, 1);
  for (int i = 0; i < 2; i++)
    pthread_join(th[i], NULL);
  ice__sandbox_conf_free(&c);
}

static void test_kill_takes_namespace(void **state) {
  ice__sandbox_conf_t c;
  char script[160], mark[32];
  const char *argv[] = {"sh", "-c", script, NULL};
  ice__proc_opts_t o;
  uv_loop_t loop;
  uv_timer_t timer;
  ice__proc_t *p;
  run_t r;
  int fds = count_fds();

  (void)state;
  snprintf(mark, sizeof(mark), "98.%d", (int)getpid());
  snprintf(script, sizeof(script), "setsid sleep %s & sleep %s & exec sleep %s",
           mark, mark, mark);
  conf(&c, NULL);
  memset(&r, 0, sizeof(r));
  memset(&o, 0, sizeof(o));
  o.argv = argv;
  o.cwd = work;
  o.on_exit = on_exit_kill;
  o.data = &r;
  o.sandbox = &c;
  o.tmpdir = tmpdir;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(ice__proc_start(&loop, &o, &p), 0);
  uv_timer_init(&loop, &timer);
  timer.data = p;
  uv_timer_start(&timer, kill_later, 300, 0);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&loop), 0);
  assert_int_equal(r.exit_calls, 1);
  assert_int_equal(r.res.killed, 1);
  assert_string_equal(r.limit, ""); /* the engine's kill is no limit */
  assert_false(sleep_running(mark));
  assert_int_equal(count_fds(), fds);
  ice__sandbox_conf_free(&c);
}

/* ---- without namespaces ---------------------------------------------------
 * The child then shares the engine's memory until it execs (proc.c,
 * vfork_child): what it changes of itself (its user, limits, filter) must
 * stay its own. */

static volatile int idle_stop;
static volatile int *atfork_seen; /* a page shared with children */

static void atfork_child(void) {
  if (atfork_seen != NULL)
    *atfork_seen = 1;
}

static void *waiting_thread(void *arg) {
  (void)arg;
  while (!idle_stop)
    usleep(1000);
  return NULL;
}

/* The real uid of every thread of this process, or -1 when they differ. */
static long threads_uid(void) {
  DIR *d = opendir("/proc/self/task");
  struct dirent *de;
  long uid = -2;

  assert_non_null(d);
  while ((de = readdir(d)) != NULL) {
    char path[300], line[256];
    FILE *f;
    long u = -1;

    if (de->d_name[0] == '.')
      continue;
    snprintf(path, sizeof(path), "/proc/self/task/%s/status", de->d_name);
    if ((f = fopen(path, "r")) == NULL)
      continue;
    while (fgets(line, sizeof(line), f) != NULL) {
      if (strncmp(line, "Uid:", 4) == 0)
        u = strtol(line + 4, NULL, 10);
    }
    fclose(f);
    uid = uid == -2 || uid == u ? u : -1;
  }
  closedir(d);
  return uid;
}

static void test_no_namespaces_engine_keeps_its_ids(void **state) {
  ice__sandbox_conf_t c;
  run_t r;
  char msg[512] = "", want[64];
  unsigned deg = 0;
  pthread_t th;

  (void)state;
  atfork_seen = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  assert_true(atfork_seen != MAP_FAILED);
  assert_int_equal(pthread_atfork(NULL, NULL, atfork_child), 0);
  idle_stop = 0;
  assert_int_equal(pthread_create(&th, NULL, waiting_thread, NULL), 0);
  setenv("ICE_SANDBOX_REFUSE", "user,pid,net,mount,ipc,uts,readonly,idmap", 1);
  conf(&c, "{\"strict\": false}");
  assert_int_equal(run_sh(&c,
                          "id -u; grep -E '^(NoNewPrivs|Seccomp):' "
                          "/proc/self/status | tr -d '\\t'",
                          &r, &deg, msg, sizeof(msg)),
                   0);
  snprintf(want, sizeof(want), "%u\nNoNewPrivs:1\nSeccomp:2\n",
           geteuid() == 0 ? 65534u : (unsigned)geteuid());
  assert_string_equal(r.out, want);
  /* The engine, all its threads, is still who it was; nothing was forked
   * (no fork handler of the embedding program ran in the child). */
  assert_int_equal(threads_uid(), (long)getuid());
  assert_int_equal(*atfork_seen, 0);
  munmap((void *)atfork_seen, 4096);
  atfork_seen = NULL;
  ice__sandbox_conf_free(&c);
  unsetenv("ICE_SANDBOX_REFUSE");
  idle_stop = 1;
  assert_int_equal(pthread_join(th, NULL), 0);
}

/* ---- strict, degraded, failures to start -------------------------------- */

static void test_strict_and_degraded(void **state) {
  ice__sandbox_conf_t c;
  run_t r;
  char msg[512] = "";
  unsigned deg = 0;
  int fds = count_fds();

  (void)state;
  setenv("ICE_SANDBOX_REFUSE", "net", 1);
  conf(&c, NULL);
  assert_int_equal(run_sh(&c, "true", &r, &deg, msg, sizeof(msg)), -EPERM);
  assert_string_equal(msg,
                      "sandbox: missing network namespace (refused by "
                      "ICE_SANDBOX_REFUSE); sandbox.strict is true, so the "
                      "tool does not run without it");
  ice__sandbox_conf_free(&c);
  conf(&c, "{\"strict\": false}");
  assert_int_equal(
      run_sh(&c, "grep -c : /proc/net/dev", &r, &deg, msg, sizeof(msg)), 0);
  assert_int_equal(deg, ICE__SBX_NET);
  assert_int_not_equal(r.out[0], '1'); /* the host's interfaces */
  ice__sandbox_conf_free(&c);
  /* Without seccomp and with no pid namespace, the rest still holds. */
  setenv("ICE_SANDBOX_REFUSE", "seccomp,pid", 1);
  conf(&c, "{\"strict\": false}");
  assert_int_equal(run_sh(&c,
                          "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status "
                          "| tr -d '\\t'; grep -c : /proc/net/dev",
                          &r, &deg, msg, sizeof(msg)),
                   0);
  assert_int_equal(deg, ICE__SBX_SECCOMP | ICE__SBX_PID);
  assert_string_equal(r.out, "NoNewPrivs:1\nSeccomp:0\n1\n");
  ice__sandbox_conf_free(&c);
  /* Without the read-only view (and, as root, the id-mapping): a relaxed
   * tool can write where its user may. */
  setenv("ICE_SANDBOX_REFUSE", "readonly,idmap", 1);
  conf(&c, "{\"strict\": false}");
  assert_int_equal(
      run_sh(&c, "echo x > ./rw-ok && echo wrote", &r, &deg, msg, sizeof(msg)),
      0);
  assert_int_equal(deg,
                   ICE__SBX_READONLY | (geteuid() == 0 ? ICE__SBX_IDMAP : 0));
  assert_string_equal(r.out, geteuid() == 0 ? "" : "wrote\n");
  ice__sandbox_conf_free(&c);
  unsetenv("ICE_SANDBOX_REFUSE");
  assert_int_equal(count_fds(), fds);
}

static void test_writable_paths(void **state) {
  ice__sandbox_conf_t c;
  run_t r;
  char msg[512] = "", want[512], dir[128], path[160];
  unsigned deg = 0;
  FILE *f;

  (void)state;
  conf(&c, "{\"writable\": [\"no-such-dir\"]}");
  assert_int_equal(run_sh(&c, "true", &r, &deg, msg, sizeof(msg)), -ENOENT);
  snprintf(want, sizeof(want),
           "sandbox: writable path '%s/no-such-dir': No such file or "
           "directory",
           work);
  assert_string_equal(msg, want);
  ice__sandbox_conf_free(&c);
  /* A writable directory and a writable file; their siblings stay
   * read-only. */
  snprintf(dir, sizeof(dir), "%s/w", work);
  assert_int_equal(mkdir(dir, 0777), 0);
  chmod(dir, 0777);
  snprintf(path, sizeof(path), "%s/file", work);
  f = fopen(path, "w");
  assert_non_null(f);
  fclose(f);
  chmod(path, 0666);
  conf(&c, "{\"writable\": [\"w\", \"file\"]}");
  run_ok(&c,
         "echo a > w/a && echo b > file && echo ok; (echo c > other) "
         "2>/dev/null || echo other-ro",
         &r);
  assert_string_equal(r.out, "ok\nother-ro\n");
  ice__sandbox_conf_free(&c);
  f = fopen(path, "r");
  assert_non_null(f);
  assert_int_equal(fgetc(f), 'b');
  fclose(f);
}

/* As root: the directory of a file the command names (`readable`, under a
 * directory nobody may search) is visible, but with its real owners and
 * modes: no id-mapping, so a root-only file there stays root's, while the
 * cwd is id-mapped (its root-only file is the tool's). */
static void test_readable_not_mapped(void **state) {
  ice__sandbox_conf_t c;
  run_t r;
  char hidden[160], tools[200], path[260], cwd[200], script[600];
  FILE *f;

  (void)state;
  if (geteuid() != 0) {
    skip();
    return;
  }
  snprintf(hidden, sizeof(hidden), "%s/private", work);
  snprintf(tools, sizeof(tools), "%s/tools", hidden);
  snprintf(cwd, sizeof(cwd), "%s/wf", hidden);
  assert_int_equal(mkdir(hidden, 0700), 0);
  assert_int_equal(mkdir(tools, 0755), 0);
  assert_int_equal(mkdir(cwd, 0755), 0);
  snprintf(path, sizeof(path), "%s/tool.sh", tools);
  assert_non_null(f = fopen(path, "w"));
  fputs("echo tool-ran\n", f);
  fclose(f);
  chmod(path, 0644);
  snprintf(path, sizeof(path), "%s/secret", tools);
  assert_non_null(f = fopen(path, "w"));
  fputs("s3cret\n", f);
  fclose(f);
  chmod(path, 0600);
  snprintf(path, sizeof(path), "%s/mine", cwd);
  assert_non_null(f = fopen(path, "w"));
  fputs("m1ne\n", f);
  fclose(f);
  chmod(path, 0600);

  conf(&c, NULL);
  free(c.dir); /* the workflow's directory is wf, beside tools */
  c.dir = strdup(cwd);
  c.readable = calloc(2, sizeof(char *));
  assert_non_null(c.readable);
  c.readable[0] = strdup(tools);
  snprintf(script, sizeof(script),
           "sh ../tools/tool.sh; cat ../tools/secret 2>/dev/null || echo "
           "secret-hidden; cat mine; ls .. | tr '\\n' ' '");
  run_cwd = cwd;
  run_ok(&c, script, &r);
  run_cwd = NULL;
  assert_string_equal(r.out, "tool-ran\nsecret-hidden\nm1ne\ntools wf ");
  ice__sandbox_conf_free(&c);
}

/* ---- a cgroup base (ICE_CGROUP) ----------------------------------------- */

/* The one ice-* directory made under base, into buf. */
static void cgroup_dir(const char *base, char *buf, size_t len) {
  DIR *d = opendir(base);
  struct dirent *e;
  int n = 0;

  assert_non_null(d);
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, "ice-", 4) == 0) {
      snprintf(buf, len, "%s/%s", base, e->d_name);
      n++;
    }
  }
  closedir(d);
  assert_int_equal(n, 1);
}

static void put(const char *dir, const char *file, const char *text) {
  char path[512];
  FILE *f;

  snprintf(path, sizeof(path), "%s/%s", dir, file);
  f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void get(const char *dir, const char *file, char *buf, size_t len) {
  char path[512];
  FILE *f;
  size_t n;

  snprintf(path, sizeof(path), "%s/%s", dir, file);
  f = fopen(path, "r");
  assert_non_null(f);
  n = fread(buf, 1, len - 1, f);
  buf[n] = '\0';
  fclose(f);
}

/* A plain directory stands for a delegated cgroup: the limits are written,
 * the child joins (writes "0" to cgroup.procs), RLIMIT_DATA is then left
 * to the cgroup, and the verdict reads memory.events and pids.events. */
static void test_cgroup_base(void **state) {
  ice__sandbox_conf_t c;
  ice__sandbox_t *s;
  char base[128], cg[512], buf[64], err[256], m[256], cmd[600];
  run_t r;

  (void)state;
  snprintf(base, sizeof(base), "%s/cg", work);
  assert_int_equal(mkdir(base, 0755), 0);
  put(base, "cgroup.subtree_control", "cpu memory pids\n");
  setenv("ICE_CGROUP", base, 1);
  ice__sandbox_cgroup_reprobe();

  conf(&c, "{\"memory_mb\": 64, \"max_processes\": 9}");
  assert_int_equal(ice__sandbox_prepare(&c, tmpdir, work, &s, err, sizeof(err)),
                   0);
  cgroup_dir(base, cg, sizeof(cg));
  get(cg, "memory.max", buf, sizeof(buf));
  assert_string_equal(buf, "67108864");
  get(cg, "pids.max", buf, sizeof(buf));
  assert_string_equal(buf, "9");
  get(cg, "memory.swap.max", buf, sizeof(buf));
  assert_string_equal(buf, "0");
  assert_int_equal(ice__sandbox_verdict(s, 1, 0, 0, 0, -1, m, sizeof(m)), 0);
  put(cg, "pids.events", "max 2\n");
  assert_int_equal(ice__sandbox_verdict(s, 1, 0, 0, 0, -1, m, sizeof(m)), 1);
  assert_true(strncmp(m, "processes: ", 11) == 0);
  put(cg, "memory.peak", "60000000\n");
  assert_int_equal(ice__sandbox_verdict(s, 1, 0, 0, 0, -1, m, sizeof(m)), 1);
  assert_string_equal(m, "memory: the tool failed after using 57 MiB of its "
                         "64 MiB (memory_mb)");
  put(cg, "memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
  assert_int_equal(ice__sandbox_verdict(s, 0, SIGKILL, 0, 0, -1, m, 256), 1);
  assert_string_equal(m, "memory: the tool was killed at its memory limit of "
                         "64 MiB (memory_mb)");
  ice__sandbox_free(s);
  get(cg, "cgroup.kill", buf, sizeof(buf)); /* what is left is killed */
  assert_string_equal(buf, "1");
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", cg);
  assert_int_equal(system(cmd), 0);

  /* A child joins it, and memory is then the cgroup's, not RLIMIT_DATA. */
  run_ok(&c,
         "grep -E '^Max data size' /proc/self/limits | awk '{print $4, $5}'",
         &r);
  assert_string_equal(r.out, "unlimited unlimited\n");
  cgroup_dir(base, cg, sizeof(cg));
  get(cg, "cgroup.procs", buf, sizeof(buf));
  assert_string_equal(buf, "0");
  ice__sandbox_conf_free(&c);

  setenv("ICE_CGROUP", "off", 1);
  ice__sandbox_cgroup_reprobe();
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
  assert_int_equal(system(cmd), 0);
  /* And with cgroups off, RLIMIT_DATA again. */
  conf(&c, "{\"memory_mb\": 64}");
  run_ok(&c,
         "grep -E '^Max data size' /proc/self/limits | awk '{print $4, $5}'",
         &r);
  assert_string_equal(r.out, "67108864 67108864\n");
  ice__sandbox_conf_free(&c);
  unsetenv("ICE_CGROUP");
  ice__sandbox_cgroup_reprobe();
}

/* ---- the child's steps, in a process of the test ------------------------ */

/* The sandbox's child side runs between fork and exec, where gcov records
 * nothing. Here a child of the test runs the same steps on itself: a mount
 * namespace, ice__sandbox_child_setup (the mount plan), then
 * ice__sandbox_child_drop (nobody, a user namespace, limits, no
 * capabilities, no_new_privs, seccomp), checks what it became, and ends
 * with exit(): the build directory is one of its writable paths, so a
 * coverage build can write its counters. As root only (the plan's
 * id-mapped mounts need it). */
static void test_child_steps_in_process(void **state) {
  ice__sandbox_status_t st;
  char hidden[200], shown[260], secret[260];
  int status, sp[2];
  pid_t pid;

  (void)state;
  if (geteuid() != 0) {
    skip();
    return;
  }
  /* A directory nobody may not search, holding one to keep visible: the
   * plan covers it with a tmpfs holding just the mount point. */
  snprintf(hidden, sizeof(hidden), "%s/inproc-hidden", work);
  snprintf(shown, sizeof(shown), "%s/shown", hidden);
  assert_int_equal(mkdir(hidden, 0700), 0);
  assert_int_equal(mkdir(shown, 0755), 0);
  snprintf(secret, sizeof(secret), "%s/secret", hidden);
  assert_int_equal(close(open(secret, O_CREAT | O_WRONLY, 0644)), 0);
  assert_int_equal(pipe(sp), 0);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    ice__sandbox_conf_t c;
    ice__sandbox_t *s;
    char err[512], build[512], *slash, json[1200], path[600];
    int fds[2];
    FILE *f;

    snprintf(build, sizeof(build), "%s", ICE_BINARY);
    if ((slash = strrchr(build, '/')) != NULL)
      *slash = '\0';
    snprintf(json, sizeof(json),
             "{\"writable\": [\"%s\", \"%s\"], \"max_open_files\": 200, "
             "\"memory_mb\": 4398046511104}",
             build, tmpdir);
    conf(&c, json);
    c.readable = calloc(2, sizeof(char *));
    if (c.readable == NULL || (c.readable[0] = strdup(shown)) == NULL)
      _exit(29);
    close(sp[0]);
    /* cwd and the workflow's directory: TMPDIR, so that `work` is just a
     * directory on the way. */
    free(c.dir);
    c.dir = strdup(tmpdir);
    /* An engine whose own hard limit is lower: the tool gets that. */
    {
      struct rlimit nf = {150, 150};

      if (setrlimit(RLIMIT_NOFILE, &nf) != 0)
        _exit(28);
    }
    if (ice__sandbox_prepare(&c, tmpdir, tmpdir, &s, err, sizeof(err)) != 0 ||
        pipe(fds) != 0 || unshare(CLONE_NEWNS) != 0)
      _exit(30);
    if (ice__sandbox_child_setup(s, fds[1]) != 0)
      _exit(31);
    if (ice__sandbox_child_drop(s, work, fds[1]) != 0)
      _exit(32);
    {
      struct rlimit nf;

      if (getuid() != 65534 || prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1 ||
          getrlimit(RLIMIT_NOFILE, &nf) != 0 || nf.rlim_max != 150)
        _exit(33);
    }
    snprintf(path, sizeof(path), "%s/ice-sbx-ro-%d", work, (int)getpid());
    if ((f = fopen(path, "w")) != NULL || errno != EROFS)
      _exit(34);
    snprintf(path, sizeof(path), "%s/inproc-%d", tmpdir, (int)getpid());
    if ((f = fopen(path, "w")) == NULL)
      _exit(35);
    fclose(f);
    unlink(path);
    if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) == 0 || errno != EPERM)
      _exit(36);
    snprintf(path, sizeof(path), "%s/secret", hidden);
    if (access(shown, R_OK | X_OK) != 0 || access(path, F_OK) == 0)
      _exit(37); /* shown through the tmpfs, the rest of hidden is not */
    /* The init's part: reap a "tool" that fails, report its status. */
    {
      pid_t t = fork();

      if (t == 0)
        _exit(3);
      if (t < 0)
        _exit(38);
      ice__sandbox_init_reap(s, t, sp[1]);
    }
#ifdef __SANITIZE_ADDRESS__
    _exit(0); /* LeakSanitizer's exit check needs ptrace, refused now */
#else
    exit(0); /* not _exit: a coverage build writes its counters now */
#endif
  }
  close(sp[1]);
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_int_equal(read(sp[0], &st, sizeof(st)), sizeof(st));
  close(sp[0]);
  assert_true(WIFEXITED(st.status));
  assert_int_equal(WEXITSTATUS(st.status), 3);
  assert_true(st.nprocs >= 1); /* the tool, and the host's (no pid ns) */
}

/* ---- a kernel that refuses ---------------------------------------------- */

/* In a child of the test, a seccomp filter plays a kernel (or a container
 * runtime) that refuses network namespaces (clone, unshare, setns) and
 * mount_setattr, as Docker's
 * default profile refuses namespaces: the engine must find out which by
 * itself (no test hook), fail strict tools naming it, and run relaxed ones
 * without it. */
static void test_kernel_refuses(void **state) {
  pid_t pid;
  int status;

  (void)state;
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    scmp_filter_ctx f = seccomp_init(SCMP_ACT_ALLOW);
    ice__sandbox_conf_t c;
    char msg[512] = "";
    unsigned deg = 0;
    run_t r;
    int rc;

    if (f == NULL ||
        seccomp_rule_add(
            f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
            SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWNET, CLONE_NEWNET)) != 0 ||
        seccomp_rule_add(
            f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 1,
            SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWNET, CLONE_NEWNET)) != 0 ||
        /* and joining one, as the shared offline one a root engine made
         * before this fork (Docker's profile refuses setns too) */
        seccomp_rule_add(f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(setns), 0) != 0 ||
        seccomp_rule_add(f, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(mount_setattr),
                         0) != 0 ||
        seccomp_load(f) != 0)
      _exit(20);
    seccomp_release(f);

    /* Strict: the network namespace (made by the child, with unshare) is
     * refused, and named. */
    conf(&c, NULL);
    rc = run_sh(&c, "true", &r, &deg, msg, sizeof(msg));
    if (rc != -EPERM ||
        strcmp(msg, "sandbox: the kernel refused the network namespace "
                    "(Operation not permitted); sandbox.strict is true, so "
                    "the tool does not run without it") != 0) {
      fprintf(stderr, "strict clone: %d %s\n", rc, msg);
      _exit(21);
    }
    ice__sandbox_conf_free(&c);
    /* Relaxed, with the network: the clone works, mount_setattr does not
     * (the read-only view, and as root the id-mapping): reported by the
     * child, and the tool runs. */
    conf(&c, "{\"strict\": false, \"network\": true}");
    rc = run_sh(&c, "echo ran", &r, &deg, msg, sizeof(msg));
    if (rc != 0 || strcmp(r.out, "ran\n") != 0 ||
        deg != (ICE__SBX_READONLY | (geteuid() == 0 ? ICE__SBX_IDMAP : 0))) {
      fprintf(stderr, "relaxed: %d %s %x\n", rc, r.out, deg);
      _exit(22);
    }
    ice__sandbox_conf_free(&c);
    /* Strict, with the network: the child refuses, the node fails. */
    conf(&c, "{\"network\": true}");
    rc = run_sh(&c, "echo ran", &r, &deg, msg, sizeof(msg));
    if (rc != -ENOSYS ||
        strcmp(msg, "sandbox: the kernel refused the read-only file system "
                    "(Function not implemented); sandbox.strict is true, so "
                    "the tool does not run without it") != 0) {
      fprintf(stderr, "strict child: %d %s\n", rc, msg);
      _exit(23);
    }
    ice__sandbox_conf_free(&c);
    /* Relaxed without the network: no network namespace, and seccomp still
     * refuses sockets. */
    conf(&c, "{\"strict\": false}");
    rc =
        run_sh(&c, "python3 -c 'import socket; socket.socket()' 2>&1 | tail -1",
               &r, &deg, msg, sizeof(msg));
    if (rc != 0 || strstr(r.out, "Permission denied") == NULL ||
        !(deg & ICE__SBX_NET)) {
      fprintf(stderr, "relaxed, no net: %d %s %x\n", rc, r.out, deg);
      _exit(24);
    }
    ice__sandbox_conf_free(&c);
#ifdef __SANITIZE_ADDRESS__
    _exit(0);
#else
    exit(0); /* a coverage build writes its counters */
#endif
  }
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- an unprivileged engine --------------------------------------------- */

/* As root: a child of the test becomes nobody and runs a sandboxed tool,
 * which must get the same view: its own user (mapped to itself), no
 * capabilities, seccomp, its pid namespace, read-only but TMPDIR, and the
 * fork limit. */
static void test_unprivileged_engine(void **state) {
  pid_t pid;
  int status;

  (void)state;
  if (geteuid() != 0) {
    skip();
    return;
  }
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    ice__sandbox_conf_t c;
    run_t r;
    char script[200];
    int ok;

    if (setgroups(0, NULL) != 0 || setresgid(65534, 65534, 65534) != 0 ||
        setresuid(65534, 65534, 65534) != 0)
      _exit(10);
    conf(&c, NULL);
    run_ok(&c,
           "id -u; echo $$; grep -E '^(CapEff|Seccomp):' /proc/self/status | "
           "tr -d '\\t'; : > \"$TMPDIR/x\" && echo tmp-ok; (echo > ./nope) "
           "2>/dev/null || echo ro",
           &r);
    ok = strcmp(r.out, "65534\n2\nCapEff:0000000000000000\nSeccomp:2\ntmp-ok\n"
                       "ro\n") == 0;
    if (!ok) {
      fprintf(stderr, "as nobody, got: %s / %s\n", r.out, r.err);
      _exit(11);
    }
    ice__sandbox_conf_free(&c);
    conf(&c, "{\"max_processes\": 6}");
    snprintf(script, sizeof(script), "while :; do sleep 96.%d & done",
             (int)getpid());
    run_ok(&c, script, &r);
    if (strncmp(r.limit, "processes: ", 11) != 0) {
      fprintf(stderr, "as nobody, fork bomb: %s\n", r.limit);
      _exit(12);
    }
    ice__sandbox_conf_free(&c);
    _exit(0);
  }
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_conf_defaults),
      cmocka_unit_test(test_no_namespaces_engine_keeps_its_ids),
      cmocka_unit_test(test_conf_fields),
      cmocka_unit_test(test_check_fields),
      cmocka_unit_test(test_missing_names),
      cmocka_unit_test(test_inside),
      cmocka_unit_test(test_dev_shm),
      cmocka_unit_test(test_network_true),
      cmocka_unit_test(test_cpu_limit),
      cmocka_unit_test(test_memory_limit),
      cmocka_unit_test(test_processes_limit),
      cmocka_unit_test(test_file_size_limit),
      cmocka_unit_test(test_verdict_rules),
      cmocka_unit_test(test_describe),
      cmocka_unit_test(test_kill_takes_namespace),
      cmocka_unit_test(test_threads_churn_while_cloning),
      cmocka_unit_test(test_strict_and_degraded),
      cmocka_unit_test(test_writable_paths),
      cmocka_unit_test(test_readable_not_mapped),
      cmocka_unit_test(test_cgroup_base),
      cmocka_unit_test(test_child_steps_in_process),
      cmocka_unit_test(test_kernel_refuses),
      cmocka_unit_test(test_unprivileged_engine),
  };

  return cmocka_run_group_tests(tests, setup, teardown);
}
