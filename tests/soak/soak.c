/* The soak (issue 11, item 3; docs/reliability.md, "Load and soak"): one
 * process, one engine, one loop, for SOAK_SECONDS (argv[1], default 600).
 * It runs the load test's mix of workflows (tests/support/loadmix.h: every
 * node type, LLM calls to tests/support/chat_server.py, a SQLite store for
 * half the runs, waiting runs restored from the store) in batches of
 * BATCH runs in flight at once, checks every result exactly, and between
 * batches, when no run is alive, samples RSS and the open fds every
 * SAMPLE_SECONDS (argv[2], default 5), printing a table.
 *
 * It fails (exit 1) on a wrong result, or when memory or fds keep growing
 * after the warm-up (the first fifth of the time, at least one sample):
 *   - fds: any later sample has more open fds than the last warm-up
 *     sample (between batches nothing is open but the engine's own);
 *   - RSS: the median of the last third of the later samples exceeds the
 *     median of their first third by more than 4 MiB + 5 %. Medians of
 *     thirds ignore single spikes (malloc keeps freed memory for a while);
 *   - heap: the same medians of the bytes malloc'd and not freed
 *     (mallinfo2), which do not depend on how malloc returns pages,
 *     differ by more than 1 MiB: over 10 minutes (about 100,000 runs)
 *     that catches memory kept for good at about 10 bytes a run, which
 *     LeakSanitizer would not report when the engine frees it at the end.
 * Workflows are parsed again for every batch, so the loader is soaked
 * too. In an ASan build only the fd rule applies: LeakSanitizer checks
 * memory at exit. Exit 2 when it cannot start. SIGINT or SIGTERM stops it
 * early, judged on what ran.
 *
 * To check the rule itself, SOAK_LEAK=N in the environment leaks N bytes
 * per run and one fd per 50 batches, on purpose. */
#include <ice.h>

#include <dirent.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../support/loadmix.h"
#include "../support/portfile.h"

#define BATCH 40
#define MAX_SAMPLES 4096

static char g_dir[64];
static char g_base[128];
static pid_t g_server = -1;
static ice_store_t *g_store;

/* ---- measures ------------------------------------------------------------ */

typedef struct {
  double t;      /* seconds since the start */
  long runs;     /* runs finished so far */
  long rss_kb;   /* resident set */
  long hwm_kb;   /* its peak (VmHWM) */
  long heap_kb;  /* malloc'd and not freed (mallinfo2) */
  long fds;      /* entries of /proc/self/fd */
  long store_kb; /* the store file */
} sample_t;

static double now_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long status_kb(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = -1;
  size_t n = strlen(key);

  if (f == NULL)
    return -1;
  while (fgets(line, sizeof(line), f) != NULL) {
    if (strncmp(line, key, n) == 0 && line[n] == ':') {
      v = strtol(line + n + 1, NULL, 10);
      break;
    }
  }
  fclose(f);
  return v;
}

static long count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *de;
  long n = 0;

  if (d == NULL)
    return -1;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] != '.')
      n++;
  }
  closedir(d);
  return n - 1; /* the directory's own fd */
}

static long file_kb(const char *path) {
  FILE *f = fopen(path, "rb");
  long n;

  if (f == NULL)
    return 0;
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fclose(f);
  return n / 1024;
}

static long heap_kb(void) {
  struct mallinfo2 m = mallinfo2();

  return (long)((m.uordblks + m.hblkhd) / 1024);
}

static int cmp_long(const void *a, const void *b) {
  long x = *(const long *)a, y = *(const long *)b;

  return x < y ? -1 : x > y;
}

/* The median of RSS (heap = 0) or of the heap in use (heap = 1). */
static long median(const sample_t *s, size_t from, size_t to, int heap) {
  long v[MAX_SAMPLES];
  size_t n = 0;

  for (size_t i = from; i < to; i++)
    v[n++] = heap ? s[i].heap_kb : s[i].rss_kb;
  qsort(v, n, sizeof(v[0]), cmp_long);
  return n > 0 ? v[n / 2] : 0;
}

/* ---- the chat server ----------------------------------------------------- */

static int start_server(void) {
  char port_file[128];
  int port;

  snprintf(port_file, sizeof(port_file), "%s/port", g_dir);
  g_server = fork();
  if (g_server < 0)
    return -1;
  if (g_server == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    setpgid(0, 0); /* a Ctrl-C stops the soak, not its server */
    execlp("python3", "python3", ICE_SOURCE_DIR "/tests/support/chat_server.py",
           "--port-file", port_file, (char *)NULL);
    _exit(127);
  }
  if ((port = wait_port_file(port_file)) == 0)
    return -1;
  snprintf(g_base, sizeof(g_base), "http://127.0.0.1:%d/v1", port);
  return 0;
}

/* ---- the gate: completes at once ------------------------------------------
 */

static void gate_start(ice_task_t *t, json_t *args, void *data) {
  json_t *out = json_deep_copy(args);

  (void)data;
  json_object_set_new(out, "together", json_integer(1));
  ice_task_done(t, out);
}

/* ---- runs -----------------------------------------------------------------
 */

typedef struct {
  int n;
  int stored;
  ice_run_t *run;
  json_t *result;
  char *run_id;
} slot_t;

static long g_done;
static volatile sig_atomic_t g_stop; /* SIGINT, SIGTERM: judge and stop */
static int g_store_errors;           /* ice_store_finish failures */
static size_t g_leak;                /* SOAK_LEAK */

static void on_done(ice_run_t *run, void *data) {
  slot_t *s = data;
  char msg[512] = "";

  s->result = json_deep_copy(ice_run_result(run));
  /* A run that stopped as waiting is counted once restored and done. */
  if (strcmp(json_string_value(json_object_get(s->result, "status")),
             "waiting") != 0)
    g_done++;
  if (g_leak > 0) {
    char *p = malloc(g_leak);
    if (p != NULL)
      memset(p, 1, g_leak);
  }
  if (s->stored &&
      ice_store_finish(g_store, ice_run_id(run), s->result, msg, sizeof(msg))) {
    fprintf(stderr, "soak: ice_store_finish: %s\n", msg);
    g_store_errors++;
  }
}

static int start_run(ice_engine_t *e, ice_workflow_t *wf, slot_t *s,
                     json_t *restore, unsigned long long seq) {
  ice_run_opts_t o = ICE_RUN_OPTS_INIT;
  json_t *inputs = json_pack("{s:i}", "n", s->n);
  json_t *answers = NULL;
  char msg[512] = "";
  int kind = s->n % LM_KINDS, rc;

  if (kind == 3 || restore != NULL)
    answers = lm_answers(s->n);
  o.inputs = inputs;
  o.answers = answers;
  o.restore = restore;
  o.run_id = s->run_id;
  o.seq = seq;
  o.suspend_after = kind == 4 ? 0 : -1;
  if (s->stored) {
    o.commit = ice_store_commit;
    o.commit_data = g_store;
  }
  rc = ice_run_new(e, wf, &o, &s->run, NULL);
  if (rc == 0 && s->stored)
    rc = ice_store_begin(g_store, ice_run_id(s->run), ice_workflow_name(wf),
                         "soak.yaml", "fnv1a64:0", inputs, msg, sizeof(msg));
  if (rc == 0)
    rc = ice_run_start(s->run, on_done, s);
  if (rc != 0)
    fprintf(stderr, "soak: run %d: cannot start: %s %s\n", s->n,
            ice_strerror(rc), msg);
  json_decref(inputs);
  json_decref(answers);
  return rc;
}

static int check(const slot_t *s) {
  json_t *want = lm_expected(s->n % LM_KINDS, s->n, 1);
  const char *st = json_string_value(json_object_get(s->result, "status"));
  int ok = st != NULL && strcmp(st, "completed") == 0 &&
           json_equal(json_object_get(s->result, "output"), want);

  if (!ok) {
    char *a = json_dumps(s->result, JSON_COMPACT);
    char *b = json_dumps(want, JSON_COMPACT);
    fprintf(stderr, "soak: run %d: wrong result\n  got  %s\n  want output %s\n",
            s->n, a ? a : "(null)", b ? b : "(null)");
    free(a);
    free(b);
  }
  json_decref(want);
  return ok;
}

/* One batch: BATCH runs at once, from workflows parsed for it; then the
 * waiting ones restored from the store at once. 0, or -1 on a failure. */
static int batch(ice_engine_t *e, long first) {
  slot_t slots[BATCH];
  ice_workflow_t *wf[LM_KINDS] = {0};
  int rc = 0;

  memset(slots, 0, sizeof(slots));
  for (int k = 0; k < LM_KINDS && rc == 0; k++) {
    char name[128], text[4096];
    ice_diags_t d = {0};

    snprintf(name, sizeof(name), "%s/soak%d.yaml", g_dir, k);
    lm_text(k, g_base, text, sizeof(text));
    if (ice_workflow_parse(e, name, text, strlen(text), 1, &wf[k], &d) != 0) {
      fprintf(stderr, "soak: kind %d did not validate\n", k);
      rc = -1;
    }
    ice_diags_free(&d);
  }
  for (int i = 0; i < BATCH && rc == 0; i++) {
    slots[i].n = (int)(first + i);
    slots[i].stored = lm_stored(slots[i].n);
    if (start_run(e, wf[slots[i].n % LM_KINDS], &slots[i], NULL, 0) != 0)
      rc = -1;
  }
  uv_run(ice_engine_loop(e), UV_RUN_DEFAULT);
  for (int i = 0; i < BATCH && rc == 0; i++) {
    slot_t *s = &slots[i];
    json_t *rec = NULL;
    char msg[512] = "";
    const char *st;

    if (s->n % LM_KINDS != 4 || s->result == NULL)
      continue;
    st = json_string_value(json_object_get(s->result, "status"));
    if (st == NULL || strcmp(st, "waiting") != 0) {
      check(s);
      rc = -1;
      break;
    }
    s->run_id = strdup(ice_run_id(s->run));
    ice_run_free(s->run);
    s->run = NULL;
    json_decref(s->result);
    s->result = NULL;
    if (ice_store_load(g_store, s->run_id, &rec, msg, sizeof(msg)) != 0) {
      fprintf(stderr, "soak: ice_store_load: %s\n", msg);
      rc = -1;
      break;
    }
    if (start_run(e, wf[4], s, json_object_get(rec, "records"),
                  (unsigned long long)json_integer_value(
                      json_object_get(rec, "last_seq"))) != 0)
      rc = -1;
    json_decref(rec);
  }
  uv_run(ice_engine_loop(e), UV_RUN_DEFAULT);
  if (g_store_errors > 0)
    rc = -1;
  for (int i = 0; i < BATCH; i++) {
    if (rc == 0 && slots[i].run != NULL && !check(&slots[i]))
      rc = -1;
    ice_run_free(slots[i].run);
    json_decref(slots[i].result);
    free(slots[i].run_id);
  }
  for (int k = 0; k < LM_KINDS; k++)
    ice_workflow_free(wf[k]);
  return rc;
}

static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

/* ---- main -----------------------------------------------------------------
 */

static void write_child(void) {
  char path[128];
  FILE *f;

  snprintf(path, sizeof(path), "%s/child.yaml", g_dir);
  f = fopen(path, "w");
  if (f != NULL) {
    fputs(lm_child, f);
    fclose(f);
  }
}

static void print_row(const sample_t *s) {
  printf("%8.0f %9ld %10ld %10ld %10ld %5ld %10ld\n", s->t, s->runs, s->rss_kb,
         s->hwm_kb, s->heap_kb, s->fds, s->store_kb);
  fflush(stdout);
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 600;
  double every = argc > 2 ? atof(argv[2]) : 5;
  static sample_t samples[MAX_SAMPLES];
  size_t ns = 0, warm;
  ice_engine_t *e = NULL;
  ice_tool_t gate = {"gate", gate_start, NULL, NULL};
  char path[128], msg[512] = "", cmd[128];
  double t0, next, elapsed;
  long first = 0;
  int rc = 0;

  if (seconds <= 0 || every <= 0) {
    fprintf(stderr, "usage: soak [SECONDS [SAMPLE_SECONDS]]\n");
    return 2;
  }
  snprintf(g_dir, sizeof(g_dir), "/tmp/ice-soak-XXXXXX");
  if (mkdtemp(g_dir) == NULL) {
    perror("soak: mkdtemp");
    return 2;
  }
  setenv("OPENAI_API_KEY", "soak-key", 1);
  if (getenv("SOAK_LEAK") != NULL)
    g_leak = (size_t)atol(getenv("SOAK_LEAK"));
  write_child();
  snprintf(path, sizeof(path), "%s/runs.db", g_dir);
  if (start_server() != 0 ||
      ice_store_open(&g_store, path, msg, sizeof(msg)) != 0 ||
      ice_engine_new(&e, NULL, NULL) != 0 || ice_register_tool(e, &gate) != 0 ||
      ice_store_attach(g_store, e) != 0) {
    fprintf(stderr, "soak: cannot start: %s\n", msg);
    rc = 2;
    goto out;
  }
  printf("soak: %.0f s, batches of %d runs, a sample every %.0f s, in %s\n",
         seconds, BATCH, every, g_dir);
  printf("%8s %9s %10s %10s %10s %5s %10s\n", "seconds", "runs", "rss_kb",
         "hwm_kb", "heap_kb", "fds", "store_kb");
  t0 = now_s();
  next = t0;
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  for (;;) {
    double t = now_s();

    if (t >= next && ns < MAX_SAMPLES) {
      sample_t *s = &samples[ns++];
      s->t = t - t0;
      s->runs = g_done;
      s->rss_kb = status_kb("VmRSS");
      s->hwm_kb = status_kb("VmHWM");
      s->heap_kb = heap_kb();
      s->fds = count_fds();
      s->store_kb = file_kb(path);
      print_row(s);
      next += every;
    }
    if (t - t0 >= seconds || g_stop)
      break;
    if (batch(e, first) != 0) {
      rc = 1;
      break;
    }
    first += BATCH;
    if (g_leak > 0 && first % (50 * BATCH) == 0) {
      FILE *leaked = fopen("/dev/null", "r"); /* on purpose */
      (void)leaked;
    }
  }

  /* The rule (top of this file). */
  /* Stopped early by a signal: the warm-up is a fifth of what ran. */
  elapsed = now_s() - t0;
  warm = 0;
  while (warm < ns && samples[warm].t < elapsed / 5)
    warm++;
  if (warm == 0)
    warm = 1;
  if (rc == 0 && ns - warm >= 3) {
    size_t m = ns - warm, third = m / 3;
    long base_fds = samples[warm - 1].fds;
    long r1 = median(samples, warm, warm + third, 0);
    long r2 = median(samples, ns - third, ns, 0);
    long h1 = median(samples, warm, warm + third, 1);
    long h2 = median(samples, ns - third, ns, 1);
    long r_ok = r1 + 4096 + r1 / 20, h_ok = h1 + 1024;

    for (size_t i = warm; i < ns; i++) {
      if (samples[i].fds > base_fds) {
        printf("soak: FAIL: %ld fds at %.0f s, %ld after the warm-up\n",
               samples[i].fds, samples[i].t, base_fds);
        rc = 1;
        break;
      }
    }
    printf("soak: %ld runs in %.0f s (%.0f runs/s); after the warm-up "
           "(%.0f s), medians of the first and last thirds: RSS %ld -> %ld "
           "kB (allowed %ld), heap %ld -> %ld kB (allowed %ld); fds %ld\n",
           g_done, samples[ns - 1].t, (double)g_done / samples[ns - 1].t,
           samples[warm - 1].t, r1, r2, r_ok, h1, h2, h_ok, base_fds);
#ifdef __SANITIZE_ADDRESS__
    /* ASan keeps freed memory in quarantine (256 MiB), so RSS climbs, and
     * mallinfo2 does not see its heap: LeakSanitizer judges at exit. */
    printf("soak: ASan build: memory is left to LeakSanitizer\n");
#else
    if (r2 > r_ok) {
      printf("soak: FAIL: RSS grew\n");
      rc = 1;
    }
    if (h2 > h_ok) {
      printf("soak: FAIL: the heap grew\n");
      rc = 1;
    }
#endif
  } else if (rc == 0) {
    printf("soak: too short to judge (%zu samples after the warm-up)\n",
           ns - warm);
  }
  if (rc == 0)
    printf("soak: PASS\n");
  else if (rc == 1)
    printf("soak: FAIL\n");

out:
  if (g_store != NULL) {
    ice_store_detach(g_store, e);
    if (ice_store_close(g_store, msg, sizeof(msg)) != 0) {
      fprintf(stderr, "soak: ice_store_close: %s\n", msg);
      rc = rc != 0 ? rc : 1;
    }
  }
  if (e != NULL && ice_engine_free(e) != 0) {
    fprintf(stderr, "soak: runs still alive at the end\n");
    rc = rc != 0 ? rc : 1;
  }
  if (g_server > 0) {
    kill(g_server, SIGTERM);
    waitpid(g_server, NULL, 0);
  }
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
  if (system(cmd) != 0)
    fprintf(stderr, "soak: could not remove %s\n", g_dir);
  return rc;
}
