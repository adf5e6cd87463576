/* Allocation-failure sweep (issue 11, docs/reliability.md): for each of
 * several workflows, one clean run counts the allocations a whole
 * engine → load → run → result → free cycle makes (ice's own and
 * jansson's), then the cycle runs again once per n, with the n-th
 * allocation failing. Every one of those runs must either fail with an
 * error (an API error code, or a result whose status is not `completed`)
 * or finish with exactly the clean run's result: never a crash, a hang, a
 * leak (LeakSanitizer checks at exit under ASan) or a `completed` run
 * that lost something on the way.
 *
 * ICE_ALLOCFAIL_STRIDE=K runs every K-th n only (a quick look while
 * developing); the default, 1, is every n. ICE_ALLOCFAIL_CASE=NAME runs
 * one case, and ICE_ALLOCFAIL_FROM=N starts at n = N. */
#include "helpers.h"

#include "internal.h"

#include <dlfcn.h>
#include <execinfo.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  const char *name;
  const char *file; /* under ICE_SOURCE_DIR, or NULL: text */
  const char *text; /* an inline YAML workflow */
  const char *inputs;
  const char *answers;
  int store;
} sweep_case_t;

static const sweep_case_t cases[] = {
    {"hello", "examples/hello.json", NULL, NULL, NULL, 0},
    {"templates", "examples/templates.json", NULL,
     "{\"user\": \"ada\", \"scores\": [3, 9, 4]}", NULL, 0},
    {"if-else", "examples/if-else.yaml", NULL,
     "{\"amount\": 250, \"customer\": \"ada\"}", NULL, 0},
    {"parallel-any", "examples/parallel-any.yaml", NULL, NULL, NULL, 0},
    {"retries", "examples/retries.yaml", NULL, NULL, NULL, 0},
    {"subworkflow", "examples/subworkflow.yaml", NULL, NULL, NULL, 0},
    {"failure-policies", "examples/failure-policies.json", NULL, NULL, NULL, 0},
    /* Two monitors, one that triggers: examples/cost-monitor.yaml's
     * outcome depends on whether its check or the retries come first. */
    {"monitors", NULL,
     "name: monitors\n"
     "nodes:\n"
     "  - {id: quiet, type: monitor, metric_expression: 'retries > 1000',\n"
     "     action_on_trigger: abort, check_interval_seconds: 0.05}\n"
     "  - {id: loud, type: monitor, metric_expression: 'retries >= 0',\n"
     "     action_on_trigger: alert_only, check_interval_seconds: 0.05}\n"
     "  - {id: work, type: tool, tool_name: echo, tool_args: {x: 1}}\n"
     "  - {id: more, type: tool, tool_name: echo, dependencies: [work],\n"
     "     tool_args: {y: '{{ work.x }}'}}\n",
     NULL, NULL, 0},
    {"approval", "examples/approval.yaml", NULL, "{\"title\": \"Q3\"}",
     "{\"approve\": \"approve:ship it\"}", 0},
    {"wasm", "examples/wasm-tool.yaml", NULL, "{\"text\": \"hello wasm\"}",
     NULL, 0},
    {"process+store", NULL,
     "name: procs\n"
     "tools:\n"
     "  say: {command: [/bin/echo, '{\"said\": 1}']}\n"
     "nodes:\n"
     "  - {id: a, type: tool, tool_name: say}\n"
     "  - id: b\n"
     "    type: loop\n"
     "    items_source: '{{ [1, 2, 3] }}'\n"
     "    dependencies: [a]\n"
     "    body:\n"
     "      - {id: e, type: tool, tool_name: echo, tool_args: {x: '{{ item "
     "}}'}}\n"
     "  - id: c\n"
     "    type: condition\n"
     "    expression: 'a.said == 1'\n"
     "    dependencies: [a, b]\n"
     "    true_path:\n"
     "      - {id: t, type: tool, tool_name: echo, tool_args: {n: '{{ b "
     "}}'}}\n",
     NULL, NULL, 1},
};

static long current_n;

/* The injected failure fell inside jansson's decoder (json_load*). Its
 * lexer (jansson 2.14) ignores a failure to grow its string buffer and
 * drops the byte it could not save: the decoded value can then be wrong
 * with no error. An upstream defect that ice cannot see; such runs are
 * counted apart (docs/reliability.md), and must still not crash or leak. */
static int in_decoder;

/* jansson's allocations fail with ice's (json_set_alloc_funcs). */
static void *json_malloc(size_t n) {
  void *frames[48];
  int k;

  if (!ice__alloc_fails())
    return malloc(n);
  k = backtrace(frames, 48);
  for (int i = 0; i < k; i++) {
    Dl_info di;
    if (dladdr(frames[i], &di) != 0 && di.dli_sname != NULL &&
        strncmp(di.dli_sname, "json_load", 9) == 0)
      in_decoder = 1;
  }
  return NULL;
}

/* ICE_ALLOCFAIL_TRACE=N: where the N-th allocation is (ASan builds). */
static long trace_n;

/* From the sanitizer runtime, when linked in. */
void __sanitizer_print_stack_trace(void) __attribute__((weak));

static void print_where(void) {
  if (current_n == trace_n && __sanitizer_print_stack_trace != NULL)
    __sanitizer_print_stack_trace();
}

static const sweep_case_t *current;

static void on_alarm(int sig) {
  char buf[160];
  int len = snprintf(buf, sizeof(buf),
                     "allocfail: case %s, n = %ld: no end after 60 s\n",
                     current != NULL ? current->name : "?", current_n);
  (void)sig;
  if (len > 0 && write(2, buf, (size_t)len) < 0)
    _exit(3);
  _exit(2);
}

/* The part of a result that must not change: status, error and each
 * node's status, error and output (times, ids and a monitor's count of
 * checks differ run to run). */
static char *result_digest(json_t *res) {
  json_t *d = json_object(), *nodes = json_object(), *n;
  const char *id;
  char *text;

  json_object_set(d, "status", json_object_get(res, "status"));
  json_object_set(d, "error", json_object_get(res, "error"));
  json_object_set_new(d, "output",
                      json_deep_copy(json_object_get(res, "output")));
  /* How often a monitor looked (and so fired) depends on timing, as
   * durations do. */
  json_object_foreach(json_object_get(d, "output"), id, n) {
    json_object_del(n, "checks_performed");
    json_object_del(n, "triggers_fired");
    json_object_del(n, "alerts_sent");
  }
  json_object_foreach(json_object_get(res, "nodes"), id, n) {
    json_t *o = json_object();
    json_object_set(o, "status", json_object_get(n, "status"));
    json_object_set(o, "error", json_object_get(n, "error"));
    json_object_set(o, "output", json_object_get(n, "output"));
    json_object_set_new(nodes, id, o);
  }
  json_object_set_new(d, "nodes", nodes);
  text = json_dumps(d, JSON_SORT_KEYS | JSON_COMPACT);
  json_decref(d);
  return text;
}

static int discard(const char *buf, size_t len, void *data) {
  (void)buf;
  (void)len;
  (void)data;
  return 0;
}

/* One whole cycle. Returns 0 with *digest set (malloc'd, taken with
 * injection off) when a result came out, else the first error code. */
static int cycle(const sweep_case_t *c, const char *dir, char **digest) {
  ice_engine_opts_t eo = ICE_ENGINE_OPTS_INIT;
  ice_engine_t *e = NULL;
  ice_workflow_t *wf = NULL;
  ice_diags_t diags = {0};
  ice_store_t *st = NULL;
  ice_run_t *r = NULL;
  ice_run_opts_t o = ICE_RUN_OPTS_INIT;
  json_t *inputs = NULL, *answers = NULL;
  char path[512], msg[256];
  int rc;

  *digest = NULL;
  /* Sleeps and back-off take no time: the sweep runs each case hundreds
   * of times. */
  eo.virtual_clock = 1;
  if ((rc = ice_engine_new(&e, NULL, &eo)) != 0)
    return rc;
  if (c->file != NULL) {
    snprintf(path, sizeof(path), "%s/%s", ICE_SOURCE_DIR, c->file);
    rc = ice_workflow_load(e, path, &wf, &diags);
  } else {
    snprintf(path, sizeof(path), "%s/inline.yaml", dir);
    rc = ice_workflow_parse(e, path, c->text, strlen(c->text), 1, &wf, &diags);
  }
  ice_diags_free(&diags);
  if (rc != 0)
    goto out;
  if (c->inputs != NULL && (inputs = json_loads(c->inputs, 0, NULL)) == NULL) {
    rc = ICE_ENOMEM;
    goto out;
  }
  if (c->answers != NULL &&
      (answers = json_loads(c->answers, 0, NULL)) == NULL) {
    rc = ICE_ENOMEM;
    goto out;
  }
  if (c->store) {
    snprintf(path, sizeof(path), "%s/runs.db", dir);
    if ((rc = ice_store_open(&st, path, msg, sizeof(msg))) != 0)
      goto out;
    if ((rc = ice_store_attach(st, e)) != 0)
      goto out;
    o.commit = ice_store_commit;
    o.commit_data = st;
  }
  o.inputs = inputs;
  o.answers = answers;
  if ((rc = ice_run_new(e, wf, &o, &r, NULL)) != 0)
    goto out;
  if (st != NULL && (rc = ice_store_begin(st, ice_run_id(r), "w", "w.yaml", "h",
                                          inputs, msg, sizeof(msg))) != 0)
    goto out;
  /* The result is written from the run's state, then built on first
   * use, both with the failure still to come (as `ice run` prints it). */
  if ((rc = ice_run_defer_result(r)) != 0)
    goto out;
  if ((rc = ice_run_execute(r)) != 0)
    goto out;
  {
    int wrc = ice_run_write_result(r, 0, 2, (size_t)256 << 20, discard, NULL);
    assert_true(wrc == 0 || wrc == -1);
  }
  if (st != NULL && (rc = ice_store_finish(st, ice_run_id(r), ice_run_result(r),
                                           msg, sizeof(msg))) != 0)
    goto out;
  {
    long left = ice__alloc_countdown();
    ice__alloc_fail_at(0); /* the digest is the test's, not the engine's */
    *digest = result_digest(ice_run_result(r));
    ice__alloc_fail_at(left);
  }
out:
  if (r != NULL)
    ice_run_free(r);
  if (wf != NULL)
    ice_workflow_free(wf);
  if (st != NULL) {
    ice_store_detach(st, e);
    if (ice_store_close(st, msg, sizeof(msg)) != 0 && rc == 0)
      rc = ICE_EIO;
  }
  json_decref(inputs);
  json_decref(answers);
  if (e != NULL) {
    /* A run stopped early frees itself once its tools are reaped. */
    uv_run(ice_engine_loop(e), UV_RUN_DEFAULT);
    assert_int_equal(ice_engine_free(e), 0);
  }
  return rc;
}

static void rm_store(const char *dir) {
  static const char *const names[] = {"runs.db", "runs.db-wal", "runs.db-shm",
                                      "runs.db-journal"};
  char path[512];
  for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
    snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
    unlink(path);
  }
}

static void sweep(const sweep_case_t *c) {
  /* In memory when there is a tmpfs: each of the store case's cycles
   * creates a database, and fsync on a disk would be most of the time. */
  char dir[] = "/dev/shm/ice-allocfail-XXXXXX", *clean, *got;
  long total, stride = 1, failed = 0, same = 0, decoder = 0;
  const char *s = getenv("ICE_ALLOCFAIL_STRIDE");
  const long big = 1L << 40;

  if (s != NULL && atol(s) > 0)
    stride = atol(s);
  if (mkdtemp(dir) == NULL) {
    memcpy(dir, "/tmp/ice-allocfail-XXXXXX",
           sizeof("/tmp/ice-allocfail-XXXXXX"));
    assert_non_null(mkdtemp(dir));
  }
  current = c;
  current_n = 0;
  ice__alloc_fail_at(big);
  alarm(60);
  assert_int_equal(cycle(c, dir, &clean), 0);
  alarm(0);
  total = big - ice__alloc_countdown();
  ice__alloc_fail_at(0);
  assert_non_null(clean);
  rm_store(dir);

  s = getenv("ICE_ALLOCFAIL_FROM");
  for (long n = s != NULL && atol(s) > 0 ? atol(s) : 1; n <= total + 1;
       n += stride) {
    int rc;
    current_n = n;
    if (getenv("ICE_ALLOCFAIL_VERBOSE") != NULL)
      fprintf(stderr, "allocfail: n = %ld\n", n);
    alarm(60);
    ice__alloc_fail_at(n);
    in_decoder = 0;
    rc = cycle(c, dir, &got);
    ice__alloc_fail_at(0);
    alarm(0);
    rm_store(dir);
    if (rc != 0) {
      failed++;
      continue;
    }
    assert_non_null(got);
    if (strcmp(got, clean) == 0) {
      same++;
    } else {
      /* Not the clean result: only a run that did not complete may
       * differ (it failed, and says why). */
      json_t *d = json_loads(got, 0, NULL);
      const char *st = json_string_value(json_object_get(d, "status"));
      if (st != NULL && strcmp(st, "completed") == 0 && in_decoder) {
        decoder++;
      } else if (st == NULL || strcmp(st, "completed") == 0) {
        fprintf(stderr,
                "allocfail: case %s, n = %ld: completed with another "
                "result\n  clean: %s\n  got:   %s\n",
                c->name, n, clean, got);
        fail();
      } else
        failed++;
      json_decref(d);
    }
    free(got);
  }
  fprintf(stderr,
          "allocfail: %-16s %6ld allocations; %ld failed runs, %ld "
          "with the clean result, %ld changed inside jansson's decoder\n",
          c->name, total, failed, same, decoder);
  free(clean);
  rmdir(dir);
}

static void test_sweep(void **state) {
  const char *only = getenv("ICE_ALLOCFAIL_CASE");
  (void)state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
    if (only == NULL || strcmp(only, cases[i].name) == 0)
      sweep(&cases[i]);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sweep),
  };
  json_set_alloc_funcs(json_malloc, free);
  signal(SIGALRM, on_alarm);
  if (getenv("ICE_ALLOCFAIL_TRACE") != NULL) {
    trace_n = atol(getenv("ICE_ALLOCFAIL_TRACE"));
    ice__alloc_on_fail = print_where;
  }
  return cmocka_run_group_tests(tests, NULL, NULL);
}
