/* Validation of workflow files (SPEC §1, §2.1, §4.1) through the public
 * API: ice_workflow_parse / ice_workflow_from_json. Every check gives its
 * exact message at its FILE:LINE:COL (via ice_diag_format), every problem
 * of a file is reported at once, and the parsed policies, retry settings,
 * dependencies and graph renderings are what the file says. */
#include "helpers.h"

#include "workflow.h"

#include <ice.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

/* A control-flow-like type accepting any field, so that nested lists
 * (loop.body, condition.true_path...) can be validated. */
static void never_start(ice_task_t *t) {
  ice_task_fail(t, "internal", "not runnable in this test");
}

static const ice_executor_t loop_ex = {
    .abi = ICE_EXECUTOR_ABI, .type = "loop", .start = never_start};

static const ice_field_t custom_fields[] = {
    {"size", ICE_T_INT, 1, 0},
    {"label", ICE_T_STRING, 0, 0},
    {NULL, 0, 0, 0},
};

static int custom_validate(json_t *config, char *msg, size_t len) {
  json_t *size = json_object_get(config, "size");

  if (json_is_integer(size) && json_integer_value(size) > 10) {
    snprintf(msg, len, "size must be at most 10");
    return -1;
  }
  return 0;
}

static const ice_executor_t custom_ex = {.abi = ICE_EXECUTOR_ABI,
                                         .type = "custom",
                                         .fields = custom_fields,
                                         .validate = custom_validate,
                                         .start = never_start,
                                         .default_timeout = 5.0};

static ice_engine_t *engine(void) {
  ice_engine_t *e = NULL;

  assert_int_equal(ice_engine_new(&e, NULL, NULL), 0);
  /* The built-in `loop` when there is one; else a stand-in that accepts
   * any field, so that nested lists can be validated either way. */
  {
    int rc = ice_register_node(e, &loop_ex);
    assert_true(rc == 0 || rc == ICE_EEXIST);
  }
  assert_int_equal(ice_register_node(e, &custom_ex), 0);
  return e;
}

static void engine_done(ice_engine_t *e) {
  assert_int_equal(ice_engine_free(e), 0);
}

/* Parses text (YAML when is_yaml), expects success. */
static ice_workflow_t *load_ok(ice_engine_t *e, const char *text, int is_yaml) {
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};
  int rc = ice_workflow_parse(e, is_yaml ? "wf.yaml" : "wf.json", text,
                              strlen(text), is_yaml, &wf, &d);

  if (rc != 0) {
    for (size_t i = 0; i < d.count; i++) {
      char *s = ice_diag_format(&d.items[i]);
      fprintf(stderr, "%s\n", s);
      free(s);
    }
    ice_diags_free(&d);
    fail_msg("workflow did not validate (rc %d)", rc);
  }
  assert_int_equal(d.count, 0);
  assert_non_null(wf);
  return wf;
}

/* Parses text, expects ICE_EWORKFLOW and exactly the formatted
 * diagnostics given (NULL-terminated), in order. */
static void want_diags_n(ice_engine_t *e, const char *text, int is_yaml,
                         const char *const *want) {
  ice_workflow_t *wf = (ice_workflow_t *)1;
  ice_diags_t d = {0};
  size_t n = 0;
  int rc = ice_workflow_parse(e, is_yaml ? "wf.yaml" : "wf.json", text,
                              strlen(text), is_yaml, &wf, &d);
  int bad = 0;

  while (want[n] != NULL)
    n++;
  assert_null(wf);
  if (rc != ICE_EWORKFLOW)
    fail_msg("expected ICE_EWORKFLOW, got %d", rc);
  if (d.count != n)
    bad = 1;
  for (size_t i = 0; i < d.count && !bad; i++) {
    char *s = ice_diag_format(&d.items[i]);
    if (strcmp(s, want[i]) != 0)
      bad = 1;
    free(s);
  }
  if (bad) {
    fprintf(stderr, "expected %zu diagnostics:\n", n);
    for (size_t i = 0; i < n; i++)
      fprintf(stderr, "  %s\n", want[i]);
    fprintf(stderr, "got %zu:\n", d.count);
    for (size_t i = 0; i < d.count; i++) {
      char *s = ice_diag_format(&d.items[i]);
      fprintf(stderr, "  %s\n", s);
      free(s);
    }
    ice_diags_free(&d);
    fail();
  }
  ice_diags_free(&d);
}

#define WANT(e, text, yaml, ...)                                               \
  do {                                                                         \
    const char *const want_[] = {__VA_ARGS__, NULL};                           \
    want_diags_n(e, text, yaml, want_);                                        \
  } while (0)

/* The node with id in wf (internal view, read-only). */
static const ice__node_t *node(const ice_workflow_t *wf, const char *id) {
  const ice__node_t *n = ice__workflow_node(wf, id);

  assert_non_null(n);
  return n;
}

/* ---- diagnostics formatting ---- */

static void test_diag_format(void **state) {
  ice_diag_t d = {"f.yaml", 3, 7, "boom", ICE_DIAG_ERROR};
  char *s;

  (void)state;
  s = ice_diag_format(&d);
  assert_string_equal(s, "f.yaml:3:7: error: boom");
  free(s);
  /* A warning (SPEC §1.1) says so in the same format. */
  d.severity = ICE_DIAG_WARNING;
  s = ice_diag_format(&d);
  assert_string_equal(s, "f.yaml:3:7: warning: boom");
  free(s);
  d.severity = ICE_DIAG_ERROR;
  d.col = 0;
  s = ice_diag_format(&d);
  assert_string_equal(s, "f.yaml:3: error: boom");
  free(s);
  d.line = 0;
  s = ice_diag_format(&d);
  assert_string_equal(s, "f.yaml: error: boom");
  free(s);
}

/* ---- valid files ---- */

static void test_minimal_valid(void **state) {
  ice_engine_t *e = engine();
  ice_workflow_t *wf;

  (void)state;
  wf = load_ok(e,
               "{\"name\": \"demo\", \"version\": \"2\", \"schema_version\": "
               "\"1.2.0\", \"blueprint_id\": 5, \"id\": [], \"description\": "
               "{}, \"metadata\": {\"k\": 1}, \"x-extra\": true, "
               "\"nodes\": [{\"id\": \"hello\", \"type\": \"tool\", "
               "\"tool_name\": \"echo\", \"tool_args\": {\"msg\": \"hi\"}, "
               "\"x-note\": 1, \"name\": 3, \"description\": [], "
               "\"metadata\": null}]}",
               0);
  assert_string_equal(ice_workflow_name(wf), "demo");
  assert_int_equal(ice_workflow_node_count(wf), 1);
  /* Defaults of §1. */
  assert_int_equal(wf->policy, ICE__POLICY_CONTINUE);
  assert_int_equal(wf->max_parallel, 5);
  ice_workflow_free(wf);
  engine_done(e);
}

static void test_name_defaults(void **state) {
  ice_engine_t *e = engine();
  ice_workflow_t *wf = NULL;
  json_t *doc;

  (void)state;
  wf = load_ok(e,
               "metadata: {draft_name: drafty}\nblueprint_id: bp\nnodes:\n"
               "  - {id: a, type: tool, tool_name: echo}\n",
               1);
  assert_string_equal(ice_workflow_name(wf), "drafty");
  ice_workflow_free(wf);
  wf = load_ok(e,
               "blueprint_id: bp\nnodes:\n"
               "  - {id: a, type: tool, tool_name: echo}\n",
               1);
  assert_string_equal(ice_workflow_name(wf), "bp");
  ice_workflow_free(wf);
  /* The file's stem. */
  doc = th_json("{\"nodes\": [{\"id\": \"a\", \"type\": \"tool\", "
                "\"tool_name\": \"echo\"}]}");
  assert_int_equal(
      ice_workflow_from_json(e, "dir.x/my.flow.yaml", doc, &wf, NULL), 0);
  assert_string_equal(ice_workflow_name(wf), "my.flow");
  ice_workflow_free(wf);
  json_decref(doc);
  engine_done(e);
}

static void test_failure_policy_aliases(void **state) {
  static const struct {
    const char *name;
    ice__policy_t p;
  } cases[] = {{"halt", ICE__POLICY_HALT},
               {"HALT", ICE__POLICY_HALT},
               {"halt_on_first_error", ICE__POLICY_HALT},
               {"continue_possible", ICE__POLICY_CONTINUE},
               {"CONTINUE_POSSIBLE", ICE__POLICY_CONTINUE},
               {"continue_if_possible", ICE__POLICY_CONTINUE},
               {"always", ICE__POLICY_ALWAYS},
               {"ALWAYS", ICE__POLICY_ALWAYS},
               {"always_continue", ICE__POLICY_ALWAYS}};
  ice_engine_t *e = engine();
  char text[256];

  (void)state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    ice_workflow_t *wf;
    snprintf(text, sizeof(text),
             "failure_policy: %s\nnodes: [{id: a, type: tool, tool_name: "
             "echo}]\n",
             cases[i].name);
    wf = load_ok(e, text, 1);
    assert_int_equal(wf->policy, cases[i].p);
    ice_workflow_free(wf);
  }
  WANT(e,
       "failure_policy: Halt\nnodes: [{id: a, type: tool, tool_name: echo}]\n",
       1,
       "wf.yaml:1:1: error: failure_policy 'Halt' is not one of halt, "
       "continue_possible, always");
  engine_done(e);
}

static void test_retry_policy_fields(void **state) {
  ice_engine_t *e = engine();
  ice_workflow_t *wf;
  const ice__node_t *n;

  (void)state;
  wf = load_ok(e,
               "nodes:\n"
               "  - id: none\n    type: tool\n    tool_name: echo\n"
               "  - id: empty\n    type: tool\n    tool_name: echo\n"
               "    retry_policy: {}\n"
               "  - id: full\n    type: tool\n    tool_name: echo\n"
               "    retry_policy:\n      max_attempts: 7\n"
               "      backoff_strategy: linear\n      backoff_seconds: 0.25\n"
               "      max_backoff_seconds: 9\n      jitter: true\n"
               "      retry_on: [timeout, input_validation]\n"
               "  - id: fixed\n    type: tool\n    tool_name: echo\n"
               "    retry_policy: {backoff_strategy: fixed, retry_on: []}\n"
               "  - id: legacy\n    type: tool\n    tool_name: echo\n"
               "    retries: 2\n    backoff_seconds: 0.5\n"
               "  - id: legacy0\n    type: tool\n    tool_name: echo\n"
               "    retries: 0\n",
               1);
  n = node(wf, "none");
  assert_int_equal(n->opt->retry.max_attempts, 1);
  n = node(wf, "empty");
  /* A policy without max_attempts means 3; the other defaults of §4.4. */
  assert_int_equal(n->opt->retry.max_attempts, 3);
  assert_int_equal(n->opt->retry.strategy, ICE__BACKOFF_EXPONENTIAL);
  assert_true(n->opt->retry.backoff_seconds == 1.0);
  assert_true(n->opt->retry.max_backoff_seconds == 60.0);
  assert_int_equal(n->opt->retry.jitter, 0);
  {
    uint32_t want = 0;
    for (int k = 1; k < ICE__KIND_COUNT; k++)
      want |= UINT32_C(1) << k;
    want &= ~((UINT32_C(1) << ICE__KIND_INPUT_VALIDATION) |
              (UINT32_C(1) << ICE__KIND_OUTPUT_VALIDATION) |
              (UINT32_C(1) << ICE__KIND_EXPRESSION) |
              (UINT32_C(1) << ICE__KIND_TEMPLATE) |
              (UINT32_C(1) << ICE__KIND_INPUT_MAPPING) |
              (UINT32_C(1) << ICE__KIND_CANCELLED) |
              (UINT32_C(1) << ICE__KIND_NON_RETRYABLE));
    assert_int_equal(n->opt->retry.retry_on, want);
    assert_true(n->opt->retry.retry_on & (UINT32_C(1) << ICE__KIND_TRANSIENT));
    assert_true(n->opt->retry.retry_on & (UINT32_C(1) << ICE__KIND_TIMEOUT));
  }
  n = node(wf, "full");
  assert_int_equal(n->opt->retry.max_attempts, 7);
  assert_int_equal(n->opt->retry.strategy, ICE__BACKOFF_LINEAR);
  assert_true(n->opt->retry.backoff_seconds == 0.25);
  assert_true(n->opt->retry.max_backoff_seconds == 9.0);
  assert_int_equal(n->opt->retry.jitter, 1);
  assert_int_equal(n->opt->retry.retry_on,
                   (UINT32_C(1) << ICE__KIND_TIMEOUT) |
                       (UINT32_C(1) << ICE__KIND_INPUT_VALIDATION));
  n = node(wf, "fixed");
  assert_int_equal(n->opt->retry.strategy, ICE__BACKOFF_FIXED);
  assert_int_equal(n->opt->retry.retry_on, 0);
  n = node(wf, "legacy");
  assert_int_equal(n->opt->retry.max_attempts, 3);
  assert_int_equal(n->opt->retry.strategy, ICE__BACKOFF_EXPONENTIAL);
  assert_true(n->opt->retry.backoff_seconds == 0.5);
  n = node(wf, "legacy0");
  assert_int_equal(n->opt->retry.max_attempts, 1);
  ice_workflow_free(wf);
  engine_done(e);
}

static void test_retry_policy_errors(void **state) {
  ice_engine_t *e = engine();

  (void)state;
  WANT(e,
       "nodes:\n"
       "  - id: a\n    type: tool\n    tool_name: echo\n"
       "    retry_policy:\n      max_attempts: 0\n"
       "      backoff_strategy: random\n      backoff_seconds: -1\n"
       "      max_backoff_seconds: 100000\n      jitter: 1\n"
       "      retry_on: [timeout, bogus, 3]\n      attempts: 2\n"
       "  - id: b\n    type: tool\n    tool_name: echo\n"
       "    retry_policy: {max_attempts: 2}\n    retries: 1\n"
       "  - id: c\n    type: tool\n    tool_name: echo\n"
       "    retries: -1\n    backoff_seconds: -2\n"
       "  - id: d\n    type: tool\n    tool_name: echo\n"
       "    retry_policy: 3\n    retries: 1.5\n",
       1,
       "wf.yaml:12:7: error: node 'a': unknown field "
       "'retry_policy.attempts'",
       "wf.yaml:6:7: error: node 'a': retry_policy.max_attempts must be "
       "between 1 and 1000",
       "wf.yaml:7:7: error: node 'a': retry_policy.backoff_strategy 'random' "
       "is not one of fixed, linear, exponential",
       "wf.yaml:8:7: error: node 'a': retry_policy.backoff_seconds must be "
       "between 0 and 86400",
       "wf.yaml:9:7: error: node 'a': retry_policy.max_backoff_seconds must "
       "be between 0 and 86400",
       "wf.yaml:10:7: error: node 'a': field 'jitter' must be a boolean",
       "wf.yaml:11:7: error: node 'a': retry_policy.retry_on[1] is not an "
       "error kind",
       "wf.yaml:11:7: error: node 'a': retry_policy.retry_on[2] is not an "
       "error kind",
       "wf.yaml:17:5: error: node 'b': give either 'retries' or "
       "'retry_policy', not both",
       "wf.yaml:21:5: error: node 'c': retries must be between 0 and 999",
       "wf.yaml:22:5: error: node 'c': backoff_seconds must be between 0 and "
       "86400",
       "wf.yaml:26:5: error: node 'd': field 'retry_policy' must be an "
       "object",
       "wf.yaml:27:5: error: node 'd': field 'retries' must be an integer");
  engine_done(e);
}

/* ---- top-level checks ---- */

static void test_top_level_errors(void **state) {
  ice_engine_t *e = engine();

  (void)state;
  WANT(e,
       "{\n"
       "  \"nodes\": [{\"id\": \"a\", \"type\": \"tool\", \"tool_name\": "
       "\"echo\"}],\n"
       "  \"nmae\": \"typo\",\n"
       "  \"x-ok\": 1,\n"
       "  \"schema_version\": \"2.0.0\",\n"
       "  \"max_parallel\": 0,\n"
       "  \"version\": 1,\n"
       "  \"tools\": [],\n"
       "  \"input_schema\": {\"n\": \"integr\"}\n"
       "}\n",
       0,
       "wf.json:3:4: error: unknown field 'nmae' at the top level (did you "
       "mean 'name'?)",
       "wf.json:7:4: error: field 'version' must be a string",
       "wf.json:5:4: error: schema_version '2.0.0' is not supported (use "
       "1.1.0 or 1.2.0)",
       "wf.json:6:4: error: max_parallel must be an integer >= 1",
       "wf.json:9:4: error: input_schema: unknown type 'integr' for field "
       "'n'",
       "wf.json:8:4: error: field 'tools' must be an object");
  WANT(e, "{\"name\": \"x\"}", 0,
       "wf.json:1:1: error: missing required field 'nodes'");
  WANT(e, "{\"nodes\": []}", 0,
       "wf.json:1:3: error: 'nodes' must hold at least one node");
  /* At the offending value (SPEC §4.1). */
  WANT(e, "{\"nodes\": {}}", 0,
       "wf.json:1:11: error: 'nodes' must be an array of nodes");
  WANT(e, "[1, 2]", 0,
       "wf.json:1:1: error: a workflow must be an object with 'nodes'");
  WANT(e, "nodes: [1, {id: a, type: tool, tool_name: echo}]", 1,
       "wf.yaml:1:9: error: nodes[0] must be a node object");
  engine_done(e);
}

static void test_syntax_error_is_a_diag(void **state) {
  ice_engine_t *e = engine();

  (void)state;
  WANT(e, "{\n  \"nodes\": [\n    {\"id\": \"a\",}\n  ]\n}\n", 0,
       "wf.json:3:15: error: JSON syntax error: JSON disallows trailing comma "
       "before closing brace");
  /* A duplicate key keeps the first value and validation goes on. */
  WANT(e, "nodes:\n  - id: a\n  - id: a\n    id: b\n", 1,
       "wf.yaml:4:5: error: duplicate key 'id'",
       "wf.yaml:3:5: error: duplicate id 'a'",
       "wf.yaml:2:5: error: node 'a': missing required field 'type'",
       "wf.yaml:3:5: error: node 'a': missing required field 'type'");
  engine_done(e);
}

/* ---- node checks ---- */

static void test_node_field_errors(void **state) {
  ice_engine_t *e = engine();

  (void)state;
  WANT(e,
       "nodes:\n"
       "  - id: a\n"                 /* 2 */
       "    type: tool\n"            /* 3 */
       "    tool_name: echo\n"       /* 4 */
       "    tool_arg: {}\n"          /* 5: typo */
       "    x-mine: ok\n"            /* 6 */
       "    trigger_rule: any\n"     /* 7 */
       "    timeout_seconds: 0\n"    /* 8 */
       "    use_cache: yes\n"        /* 9 */
       "    cache_ttl_seconds: -1\n" /* 10 */
       "    dependencies: b\n"       /* 11 */
       "  - id: b\n"                 /* 12 */
       "    type: tool\n"            /* 13 */
       "    tool_args: [1]\n"        /* 14 */
       "  - id: c\n"                 /* 15 */
       "    type: tool\n"            /* 16 */
       "    tool_name: 5\n"          /* 17 */
       "    run_if: 1\n"             /* 18 */
       "    input_mappings: []\n",   /* 19 */
       1,
       "wf.yaml:5:5: error: node 'a': unknown field 'tool_arg' (did you mean "
       "'tool_args'?)",
       "wf.yaml:11:5: error: node 'a': field 'dependencies' must be an array",
       "wf.yaml:7:5: error: node 'a': trigger_rule 'any' is not one of "
       "all_success, all_done, one_success, none_failed",
       "wf.yaml:8:5: error: node 'a': timeout_seconds must be a number > 0",
       "wf.yaml:9:5: error: node 'a': field 'use_cache' must be a boolean",
       "wf.yaml:10:5: error: node 'a': cache_ttl_seconds must be >= 0",
       "wf.yaml:12:5: error: node 'b': missing required field 'tool_name'",
       "wf.yaml:14:5: error: node 'b': field 'tool_args' must be an object",
       "wf.yaml:18:5: error: node 'c': field 'run_if' must be a string",
       "wf.yaml:17:5: error: node 'c': field 'tool_name' must be a string",
       "wf.yaml:19:5: error: node 'c': field 'input_mappings' must be an "
       "object");
  engine_done(e);
}

static void test_ids(void **state) {
  ice_engine_t *e = engine();

  (void)state;
  WANT(e,
       "nodes:\n"
       "  - {type: tool, tool_name: echo}\n"
       "  - {id: 1a, type: tool, tool_name: echo}\n"
       "  - {id: 'a b', type: tool, tool_name: echo}\n"
       "  - {id: ok-1_x, type: tool, tool_name: echo}\n"
       "  - {id: _b, type: tool, tool_name: echo}\n"
       "  - {id: 7, type: tool, tool_name: echo}\n",
       1, "wf.yaml:2:5: error: node #1: missing required field 'id'",
       "wf.yaml:3:6: error: node #2: field 'id' must be a string matching "
       "^[A-Za-z_][A-Za-z0-9_-]*$",
       "wf.yaml:4:6: error: node #3: field 'id' must be a string matching "
       "^[A-Za-z_][A-Za-z0-9_-]*$",
       "wf.yaml:7:6: error: node #6: field 'id' must be a string matching "
       "^[A-Za-z_][A-Za-z0-9_-]*$");
  engine_done(e);
}

static void test_duplicate_ids(void **state) {
  ice_engine_t *e = engine();

  (void)state;
  /* The first definition is kept for the graph: b's dependency on a is
   * fine, and the duplicate's own errors are still reported. */
  WANT(e,
       "nodes:\n"
       "  - {id: a, type: tool, tool_name: echo}\n"
       "  - {id: b, type: tool, tool_name: echo, dependencies: [a]}\n"
       "  - {id: a, type: tool, tool_name: echo, bogus: 1}\n"
       "  - id: a\n    type: tool\n",
       1, "wf.yaml:4:6: error: duplicate id 'a'",
       "wf.yaml:5:5: error: duplicate id 'a'",
       "wf.yaml:4:42: error: node 'a': unknown field 'bogus'",
       "wf.yaml:5:5: error: node 'a': missing required field 'tool_name'");
  /* Duplicates across nesting levels too (ids are file-wide). */
  WANT(e,
       "nodes:\n"
       "  - id: a\n    type: loop\n    items_source: inputs.xs\n    body:\n"
       "      - {id: a, type: tool, tool_name: echo}\n",
       1, "wf.yaml:6:10: error: duplicate id 'a'");
  engine_done(e);
}

static void test_types(void **state) {
  ice_engine_t *e = engine();

  (void)state;
  /* An unknown type is reported once (not once per field) and the node
   * still takes part in the dependency and cycle checks. */
  WANT(e,
       "nodes:\n"
       "  - {id: a, type: magic, spell: x, dependencies: [b, nope]}\n"
       "  - {id: b, type: tool, tool_name: echo, dependencies: [a]}\n"
       "  - {id: c}\n"
       "  - {id: d, type: [tool]}\n",
       1, "wf.yaml:2:13: error: node 'a': unknown node type 'magic'",
       "wf.yaml:4:5: error: node 'c': missing required field 'type'",
       "wf.yaml:5:13: error: node 'd': field 'type' must be a string",
       "wf.yaml:2:36: error: node 'a': unknown dependency 'nope'",
       "wf.yaml:2:36: error: node 'a': cycle: a -> b -> a");
  engine_done(e);
}

static void test_custom_type_fields(void **state) {
  ice_engine_t *e = engine();
  ice_workflow_t *wf;

  (void)state;
  wf = load_ok(e, "nodes: [{id: a, type: custom, size: 3, label: x}]", 1);
  /* The executor's default timeout applies. */
  assert_true(node(wf, "a")->opt->timeout == 5.0);
  ice_workflow_free(wf);
  WANT(e,
       "nodes:\n"
       "  - {id: a, type: custom, label: 3, extra: 1}\n"
       "  - {id: b, type: custom, size: 11}\n"
       "  - {id: c, type: custom, size: 1.5, timeout_seconds: 2}\n",
       1, "wf.yaml:2:37: error: node 'a': unknown field 'extra'",
       "wf.yaml:2:5: error: node 'a': missing required field 'size'",
       "wf.yaml:2:27: error: node 'a': field 'label' must be a string",
       "wf.yaml:4:27: error: node 'c': field 'size' must be an integer",
       "wf.yaml:3:5: error: node 'b': size must be at most 10");
  engine_done(e);
}

/* ---- dependencies, mappings, cycles ---- */

static void test_dependency_errors(void **state) {
  ice_engine_t *e = engine();

  (void)state;
  WANT(e,
       "nodes:\n"
       "  - {id: a, type: tool, tool_name: echo, dependencies: [a]}\n"
       "  - {id: b, type: tool, tool_name: echo, dependencies: [zz, a, 3]}\n"
       "  - id: l\n    type: loop\n    items_source: inputs.xs\n    body:\n"
       "      - {id: inner, type: tool, tool_name: echo, dependencies: "
       "[b]}\n"
       "  - {id: c, type: tool, tool_name: echo, dependencies: [inner]}\n",
       1,
       "wf.yaml:2:42: error: node 'a': a node may not depend on itself ('a')",
       "wf.yaml:3:42: error: node 'b': unknown dependency 'zz'",
       "wf.yaml:3:42: error: node 'b': dependencies[2] must be a node id "
       "string",
       "wf.yaml:9:42: error: node 'c': dependency 'inner' is not in the same "
       "list of nodes (a node may depend only on its siblings)",
       "wf.yaml:8:50: error: node 'inner': dependency 'b' is not in the same "
       "list of nodes (a node may depend only on its siblings)");
  engine_done(e);
}

static void test_input_mappings(void **state) {
  ice_engine_t *e = engine();
  ice_workflow_t *wf;
  const ice__node_t *n;

  (void)state;
  wf = load_ok(e,
               "nodes:\n"
               "  - {id: a, type: tool, tool_name: echo}\n"
               "  - id: b\n    type: tool\n    tool_name: echo\n"
               "    dependencies: [a]\n"
               "    input_mappings:\n"
               "      x: {source_node_id: a, source_output_key: 'k.0'}\n"
               "      whole: {source_node_id: a}\n"
               "      lit: 5\n"
               "      obj: {other: 1}\n",
               1);
  n = node(wf, "b");
  assert_int_equal(n->nmaps, 4);
  assert_string_equal(n->maps[0].key, "x");
  assert_int_equal(n->maps[0].src, node(wf, "a")->local);
  assert_string_equal(n->maps[0].path, "k.0");
  assert_string_equal(n->maps[1].path, "");
  assert_int_equal(n->maps[2].src, ICE__NONE);
  assert_int_equal(json_integer_value(n->maps[2].literal), 5);
  assert_int_equal(n->maps[3].src, ICE__NONE);
  ice_workflow_free(wf);
  WANT(e,
       "nodes:\n"
       "  - {id: a, type: tool, tool_name: echo}\n"
       "  - {id: c, type: tool, tool_name: echo}\n"
       "  - id: b\n    type: tool\n    tool_name: echo\n"
       "    dependencies: [a]\n"
       "    input_mappings:\n"
       "      x: {source_node_id: c}\n"
       "      y: {source_node_id: nope, source_output_key: k}\n"
       "      z: {source_node_id: a, source_output_key: 3}\n"
       "      w: {source_node_id: b}\n",
       1,
       "wf.yaml:9:7: error: node 'b': input_mappings.x: source 'c' is not a "
       "dependency of this node",
       "wf.yaml:10:7: error: node 'b': input_mappings.y: source 'nope' is "
       "not a dependency of this node",
       "wf.yaml:11:7: error: node 'b': input_mappings.z.source_output_key "
       "must be a string",
       "wf.yaml:12:7: error: node 'b': input_mappings.w: source 'b' is not a "
       "dependency of this node");
  engine_done(e);
}

static void test_cycles(void **state) {
  ice_engine_t *e = engine();

  (void)state;
  /* Two nodes. */
  WANT(e,
       "nodes:\n"
       "  - {id: a, type: tool, tool_name: echo, dependencies: [b]}\n"
       "  - {id: b, type: tool, tool_name: echo, dependencies: [a]}\n",
       1, "wf.yaml:2:42: error: node 'a': cycle: a -> b -> a");
  /* Three nodes, listed out of order. */
  WANT(e,
       "nodes:\n"
       "  - {id: a, type: tool, tool_name: echo, dependencies: [c]}\n"
       "  - {id: b, type: tool, tool_name: echo, dependencies: [a]}\n"
       "  - {id: c, type: tool, tool_name: echo, dependencies: [b]}\n",
       1, "wf.yaml:2:42: error: node 'a': cycle: a -> b -> c -> a");
  /* A cycle plus a separate valid part, and a node behind the cycle: only
   * the cycle is reported. */
  WANT(e,
       "nodes:\n"
       "  - {id: ok1, type: tool, tool_name: echo}\n"
       "  - {id: ok2, type: tool, tool_name: echo, dependencies: [ok1]}\n"
       "  - {id: x, type: tool, tool_name: echo, dependencies: [ok2, z]}\n"
       "  - {id: y, type: tool, tool_name: echo, dependencies: [x]}\n"
       "  - {id: z, type: tool, tool_name: echo, dependencies: [y]}\n"
       "  - {id: after, type: tool, tool_name: echo, dependencies: [z]}\n",
       1, "wf.yaml:4:42: error: node 'x': cycle: x -> y -> z -> x");
  /* Two separate cycles: both. */
  WANT(e,
       "nodes:\n"
       "  - {id: a, type: tool, tool_name: echo, dependencies: [b]}\n"
       "  - {id: b, type: tool, tool_name: echo, dependencies: [a]}\n"
       "  - {id: c, type: tool, tool_name: echo, dependencies: [d]}\n"
       "  - {id: d, type: tool, tool_name: echo, dependencies: [c]}\n",
       1, "wf.yaml:2:42: error: node 'a': cycle: a -> b -> a",
       "wf.yaml:4:42: error: node 'c': cycle: c -> d -> c");
  /* A cycle inside a nested list. */
  WANT(e,
       "nodes:\n"
       "  - id: l\n    type: loop\n    items_source: inputs.xs\n    body:\n"
       "      - {id: p, type: tool, tool_name: echo, dependencies: [q]}\n"
       "      - {id: q, type: tool, tool_name: echo}\n",
       1, "wf.yaml:6:46: error: node 'p': cycle: p -> q -> p");
  engine_done(e);
}

static void test_long_chain_validates(void **state) {
  /* Graph checks are iterative: a 50,000-node chain and a 50,000-node
   * cycle neither overflow the stack nor stop early. */
  ice_engine_t *e = engine();
  json_t *doc = json_object(), *nodes = json_array();
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};
  const int n = 50000;
  char id[32], prev[32];

  (void)state;
  for (int i = 0; i < n; i++) {
    snprintf(id, sizeof(id), "n%d", i);
    json_t *nd = json_pack("{s:s,s:s,s:s}", "id", id, "type", "tool",
                           "tool_name", "echo");
    snprintf(prev, sizeof(prev), "n%d", i == 0 ? n - 1 : i - 1);
    if (i > 0)
      json_object_set_new(nd, "dependencies", json_pack("[s]", prev));
    json_array_append_new(nodes, nd);
  }
  json_object_set_new(doc, "nodes", nodes);
  assert_int_equal(ice_workflow_from_json(e, "chain", doc, &wf, &d), 0);
  assert_int_equal(node(wf, "n49999")->depth, 49999);
  ice_workflow_free(wf);
  /* Close it into one big cycle. */
  json_object_set_new(json_array_get(nodes, 0), "dependencies",
                      json_pack("[s]", "n49999"));
  json_t *doc2 = json_deep_copy(doc);
  assert_int_equal(ice_workflow_from_json(e, "cycle", doc2, &wf, &d),
                   ICE_EWORKFLOW);
  assert_int_equal(d.count, 1);
  assert_true(
      strncmp(d.items[0].message, "node 'n0': cycle: n0 -> n1 -> ", 30) == 0);
  /* (A path this long is cut to fit the message.) */
  ice_diags_free(&d);
  json_decref(doc2);
  json_decref(doc);
  engine_done(e);
}

static void test_nested_default_dependencies(void **state) {
  ice_engine_t *e = engine();
  ice_workflow_t *wf;

  (void)state;
  wf = load_ok(
      e,
      "nodes:\n"
      "  - id: l\n    type: loop\n    items_source: inputs.xs\n    body:\n"
      "      - {id: s1, type: tool, tool_name: echo}\n"
      "      - {id: s2, type: tool, tool_name: echo}\n"
      "      - {id: s3, type: tool, tool_name: echo}\n"
      "      - {id: p, type: tool, tool_name: echo, dependencies: "
      "[]}\n"
      "      - {id: q, type: tool, tool_name: echo, dependencies: "
      "[s1]}\n"
      "  - {id: top1, type: tool, tool_name: echo}\n"
      "  - {id: top2, type: tool, tool_name: echo}\n",
      1);
  /* Nested nodes default to their previous sibling... */
  assert_int_equal(node(wf, "s1")->ndeps, 0);
  assert_int_equal(node(wf, "s2")->ndeps, 1);
  assert_int_equal(node(wf, "s2")->deps[0], node(wf, "s1")->local);
  assert_int_equal(node(wf, "s3")->deps[0], node(wf, "s2")->local);
  assert_int_equal(node(wf, "s3")->depth, 2);
  /* ...unless they say otherwise. */
  assert_int_equal(node(wf, "p")->ndeps, 0);
  assert_int_equal(node(wf, "q")->ndeps, 1);
  assert_int_equal(node(wf, "q")->deps[0], node(wf, "s1")->local);
  /* Top-level nodes default to none. */
  assert_int_equal(node(wf, "top2")->ndeps, 0);
  assert_int_equal(ice_workflow_node_count(wf), 8);
  ice_workflow_free(wf);
  engine_done(e);
}

/* ---- expressions, templates, schemas, references ---- */

static void test_expression_template_schema_errors(void **state) {
  ice_engine_t *e = engine();

  (void)state;
  WANT(e,
       "nodes:\n"
       "  - id: a\n    type: tool\n    tool_name: echo\n"
       "    run_if: 'x =='\n"
       "    tool_args: {m: 'hi {{ name'}\n"
       "  - id: b\n    type: tool\n    tool_name: echo\n"
       "    input_schema: {n: integr}\n"
       "    output_schema: {type: strin}\n"
       "  - id: c\n    type: tool\n    tool_name: nope\n",
       1,
       "wf.yaml:5:5: error: node 'a': run_if: column 5: unexpected end of "
       "expression",
       "wf.yaml:10:5: error: node 'b': input_schema: unknown type 'integr' "
       "for field 'n'",
       "wf.yaml:11:5: error: node 'b': output_schema: unknown type 'strin' "
       "for field 'type'",
       "wf.yaml:6:5: error: node 'a': tool_args: $.m: unterminated '{{' "
       "(column 4)",
       "wf.yaml:14:5: error: node 'c': unknown tool 'nope'");
  engine_done(e);
}

static void test_all_problems_at_once(void **state) {
  ice_engine_t *e = engine();

  (void)state;
  WANT(e,
       "{\n"
       "  \"nodes\": [\n"
       "    {\"id\": \"a\", \"type\": \"tool\", \"tool_name\": \"echo\",\n"
       "     \"dependencies\": [\"ghost\"], \"retires\": 3},\n"
       "    {\"id\": \"a\", \"type\": \"tool\", \"tool_name\": \"echo\"},\n"
       "    {\"id\": \"b\", \"type\": \"robot\"},\n"
       "    {\"id\": \"c\", \"type\": \"tool\", \"tool_name\": \"echo\",\n"
       "     \"dependencies\": [\"d\"]},\n"
       "    {\"id\": \"d\", \"type\": \"tool\", \"tool_name\": \"echo\",\n"
       "     \"dependencies\": [\"c\"]}\n"
       "  ],\n"
       "  \"extra\": 1\n"
       "}\n",
       0, "wf.json:12:4: error: unknown field 'extra' at the top level",
       "wf.json:5:7: error: duplicate id 'a'",
       "wf.json:4:34: error: node 'a': unknown field 'retires' (did you mean "
       "'retries'?)",
       "wf.json:6:18: error: node 'b': unknown node type 'robot'",
       "wf.json:4:7: error: node 'a': unknown dependency 'ghost'",
       "wf.json:8:7: error: node 'c': cycle: c -> d -> c");
  engine_done(e);
}

static void test_from_json_no_positions(void **state) {
  ice_engine_t *e = engine();
  json_t *doc = th_json("{\"nodes\": [{\"id\": \"a\", \"type\": \"tool\", "
                        "\"tool_name\": \"echo\", \"dependencies\": "
                        "[\"a\"]}], \"bad\": 1}");
  ice_workflow_t *wf = (ice_workflow_t *)1;
  ice_diags_t d = {0};
  char *s;

  (void)state;
  assert_int_equal(ice_workflow_from_json(e, "mem", doc, &wf, &d),
                   ICE_EWORKFLOW);
  assert_null(wf);
  assert_int_equal(d.count, 2);
  s = ice_diag_format(&d.items[0]);
  assert_string_equal(s, "mem: error: unknown field 'bad' at the top level");
  free(s);
  s = ice_diag_format(&d.items[1]);
  assert_string_equal(
      s, "mem: error: node 'a': a node may not depend on itself ('a')");
  free(s);
  ice_diags_free(&d);
  /* The document is not changed and can be loaded again. */
  json_object_del(doc, "bad");
  json_object_del(json_array_get(json_object_get(doc, "nodes"), 0),
                  "dependencies");
  assert_int_equal(ice_workflow_from_json(e, "mem", doc, &wf, NULL), 0);
  ice_workflow_free(wf);
  json_decref(doc);
  /* Bad arguments. */
  assert_int_equal(ice_workflow_from_json(e, "mem", NULL, &wf, NULL),
                   ICE_EINVAL);
  assert_int_equal(ice_workflow_parse(e, "x", NULL, 0, 0, &wf, NULL),
                   ICE_EINVAL);
  engine_done(e);
}

static void test_load_file(void **state) {
  ice_engine_t *e = engine();
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};
  char path[] = "/tmp/ice-test-wf-XXXXXX.yml";
  int fd = mkstemps(path, 4);
  FILE *f;
  char *s;

  (void)state;
  assert_true(fd >= 0);
  f = fdopen(fd, "w");
  fputs("nodes:\n  - {id: a, type: tool, tool_name: echo, oops: 1}\n", f);
  fclose(f);
  assert_int_equal(ice_workflow_load(e, path, &wf, &d), ICE_EWORKFLOW);
  assert_int_equal(d.count, 1);
  s = ice_diag_format(&d.items[0]);
  {
    char want[256];
    snprintf(want, sizeof(want),
             "%s:2:42: error: node 'a': unknown field "
             "'oops'",
             path);
    assert_string_equal(s, want);
  }
  free(s);
  ice_diags_free(&d);
  unlink(path);
  assert_int_equal(ice_workflow_load(e, path, &wf, &d), ICE_ENOENT);
  assert_int_equal(d.count, 1);
  ice_diags_free(&d);
  engine_done(e);
}

/* ---- graph renderings ---- */

static void test_graph_dot_mermaid(void **state) {
  ice_engine_t *e = engine();
  ice_workflow_t *wf;
  char *out = NULL;

  (void)state;
  wf = load_ok(e,
               "name: g\nnodes:\n"
               "  - {id: a, type: tool, tool_name: echo}\n"
               "  - {id: b, type: tool, tool_name: echo, dependencies: [a]}\n"
               "  - {id: c, type: custom, size: 1, dependencies: [b, a]}\n",
               1);
  assert_int_equal(ice_workflow_graph(wf, "dot", &out), 0);
  assert_string_equal(out, "digraph \"g\" {\n"
                           "  rankdir=LR;\n"
                           "  node [shape=box];\n"
                           "  \"a\" [label=\"a\\n(tool)\"];\n"
                           "  \"b\" [label=\"b\\n(tool)\"];\n"
                           "  \"c\" [label=\"c\\n(custom)\"];\n"
                           "  \"a\" -> \"b\";\n"
                           "  \"a\" -> \"c\";\n"
                           "  \"b\" -> \"c\";\n"
                           "}\n");
  free(out);
  assert_int_equal(ice_workflow_graph(wf, "mermaid", &out), 0);
  assert_string_equal(out, "flowchart TD\n"
                           "  a[\"a (tool)\"]\n"
                           "  b[\"b (tool)\"]\n"
                           "  c[\"c (custom)\"]\n"
                           "  a --> b\n"
                           "  a --> c\n"
                           "  b --> c\n");
  free(out);
  out = (char *)1;
  assert_int_equal(ice_workflow_graph(wf, "svg", &out), ICE_EINVAL);
  assert_null(out);
  ice_workflow_free(wf);
  engine_done(e);
}

static void test_graph_nested(void **state) {
  ice_engine_t *e = engine();
  ice_workflow_t *wf;
  char *out = NULL;

  (void)state;
  wf = load_ok(
      e,
      "name: n\nnodes:\n"
      "  - id: l\n    type: loop\n    items_source: inputs.xs\n    body:\n"
      "      - {id: s1, type: tool, tool_name: echo}\n"
      "      - {id: s2, type: tool, tool_name: echo}\n"
      "  - {id: z, type: tool, tool_name: echo, dependencies: [l]}\n",
      1);
  assert_int_equal(ice_workflow_graph(wf, "mermaid", &out), 0);
  assert_string_equal(out, "flowchart TD\n"
                           "  l[\"l (loop)\"]\n"
                           "  subgraph subgraph_1 [\"l: body\"]\n"
                           "    s1[\"s1 (tool)\"]\n"
                           "    s2[\"s2 (tool)\"]\n"
                           "    s1 --> s2\n"
                           "  end\n"
                           "  z[\"z (tool)\"]\n"
                           "  l --> z\n");
  free(out);
  assert_int_equal(ice_workflow_graph(wf, "dot", &out), 0);
  assert_string_equal(out, "digraph \"n\" {\n"
                           "  rankdir=LR;\n"
                           "  node [shape=box];\n"
                           "  \"l\" [label=\"l\\n(loop)\"];\n"
                           "  subgraph \"cluster/l/0\" {\n"
                           "    label=\"l: body\";\n"
                           "    \"s1\" [label=\"s1\\n(tool)\"];\n"
                           "    \"s2\" [label=\"s2\\n(tool)\"];\n"
                           "    \"s1\" -> \"s2\";\n"
                           "  }\n"
                           "  \"z\" [label=\"z\\n(tool)\"];\n"
                           "  \"l\" -> \"z\";\n"
                           "}\n");
  free(out);
  ice_workflow_free(wf);
  engine_done(e);
}

static void test_graph_name_escaped(void **state) {
  ice_engine_t *e = engine();
  ice_workflow_t *wf;
  char *out = NULL;

  (void)state;
  wf = load_ok(e,
               "name: 'say \"hi\"'\nnodes:\n"
               "  - {id: a, type: tool, tool_name: echo}\n",
               1);
  assert_int_equal(ice_workflow_graph(wf, "dot", &out), 0);
  /* A quote in the workflow name must not end the dot string. */
  assert_true(strncmp(out, "digraph \"say \\\"hi\\\"\" {\n", 23) == 0);
  free(out);
  ice_workflow_free(wf);
  engine_done(e);
}

static void test_register_errors(void **state) {
  ice_engine_t *e = engine();
  ice_executor_t bad = loop_ex;

  (void)state;
  assert_int_equal(ice_register_node(e, &custom_ex), ICE_EEXIST);
  bad.type = "other";
  bad.abi = ICE_EXECUTOR_ABI + 1;
  assert_int_equal(ice_register_node(e, &bad), ICE_EABI);
  bad.abi = ICE_EXECUTOR_ABI;
  bad.type = "tool";
  assert_int_equal(ice_register_node(e, &bad), ICE_EEXIST);
  engine_done(e);
}

/* ---- hostile review (issue 6, items 9-11) ---- */

/* Parses text, expects success with exactly the formatted warnings given
 * (SPEC §1.1: warnings never fail a load). */
static ice_workflow_t *load_warn_n(ice_engine_t *e, const char *text,
                                   int is_yaml, const char *const *want) {
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};
  size_t n = 0;
  int rc = ice_workflow_parse(e, is_yaml ? "wf.yaml" : "wf.json", text,
                              strlen(text), is_yaml, &wf, &d);
  int bad = rc != 0;

  while (want[n] != NULL)
    n++;
  if (d.count != n)
    bad = 1;
  for (size_t i = 0; i < d.count && !bad; i++) {
    char *s = ice_diag_format(&d.items[i]);
    if (strcmp(s, want[i]) != 0)
      bad = 1;
    if (d.items[i].severity != ICE_DIAG_WARNING)
      bad = 1;
    free(s);
  }
  if (bad) {
    fprintf(stderr, "rc %d; expected %zu warnings:\n", rc, n);
    for (size_t i = 0; i < n; i++)
      fprintf(stderr, "  %s\n", want[i]);
    fprintf(stderr, "got %zu:\n", d.count);
    for (size_t i = 0; i < d.count; i++) {
      char *s = ice_diag_format(&d.items[i]);
      fprintf(stderr, "  %s\n", s);
      free(s);
    }
    ice_diags_free(&d);
    ice_workflow_free(wf);
    fail();
  }
  ice_diags_free(&d);
  assert_non_null(wf);
  return wf;
}

#define WARN_OK(wfp, e, text, yaml, ...)                                       \
  do {                                                                         \
    const char *const want_[] = {__VA_ARGS__, NULL};                           \
    *(wfp) = load_warn_n(e, text, yaml, want_);                                \
  } while (0)

/* Item 9: CRLF JSON counted each line twice. JSON (jansson, then the
 * positioned parser) and YAML, with CRLF, bare CR and a mix. */
static void test_line_endings(void **state) {
  ice_engine_t *e = engine();
  static const char *const endings[] = {"\r\n", "\r", "\n"};

  (void)state;
  for (int yaml = 0; yaml <= 1; yaml++) {
    for (size_t k = 0; k < 4; k++) {
      char text[512], want[128];
      /* k == 3: a mix of all three, one per line. */
      const char *nl[5];
      for (int i = 0; i < 5; i++)
        nl[i] = k < 3 ? endings[k] : endings[i % 3];
      if (yaml)
        snprintf(text, sizeof(text),
                 "nodes:%s  - id: a%s    type: tool%s    tool_name: echo%s"
                 "  - {id: b, type: frob}%s",
                 nl[0], nl[1], nl[2], nl[3], nl[4]);
      else
        snprintf(text, sizeof(text),
                 "{%s\"nodes\": [%s{\"id\": \"a\", \"type\": \"tool\", "
                 "\"tool_name\": \"echo\"},%s{\"id\": \"b\", \"type\": "
                 "\"frob\"}%s]%s}",
                 nl[0], nl[1], nl[2], nl[3], nl[4]);
      snprintf(want, sizeof(want),
               yaml ? "wf.yaml:5:13: error: node 'b': unknown node type "
                      "'frob'"
                    : "wf.json:4:14: error: node 'b': unknown node type "
                      "'frob'");
      WANT(e, text, yaml, want);
    }
  }
  /* A UTF-8 error is counted the same way. */
  WANT(e, "{\r\n\"nodes\": [\r\n\"\xff\"]}", 0,
       "wf.json:3:2: error: the file is not UTF-8 text (a binary file, or "
       "another encoding)");
  engine_done(e);
}

/* Item 10: a duplicate key or an out-of-range number is reported, and
 * every other problem of the file too (SPEC §4.1), in JSON and YAML. */
static void test_soft_parse_errors(void **state) {
  ice_engine_t *e = engine();

  (void)state;
  WANT(e,
       "{\"nodes\": [\n"
       " {\"id\": \"a\", \"type\": \"tool\", \"tool_name\": \"nosuch\",\n"
       "  \"tool_args\": {\"x\": 1, \"x\": {\"deep\": [2]}}},\n"
       " {\"id\": \"b\", \"type\": \"frob\"}]}\n",
       0, "wf.json:3:26: error: duplicate key 'x'",
       "wf.json:4:15: error: node 'b': unknown node type 'frob'",
       "wf.json:2:31: error: node 'a': unknown tool 'nosuch'");
  WANT(e,
       "nodes:\n"
       "  - id: a\n"
       "    type: tool\n"
       "    tool_name: nosuch\n"
       "    tool_args: {x: 1, x: 2}\n"
       "  - {id: b, type: frob}\n",
       1, "wf.yaml:5:23: error: duplicate key 'x'",
       "wf.yaml:6:13: error: node 'b': unknown node type 'frob'",
       "wf.yaml:4:5: error: node 'a': unknown tool 'nosuch'");
  WANT(e,
       "{\"nodes\": [\n"
       " {\"id\": \"a\", \"type\": \"tool\", \"tool_name\": \"echo\",\n"
       "  \"tool_args\": {\"n\": 99999999999999999999, \"f\": 1e999}},\n"
       " {\"id\": \"b\", \"type\": \"frob\"}]}\n",
       0,
       "wf.json:3:22: error: integer 99999999999999999999 is out of range "
       "(64-bit)",
       "wf.json:3:49: error: number 1e999 is out of range",
       "wf.json:4:15: error: node 'b': unknown node type 'frob'");
  WANT(e,
       "nodes:\n"
       "  - {id: a, type: tool, tool_name: echo,\n"
       "     tool_args: {n: 99999999999999999999}}\n"
       "  - {id: b, type: frob}\n",
       1,
       "wf.yaml:3:21: error: integer 99999999999999999999 is out of range "
       "(64-bit)",
       "wf.yaml:4:13: error: node 'b': unknown node type 'frob'");
  /* The first value of a duplicate key is the one validated. */
  WANT(e,
       "{\"nodes\": [{\"id\": \"a\", \"type\": \"frob\", \"type\": \"tool\"}]}",
       0, "wf.json:1:41: error: duplicate key 'type'",
       "wf.json:1:25: error: node 'a': unknown node type 'frob'");
  engine_done(e);
}

/* Item 11: a node as iceOS's model_dump() writes it (SPEC §1.1). */
static void test_iceos_model_dump(void **state) {
  ice_engine_t *e = engine();
  ice_workflow_t *wf;

  (void)state;
  WARN_OK(&wf, e,
          "{\"nodes\": [{\"id\": \"t\", \"type\": \"tool\", \"name\": null,\n"
          " \"dependencies\": [], \"level\": 0, \"metadata\": null,\n"
          " \"provider\": \"openai\", \"timeout_seconds\": null,\n"
          " \"retries\": 0, \"backoff_seconds\": 0.0,\n"
          " \"retry_policy\": null, \"input_schema\": {},\n"
          " \"output_schema\": {}, \"input_mappings\": {},\n"
          " \"output_mappings\": {}, \"use_cache\": true,\n"
          " \"input_selection\": null, \"output_selection\": null,\n"
          " \"context_rules\": {}, \"tool_name\": \"echo\",\n"
          " \"tool_args\": {\"v\": null}}]}",
          0, NULL);
  /* Nulls are absent: the tool default timeout, no retry policy; `{}` is
   * no schema at all (SPEC §2.3); null inside tool_args is a value. */
  assert_true(node(wf, "t")->opt->timeout == 30.0);
  assert_int_equal(node(wf, "t")->opt->retry.max_attempts, 1);
  ice_workflow_free(wf);

  /* Each non-empty accepted field warns once, at its key; the rest load. */
  WARN_OK(&wf, e,
          "nodes:\n"
          "  - id: t\n"
          "    type: tool\n"
          "    tool_name: echo\n"
          "    output_mappings: {x: y}\n"
          "    input_selection: [a]\n"
          "    output_selection: [b]\n"
          "    context_rules: {c: {include: true}}\n"
          "    level: 3\n"
          "    provider: anthropic\n"
          "    retry_policy: {max_attempts: 2, backoff_seconds: null}\n",
          1,
          "wf.yaml:5:5: warning: node 't': 'output_mappings' is accepted for "
          "iceOS compatibility and ignored (iceOS does not act on it either)",
          "wf.yaml:6:5: warning: node 't': 'input_selection' is accepted for "
          "iceOS compatibility and ignored (iceOS does not act on it either)",
          "wf.yaml:7:5: warning: node 't': 'output_selection' is accepted for "
          "iceOS compatibility and ignored (iceOS does not act on it either)",
          "wf.yaml:8:5: warning: node 't': 'context_rules' is accepted for "
          "iceOS compatibility and ignored (iceOS does not act on it either)");
  assert_int_equal(node(wf, "t")->opt->retry.max_attempts, 2);
  assert_true(node(wf, "t")->opt->retry.backoff_seconds == 1.0);
  ice_workflow_free(wf);

  /* Warnings go with errors when there are errors; other unknown fields
   * stay errors (extra="forbid"); a required field may not be null. */
  WANT(e,
       "nodes:\n"
       "  - id: t\n"
       "    type: tool\n"
       "    tool_name: null\n"
       "    output_mappings: {x: y}\n"
       "    colour: null\n"
       "    input_selection: 5\n",
       1, "wf.yaml:6:5: error: node 't': unknown field 'colour'",
       "wf.yaml:5:5: warning: node 't': 'output_mappings' is accepted for "
       "iceOS compatibility and ignored (iceOS does not act on it either)",
       "wf.yaml:7:5: error: node 't': field 'input_selection' must be an "
       "array",
       "wf.yaml:4:5: error: node 't': field 'tool_name' must be a string");

  /* Type-specific ignored fields: `parallel` on a loop; nested nodes too. */
  WARN_OK(&wf, e,
          "nodes:\n"
          "  - id: l\n"
          "    type: loop\n"
          "    items_source: '[1, 2]'\n"
          "    parallel: true\n"
          "    max_iterations: null\n"
          "    body:\n"
          "      - {id: b, type: tool, tool_name: echo, retry_policy: null,\n"
          "         level: 1, output_selection: []}\n",
          1, NULL);
  ice_workflow_free(wf);
  /* ...but not on another type; llm's iceOS fields pass quietly. */
  WANT(e,
       "nodes:\n"
       "  - {id: t, type: tool, tool_name: echo, parallel: true}\n"
       "  - {id: m, type: llm, provider: openai, level: 0, prompt: hi,\n"
       "     model: m, format_specifications: {}}\n",
       1, "wf.yaml:2:42: error: node 't': unknown field 'parallel'");
  assert_true(ice__iceos_ignored("llm", "llm_config.timeout"));
  assert_true(ice__iceos_ignored("code", "imports"));
  assert_false(ice__iceos_ignored("tool", "imports"));
  engine_done(e);
}

/* Positions of list problems: at the bad item, one message, with the node
 * prefix for nested lists. */
static void test_list_positions(void **state) {
  ice_engine_t *e = engine();

  (void)state;
  WANT(e,
       "nodes:\n"
       "  - {id: a, type: tool, tool_name: echo}\n"
       "  - 7\n",
       1, "wf.yaml:3:5: error: nodes[1] must be a node object");
  WANT(e,
       "nodes:\n"
       "  - id: p\n"
       "    type: parallel\n"
       "    branches:\n"
       "      - [{id: a, type: tool, tool_name: echo}]\n"
       "      - 5\n"
       "      - [x]\n",
       1,
       "wf.yaml:6:9: error: node 'p': branches[1] must be an array of "
       "nodes",
       "wf.yaml:7:10: error: node 'p': branches[2][0] must be a node object");
  WANT(e,
       "nodes:\n"
       "  - id: l\n"
       "    type: loop\n"
       "    items_source: '[1]'\n"
       "    body: {id: b, type: tool, tool_name: echo}\n",
       1,
       "wf.yaml:5:11: error: node 'l': field 'body' must be an array of "
       "nodes");
  WANT(
      e,
      "{\"nodes\": [{\"id\": \"p\", \"type\": \"parallel\", \"branches\": 3}]}",
      0,
      "wf.json:1:45: error: node 'p': field 'branches' must be an array "
      "of lists of nodes");
  engine_done(e);
}

/* YAML 1.2 core-schema tags are honoured; other tags are errors. */
static void test_yaml_tags(void **state) {
  ice_engine_t *e = engine();
  ice_workflow_t *wf;
  json_t *args;

  (void)state;
  wf = load_ok(e,
               "nodes:\n"
               "  - id: a\n"
               "    type: tool\n"
               "    tool_name: echo\n"
               "    timeout_seconds: !!int \"5\"\n"
               "    tool_args: !!map {i: !!int '7', f: !!float 2, b: !!bool "
               "\"true\",\n"
               "                n: !!null '', s: !!str 3, t: ! 4,\n"
               "                l: !!seq [1], h: !!int 0x10, g: !!float "
               "'1.5'}\n",
               1);
  assert_true(node(wf, "a")->opt->timeout == 5.0);
  args = json_object_get(node(wf, "a")->def, "tool_args");
  th_assert_json(args, "{\"i\":7,\"f\":2.0,\"b\":true,\"n\":null,\"s\":\"3\","
                       "\"t\":\"4\",\"l\":[1],\"h\":16,\"g\":1.5}");
  ice_workflow_free(wf);
  WANT(e,
       "nodes:\n"
       "  - id: a\n"
       "    type: tool\n"
       "    tool_name: echo\n"
       "    tool_args: {i: !!int \"five\", b: !!bool 1, n: !!null 0,\n"
       "                f: !!float x, m: !!map [1], q: !!seq 2,\n"
       "                c: !custom 1, d: !!binary aGk=}\n"
       "  - {id: b, type: frob}\n",
       1, "wf.yaml:5:27: error: 'five' is not a valid !!int",
       "wf.yaml:5:44: error: '1' is not a valid !!bool",
       "wf.yaml:5:57: error: '0' is not a valid !!null",
       "wf.yaml:6:28: error: 'x' is not a valid !!float",
       "wf.yaml:6:40: error: a !!map tag cannot be put on a sequence",
       "wf.yaml:6:54: error: a !!seq tag cannot be put on a scalar",
       "wf.yaml:7:28: error: unsupported YAML tag '!custom'",
       "wf.yaml:7:43: error: unsupported YAML tag "
       "'tag:yaml.org,2002:binary'",
       "wf.yaml:8:13: error: node 'b': unknown node type 'frob'");
  engine_done(e);
}

/* Ids that are expression keywords are valid (SPEC §2.1) but no
 * expression can name them: a warning says so, and how to read them. */
static void test_keyword_ids(void **state) {
  ice_engine_t *e = engine();
  static const char *const words[] = {"true", "False", "None", "and", "or",
                                      "not",  "in",    "if",   "else"};

  (void)state;
  for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
    char text[256], want[320];
    const char *const wants[] = {want, NULL};
    snprintf(text, sizeof(text),
             "{\"nodes\": [{\"id\": \"%s\", \"type\": \"tool\", "
             "\"tool_name\": \"echo\"}]}",
             words[i]);
    snprintf(want, sizeof(want),
             "wf.json:1:14: warning: node '%s': id '%s' is a keyword of "
             "expressions: expressions and templates cannot name it (read "
             "its output through input_mappings, or choose another id)",
             words[i], words[i]);
    ice_workflow_free(load_warn_n(e, text, 0, wants));
  }
  /* A keyword inside an id is fine. */
  ice_workflow_free(
      load_ok(e,
              "nodes: [{id: if_x, type: tool, tool_name: echo}, {id: Nonef, "
              "type: tool, tool_name: echo}]",
              1));
  engine_done(e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_diag_format),
      cmocka_unit_test(test_minimal_valid),
      cmocka_unit_test(test_name_defaults),
      cmocka_unit_test(test_failure_policy_aliases),
      cmocka_unit_test(test_retry_policy_fields),
      cmocka_unit_test(test_retry_policy_errors),
      cmocka_unit_test(test_top_level_errors),
      cmocka_unit_test(test_syntax_error_is_a_diag),
      cmocka_unit_test(test_node_field_errors),
      cmocka_unit_test(test_ids),
      cmocka_unit_test(test_duplicate_ids),
      cmocka_unit_test(test_types),
      cmocka_unit_test(test_custom_type_fields),
      cmocka_unit_test(test_dependency_errors),
      cmocka_unit_test(test_input_mappings),
      cmocka_unit_test(test_cycles),
      cmocka_unit_test(test_long_chain_validates),
      cmocka_unit_test(test_nested_default_dependencies),
      cmocka_unit_test(test_expression_template_schema_errors),
      cmocka_unit_test(test_all_problems_at_once),
      cmocka_unit_test(test_from_json_no_positions),
      cmocka_unit_test(test_load_file),
      cmocka_unit_test(test_graph_dot_mermaid),
      cmocka_unit_test(test_graph_nested),
      cmocka_unit_test(test_graph_name_escaped),
      cmocka_unit_test(test_register_errors),
      cmocka_unit_test(test_line_endings),
      cmocka_unit_test(test_soft_parse_errors),
      cmocka_unit_test(test_iceos_model_dump),
      cmocka_unit_test(test_list_positions),
      cmocka_unit_test(test_yaml_tags),
      cmocka_unit_test(test_keyword_ids),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
