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

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define N_RUNS 200
#define N_KINDS 8

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

/* ---- the workflows --------------------------------------------------------
 * One per kind; run i is of kind i % N_KINDS with input n = i. Each passes
 * through `gate`. @BASE@ stands for the chat server's base URL. */

#define ECHO_WAT ICE_SOURCE_DIR "/tests/wasm/echo.wat"

static const char *const k_child =
    "name: child\n"
    "input_schema: {n: int}\n"
    "tools:\n"
    "  wecho: {wasm: " ECHO_WAT "}\n"
    "nodes:\n"
    "  - {id: w, type: tool, tool_name: wecho,"
    " tool_args: {n: '{{ n }}', s: child}}\n"
    "  - {id: twice, type: tool, tool_name: echo, dependencies: [w],"
    " tool_args: {v: '{{ w.n * 2 }}'}}\n";

static const char *const k_yaml[N_KINDS] = {
    /* 0: built-in and process tools, condition, loop, parallel. */
    "name: flow\n"
    "input_schema: {n: int}\n"
    "tools:\n"
    "  cat: {command: [cat]}\n"
    "nodes:\n"
    "  - {id: start, type: tool, tool_name: echo, tool_args: {n: '{{ n }}'}}\n"
    "  - {id: proc, type: tool, tool_name: cat, dependencies: [start],"
    " tool_args: {word: 'w{{ start.n }}'}}\n"
    "  - id: check\n"
    "    type: condition\n"
    "    dependencies: [start]\n"
    "    expression: 'start.n % 2 == 0'\n"
    "    true_path:\n"
    "      - {id: even, type: tool, tool_name: echo,"
    " tool_args: {parity: even}}\n"
    "    false_path:\n"
    "      - {id: odd, type: tool, tool_name: echo, tool_args: {parity: odd}}\n"
    "  - id: squares\n"
    "    type: loop\n"
    "    dependencies: [start]\n"
    "    items_source: '[n, n + 1, n + 2]'\n"
    "    max_concurrency: 3\n"
    "    body:\n"
    "      - {id: sq, type: tool, tool_name: echo,"
    " tool_args: {v: '{{ item * item }}', i: '{{ index }}'}}\n"
    "  - id: par\n"
    "    type: parallel\n"
    "    dependencies: [start]\n"
    "    branches:\n"
    "      - - {id: p1, type: tool, tool_name: echo, tool_args: {a: '{{ n "
    "}}'}}\n"
    "      - - {id: p2, type: tool, tool_name: echo,"
    " tool_args: {b: '{{ n * 2 }}'}}\n"
    "  - {id: gate, type: tool, tool_name: gate,"
    " dependencies: [proc, check, squares, par], tool_args: {n: '{{ n }}'}}\n"
    "  - id: done\n"
    "    type: tool\n"
    "    tool_name: echo\n"
    "    dependencies: [gate, proc, check, squares, par]\n"
    "    tool_args:\n"
    "      sum: '{{ squares[0].v + squares[1].v + squares[2].v }}'\n"
    "      merged: '{{ par.merged }}'\n"
    "      word: '{{ proc.word }}'\n"
    "      branch: '{{ check.branch }}'\n",

    /* 1: recursive (a cycle closed by refine). */
    "name: recur\n"
    "input_schema: {n: int}\n"
    "nodes:\n"
    "  - {id: seed, type: tool, tool_name: echo, tool_args: {start: 1}}\n"
    "  - id: step\n"
    "    type: tool\n"
    "    tool_name: echo\n"
    "    dependencies: [seed, refine]\n"
    "    tool_args:\n"
    "      value: '{{ refine.recursive_context.iteration * 10"
    " if exists(refine) else seed.start }}'\n"
    "      n: '{{ n }}'\n"
    "  - id: refine\n"
    "    type: recursive\n"
    "    dependencies: [step]\n"
    "    recursive_sources: [step]\n"
    "    convergence_condition: 'step.value >= 20'\n"
    "    max_iterations: 5\n"
    "  - {id: gate, type: tool, tool_name: gate, dependencies: [refine],"
    " tool_args: {n: '{{ n }}'}}\n"
    "  - {id: done, type: tool, tool_name: echo, dependencies: [gate, refine],"
    " tool_args: {iterations: '{{ refine.iterations }}'}}\n",

    /* 2: a workflow node (a child run with a WASM tool). */
    "name: parent\n"
    "input_schema: {n: int}\n"
    "nodes:\n"
    "  - id: sub\n"
    "    type: workflow\n"
    "    workflow_ref: child.yaml\n"
    "    inputs: {n: '{{ n }}'}\n"
    "    exposed_outputs: {echoed: w.n, doubled: twice.v}\n"
    "  - {id: gate, type: tool, tool_name: gate, dependencies: [sub],"
    " tool_args: {n: '{{ n }}'}}\n"
    "  - {id: done, type: tool, tool_name: echo, dependencies: [gate, sub],"
    " tool_args: {d: '{{ sub.doubled }}'}}\n",

    /* 3: human nodes answered ahead. */
    "name: ask\n"
    "input_schema: {n: int}\n"
    "nodes:\n"
    "  - {id: gate, type: tool, tool_name: gate, tool_args: {n: '{{ n }}'}}\n"
    "  - {id: ok, type: human, dependencies: [gate],"
    " prompt_message: 'Ship {{ n }}?'}\n"
    "  - {id: pick, type: human, dependencies: [gate],"
    " prompt_message: 'Colour?', approval_type: choice,"
    " choices: [red, green]}\n"
    "  - {id: done, type: tool, tool_name: echo, dependencies: [ok, pick],"
    " tool_args: {approved: '{{ ok.approved }}', said: '{{ ok.response }}',"
    " colour: '{{ pick.choice }}'}}\n",

    /* 4: the same, not answered: the run stops as waiting and is restored
     * from the store with the answers (the same text as kind 3). */
    NULL,

    /* 5: a monitor. */
    "name: watched\n"
    "input_schema: {n: int}\n"
    "nodes:\n"
    "  - {id: a, type: tool, tool_name: echo, tool_args: {n: '{{ n }}'}}\n"
    "  - {id: m, type: monitor, dependencies: [a], metric_expression:"
    " 'nodes_completed >= 1', action_on_trigger: alert_only,"
    " alert_channels: [dashboard]}\n"
    "  - {id: gate, type: tool, tool_name: gate, dependencies: [a],"
    " tool_args: {n: '{{ n }}'}}\n"
    "  - {id: done, type: tool, tool_name: echo, dependencies: [gate, a],"
    " tool_args: {n: '{{ a.n }}'}}\n",

    /* 6: llm and agent against the chat server. */
    "name: chat\n"
    "input_schema: {n: int}\n"
    "llm: {model: m, base_url: '@BASE@'}\n"
    "nodes:\n"
    "  - {id: ask, type: llm, prompt: 'Summarise run {{ n }}'}\n"
    "  - {id: gate, type: tool, tool_name: gate, dependencies: [ask],"
    " tool_args: {n: '{{ n }}'}}\n"
    "  - id: act\n"
    "    type: agent\n"
    "    dependencies: [gate]\n"
    "    tools: [echo]\n"
    "    max_iterations: 2\n"
    "    prompt: '[[reply:{\"tool\": \"echo\", \"inputs\": {\"n\": {{ n }}},"
    " \"done\": false, \"message\": \"again\"}]]'\n",

    /* 7: a swarm and WASM code. */
    "name: crowd\n"
    "input_schema: {n: int}\n"
    "nodes:\n"
    "  - id: vote\n"
    "    type: swarm\n"
    "    coordination_strategy: consensus\n"
    "    task: 'pick a name'\n"
    "    agents:\n"
    "      - {role: a, tool: echo, config_overrides: {proposal: ship}}\n"
    "      - {role: b, tool: echo, config_overrides: {proposal: ship}}\n"
    "  - {id: gate, type: tool, tool_name: gate, dependencies: [vote],"
    " tool_args: {n: '{{ n }}'}}\n"
    "  - {id: code, type: code, language: wasm, module: " ECHO_WAT ","
    " dependencies: [gate]}\n",
};

/* The output each run must have. */
static json_t *expected(int kind, int n) {
  json_t *gate = json_pack("{s:i,s:i}", "n", n, "together", N_RUNS);

  switch (kind) {
  case 0: {
    int s = n * n + (n + 1) * (n + 1) + (n + 2) * (n + 2);
    const char *par = n % 2 == 0 ? "even" : "odd";
    char word[32];
    snprintf(word, sizeof(word), "w%d", n);
    return json_pack(
        "{s:{s:i},s:{s:s},s:{s:b,s:s,s:s,s:{s:{s:s}}},"
        "s:[{s:i,s:i},{s:i,s:i},{s:i,s:i}],"
        "s:{s:[{s:{s:i}},{s:{s:i}}],s:[i,i],s:s,s:{s:{s:i},s:{s:i}}},"
        "s:o,s:{s:i,s:{s:{s:i},s:{s:i}},s:s,s:s}}",
        "start", "n", n, "proc", "word", word, "check", "result", n % 2 == 0,
        "branch", n % 2 == 0 ? "true" : "false", "expression",
        "start.n % 2 == 0", "branch_outputs", par, "parity", par, "squares",
        "v", n * n, "i", 0, "v", (n + 1) * (n + 1), "i", 1, "v",
        (n + 2) * (n + 2), "i", 2, "par", "branch_results", "p1", "a", n, "p2",
        "b", n * 2, "completed_branches", 0, 1, "strategy", "all", "merged",
        "p1", "a", n, "p2", "b", n * 2, "gate", gate, "done", "sum", s,
        "merged", "p1", "a", n, "p2", "b", n * 2, "word", word, "branch",
        n % 2 == 0 ? "true" : "false");
  }
  case 1:
    return json_pack(
        "{s:{s:i},s:{s:i,s:i},"
        "s:{s:b,s:s,s:i,s:{s:i,s:s,s:[{s:i,s:{s:i,s:i}},{s:i,s:{s:i,s:i}},"
        "{s:i,s:{s:i,s:i}}]}},s:o,s:{s:i}}",
        "seed", "start", 1, "step", "value", 20, "n", n, "refine", "converged",
        1, "reason", "condition_met", "iterations", 3, "final_context",
        "iteration", 3, "node_id", "refine", "history", "iteration", 1, "step",
        "value", 1, "n", n, "iteration", 2, "step", "value", 10, "n", n,
        "iteration", 3, "step", "value", 20, "n", n, "gate", gate, "done",
        "iterations", 3);
  case 2:
    return json_pack("{s:{s:i,s:i},s:o,s:{s:i}}", "sub", "echoed", n, "doubled",
                     2 * n, "gate", gate, "done", "d", 2 * n);
  case 3:
  case 4: {
    char said[32];
    snprintf(said, sizeof(said), "run %d", n);
    return json_pack("{s:o,s:{s:b,s:s},s:{s:b,s:s,s:s},s:{s:b,s:s,s:s}}",
                     "gate", gate, "ok", "approved", 1, "response", said,
                     "pick", "approved", 1, "choice", "green", "response",
                     "green", "done", "approved", 1, "said", said, "colour",
                     "green");
  }
  case 5:
    return json_pack("{s:{s:i},s:{s:s,s:b,s:i,s:i,s:s,s:i},s:o,s:{s:i}}", "a",
                     "n", n, "m", "metric_evaluated", "nodes_completed >= 1",
                     "triggered", 1, "triggers_fired", 1, "checks_performed", 1,
                     "action_taken", "alert", "alerts_sent", 1, "gate", gate,
                     "done", "n", n);
  case 6: {
    char prompt[64], resp[80];
    snprintf(prompt, sizeof(prompt), "Summarise run %d", n);
    snprintf(resp, sizeof(resp), "echo: %s", prompt);
    return json_pack("{s:{s:s,s:s,s:s,s:s,s:{s:i,s:i,s:i,s:f}},s:o,"
                     "s:{s:[s,s],s:s,s:{s:i},s:s,s:s,s:i}}",
                     "ask", "response", resp, "text", resp, "prompt", prompt,
                     "model", "m", "usage", "prompt_tokens", 3,
                     "completion_tokens", 4, "total_tokens", 7, "cost_usd", 0.0,
                     "gate", gate, "act", "reasoning", "again", "again",
                     "last_tool", "echo", "result", "n", n, "message", "again",
                     "response", "again", "iterations", 2);
  }
  default:
    /* WASM echo code: its output is its context (SPEC §3.1). */
    return json_pack("{s:{s:s,s:i,s:b,s:s,s:f,s:[{s:s,s:s},{s:s,s:s}]},s:o,"
                     "s:{s:i,s:{s:i},s:o}}",
                     "vote", "strategy", "consensus", "rounds", 1, "consensus",
                     1, "result", "ship", "support", 1.0, "proposals", "role",
                     "a", "proposal", "ship", "role", "b", "proposal", "ship",
                     "gate", json_incref(gate), "code", "n", n, "inputs", "n",
                     n, "gate", gate);
  }
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

static void on_done(ice_run_t *run, void *data) {
  slot_t *s = data;
  char msg[512] = "";

  s->result = json_deep_copy(ice_run_result(run));
  g_bar.in_flight--;
  if (s->stored &&
      ice_store_finish(g_store, ice_run_id(run), s->result, msg, sizeof(msg)))
    fprintf(stderr, "ice_store_finish: %s\n", msg);
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
  char msg[512] = "", said[32];

  snprintf(said, sizeof(said), "approve:run %d", s->n);
  if (s->n % N_KINDS == 3 || restore != NULL)
    answers = json_pack("{s:s,s:s}", "ok", said, "pick", "green");
  o.inputs = inputs;
  o.answers = answers;
  o.restore = restore;
  o.run_id = s->run_id;
  o.seq = seq;
  /* Kind 4 stops as waiting at its human nodes; the others never stop. */
  o.suspend_after = s->n % N_KINDS == 4 ? 0 : -1;
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
  int kind = s->n % N_KINDS;
  json_t *want = expected(kind, s->n);
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
  const char *yaml = k_yaml[kind == 4 ? 3 : kind];
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};
  const char *at = strstr(yaml, "@BASE@");

  snprintf(name, sizeof(name), "%s/load%d.yaml", g_dir, kind);
  if (at != NULL)
    snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - yaml), yaml, g_base,
             at + strlen("@BASE@"));
  else
    snprintf(text, sizeof(text), "%s", yaml);
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
  ice_workflow_t *wf[N_KINDS];
  ice_engine_t *e = NULL;
  ice_tool_t gate = {"gate", gate_start, gate_cancel, &g_bar};
  char path[128], msg[512] = "";
  json_t *runs = NULL;
  size_t waiting = 0, stored = 0;
  int wrong = 0, shown[N_KINDS] = {0};

  (void)state;
  memset(slots, 0, sizeof(slots));
  memset(&g_bar, 0, sizeof(g_bar));
  write_file("child.yaml", k_child);
  snprintf(path, sizeof(path), "%s/runs.db", g_dir);
  if (ice_store_open(&g_store, path, msg, sizeof(msg)) != 0)
    fail_msg("ice_store_open: %s", msg);
  assert_int_equal(ice_engine_new(&e, NULL, NULL), 0);
  assert_int_equal(ice_register_tool(e, &gate), 0);
  assert_int_equal(ice_store_attach(g_store, e), 0);
  uv_timer_init(ice_engine_loop(e), &g_bar.timer);
  g_bar.timer.data = &g_bar;
  for (int k = 0; k < N_KINDS; k++)
    wf[k] = parse(e, k);

  /* Phase 1: every run at once. */
  for (int i = 0; i < N_RUNS; i++) {
    slots[i].n = i;
    slots[i].stored = i % 2 == 1 || i % N_KINDS == 4;
    stored += (size_t)slots[i].stored;
    start_run(e, wf[i % N_KINDS], &slots[i], NULL, 0);
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

    if (i % N_KINDS != 4) {
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
  assert_int_equal(waiting, N_RUNS / N_KINDS);
  uv_run(ice_engine_loop(e), UV_RUN_DEFAULT);

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
  for (int k = 0; k < N_KINDS; k++)
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
