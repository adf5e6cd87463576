/* Bundle workflows (SPEC §1.1): the names expressions read (expr_names.c),
 * declared `inputs` checked at run creation (inputs.c), `outputs` rendered
 * into the result (outputs.c, run.c), tool files kept by the engine and
 * looked up after the workflow's own definitions (toolfile.c, defs.c),
 * and the store's record of them (store.c, schema version 2). */
#include "helpers.h"

#include "engine.h"
#include "expr.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[64];

static int setup(void **state) {
  (void)state;
  snprintf(g_dir, sizeof(g_dir), "/tmp/ice-bundle-XXXXXX");
  assert_non_null(mkdtemp(g_dir));
  return 0;
}

static int teardown(void **state) {
  char cmd[128];

  (void)state;
  snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* Writes text to g_dir/name; returns the path (static buffer per call
 * site is not needed: the caller copies when it keeps two). */
static const char *write_file(const char *name, const char *text) {
  static char path[4][256];
  static int k;
  FILE *f;

  k = (k + 1) % 4;
  snprintf(path[k], sizeof(path[k]), "%s/%s", g_dir, name);
  f = fopen(path[k], "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  return path[k];
}

static ice_engine_t *mk(void) {
  ice_engine_t *e = NULL;

  assert_int_equal(ice_engine_new(&e, NULL, NULL), 0);
  return e;
}

static void done_engine(ice_engine_t *e) {
  assert_int_equal(ice_engine_free(e), 0);
}

/* Every diagnostic, formatted, one per line (caller frees). */
static char *joined(const ice_diags_t *d) {
  char *all = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&all, &len);

  for (size_t i = 0; i < d->count; i++) {
    char *s = ice_diag_format(&d->items[i]);
    fprintf(f, "%s\n", s);
    free(s);
  }
  fclose(f);
  return all;
}

static void want(const char *all, const char *line) {
  if (strstr(all, line) == NULL)
    fail_msg("missing: %s\nin:\n%s", line, all);
}

/* ---- the names expressions read ------------------------------------------ */

static void reads_of(const char *src, const char *want_json) {
  json_t *set = json_object(), *keys = json_array();
  ice__expr_t *x = NULL;
  ice__err_t err;
  const char *k;
  json_t *v;

  assert_int_equal(ice__expr_parse(src, strlen(src), &x, &err), 0);
  assert_int_equal(ice__expr_reads(x, set), 0);
  json_object_foreach(set, k, v) {
    json_array_append_new(keys, json_string(k));
  }
  th_assert_json(keys, want_json);
  ice__expr_free(x);
  json_decref(set);
  json_decref(keys);
}

static void test_expr_reads(void **state) {
  json_t *set = json_object(), *outer;
  ice__expr_t *x = NULL;
  ice__err_t err;

  (void)state;
  reads_of("topic", "[\"topic\"]");
  reads_of("inputs.topic + inputs['style'] + a.b[0]",
           "[\"topic\",\"style\",\"a\"]");
  /* The inputs object read whole or with a computed key: any input. */
  reads_of("len(inputs)", "[\"inputs\"]");
  reads_of("inputs[k]", "[\"inputs\",\"k\"]");
  reads_of("exists(x) and (y.z)[w] or {'k': [u]} or (1 if c else d)",
           "[\"x\",\"y\",\"w\",\"u\",\"d\",\"c\"]");
  reads_of("'literal' + str(3)", "[]");
  /* The collector: what is parsed while it is installed, and only then. */
  assert_null(ice__expr_collect(set));
  assert_int_equal(ice__expr_parse("p + q", 5, &x, &err), 0);
  ice__expr_free(x);
  outer = ice__expr_collect(NULL);
  assert_ptr_equal(outer, set);
  assert_int_equal(ice__expr_parse("r", 1, &x, &err), 0);
  ice__expr_free(x);
  th_assert_json(set, "{\"p\":true,\"q\":true}");
  json_decref(set);
}

/* ---- declared inputs ----------------------------------------------------- */

/* ice_run_new's answer for inputs (JSON text, or NULL), with the
 * diagnostics joined in *msgs (caller frees). */
static int try_inputs(ice_engine_t *e, ice_workflow_t *wf, const char *inputs,
                      char **msgs) {
  ice_run_opts_t o = ICE_RUN_OPTS_INIT;
  ice_run_t *r = NULL;
  ice_diags_t d = {0};
  json_t *in = inputs != NULL ? th_json(inputs) : NULL;
  int rc;

  o.inputs = in;
  rc = ice_run_new(e, wf, &o, &r, &d);
  if (rc == 0) {
    assert_non_null(r);
    ice_run_free(r);
  } else {
    assert_null(r);
  }
  *msgs = joined(&d);
  ice_diags_free(&d);
  json_decref(in);
  return rc;
}

static void test_inputs_checked_at_run_creation(void **state) {
  ice_engine_t *e = mk();
  ice_workflow_t *wf =
      th_wf(e, "inputs: {required: [topic, n], optional: [tone]}\n"
               "nodes:\n"
               "  - {id: a, type: tool, tool_name: echo, tool_args:\n"
               "     {t: '{{ topic }}', x: '{{ inputs.extra }}',\n"
               "      y: \"{{ inputs['more'] if exists(inputs['more']) else "
               "0 }}\"},\n"
               "     run_if: 'exists(flag) or true'}\n");
  char *m;

  (void)state;
  assert_int_equal(try_inputs(e, wf, "{\"topic\": 1, \"n\": 2}", &m), 0);
  assert_string_equal(m, "");
  free(m);
  assert_int_equal(
      try_inputs(e, wf, "{\"topic\": 1, \"n\": 2, \"tone\": \"dry\"}", &m), 0);
  free(m);
  /* Read by a template (inputs.extra, inputs['more']) or run_if (flag). */
  assert_int_equal(try_inputs(e, wf,
                              "{\"topic\": 1, \"n\": 2, \"extra\": 1, "
                              "\"more\": 2, \"flag\": 3}",
                              &m),
                   0);
  free(m);
  /* Every problem, each naming the input and the declared ones. */
  assert_int_equal(try_inputs(e, wf, "{\"tone\": 1, \"colour\": 2}", &m),
                   ICE_EINPUT);
  want(m, "t.yaml: error: missing required input 'topic' (the workflow "
          "declares: topic, n, tone (optional))\n");
  want(m, "t.yaml: error: missing required input 'n' (the workflow declares: "
          "topic, n, tone (optional))\n");
  want(m, "t.yaml: error: input 'colour' is not declared and nothing in the "
          "workflow reads it (the workflow declares: topic, n, tone "
          "(optional))\n");
  free(m);
  assert_int_equal(try_inputs(e, wf, NULL, &m), ICE_EINPUT);
  want(m, "missing required input 'topic'");
  free(m);
  ice_workflow_free(wf);

  /* A bare list is required; with input_schema both apply. */
  wf = th_wf(e, "inputs: [a]\n"
                "input_schema: {a: int}\n"
                "nodes: [{id: x, type: tool, tool_name: echo}]\n");
  assert_int_equal(try_inputs(e, wf, "{\"a\": \"s\"}", &m), ICE_EINPUT);
  want(m, "inputs do not match input_schema");
  free(m);
  assert_int_equal(try_inputs(e, wf, "{}", &m), ICE_EINPUT);
  want(m, "missing required input 'a' (the workflow declares: a)");
  want(m, "inputs do not match input_schema");
  free(m);
  assert_int_equal(try_inputs(e, wf, "{\"a\": 1}", &m), 0);
  free(m);
  ice_workflow_free(wf);

  /* No `inputs`: any input goes, as before. Empty lists declare none. */
  wf = th_wf(e, "nodes: [{id: x, type: tool, tool_name: echo}]\n");
  assert_int_equal(try_inputs(e, wf, "{\"anything\": 1}", &m), 0);
  free(m);
  ice_workflow_free(wf);
  wf = th_wf(e, "inputs: {required: [], optional: null}\n"
                "nodes: [{id: x, type: tool, tool_name: echo}]\n");
  assert_int_equal(try_inputs(e, wf, "{\"a\": 1}", &m), ICE_EINPUT);
  want(m, "input 'a' is not declared and nothing in the workflow reads it "
          "(the workflow declares: none)");
  free(m);
  ice_workflow_free(wf);
  done_engine(e);
}

static void test_inputs_shape(void **state) {
  const char *text = "inputs:\n"
                     "  required: [a, 3, '', a]\n"
                     "  optional: {b: 1}\n"
                     "  defaults: {}\n"
                     "  x-note: fine\n"
                     "outputs: 5\n"
                     "nodes: [{id: n, type: tool, tool_name: echo}]\n";
  ice_engine_t *e = mk();
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};
  char *m;

  (void)state;
  assert_int_equal(
      ice_workflow_parse(e, "t.yaml", text, strlen(text), 1, &wf, &d),
      ICE_EWORKFLOW);
  m = joined(&d);
  want(m, "t.yaml:2:17: error: inputs.required[1] must be an input name");
  want(m, "t.yaml:2:21: error: inputs.required[2] must be an input name");
  want(m, "t.yaml:2:24: error: inputs.required[3]: input 'a' is declared "
          "twice");
  want(m, "t.yaml:3:13: error: inputs.optional must be an array of input "
          "names");
  want(m, "t.yaml:4:3: error: inputs: unknown field 'defaults'");
  want(m, "t.yaml:6:1: error: field 'outputs' must be an object");
  assert_null(strstr(m, "x-note"));
  assert_int_equal(d.count, 6);
  free(m);
  ice_diags_free(&d);
  text = "inputs: 7\nnodes: [{id: n, type: tool, tool_name: echo}]\n";
  assert_int_equal(
      ice_workflow_parse(e, "t.yaml", text, strlen(text), 1, &wf, &d),
      ICE_EWORKFLOW);
  m = joined(&d);
  want(m, "t.yaml:1:1: error: field 'inputs' must be");
  free(m);
  ice_diags_free(&d);
  done_engine(e);
}

static void test_inputs_declared_only(void **state) {
  ice_engine_t *e = mk();
  ice_workflow_t *wf = th_wf(e, "inputs: {required: [a], optional: [b]}\n"
                                "nodes: [{id: x, type: tool, tool_name: "
                                "echo}]\n");
  ice_workflow_t *free_wf =
      th_wf(e, "nodes: [{id: x, type: tool, tool_name: echo}]\n");
  json_t *ctx = th_json("{\"a\": 1, \"c\": 2, \"inputs\": {}, \"b\": 3}");
  json_t *got;

  (void)state;
  got = ice__inputs_declared(wf, ctx);
  th_assert_json(got, "{\"a\":1,\"b\":3}");
  json_decref(got);
  got = ice__inputs_declared(free_wf, ctx);
  assert_ptr_equal(got, ctx);
  json_decref(got);
  json_decref(ctx);
  ice_workflow_free(wf);
  ice_workflow_free(free_wf);
  done_engine(e);
}

/* ---- outputs ------------------------------------------------------------- */

static void test_outputs_rendered(void **state) {
  ice_engine_t *e = mk();
  json_t *in = th_json("{\"topic\": \"ice\"}"), *res;

  (void)state;
  res = th_run_wf(e,
                  th_wf(e, "inputs: [topic]\n"
                           "outputs:\n"
                           "  text: 'said {{ a.t }}'\n"
                           "  whole: '{{ a }}'\n"
                           "  nested: {k: ['{{ topic }}', '{{ inputs.topic }}',"
                           " 3], n: null}\n"
                           "  skipped: '{{ exists(b) }}'\n"
                           "nodes:\n"
                           "  - {id: a, type: tool, tool_name: echo, tool_args:"
                           " {t: '{{ topic }}'}}\n"
                           "  - {id: b, type: tool, tool_name: echo, run_if:"
                           " 'false'}\n"),
                  in, 0, NULL);
  th_assert_json(json_object_get(res, "status"), "\"completed\"");
  th_assert_json(json_object_get(res, "output"),
                 "{\"text\":\"said ice\",\"whole\":{\"t\":\"ice\"},"
                 "\"nested\":{\"k\":[\"ice\",\"ice\",3],\"n\":null},"
                 "\"skipped\":false}");
  /* nodes is unchanged. */
  th_assert_json(
      json_object_get(json_object_get(json_object_get(res, "nodes"), "b"),
                      "status"),
      "\"skipped\"");
  json_decref(res);
  json_decref(in);
  done_engine(e);
}

static void test_outputs_failing(void **state) {
  ice_engine_t *e = mk();
  json_t *res;

  (void)state;
  /* A template that fails: the run fails, output is the node map. */
  res = th_run_wf(e,
                  th_wf(e, "outputs: {ok: '{{ a.x }}', bad: '{{ a.y }}', "
                           "worse: '{{ a.x / 0 }}'}\n"
                           "nodes: [{id: a, type: tool, tool_name: echo, "
                           "tool_args: {x: 1}}]\n"),
                  NULL, 0, NULL);
  th_assert_json(json_object_get(res, "status"), "\"failed\"");
  th_assert_json(json_object_get(res, "success"), "false");
  th_assert_json(json_object_get(res, "output"), "{\"a\":{\"x\":1}}");
  th_assert_json(json_object_get(res, "errors"),
                 "[\"Output bad: undefined: a.y\","
                 "\"Output worse: division by zero\"]");
  json_decref(res);
  /* A run that fails on its own: outputs are not rendered at all. */
  res = th_run_wf(e,
                  th_wf(e, "outputs: {x: '{{ missing.x }}'}\n"
                           "nodes: [{id: a, type: tool, tool_name: fail}]\n"),
                  NULL, 0, NULL);
  th_assert_json(json_object_get(res, "output"), "{}");
  th_assert_json(json_object_get(res, "errors"),
                 "[\"Node a failed: fail called\"]");
  json_decref(res);
  done_engine(e);
}

static void test_outputs_compile_errors(void **state) {
  const char *text = "outputs:\n"
                     "  a: '{{ x'\n"
                     "  b: {c: ['{{ 1 + }}']}\n"
                     "nodes: [{id: n, type: tool, tool_name: echo}]\n";
  ice_engine_t *e = mk();
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};
  char *m;

  (void)state;
  assert_int_equal(
      ice_workflow_parse(e, "t.yaml", text, strlen(text), 1, &wf, &d),
      ICE_EWORKFLOW);
  m = joined(&d);
  want(m, "t.yaml:2:3: error: outputs.a: unterminated '{{' (column 1)");
  want(m, "t.yaml:3:3: error: outputs.b.c[0]: ");
  free(m);
  ice_diags_free(&d);
  done_engine(e);
}

typedef struct {
  json_t *records;
} log_t;

static int commit_cb(const ice_commit_t *c, void *data, char *msg,
                     size_t msglen) {
  (void)msg;
  (void)msglen;
  json_array_append_new(((log_t *)data)->records, ice_commit_to_json(c));
  return 0;
}

/* A run that stops waiting keeps the node map; restored and answered, it
 * finishes and renders its outputs. */
static void test_outputs_of_a_restored_run(void **state) {
  const char *text =
      "outputs: {said: '{{ a.t }}', ok: '{{ ask.approved }}'}\n"
      "nodes:\n"
      "  - {id: a, type: tool, tool_name: echo, tool_args: {t: hi}}\n"
      "  - {id: ask, type: human, prompt_message: 'Go?', dependencies: [a]}\n";
  ice_engine_t *e = mk();
  log_t log = {json_array()};
  ice_run_opts_t o = ICE_RUN_OPTS_INIT;
  ice_run_t *r = NULL;
  ice_workflow_t *wf = th_wf(e, text);
  json_t *answers = th_json("{\"ask\": \"approve\"}"), *res;
  char id[64];

  (void)state;
  o.commit = commit_cb;
  o.commit_data = &log;
  o.suspend_after = 0;
  assert_int_equal(ice_run_new(e, wf, &o, &r, NULL), 0);
  assert_int_equal(ice_run_execute(r), 0);
  res = ice_run_result(r);
  th_assert_json(json_object_get(res, "status"), "\"waiting\"");
  th_assert_json(json_object_get(res, "output"), "{\"a\":{\"t\":\"hi\"}}");
  snprintf(id, sizeof(id), "%s", ice_run_id(r));
  ice_run_free(r);
  o.restore = log.records;
  o.run_id = id;
  o.answers = answers;
  assert_int_equal(ice_run_new(e, wf, &o, &r, NULL), 0);
  assert_int_equal(ice_run_execute(r), 0);
  res = ice_run_result(r);
  th_assert_json(json_object_get(res, "status"), "\"completed\"");
  th_assert_json(json_object_get(res, "output"),
                 "{\"said\":\"hi\",\"ok\":true}");
  ice_run_free(r);
  ice_workflow_free(wf);
  json_decref(answers);
  json_decref(log.records);
  done_engine(e);
}

/* ---- tool files ---------------------------------------------------------- */

static void test_tool_files_lookup(void **state) {
  ice_engine_t *e = mk();
  ice_workflow_t *wf;
  ice_diags_t d = {0};
  const char *dir = NULL, *p1, *p2;
  char dir1[256], path1[256], path2[256];
  json_t *def, *files;

  (void)state;
  assert_int_equal(mkdir(strcat(strcpy(dir1, g_dir), "/one"), 0700), 0);
  p1 = write_file("one/tools.yaml", "tools:\n"
                                    "  shared: {command: [echo, one]}\n"
                                    "  mine: {command: [echo, one]}\n"
                                    "agents:\n"
                                    "  helper: {system_prompt: hi}\n"
                                    "x-anything: [1]\n");
  snprintf(path1, sizeof(path1), "%s", p1);
  p2 = write_file("two.json", "{\"tools\": {\"shared\": {\"command\": "
                              "[\"echo\", \"two\"]}, \"only2\": {\"command\": "
                              "[\"echo\", \"two\"]}}}");
  snprintf(path2, sizeof(path2), "%s", p2);
  assert_int_equal(ice_engine_add_tool_file(e, path1, &d), 0);
  assert_int_equal(ice_engine_add_tool_file(e, path2, &d), 0);
  assert_int_equal(d.count, 0);
  wf = th_wf(e, "tools: {mine: {command: [echo, wf]}}\n"
                "agents: {helper: {system_prompt: own}}\n"
                "nodes:\n"
                "  - {id: a, type: tool, tool_name: shared}\n"
                "  - {id: b, type: tool, tool_name: only2}\n");
  def = ice__wf_tool_def(wf, "mine", &dir);
  th_assert_json(json_object_get(def, "command"), "[\"echo\",\"wf\"]");
  assert_string_equal(dir, ".");
  def = ice__wf_tool_def(wf, "shared", &dir);
  th_assert_json(json_object_get(def, "command"), "[\"echo\",\"one\"]");
  assert_string_equal(dir, dir1);
  def = ice__wf_tool_def(wf, "only2", &dir);
  th_assert_json(json_object_get(def, "command"), "[\"echo\",\"two\"]");
  assert_string_equal(dir, g_dir);
  assert_null(ice__wf_tool_def(wf, "echo", NULL)); /* built-in: next step */
  def = ice__wf_agent_def(wf, "helper", &dir);
  th_assert_json(def, "{\"system_prompt\":\"own\"}");
  ice_workflow_free(wf);
  wf = th_wf(e, "nodes: [{id: a, type: tool, tool_name: echo}]\n");
  def = ice__wf_agent_def(wf, "helper", &dir);
  th_assert_json(def, "{\"system_prompt\":\"hi\"}");
  assert_string_equal(dir, dir1);
  assert_null(ice__wf_agent_def(wf, "nobody", NULL));
  ice_workflow_free(wf);
  /* What a store records: absolute paths and the text, in order. */
  files = ice_engine_tool_files(e);
  assert_int_equal(json_array_size(files), 2);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(files, 0), "path")),
      path1);
  want(json_string_value(json_object_get(json_array_get(files, 0), "content")),
       "agents:\n  helper: {system_prompt: hi}\n");
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(files, 1), "path")),
      path2);
  json_decref(files);
  done_engine(e);
}

/* A process tool from a tool file runs in that file's directory; a
 * relative path given to the engine is made absolute. */
static void test_tool_file_runs_in_its_directory(void **state) {
  ice_engine_t *e = mk();
  ice_diags_t d = {0};
  char cwd[256], want_dir[300], *real;
  json_t *res, *out;

  (void)state;
  assert_non_null(getcwd(cwd, sizeof(cwd)));
  write_file("t.yaml", "tools:\n"
                       "  here: {command: [sh, -c, 'cat >/dev/null; printf "
                       "\"{\\\"cwd\\\": \\\"%s\\\"}\" \"$(pwd -P)\"']}\n");
  assert_int_equal(chdir(g_dir), 0);
  assert_int_equal(ice_engine_add_tool_file(e, "t.yaml", &d), 0);
  assert_int_equal(chdir("/"), 0);
  res =
      th_run_wf(e, th_wf(e, "nodes: [{id: a, type: tool, tool_name: here}]\n"),
                NULL, 0, NULL);
  assert_int_equal(chdir(cwd), 0);
  out = json_object_get(json_object_get(res, "output"), "a");
  real = realpath(g_dir, NULL);
  snprintf(want_dir, sizeof(want_dir), "{\"cwd\":\"%s\"}", real);
  th_assert_json(out, want_dir);
  free(real);
  json_decref(res);
  done_engine(e);
}

static void test_tool_file_problems(void **state) {
  ice_engine_t *e = mk();
  ice_diags_t d = {0};
  json_t *files;
  const char *p;
  char *m;

  (void)state;
  p = write_file("bad.yaml", "tools:\n"
                             "  t: {command: [sh], colour: red}\n"
                             "  u: 5\n"
                             "agents: {a: [1]}\n"
                             "nodes: []\n");
  assert_int_equal(ice_engine_add_tool_file(e, p, &d), ICE_EWORKFLOW);
  m = joined(&d);
  want(m, "bad.yaml:2:22: error: tools.t: unknown field 'colour'");
  want(m, "bad.yaml:3:3: error: tools.u must be an object");
  want(m, "bad.yaml:4:10: error: agents.a must be an object");
  want(m, "bad.yaml:5:1: error: unknown field 'nodes' at the top level of a "
          "tool file");
  free(m);
  ice_diags_free(&d);
  /* An iceOS plugin manifest: one message, at schema_version. */
  p = write_file("plugins.v0.yaml", "kind: x\n"
                                    "schema_version: plugins.v0\n"
                                    "components: []\n");
  assert_int_equal(ice_engine_add_tool_file(e, p, &d), ICE_EWORKFLOW);
  assert_int_equal(d.count, 1);
  m = joined(&d);
  want(m, "plugins.v0.yaml:2:1: error: this is an iceOS plugin manifest "
          "(schema_version: plugins.v0)");
  want(m, "Python components");
  want(m, "process tool");
  free(m);
  ice_diags_free(&d);
  /* Syntax, shape, a file that is not there. */
  assert_int_equal(
      ice_engine_add_tool_text(e, "s.json", "{\"tools\": ", 10, &d),
      ICE_EWORKFLOW);
  assert_int_equal(ice_engine_add_tool_text(e, "s.yaml", "- 1\n", 4, &d),
                   ICE_EWORKFLOW);
  m = joined(&d);
  want(m, "s.json:2:1: error: JSON syntax error");
  want(m, "s.yaml:1:1: error: a tool file must be an object");
  free(m);
  ice_diags_free(&d);
  assert_int_equal(ice_engine_add_tool_file(e, "/nonexistent/t.yaml", &d),
                   ICE_ENOENT);
  m = joined(&d);
  want(m, "/nonexistent/t.yaml: error: cannot read the tool file: No such "
          "file or directory");
  free(m);
  ice_diags_free(&d);
  assert_int_equal(ice_engine_add_tool_file(NULL, "x", NULL), ICE_EINVAL);
  /* None of them was kept. */
  files = ice_engine_tool_files(e);
  th_assert_json(files, "[]");
  json_decref(files);
  done_engine(e);
}

/* ---- the store ----------------------------------------------------------- */

static void test_store_keeps_tool_files(void **state) {
  ice_store_t *s = NULL;
  json_t *tools = th_json("[{\"path\": \"/x/t.yaml\", \"content\": \"tools: "
                          "{}\\n\"}]"),
         *rec = NULL;
  char path[128], msg[512] = "";

  (void)state;
  snprintf(path, sizeof(path), "%s/runs.db", g_dir);
  if (ice_store_open(&s, path, msg, sizeof(msg)) != 0)
    fail_msg("%s", msg);
  assert_int_equal(ice_store_begin_tools(s, "r1", "w", "/w.yaml", "h", NULL,
                                         tools, msg, sizeof(msg)),
                   0);
  assert_int_equal(
      ice_store_begin(s, "r2", "w", "/w.yaml", "h", NULL, msg, sizeof(msg)), 0);
  assert_int_equal(ice_store_load(s, "r1", &rec, msg, sizeof(msg)), 0);
  th_assert_json(json_object_get(rec, "tools"),
                 "[{\"path\":\"/x/t.yaml\","
                 "\"content\":\"tools: {}\\n\"}]");
  json_decref(rec);
  /* Resumed without tool files given: the row keeps its own. */
  assert_int_equal(
      ice_store_begin(s, "r1", "w", "/w.yaml", "h", NULL, msg, sizeof(msg)), 0);
  assert_int_equal(ice_store_load(s, "r1", &rec, msg, sizeof(msg)), 0);
  assert_int_equal(json_array_size(json_object_get(rec, "tools")), 1);
  json_decref(rec);
  assert_int_equal(ice_store_load(s, "r2", &rec, msg, sizeof(msg)), 0);
  assert_true(json_is_null(json_object_get(rec, "tools")));
  json_decref(rec);
  assert_int_equal(ice_store_close(s, msg, sizeof(msg)), 0);
  json_decref(tools);
}

/* A store of schema version 1 (before tool files) is migrated in place:
 * its runs stay readable, and new runs record their tool files. */
static void test_store_migrates_version_1(void **state) {
  static const char *const v1 =
      "CREATE TABLE runs (run_id TEXT PRIMARY KEY, workflow TEXT, path TEXT,"
      " hash TEXT, inputs TEXT, status TEXT NOT NULL, started TEXT,"
      " finished TEXT, result TEXT, owner_pid INTEGER, owner_start INTEGER);"
      "CREATE INDEX runs_started ON runs(started);"
      "CREATE TABLE records (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL,"
      " key TEXT NOT NULL, change TEXT NOT NULL, seq INTEGER,"
      " body TEXT NOT NULL);"
      "CREATE INDEX records_run ON records(run_id, seq);"
      "CREATE TABLE events (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL,"
      " seq INTEGER, type TEXT, body TEXT NOT NULL);"
      "CREATE INDEX events_run ON events(run_id, seq);"
      "CREATE TABLE cache (key TEXT PRIMARY KEY, output TEXT NOT NULL,"
      " at_ms INTEGER NOT NULL);"
      "INSERT INTO runs(run_id, workflow, status, started) VALUES('old', 'w',"
      " 'completed', '2026-01-01T00:00:00.000Z');"
      "PRAGMA user_version = 1;";
  ice_store_t *s = NULL;
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  json_t *rec = NULL, *tools = th_json("[]");
  char path[128], msg[512] = "";

  (void)state;
  snprintf(path, sizeof(path), "%s/v1.db", g_dir);
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, v1, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  if (ice_store_open(&s, path, msg, sizeof(msg)) != 0)
    fail_msg("%s", msg);
  assert_int_equal(ice_store_load(s, "old", &rec, msg, sizeof(msg)), 0);
  th_assert_json(json_object_get(rec, "status"), "\"completed\"");
  assert_true(json_is_null(json_object_get(rec, "tools")));
  json_decref(rec);
  assert_int_equal(ice_store_begin_tools(s, "new", "w", "/w.yaml", "h", NULL,
                                         tools, msg, sizeof(msg)),
                   0);
  assert_int_equal(ice_store_load(s, "new", &rec, msg, sizeof(msg)), 0);
  th_assert_json(json_object_get(rec, "tools"), "[]");
  json_decref(rec);
  assert_int_equal(ice_store_close(s, msg, sizeof(msg)), 0);
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL),
                   SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(st, 0), 2);
  sqlite3_finalize(st);
  sqlite3_close(db);
  json_decref(tools);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_expr_reads),
      cmocka_unit_test(test_inputs_checked_at_run_creation),
      cmocka_unit_test(test_inputs_shape),
      cmocka_unit_test(test_inputs_declared_only),
      cmocka_unit_test(test_outputs_rendered),
      cmocka_unit_test(test_outputs_failing),
      cmocka_unit_test(test_outputs_compile_errors),
      cmocka_unit_test(test_outputs_of_a_restored_run),
      cmocka_unit_test(test_tool_files_lookup),
      cmocka_unit_test(test_tool_file_runs_in_its_directory),
      cmocka_unit_test(test_tool_file_problems),
      cmocka_unit_test(test_store_keeps_tool_files),
      cmocka_unit_test(test_store_migrates_version_1),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
