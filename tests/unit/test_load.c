/* Load (issue 11, item 3): 200 runs in flight at once on one engine and
 * one loop, through the public API, mixing every node type of SPEC.md:
 * built-in, process and WASM tools, condition, loop, parallel, recursive,
 * workflow (a child run), human (answered ahead, and answered by restoring
 * a run that stopped as waiting from the store), monitor, llm and agent
 * against a real HTTP server (tests/support/chat_server.py), WASM code and
 * swarm (the mix: tests/support/loadmix.h). 109 of the runs use a real
 * SQLite store. The 200 run together; are cancelled, or paused, while
 * many are inside process tools, HTTP requests and child runs, then go on
 * from the store.
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
 * `gate` holds each attempt until `target` attempts are held, then opens:
 * every held attempt completes with its args plus {"together": target}.
 * They are released from a timer, not from inside the last attempt's
 * start, so each completes from a fresh loop turn. With stop_at, the
 * stop_at-th arrival cancels every run instead (from a timer too), while
 * the rest are still on their way; later arrivals are held until their
 * run's cancel reaches them. With `pause` as well, it pauses every run,
 * then releases the attempts held so far ({"together": how many}). */

typedef struct {
  ice_task_t *held[N_RUNS];
  json_t *args[N_RUNS];
  size_t n;
  size_t target;
  size_t stop_at;    /* 0 = never */
  int pause;         /* stop_at pauses rather than cancels */
  int released;      /* 1 = opened, -1 = broken, 2 = stopping */
  size_t in_flight;  /* runs started and not yet done */
  size_t at_release; /* in_flight when the barrier opened */
  size_t done_calls; /* done callbacks */
  size_t held_at_stop;
  uv_timer_t timer;
} barrier_t;

static barrier_t g_bar;
static void stop_all(uv_timer_t *t);
static void arrived(json_t *args);

/* Resets the barrier for a phase of `target` runs (the timer is kept). */
static void bar_reset(size_t target, size_t stop_at, int pause) {
  memset(g_bar.held, 0, sizeof(g_bar.held));
  memset(g_bar.args, 0, sizeof(g_bar.args));
  g_bar.n = 0;
  g_bar.target = target;
  g_bar.stop_at = stop_at;
  g_bar.pause = pause;
  g_bar.released = 0;
  g_bar.at_release = 0;
}

static void bar_release(uv_timer_t *t) {
  barrier_t *b = t->data;
  ice_task_t *held[N_RUNS];
  json_t *args[N_RUNS];
  size_t n = b->n;

  /* Completing one may change the list (nothing should): work on a copy. */
  memcpy(held, b->held, n * sizeof(held[0]));
  memcpy(args, b->args, n * sizeof(args[0]));
  b->n = 0;
  for (size_t i = 0; i < n; i++) {
    if (b->released > 0) {
      json_object_set_new(args[i], "together",
                          json_integer((json_int_t)b->target));
      ice_task_done(held[i], args[i]);
    } else {
      json_decref(args[i]);
      ice_task_fail(held[i], "non_retryable", "barrier broken");
    }
  }
}

static void bar_open(barrier_t *b, int how) {
  if (b->released != 0)
    return;
  b->released = how;
  b->at_release = b->in_flight;
  uv_timer_start(&b->timer, how == 2 ? stop_all : bar_release, 0, 0);
}

static void gate_start(ice_task_t *t, json_t *args, void *data) {
  barrier_t *b = data;

  if ((b->released != 0 && b->released != 2) || b->n == N_RUNS) {
    ice_task_fail(t, "non_retryable", "gate reached after it opened");
    return;
  }
  arrived(args);
  b->held[b->n] = t;
  b->args[b->n] = json_deep_copy(args);
  b->n++;
  if (b->stop_at > 0 && b->n == b->stop_at)
    bar_open(b, 2);
  else if (b->stop_at == 0 && b->n == b->target)
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
  port = wait_port_file(port_file);
  if (port == 0)
    return -1;
  snprintf(g_base, sizeof(g_base), "http://127.0.0.1:%d/v1", port);
  return 0;
}

static int group_setup(void **state) {
  (void)state;
  if (th_tmpdir(g_dir, sizeof(g_dir), "load") != 0)
    return -1;
  setenv("OPENAI_API_KEY", "load-key", 1);
  return start_server();
}

static int group_teardown(void **state) {
  (void)state;
  if (g_server > 0) {
    kill(g_server, SIGTERM);
    waitpid(g_server, NULL, 0);
  }
  return th_rmtree(g_dir);
}

/* ---- runs --------------------------------------------------------------- */

typedef struct {
  int n;
  int stored;
  ice_run_t *run;
  json_t *result; /* a copy, once done */
  char *run_id;   /* kept across a restore */
  int together;   /* what its gate must say */
  int past_gate;  /* its gate completed before a pause */
  int owes_gate;  /* this phase, it must reach the gate */
  int at_gate;    /* ...and did */
} slot_t;

/* One engine, its store, the workflows and the runs of a test. */
typedef struct {
  ice_engine_t *e;
  ice_store_t *store;
  ice_workflow_t *wf[LM_KINDS];
  slot_t slots[N_RUNS];
  size_t stored;
  int store_errors; /* ice_store_finish failures */
  int twice;        /* done callbacks for a run already done */
} load_t;

static load_t g_load;

static void arrived(json_t *args) {
  json_int_t n = json_integer_value(json_object_get(args, "n"));

  if (n >= 0 && n < N_RUNS)
    g_load.slots[n].at_gate = 1;
}

static void on_done(ice_run_t *run, void *data) {
  slot_t *s = data;
  char msg[512] = "";

  g_bar.done_calls++;
  if (s->result != NULL) {
    g_load.twice++;
    return;
  }
  s->result = json_deep_copy(ice_run_result(run));
  g_bar.in_flight--;
  if (s->stored && ice_store_finish(g_load.store, ice_run_id(run), s->result,
                                    msg, sizeof(msg)) != 0) {
    fprintf(stderr, "ice_store_finish: %s\n", msg);
    g_load.store_errors++;
  }
  /* A run that ends without the arrival it owed (or refused by the gate)
   * leaves the others waiting for ever. */
  if (s->owes_gate && (!s->at_gate || g_bar.released == 0))
    bar_open(&g_bar, -1);
}

static void stop_all(uv_timer_t *t) {
  g_bar.held_at_stop = g_bar.n;
  for (int i = 0; i < N_RUNS; i++) {
    slot_t *s = &g_load.slots[i];
    if (s->run == NULL || s->result != NULL)
      continue;
    if (g_bar.pause)
      assert_int_equal(ice_run_pause(s->run), 0);
    else
      assert_int_equal(ice_run_cancel(s->run), 0);
  }
  if (g_bar.pause) {
    /* Nothing new starts now: the held attempts finish as running
     * attempts do in a pause, and a later arrival fails the test. */
    g_bar.target = g_bar.n;
    g_bar.released = 1;
    bar_release(t);
  }
}

/* Starts run s, restored from `restore` when given; `answer`: with the
 * answers of its human nodes (kind 3 always has them). */
static void start_run(slot_t *s, json_t *restore, unsigned long long seq,
                      int answer) {
  ice_run_opts_t o = ICE_RUN_OPTS_INIT;
  ice_workflow_t *wf = g_load.wf[s->n % LM_KINDS];
  json_t *inputs = json_pack("{s:i}", "n", s->n);
  json_t *answers = NULL;
  ice_diags_t d = {0};
  char msg[512] = "";

  if (s->n % LM_KINDS == 3 || answer)
    answers = lm_answers(s->n);
  /* Started while the barrier is closed, it owes it an arrival. */
  s->owes_gate = g_bar.released == 0 && !s->past_gate;
  s->at_gate = 0;
  o.inputs = inputs;
  o.answers = answers;
  o.restore = restore;
  o.run_id = s->run_id;
  o.seq = seq;
  /* Kind 4 stops as waiting at its human nodes; the others never stop. */
  o.suspend_after = s->n % LM_KINDS == 4 ? 0 : -1;
  if (s->stored) {
    o.commit = ice_store_commit;
    o.commit_data = g_load.store;
  }
  assert_int_equal(ice_run_new(g_load.e, wf, &o, &s->run, &d), 0);
  ice_diags_free(&d);
  if (s->stored &&
      ice_store_begin(g_load.store, ice_run_id(s->run), ice_workflow_name(wf),
                      "load.yaml", "fnv1a64:0", inputs, msg, sizeof(msg)) != 0)
    fail_msg("ice_store_begin: %s", msg);
  g_bar.in_flight++;
  assert_int_equal(ice_run_start(s->run, on_done, s), 0);
  json_decref(inputs);
  json_decref(answers);
}

/* Restores a stored run that ended with `status` from what the store
 * kept, as `ice resume` does; a waiting run gets its answers. */
static void restore(slot_t *s, const char *status) {
  json_t *rec = NULL;
  char msg[512] = "";
  const char *got = json_string_value(json_object_get(s->result, "status"));

  if (got == NULL || strcmp(got, status) != 0)
    fail_msg("run %d: status %s, expected %s", s->n, got ? got : "?", status);
  free(s->run_id);
  s->run_id = strdup(ice_run_id(s->run));
  ice_run_free(s->run);
  s->run = NULL;
  json_decref(s->result);
  s->result = NULL;
  if (ice_store_load(g_load.store, s->run_id, &rec, msg, sizeof(msg)) != 0)
    fail_msg("ice_store_load %s: %s", s->run_id, msg);
  assert_string_equal(json_string_value(json_object_get(rec, "status")),
                      status);
  start_run(
      s, json_object_get(rec, "records"),
      (unsigned long long)json_integer_value(json_object_get(rec, "last_seq")),
      strcmp(status, "waiting") == 0);
  json_decref(rec);
}

/* 1 when the run's result is right; else prints it (the first of each
 * kind only) and returns 0. */
static int right_result(const slot_t *s, int *shown) {
  int kind = s->n % LM_KINDS;
  json_t *want = lm_expected(kind, s->n, s->together);
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

/* Every run (the stored ones only when `stored_only`) has its exact
 * output, and the store agrees for the stored ones. */
static void want_results(int stored_only) {
  int wrong = 0, shown[LM_KINDS] = {0};
  json_t *runs = NULL;
  char msg[512] = "";

  for (int i = 0; i < N_RUNS; i++) {
    if (!stored_only || g_load.slots[i].stored)
      wrong += !right_result(&g_load.slots[i], shown);
  }
  if (wrong > 0)
    fail_msg("%d runs have a wrong result", wrong);
  assert_int_equal(ice_store_runs(g_load.store, 0, &runs, msg, sizeof(msg)), 0);
  assert_int_equal(json_array_size(runs), g_load.stored);
  json_decref(runs);
  for (int i = 0; i < N_RUNS; i++) {
    slot_t *s = &g_load.slots[i];
    json_t *rec = NULL;

    if (!s->stored)
      continue;
    if (ice_store_load(g_load.store, ice_run_id(s->run), &rec, msg,
                       sizeof(msg)) != 0)
      fail_msg("ice_store_load: %s", msg);
    assert_string_equal(json_string_value(json_object_get(rec, "status")),
                        "completed");
    assert_true(
        json_equal(json_object_get(json_object_get(rec, "result"), "output"),
                   json_object_get(s->result, "output")));
    json_decref(rec);
  }
}

static ice_workflow_t *parse(int kind) {
  char name[128], text[4096];
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};

  snprintf(name, sizeof(name), "%s/load%d.yaml", g_dir, kind);
  lm_text(kind, g_base, text, sizeof(text));
  if (ice_workflow_parse(g_load.e, name, text, strlen(text), 1, &wf, &d) != 0) {
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

/* A fresh engine and store (db names the file), the workflows, and the
 * slots: run i has n = i and uses the store when lm_stored(i). */
static void load_open(const char *db) {
  ice_tool_t gate = {"gate", gate_start, gate_cancel, &g_bar};
  char path[128], msg[512] = "";
  FILE *f;

  memset(&g_load, 0, sizeof(g_load));
  memset(&g_bar, 0, sizeof(g_bar));
  snprintf(path, sizeof(path), "%s/child.yaml", g_dir);
  f = fopen(path, "w");
  assert_non_null(f);
  fputs(lm_child, f);
  assert_int_equal(fclose(f), 0);
  snprintf(path, sizeof(path), "%s/%s", g_dir, db);
  if (ice_store_open(&g_load.store, path, msg, sizeof(msg)) != 0)
    fail_msg("ice_store_open: %s", msg);
  assert_int_equal(ice_engine_new(&g_load.e, NULL, NULL), 0);
  assert_int_equal(ice_register_tool(g_load.e, &gate), 0);
  assert_int_equal(ice_store_attach(g_load.store, g_load.e), 0);
  uv_timer_init(ice_engine_loop(g_load.e), &g_bar.timer);
  g_bar.timer.data = &g_bar;
  for (int k = 0; k < LM_KINDS; k++)
    g_load.wf[k] = parse(k);
  for (int i = 0; i < N_RUNS; i++) {
    g_load.slots[i].n = i;
    g_load.slots[i].stored = lm_stored(i);
    g_load.stored += (size_t)g_load.slots[i].stored;
  }
}

static void load_close(void) {
  char msg[512] = "";

  assert_int_equal(g_load.twice, 0);
  assert_int_equal(g_load.store_errors, 0);
  for (int i = 0; i < N_RUNS; i++) {
    ice_run_free(g_load.slots[i].run);
    json_decref(g_load.slots[i].result);
    free(g_load.slots[i].run_id);
  }
  for (int k = 0; k < LM_KINDS; k++)
    ice_workflow_free(g_load.wf[k]);
  ice_store_detach(g_load.store, g_load.e);
  uv_close((uv_handle_t *)&g_bar.timer, NULL);
  uv_run(ice_engine_loop(g_load.e), UV_RUN_DEFAULT);
  assert_int_equal(ice_engine_free(g_load.e), 0);
  if (ice_store_close(g_load.store, msg, sizeof(msg)) != 0)
    fail_msg("ice_store_close: %s", msg);
}

static void run_loop(void) {
  uv_run(ice_engine_loop(g_load.e), UV_RUN_DEFAULT);
  assert_int_equal(g_bar.in_flight, 0);
}

/* ---- tests -------------------------------------------------------------- */

/* All 200 at once, through the barrier; then the runs that stopped as
 * waiting, restored from the store with their answers, at once too. */
static void test_200_runs_together(void **state) {
  (void)state;
  load_open("together.db");
  bar_reset(N_RUNS, 0, 0);
  for (int i = 0; i < N_RUNS; i++)
    start_run(&g_load.slots[i], NULL, 0, 0);
  run_loop();
  assert_int_equal(g_bar.released, 1);
  assert_int_equal(g_bar.at_release, N_RUNS);
  assert_int_equal(g_bar.done_calls, N_RUNS);

  for (int i = 4; i < N_RUNS; i += LM_KINDS)
    restore(&g_load.slots[i], "waiting");
  run_loop();
  for (int i = 0; i < N_RUNS; i++)
    g_load.slots[i].together = N_RUNS;
  want_results(0);
  load_close();
}

/* All 200 at once, cancelled while half wait at the gate and the others
 * are inside their process tools, HTTP requests, WASM calls and child
 * runs. Every run ends `cancelled`, once. Then the stored ones are
 * resumed from the store, all at once through the barrier again, and end
 * with the outputs they would have had. */
static void test_200_runs_cancelled_then_resumed(void **state) {
  size_t stored;

  (void)state;
  load_open("cancelled.db");
  stored = g_load.stored;
  bar_reset(N_RUNS, N_RUNS / 2, 0);
  for (int i = 0; i < N_RUNS; i++)
    start_run(&g_load.slots[i], NULL, 0, 0);
  run_loop();
  assert_int_equal(g_bar.released, 2);
  assert_int_equal(g_bar.at_release, N_RUNS);
  assert_int_equal(g_bar.done_calls, N_RUNS);
  assert_int_equal(g_bar.n, 0); /* every held attempt was cancelled */
  /* Kind 0's process tools, 2's child runs and 6's HTTP requests are
   * slower than the rest: those runs were cancelled on their way. */
  assert_true(g_bar.held_at_stop < N_RUNS);
  for (int i = 0; i < N_RUNS; i++) {
    json_t *res = g_load.slots[i].result, *node;
    const char *id;

    assert_string_equal(json_string_value(json_object_get(res, "status")),
                        "cancelled");
    json_object_foreach(json_object_get(res, "nodes"), id, node) {
      const char *st = json_string_value(json_object_get(node, "status"));
      if (strcmp(st, "completed") != 0 && strcmp(st, "cancelled") != 0)
        fail_msg("run %d: node %s is %s after the cancel", i, id, st);
    }
  }

  bar_reset(stored, 0, 0);
  for (int i = 0; i < N_RUNS; i++) {
    if (g_load.slots[i].stored)
      restore(&g_load.slots[i], "cancelled");
  }
  run_loop();
  assert_int_equal(g_bar.released, 1);
  assert_int_equal(g_bar.at_release, stored);
  for (int i = 4; i < N_RUNS; i += LM_KINDS)
    restore(&g_load.slots[i], "waiting");
  run_loop();
  for (int i = 0; i < N_RUNS; i++)
    g_load.slots[i].together = (int)stored;
  want_results(1);
  load_close();
}

/* The same with a pause: the runs at the gate finish it, those on their
 * way finish the node they are in (a process tool, an HTTP request, a
 * child run), and all 200 stop `paused` with nothing new started. The
 * stored ones then go on from the store, the runs that had not passed the
 * gate meeting at the barrier again. */
static void test_200_runs_paused_then_resumed(void **state) {
  size_t late = 0, early;

  (void)state;
  load_open("paused.db");
  bar_reset(N_RUNS, N_RUNS / 2, 1);
  for (int i = 0; i < N_RUNS; i++)
    start_run(&g_load.slots[i], NULL, 0, 0);
  run_loop();
  early = g_bar.held_at_stop;
  assert_int_equal(g_bar.released, 1);
  assert_int_equal(g_bar.done_calls, N_RUNS);
  assert_true(early < N_RUNS);
  for (int i = 0; i < N_RUNS; i++) {
    slot_t *s = &g_load.slots[i];
    json_t *gate = json_object_get(json_object_get(s->result, "nodes"), "gate");
    const char *st = json_string_value(json_object_get(gate, "status"));

    assert_string_equal(json_string_value(json_object_get(s->result, "status")),
                        "paused");
    /* A run past the gate says how many were held; the others meet
     * again after the restore. */
    if (st != NULL && strcmp(st, "completed") == 0) {
      s->together = (int)early;
      s->past_gate = 1;
    } else {
      s->together = -1;
      late += (size_t)s->stored;
    }
  }
  assert_true(late > 0);

  bar_reset(late, 0, 0);
  for (int i = 0; i < N_RUNS; i++) {
    slot_t *s = &g_load.slots[i];
    if (s->stored)
      restore(s, "paused");
    if (s->together < 0)
      s->together = (int)late;
  }
  run_loop();
  assert_int_equal(g_bar.released, 1);
  assert_true(g_bar.at_release >= late); /* with the runs past it */
  for (int i = 4; i < N_RUNS; i += LM_KINDS)
    restore(&g_load.slots[i], "waiting");
  run_loop();
  want_results(1);
  load_close();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_200_runs_together),
      cmocka_unit_test(test_200_runs_cancelled_then_resumed),
      cmocka_unit_test(test_200_runs_paused_then_resumed),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
