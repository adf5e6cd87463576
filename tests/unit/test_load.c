/* Load (issue 11, item 3): 200 runs in flight at once on one engine and
 * one loop, through the public API, mixing every node type of SPEC.md:
 * built-in, process and WASM tools, condition, loop, parallel, recursive,
 * workflow (a child run), human (answered ahead, and answered by restoring
 * a run that stopped as waiting from the store), monitor, llm and agent
 * against a real HTTP server (tests/support/chat_server.py), WASM code and
 * swarm. Half the runs use a real SQLite store.
 *
 * Every workflow passes through `gate`, a C tool that holds each attempt
 * until all 200 runs have reached it: the barrier only opens when every
 * run is in flight together. A run that ends without reaching it breaks
 * the barrier (every held attempt fails), so a defect fails the test
 * instead of hanging it. Each run's status and whole `output` are then
 * compared with what SPEC.md says they must be; ASan checks for leaks. */
#include "helpers.h"

#include "../support/loadmix.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define N_RUNS 200

static char g_dir[64];
static char g_base[128]; /* http://127.0.0.1:PORT/v1 */
static pid_t g_server = -1;

/* ---- the barrier ----------------------------------------------------------
 * Held attempts are released from a timer, not from inside the last
 * attempt's start, so each completes from a fresh loop turn. */

typedef struct {
  ice_task_t *held[N_RUNS];
  json_t *args[N_RUNS];
  size_t n;
  int released;      /* 1 = opened, -1 = broken */
  size_t in_flight;  /* runs started and not yet done */
  size_t at_release; /* in_flight when the barrier opened */
  uv_timer_t timer;
} barrier_t;

static barrier_t g_bar;

static void bar_release(uv_timer_t *t) {
  barrier_t *b = t->data;

  for (size_t i = 0; i < b->n; i++) {
    ice_task_t *task = b->held[i];
    json_t *out = b->args[i];

    b->held[i] = NULL;
    b->args[i] = NULL;
    if (b->released > 0) {
      json_object_set_new(out, "together", json_integer((json_int_t)b->n));
      ice_task_done(task, out);
    } else {
      json_decref(out);
      ice_task_fail(task, "non_retryable", "barrier broken");
    }
  }
  b->n = 0;
}

static void bar_open(barrier_t *b, int how) {
  if (b->released != 0)
    return;
  b->released = how;
  b->at_release = b->in_flight;
  uv_timer_start(&b->timer, bar_release, 0, 0);
}

static void gate_start(ice_task_t *t, json_t *args, void *data) {
  barrier_t *b = data;

  if (b->released != 0 || b->n == N_RUNS) {
    ice_task_fail(t, "non_retryable", "gate reached after it opened");
    return;
  }
  b->held[b->n] = t;
  b->args[b->n] = json_deep_copy(args);
  b->n++;
  if (b->n == N_RUNS)
    bar_open(b, 1);
}

static void gate_cancel(ice_task_t *t, void *data) {
  barrier_t *b = data;

  for (size_t i = 0; i < b->n; i++) {
    if (b->held[i] != t)
      continue;
    json_decref(b->args[i]);
    b->held[i] = b->held[b->n - 1];
    b->args[i] = b->args[b->n - 1];
    b->n--;
    ice_task_fail(t, "cancelled", "gate cancelled");
    return;
  }
}

/* ---- the chat server ----------------------------------------------------- */

static int start_server(void) {
  char port_file[128];
  FILE *f;
  int port = 0;

  snprintf(port_file, sizeof(port_file), "%s/port", g_dir);
  g_server = fork();
  if (g_server < 0)
    return -1;
  if (g_server == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    setenv("CHAT_SERVER_EXPECT_KEY", "load-key", 1);
    execlp("python3", "python3", ICE_SOURCE_DIR "/tests/support/chat_server.py",
           "--port-file", port_file, (char *)NULL);
    _exit(127);
  }
  for (int i = 0; i < 1500 && port == 0; i++) { /* up to 15 s */
    f = fopen(port_file, "r");
    if (f != NULL) {
      if (fscanf(f, "%d", &port) != 1)
        port = 0;
      fclose(f);
    }
    if (port == 0)
      usleep(10000);
  }
  if (port == 0)
    return -1;
  snprintf(g_base, sizeof(g_base), "http://127.0.0.1:%d/v1", port);
  return 0;
}

static int group_setup(void **state) {
  (void)state;
  snprintf(g_dir, sizeof(g_dir), "/tmp/ice-load-XXXXXX");
  if (mkdtemp(g_dir) == NULL)
    return -1;
  setenv("OPENAI_API_KEY", "load-key", 1);
  return start_server();
}

static int group_teardown(void **state) {
  char cmd[128];

  (void)state;
  if (g_server > 0) {
    kill(g_server, SIGTERM);
    waitpid(g_server, NULL, 0);
  }
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* ---- runs -----------------------------------------------------------------
 */

typedef struct {
  int n;
  int stored;
  ice_run_t *run;
  json_t *result; /* a copy, once done */
  char *run_id;
} slot_t;

static ice_store_t *g_store;
static int g_store_errors; /* ice_store_finish failures */

static void on_done(ice_run_t *run, void *data) {
  slot_t *s = data;
  char msg[512] = "";

  s->result = json_deep_copy(ice_run_result(run));
  g_bar.in_flight--;
  if (s->stored &&
      ice_store_finish(g_store, ice_run_id(run), s->result, msg, sizeof(msg))) {
    fprintf(stderr, "ice_store_finish: %s\n", msg);
    g_store_errors++;
  }
  /* A run that ends while the barrier is still closed never reached it
   * (or was refused by it): the others would wait for ever. */
  bar_open(&g_bar, -1);
}

static void start_run(ice_engine_t *e, ice_workflow_t *wf, slot_t *s,
                      json_t *restore, unsigned long long seq) {
  ice_run_opts_t o = ICE_RUN_OPTS_INIT;
  json_t *inputs = json_pack("{s:i}", "n", s->n);
  json_t *answers = NULL;
  ice_diags_t d = {0};
  char msg[512] = "";

  if (s->n % LM_KINDS == 3 || restore != NULL)
    answers = lm_answers(s->n);
  o.inputs = inputs;
  o.answers = answers;
  o.restore = restore;
  o.run_id = s->run_id;
  o.seq = seq;
  /* Kind 4 stops as waiting at its human nodes; the others never stop. */
  o.suspend_after = s->n % LM_KINDS == 4 ? 0 : -1;
  if (s->stored) {
    o.commit = ice_store_commit;
    o.commit_data = g_store;
  }
  assert_int_equal(ice_run_new(e, wf, &o, &s->run, &d), 0);
  ice_diags_free(&d);
  if (s->stored &&
      ice_store_begin(g_store, ice_run_id(s->run), ice_workflow_name(wf),
                      "load.yaml", "fnv1a64:0", inputs, msg, sizeof(msg)) != 0)
    fail_msg("ice_store_begin: %s", msg);
  g_bar.in_flight++;
  assert_int_equal(ice_run_start(s->run, on_done, s), 0);
  json_decref(inputs);
  json_decref(answers);
}

/* 1 when the run's result is right; else prints it (the first of each
 * kind only) and returns 0. */
static int right_result(const slot_t *s, int *shown) {
  int kind = s->n % LM_KINDS;
  json_t *want = lm_expected(kind, s->n, N_RUNS);
  json_t *got = json_object_get(s->result, "output");
  const char *status = json_string_value(json_object_get(s->result, "status"));

  if (status == NULL || strcmp(status, "completed") != 0 ||
      json_array_size(json_object_get(s->result, "errors")) != 0 ||
      !json_equal(got, want)) {
    char *a = json_dumps(s->result, JSON_COMPACT);
    char *b = json_dumps(want, JSON_COMPACT);
    if (!shown[kind])
      fprintf(stderr, "run %d (kind %d):\n  got  %s\n  want output %s\n", s->n,
              kind, a, b);
    shown[kind] = 1;
    free(a);
    free(b);
    json_decref(want);
    return 0;
  }
  json_decref(want);
  return 1;
}

static ice_workflow_t *parse(ice_engine_t *e, int kind) {
  char name[128], text[4096];
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};

  snprintf(name, sizeof(name), "%s/load%d.yaml", g_dir, kind);
  lm_text(kind, g_base, text, sizeof(text));
  if (ice_workflow_parse(e, name, text, strlen(text), 1, &wf, &d) != 0) {
    for (size_t i = 0; i < d.count; i++) {
      char *m = ice_diag_format(&d.items[i]);
      fprintf(stderr, "%s\n", m);
      free(m);
    }
    ice_diags_free(&d);
    fail_msg("kind %d did not validate", kind);
  }
  return wf;
}

static void write_file(const char *name, const char *text) {
  char path[128];
  FILE *f;

  snprintf(path, sizeof(path), "%s/%s", g_dir, name);
  f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  assert_int_equal(fclose(f), 0);
}

static void test_200_runs_together(void **state) {
  static slot_t slots[N_RUNS];
  ice_workflow_t *wf[LM_KINDS];
  ice_engine_t *e = NULL;
  ice_tool_t gate = {"gate", gate_start, gate_cancel, &g_bar};
  char path[128], msg[512] = "";
  json_t *runs = NULL;
  size_t waiting = 0, stored = 0;
  int wrong = 0, shown[LM_KINDS] = {0};

  (void)state;
  memset(slots, 0, sizeof(slots));
  memset(&g_bar, 0, sizeof(g_bar));
  g_store_errors = 0;
  write_file("child.yaml", lm_child);
  snprintf(path, sizeof(path), "%s/runs.db", g_dir);
  if (ice_store_open(&g_store, path, msg, sizeof(msg)) != 0)
    fail_msg("ice_store_open: %s", msg);
  assert_int_equal(ice_engine_new(&e, NULL, NULL), 0);
  assert_int_equal(ice_register_tool(e, &gate), 0);
  assert_int_equal(ice_store_attach(g_store, e), 0);
  uv_timer_init(ice_engine_loop(e), &g_bar.timer);
  g_bar.timer.data = &g_bar;
  for (int k = 0; k < LM_KINDS; k++)
    wf[k] = parse(e, k);

  /* Phase 1: every run at once. */
  for (int i = 0; i < N_RUNS; i++) {
    slots[i].n = i;
    slots[i].stored = i % 2 == 1 || i % LM_KINDS == 4;
    stored += (size_t)slots[i].stored;
    start_run(e, wf[i % LM_KINDS], &slots[i], NULL, 0);
  }
  uv_run(ice_engine_loop(e), UV_RUN_DEFAULT);
  assert_int_equal(g_bar.released, 1);
  assert_int_equal(g_bar.at_release, N_RUNS);
  assert_int_equal(g_bar.in_flight, 0);

  /* Phase 2: the runs that stopped as waiting, restored from the store
   * with their answers, all at once too. */
  for (int i = 0; i < N_RUNS; i++) {
    slot_t *s = &slots[i];
    json_t *rec = NULL;
    const char *status =
        json_string_value(json_object_get(s->result, "status"));

    if (i % LM_KINDS != 4) {
      assert_non_null(s->result);
      continue;
    }
    if (status == NULL || strcmp(status, "waiting") != 0)
      fail_msg("run %d: status %s, expected waiting", i, status ? status : "?");
    s->run_id = strdup(ice_run_id(s->run));
    ice_run_free(s->run);
    s->run = NULL;
    json_decref(s->result);
    s->result = NULL;
    if (ice_store_load(g_store, s->run_id, &rec, msg, sizeof(msg)) != 0)
      fail_msg("ice_store_load %s: %s", s->run_id, msg);
    assert_string_equal(json_string_value(json_object_get(rec, "status")),
                        "waiting");
    start_run(e, wf[4], s, json_object_get(rec, "records"),
              (unsigned long long)json_integer_value(
                  json_object_get(rec, "last_seq")));
    json_decref(rec);
    waiting++;
  }
  assert_int_equal(waiting, N_RUNS / LM_KINDS);
  uv_run(ice_engine_loop(e), UV_RUN_DEFAULT);
  assert_int_equal(g_store_errors, 0);

  for (int i = 0; i < N_RUNS; i++)
    wrong += !right_result(&slots[i], shown);
  if (wrong > 0)
    fail_msg("%d of %d runs have a wrong result", wrong, N_RUNS);

  /* The store holds every stored run as completed, with the same output. */
  assert_int_equal(ice_store_runs(g_store, 0, &runs, msg, sizeof(msg)), 0);
  assert_int_equal(json_array_size(runs), stored);
  json_decref(runs);
  for (int i = 0; i < N_RUNS; i++) {
    json_t *rec = NULL;

    if (!slots[i].stored)
      continue;
    if (ice_store_load(g_store, ice_run_id(slots[i].run), &rec, msg,
                       sizeof(msg)) != 0)
      fail_msg("ice_store_load: %s", msg);
    assert_string_equal(json_string_value(json_object_get(rec, "status")),
                        "completed");
    assert_true(
        json_equal(json_object_get(json_object_get(rec, "result"), "output"),
                   json_object_get(slots[i].result, "output")));
    json_decref(rec);
  }

  for (int i = 0; i < N_RUNS; i++) {
    ice_run_free(slots[i].run);
    json_decref(slots[i].result);
    free(slots[i].run_id);
  }
  for (int k = 0; k < LM_KINDS; k++)
    ice_workflow_free(wf[k]);
  ice_store_detach(g_store, e);
  uv_close((uv_handle_t *)&g_bar.timer, NULL);
  uv_run(ice_engine_loop(e), UV_RUN_DEFAULT);
  assert_int_equal(ice_engine_free(e), 0);
  if (ice_store_close(g_store, msg, sizeof(msg)) != 0)
    fail_msg("ice_store_close: %s", msg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_200_runs_together),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
