/* The streamed load of JSON workflow files (load_stream.c), tested by what
 * a user sees, not by how it is done: ice_workflow_parse / _load of JSON
 * text stream the nodes; ice_workflow_from_json never does, and
 * ice_workflow_parse with is_yaml=1 (JSON is YAML) always takes the
 * positions path. So each test loads the same document two or three ways
 * and wants the same runs, diagnostics, task configs and graphs. */
#include "helpers.h"

#include "workflow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a private directory for workflow files ---- */

static char dir[64];

static int setup(void **state) {
  (void)state;
  return th_tmpdir(dir, sizeof(dir), "stream");
}

static int teardown(void **state) {
  (void)state;
  return th_rmtree(dir);
}

/* ---- engines, with C tools a test can look through ---- */

/* "cfg": completes with the node's config as ice_task_config gives it
 * (asked twice: the same object must come back both times), its rendered
 * args, and whether the two calls agreed. */
static void cfg_start(ice_task_t *t, json_t *args, void *data) {
  json_t *c1 = ice_task_config(t), *c2 = ice_task_config(t);

  (void)data;
  if (c1 == NULL) {
    ice_task_fail(t, "tool_error", "ice_task_config gave NULL");
    return;
  }
  ice_task_done(t, json_pack("{s:O,s:O,s:b}", "config", c1, "args", args,
                             "same", c1 == c2));
}

/* "add": {a, b} -> {sum}; a C tool a file's `tools` can wrap too. */
static void add_start(ice_task_t *t, json_t *args, void *data) {
  (void)data;
  ice_task_done(t,
                json_pack("{s:I}", "sum",
                          json_integer_value(json_object_get(args, "a")) +
                              json_integer_value(json_object_get(args, "b"))));
}

static ice_engine_t *mk(void) {
  ice_engine_t *e = NULL;
  ice_tool_t cfg = {"cfg", cfg_start, NULL, NULL};
  ice_tool_t add = {"add", add_start, NULL, NULL};

  assert_int_equal(ice_engine_new(&e, NULL, NULL), 0);
  assert_int_equal(ice_register_tool(e, &cfg), 0);
  assert_int_equal(ice_register_tool(e, &add), 0);
  return e;
}

static void done(ice_engine_t *e) {
  assert_int_equal(ice_engine_free(e), 0);
}

/* ---- loading three ways ---- */

static void print_diags(const ice_diags_t *d) {
  for (size_t i = 0; i < d->count; i++) {
    char *s = ice_diag_format(&d->items[i]);
    fprintf(stderr, "  %s\n", s);
    free(s);
  }
}

/* The JSON text through ice_workflow_parse: the streamed path. */
static ice_workflow_t *load_text(ice_engine_t *e, const char *text) {
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};

  if (ice_workflow_parse(e, "wf.json", text, strlen(text), 0, &wf, &d) != 0) {
    print_diags(&d);
    fail_msg("streamed load refused:\n%s", text);
  }
  /* A valid file that gives a warning is not streamed: none expected. */
  assert_int_equal(d.count, 0);
  ice_diags_free(&d);
  return wf;
}

/* The same text written to DIR/wf.json and read by ice_workflow_load,
 * which streams too (a file read, then parsed). */
static ice_workflow_t *load_file(ice_engine_t *e, const char *text) {
  char path[128];
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};
  FILE *f;

  snprintf(path, sizeof(path), "%s/wf.json", dir);
  f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  assert_int_equal(fclose(f), 0);
  if (ice_workflow_load(e, path, &wf, &d) != 0) {
    print_diags(&d);
    fail_msg("file load refused:\n%s", text);
  }
  ice_diags_free(&d);
  return wf;
}

/* The document built in C: never streamed, the reference. */
static ice_workflow_t *load_doc(ice_engine_t *e, const char *text) {
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};
  json_t *doc = th_json(text);

  if (ice_workflow_from_json(e, "wf.json", doc, &wf, &d) != 0) {
    print_diags(&d);
    fail_msg("from_json refused:\n%s", text);
  }
  ice_diags_free(&d);
  json_decref(doc);
  return wf;
}

/* ---- comparing runs ---- */

/* v without what differs from run to run: run_id and every timing
 * (duration_ms, *_ms, timestamps). */
static void strip_times(json_t *v) {
  const char *k;
  json_t *x;
  void *tmp;
  size_t i;

  if (json_is_array(v)) {
    json_array_foreach(v, i, x) {
      strip_times(x);
    }
    return;
  }
  json_object_foreach_safe(v, tmp, k, x) {
    size_t n = strlen(k);
    if (strcmp(k, "run_id") == 0 || strcmp(k, "ts") == 0 ||
        (n > 3 && strcmp(k + n - 3, "_ms") == 0) ||
        (n > 3 && strcmp(k + n - 3, "_at") == 0))
      json_object_del(v, k);
    else
      strip_times(x);
  }
}

static json_t *run(ice_engine_t *e, ice_workflow_t *wf, json_t *inputs) {
  json_t *res = th_run_wf(e, wf, inputs, 0, NULL);

  strip_times(res);
  return res;
}

static void want_equal(json_t *got, json_t *want, const char *what) {
  if (!json_equal(got, want)) {
    char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
    char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
    fprintf(stderr, "%s differ:\n  got:  %s\n  want: %s\n", what, g, w);
    free(g);
    free(w);
    fail();
  }
}

/* Runs text loaded the three ways (each on an engine of its own) with
 * inputs (borrowed, may be NULL) and wants the same result. Returns the
 * streamed run's result (timings removed; caller decrefs) for the test's
 * own checks, so that a result the two paths get equally wrong is
 * caught too. */
static json_t *same_runs(const char *text, json_t *inputs) {
  ice_engine_t *e1 = mk(), *e2 = mk(), *e3 = mk();
  json_t *streamed = run(e1, load_text(e1, text), inputs);
  json_t *file = run(e2, load_file(e2, text), inputs);
  json_t *ref = run(e3, load_doc(e3, text), inputs);

  want_equal(streamed, ref, "results (parse vs from_json)");
  want_equal(file, ref, "results (load vs from_json)");
  json_decref(file);
  json_decref(ref);
  done(e1);
  done(e2);
  done(e3);
  return streamed;
}

static void want_status(json_t *res, const char *status) {
  const char *s = json_string_value(json_object_get(res, "status"));

  if (s == NULL || strcmp(s, status) != 0) {
    char *t = json_dumps(res, JSON_COMPACT);
    fail_msg("status %s, expected %s: %s", s ? s : "?", status, t);
  }
}

/* ---- 1. the same result both ways ---- */

/* Only plain tool nodes: every one of them is compiled as it is read. */
static void test_same_chain(void **state) {
  json_t *res;

  (void)state;
  res = same_runs(
      "{\"name\": \"chain\", \"nodes\": [\n"
      " {\"id\": \"a\", \"type\": \"tool\", \"tool_name\": \"echo\","
      "  \"tool_args\": {\"v\": 1, \"s\": \"x\", \"n\": null, \"l\": [1, "
      "2]}},\n"
      " {\"id\": \"b\", \"type\": \"tool\", \"tool_name\": \"echo\","
      "  \"tool_args\": {\"v\": \"{{ a.v + 1 }}\"}, \"dependencies\": "
      "[\"a\"]},\n"
      " {\"id\": \"c\", \"type\": \"tool\", \"tool_name\": \"echo\","
      "  \"dependencies\": [\"b\"], \"tool_args\": {\"v\": \"{{ b.v * 10 }}\","
      "  \"t\": \"b was {{ b.v }}\"}}\n"
      "]}\n",
      NULL);
  want_status(res, "completed");
  th_assert_json(json_object_get(res, "output"),
                 "{\"a\":{\"v\":1,\"s\":\"x\",\"n\":null,\"l\":[1,2]},"
                 "\"b\":{\"v\":2},\"c\":{\"v\":20,\"t\":\"b was 2\"}}");
  json_decref(res);
}

/* Fan-out / fan-in with templates, dependencies repeated and out of
 * order, and an empty dependency list. */
static const char *const fan_doc =
    "{\"nodes\": [\n"
    " {\"id\": \"n1\", \"type\": \"tool\", \"tool_name\": \"echo\","
    "  \"tool_args\": {\"x\": 3}, \"dependencies\": []},\n"
    " {\"id\": \"l\", \"type\": \"tool\", \"tool_name\": \"echo\","
    "  \"tool_args\": {\"x\": \"{{ n1.x }}\"}, \"dependencies\": [\"n1\"]},\n"
    " {\"id\": \"r\", \"type\": \"tool\", \"tool_name\": \"add\","
    "  \"tool_args\": {\"a\": \"{{ n1.x }}\", \"b\": 4},"
    "  \"dependencies\": [\"n1\", \"n1\"]},\n"
    " {\"id\": \"j\", \"type\": \"tool\", \"tool_name\": \"add\","
    "  \"tool_args\": {\"a\": \"{{ l.x }}\", \"b\": \"{{ r.sum }}\"},"
    "  \"dependencies\": [\"r\", \"l\", \"r\", \"n1\"]}\n"
    "]}\n";

static void test_same_fan(void **state) {
  json_t *res;

  (void)state;
  res = same_runs(fan_doc, NULL);
  want_status(res, "completed");
  th_assert_json(json_object_get(json_object_get(res, "output"), "j"),
                 "{\"sum\":10}");
  json_decref(res);
}

/* A dependency on a later node (not plain: graph.c resolves it) between
 * plain ones, and a node that depends on it. */
static void test_same_forward_ref(void **state) {
  json_t *res;

  (void)state;
  res = same_runs(
      "{\"nodes\": [\n"
      " {\"id\": \"a\", \"type\": \"tool\", \"tool_name\": \"echo\","
      "  \"tool_args\": {\"v\": 1}},\n"
      " {\"id\": \"late\", \"type\": \"tool\", \"tool_name\": \"echo\","
      "  \"tool_args\": {\"v\": \"{{ z.v + a.v }}\"},"
      "  \"dependencies\": [\"z\", \"a\"]},\n"
      " {\"id\": \"z\", \"type\": \"tool\", \"tool_name\": \"echo\","
      "  \"tool_args\": {\"v\": 5}, \"dependencies\": [\"a\"]},\n"
      " {\"id\": \"end\", \"type\": \"tool\", \"tool_name\": \"echo\","
      "  \"tool_args\": {\"v\": \"{{ late.v }}\"}, \"dependencies\": "
      "[\"late\"]}\n"
      "]}\n",
      NULL);
  want_status(res, "completed");
  th_assert_json(json_object_get(json_object_get(res, "output"), "end"),
                 "{\"v\":6}");
  json_decref(res);
}

/* Plain nodes around every kind of node that keeps its object: a loop
 * with a nested body, a condition, a parallel, run_if, retries,
 * input_mappings, null optional fields, x- fields. A plain node after
 * them depends on them (ids from nested lists, resolved after the
 * stream). */
static const char *const mixed_doc =
    "{\"name\": \"mixed\", \"max_parallel\": 3, \"nodes\": [\n"
    " {\"id\": \"src\", \"type\": \"tool\", \"tool_name\": \"echo\","
    "  \"tool_args\": {\"items\": [1, 2, 3], \"flag\": true}},\n"
    " {\"id\": \"each\", \"type\": \"loop\", \"dependencies\": [\"src\"],"
    "  \"items_source\": \"src.items\", \"item_var\": \"it\", \"body\": [\n"
    "   {\"id\": \"sq\", \"type\": \"tool\", \"tool_name\": \"add\","
    "    \"tool_args\": {\"a\": \"{{ it }}\", \"b\": \"{{ it }}\"}}]},\n"
    " {\"id\": \"pick\", \"type\": \"condition\", \"dependencies\": [\"src\"],"
    "  \"expression\": \"src.flag\", \"true_path\": [\n"
    "   {\"id\": \"yes\", \"type\": \"tool\", \"tool_name\": \"echo\","
    "    \"tool_args\": {\"b\": \"yes\"}}],"
    "  \"false_path\": [\n"
    "   {\"id\": \"no\", \"type\": \"tool\", \"tool_name\": \"echo\","
    "    \"tool_args\": {\"b\": \"no\"}}]},\n"
    " {\"id\": \"par\", \"type\": \"parallel\", \"branches\": [\n"
    "   [{\"id\": \"p1\", \"type\": \"tool\", \"tool_name\": \"echo\","
    "     \"tool_args\": {\"p\": 1}}],\n"
    "   [{\"id\": \"p2\", \"type\": \"tool\", \"tool_name\": \"echo\","
    "     \"tool_args\": {\"p\": 2}}]]},\n"
    " {\"id\": \"gated\", \"type\": \"tool\", \"tool_name\": \"echo\","
    "  \"tool_args\": {}, \"dependencies\": [\"src\"],"
    "  \"run_if\": \"not src.flag\"},\n"
    " {\"id\": \"retried\", \"type\": \"tool\", \"tool_name\": \"echo\","
    "  \"tool_args\": {\"r\": 1}, \"retries\": 2},\n"
    " {\"id\": \"mapped\", \"type\": \"tool\", \"tool_name\": \"echo\","
    "  \"dependencies\": [\"src\"], \"tool_args\": {\"m\": \"{{ first }}\"},"
    "  \"input_mappings\": {\"first\": {\"source_node_id\": \"src\","
    "   \"source_output_key\": \"items.0\"}}},\n"
    " {\"id\": \"nulls\", \"type\": \"tool\", \"tool_name\": \"echo\","
    "  \"tool_args\": {\"k\": 1}, \"run_if\": null, \"retry_policy\": null,"
    "  \"dependencies\": null},\n"
    " {\"id\": \"xf\", \"type\": \"tool\", \"tool_name\": \"echo\","
    "  \"tool_args\": {\"k\": 2}, \"x-note\": {\"any\": [1]}},\n"
    " {\"id\": \"named\", \"type\": \"tool\", \"tool_name\": \"echo\","
    "  \"name\": \"a name\", \"tool_args\": {\"k\": 3}},\n"
    " {\"id\": \"fin\", \"type\": \"tool\", \"tool_name\": \"echo\","
    "  \"dependencies\": [\"each\", \"pick\", \"par\", \"mapped\", \"nulls\"],"
    "  \"tool_args\": {\"sq\": \"{{ each }}\", \"m\": \"{{ mapped.m }}\","
    "   \"br\": \"{{ pick.branch_outputs.yes.b }}\"}}\n"
    "]}\n";

static void test_same_mixed(void **state) {
  json_t *res, *fin;

  (void)state;
  res = same_runs(mixed_doc, NULL);
  want_status(res, "completed");
  th_want_node(res, "gated", "skipped", "run_if");
  fin = json_object_get(json_object_get(res, "output"), "fin");
  th_assert_json(fin, "{\"sq\":[{\"sum\":2},{\"sum\":4},{\"sum\":6}],"
                      "\"m\":1,\"br\":\"yes\"}");
  json_decref(res);
}

/* A member after "nodes" (the stream gives the file up to the
 * whole-document path): `tools` there must still define the tool the
 * nodes use, and `name` name the run. */
static void test_same_member_after_nodes(void **state) {
  json_t *res;

  (void)state;
  res = same_runs("{\"nodes\": [\n"
                  " {\"id\": \"a\", \"type\": \"tool\", \"tool_name\": \"one\","
                  "  \"tool_args\": {}},\n"
                  " {\"id\": \"b\", \"type\": \"tool\", \"tool_name\": \"add\","
                  "  \"tool_args\": {\"a\": \"{{ a.e }}\", \"b\": 2},"
                  "  \"dependencies\": [\"a\"]}\n"
                  "], \"name\": \"after\","
                  " \"tools\": {\"one\": {\"command\": [\"/bin/echo\", "
                  "\"{\\\"e\\\": 1}\"]}}}\n",
                  NULL);
  want_status(res, "completed");
  th_assert_json(json_object_get(res, "workflow"), "\"after\"");
  th_assert_json(json_object_get(res, "output"),
                 "{\"a\":{\"e\":1},\"b\":{\"sum\":3}}");
  json_decref(res);
}

/* "nodes" keys below the top level (in metadata, an x- field, a tool
 * node's tool_args) are not the workflow's nodes. */
static void test_same_nested_nodes_keys(void **state) {
  json_t *res;

  (void)state;
  res = same_runs(
      "{\"metadata\": {\"nodes\": [{\"id\": \"zz\", \"type\": \"tool\","
      "  \"tool_name\": \"echo\", \"tool_args\": {}}]},"
      " \"x-more\": {\"nodes\": [1]},\n"
      " \"nodes\": [\n"
      " {\"id\": \"a\", \"type\": \"tool\", \"tool_name\": \"echo\","
      "  \"tool_args\": {\"nodes\": [1, {\"id\": \"q\"}]}}\n"
      "]}\n",
      NULL);
  want_status(res, "completed");
  th_assert_json(json_object_get(res, "output"),
                 "{\"a\":{\"nodes\":[1,{\"id\":\"q\"}]}}");
  json_decref(res);
}

/* Plain nodes written every way JSON allows: fields in any order, tabs
 * and CR LF, escapes in strings, numbers of every form (an integer stays
 * an integer and a real a real), empty containers, deep values. */
static void test_same_text_forms(void **state) {
  json_t *res, *want;

  (void)state;
  res = same_runs(
      "{\r\n\t\"nodes\"\t:\t[\r\n"
      "\t{\"tool_args\": {\"s\": \"q\\\"b\\\\s\\/n\\nt\\tu\\u00e9\","
      "  \"e\": \"\", \"o\": {}, \"l\": [], \"t\": true, \"f\": false,"
      "  \"z\": null, \"i\": -0, \"r\": -0.0, \"x\": 1E-2, \"y\": 2e+3,"
      "  \"big\": 9223372036854775807, \"neg\": -9223372036854775808,"
      "  \"odd\": 9007199254740993, \"d\": 0.1, \"one\": 1.0,"
      "  \"deep\": [[[[[[[[[[{\"k\": [1]}]]]]]]]]]]},"
      " \"tool_name\": \"echo\", \"type\": \"tool\", \"id\": \"a\"},\r\n"
      "\t{ \"dependencies\" : [ \"a\" ] , \"id\" : \"b\" , \"tool_args\" : "
      "{ \"v\" : \"{{ a.s }}|{{ a.big }}|{{ a.one }}\" } , \"type\" : "
      "\"tool\" , \"tool_name\" : \"echo\" }\r\n"
      "]}\r\n",
      NULL);
  want_status(res, "completed");
  want = th_json(
      "{\"s\": \"q\\\"b\\\\s/n\\nt\\tu\\u00e9\", \"e\": \"\", \"o\": {},"
      " \"l\": [], \"t\": true, \"f\": false, \"z\": null, \"i\": 0,"
      " \"r\": -0.0, \"x\": 0.01, \"y\": 2000.0,"
      " \"big\": 9223372036854775807, \"neg\": -9223372036854775808,"
      " \"odd\": 9007199254740993, \"d\": 0.1, \"one\": 1.0,"
      " \"deep\": [[[[[[[[[[{\"k\": [1]}]]]]]]]]]]}");
  want_equal(json_object_get(json_object_get(res, "output"), "a"), want,
             "output of a");
  json_decref(want);
  json_decref(res);
}

/* Escapes in a plain node's tool_name and type. */
static void test_same_escaped_names(void **state) {
  json_t *res;

  (void)state;
  res = same_runs("{\"nodes\": [\n"
                  " {\"id\": \"a\", \"type\": \"to\\u006fl\", \"tool_name\": "
                  "\"ec\\u0068o\", \"tool_args\": {\"v\": 1}},\n"
                  " {\"id\": \"b\", \"type\": \"tool\", \"tool_name\": "
                  "\"\\u0061dd\", \"tool_args\": {\"a\": 1, \"b\": 2}}\n"
                  "]}\n",
                  NULL);
  want_status(res, "completed");
  th_assert_json(json_object_get(res, "output"),
                 "{\"a\":{\"v\":1},\"b\":{\"sum\":3}}");
  json_decref(res);
}

/* \u escapes (the quick reader gives up): in an id, a dependency, a
 * template and a value. */
static void test_same_unicode_escapes(void **state) {
  json_t *res;

  (void)state;
  res = same_runs(
      "{\"nodes\": [\n"
      " {\"id\": \"\\u0061b\", \"type\": \"tool\", \"tool_name\": \"echo\","
      "  \"tool_args\": {\"s\": \"caf\\u00e9 \\ud83d\\ude00\"}},\n"
      " {\"id\": \"c\", \"type\": \"tool\", \"tool_name\": \"echo\","
      "  \"tool_args\": {\"s\": \"{{ \\u0061b.s }}\"},"
      "  \"dependencies\": [\"a\\u0062\"]}\n"
      "]}\n",
      NULL);
  want_status(res, "completed");
  {
    json_t *want = th_json("{\"s\": \"caf\\u00e9 \\ud83d\\ude00\"}");
    want_equal(json_object_get(json_object_get(res, "output"), "c"), want,
               "output of c");
    json_decref(want);
  }
  json_decref(res);
}

/* Tools defined by the file, before "nodes": process tools, used by
 * plain nodes beside an engine-registered C tool. */
static void test_same_file_tools(void **state) {
  json_t *res;

  (void)state;
  res = same_runs(
      "{\"tools\": {\"empty\": {\"command\": [\"/bin/echo\", \"{}\"]},"
      "  \"two\": {\"command\": [\"/bin/echo\", \"{\\\"v\\\": 2}\"]}},\n"
      " \"nodes\": [\n"
      " {\"id\": \"p\", \"type\": \"tool\", \"tool_name\": \"empty\","
      "  \"tool_args\": {}},\n"
      " {\"id\": \"t\", \"type\": \"tool\", \"tool_name\": \"two\","
      "  \"tool_args\": {\"ignored\": true}, \"dependencies\": [\"p\"]},\n"
      " {\"id\": \"q\", \"type\": \"tool\", \"tool_name\": \"add\","
      "  \"tool_args\": {\"a\": 40, \"b\": \"{{ t.v }}\"},"
      "  \"dependencies\": [\"t\"]}\n"
      "]}\n",
      NULL);
  want_status(res, "completed");
  th_assert_json(json_object_get(res, "output"),
                 "{\"p\":{},\"t\":{\"v\":2},\"q\":{\"sum\":42}}");
  json_decref(res);
}

/* A file that declares `inputs` (top-level members read before the first
 * node): run with them, and without (ice_run_new refuses both ways with
 * the same message). */
static const char *const inputs_doc =
    "{\"inputs\": {\"required\": [\"topic\"], \"optional\": [\"n\"]},\n"
    " \"outputs\": {\"line\": \"{{ a.t }}!\", \"n\": \"{{ a.n }}\"},\n"
    " \"nodes\": [\n"
    " {\"id\": \"a\", \"type\": \"tool\", \"tool_name\": \"echo\","
    "  \"tool_args\": {\"t\": \"on {{ topic }}\", \"n\": \"{{ extra }}\"}}\n"
    "]}\n";

static char *run_new_error(ice_engine_t *e, ice_workflow_t *wf,
                           json_t *inputs) {
  ice_run_opts_t o = ICE_RUN_OPTS_INIT;
  ice_run_t *r = NULL;
  ice_diags_t d = {0};
  char *all = calloc(1, 1);
  int rc;

  o.inputs = inputs;
  rc = ice_run_new(e, wf, &o, &r, &d);
  assert_int_not_equal(rc, 0);
  assert_null(r);
  for (size_t i = 0; i < d.count; i++) {
    char *s = ice_diag_format(&d.items[i]);
    all = realloc(all, strlen(all) + strlen(s) + 2);
    strcat(all, s);
    strcat(all, "\n");
    free(s);
  }
  ice_diags_free(&d);
  ice_workflow_free(wf);
  return all;
}

static void test_same_inputs(void **state) {
  json_t *in = th_json("{\"topic\": \"agents\", \"extra\": 7}");
  json_t *bad = th_json("{\"n\": 1}"), *res;
  ice_engine_t *e = mk();
  char *a, *b;

  (void)state;
  res = same_runs(inputs_doc, in);
  want_status(res, "completed");
  /* The run's output is the file's `outputs`, rendered. */
  th_assert_json(json_object_get(res, "output"),
                 "{\"line\":\"on agents!\",\"n\":7}");
  json_decref(res);
  /* Missing required input. */
  a = run_new_error(e, load_text(e, inputs_doc), bad);
  b = run_new_error(e, load_doc(e, inputs_doc), bad);
  assert_string_equal(a, b);
  assert_non_null(strstr(a, "topic"));
  free(a);
  free(b);
  /* An undeclared input no expression reads ("extra" is read; "zzz" is
   * not): refused both ways. */
  json_decref(bad);
  bad = th_json("{\"topic\": \"x\", \"zzz\": 1}");
  a = run_new_error(e, load_text(e, inputs_doc), bad);
  b = run_new_error(e, load_doc(e, inputs_doc), bad);
  assert_string_equal(a, b);
  assert_non_null(strstr(a, "zzz"));
  free(a);
  free(b);
  json_decref(bad);
  json_decref(in);
  done(e);
}

/* A workflow node whose child is a JSON file of plain nodes: the child is
 * streamed too, while the parent's stream is being validated. */
static void put(const char *name, const char *text) {
  char path[128];
  FILE *f;

  snprintf(path, sizeof(path), "%s/%s", dir, name);
  f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  assert_int_equal(fclose(f), 0);
}

static char *parent_doc(const char *child) {
  char *t = NULL;

  assert_true(
      asprintf(
          &t,
          "{\"workflows\": {\"child\": \"%s/%s\"}, \"nodes\": [\n"
          " {\"id\": \"a\", \"type\": \"tool\", \"tool_name\": \"echo\","
          "  \"tool_args\": {\"v\": 5}},\n"
          " {\"id\": \"sub\", \"type\": \"workflow\", \"workflow_ref\": "
          "\"child\", \"dependencies\": [\"a\"],"
          "  \"inputs\": {\"x\": \"{{ a.v }}\"}},\n"
          " {\"id\": \"b\", \"type\": \"tool\", \"tool_name\": \"echo\","
          "  \"tool_args\": {\"w\": \"{{ sub.c2.y }}\"}, \"dependencies\": "
          "[\"sub\"]}\n"
          "]}\n",
          dir, child) > 0);
  return t;
}

static void test_same_subworkflow(void **state) {
  char *t = parent_doc("child.json");
  json_t *res;

  (void)state;
  put("child.json",
      "{\"nodes\": [\n"
      " {\"id\": \"c1\", \"type\": \"tool\", \"tool_name\": \"add\","
      "  \"tool_args\": {\"a\": \"{{ x }}\", \"b\": 1}},\n"
      " {\"id\": \"c2\", \"type\": \"tool\", \"tool_name\": \"echo\","
      "  \"tool_args\": {\"y\": \"{{ c1.sum * 2 }}\"}, \"dependencies\": "
      "[\"c1\"]}\n"
      "]}\n");
  res = same_runs(t, NULL);
  want_status(res, "completed");
  th_assert_json(json_object_get(json_object_get(res, "output"), "b"),
                 "{\"w\":12}");
  json_decref(res);
  free(t);
}

/* ---- 2. diagnostics: what the positions path gives ---- */

typedef struct {
  int rc;
  ice_diags_t d;
} loaded_t;

static loaded_t parse_diags(ice_engine_t *e, const char *text, int is_yaml) {
  loaded_t l = {0, {0}};
  ice_workflow_t *wf = NULL;

  l.rc =
      ice_workflow_parse(e, "wf.json", text, strlen(text), is_yaml, &wf, &l.d);
  ice_workflow_free(wf);
  return l;
}

static void want_same_diags(const loaded_t *got, const loaded_t *want,
                            const char *text) {
  int same = got->rc == want->rc && got->d.count == want->d.count;

  for (size_t i = 0; same && i < got->d.count; i++) {
    const ice_diag_t *g = &got->d.items[i], *w = &want->d.items[i];
    same = g->line == w->line && g->col == w->col &&
           g->severity == w->severity && strcmp(g->message, w->message) == 0 &&
           strcmp(g->file, w->file) == 0;
  }
  if (!same) {
    fprintf(stderr, "JSON (rc %d):\n", got->rc);
    print_diags(&got->d);
    fprintf(stderr, "as YAML (rc %d):\n", want->rc);
    print_diags(&want->d);
    fail_msg("diagnostics differ for:\n%s", text);
  }
}

/* Parses text as JSON and as YAML, wants the same diagnostics, and
 * returns the JSON ones formatted one per line (malloc'd). */
static char *diags_both(ice_engine_t *e, const char *text) {
  loaded_t j = parse_diags(e, text, 0), y = parse_diags(e, text, 1);
  char *all = calloc(1, 1);

  want_same_diags(&j, &y, text);
  for (size_t i = 0; i < j.d.count; i++) {
    char *s = ice_diag_format(&j.d.items[i]);
    all = realloc(all, strlen(all) + strlen(s) + 2);
    strcat(all, s);
    strcat(all, "\n");
    free(s);
  }
  ice_diags_free(&j.d);
  ice_diags_free(&y.d);
  return all;
}

/* "wf.json:LINE:COL" of the last occurrence of needle in text: where a
 * diagnostic about it must point (a quoted scalar's position is its first
 * character inside the quotes). */
static const char *at(const char *text, const char *needle) {
  static char buf[4][64];
  static int k;
  const char *p = NULL, *q = text;
  int line = 1, col = 1;

  while ((q = strstr(q, needle)) != NULL)
    p = q++;
  assert_non_null(p);
  for (q = text; q < p; q++) {
    if (*q == '\n') {
      line++;
      col = 1;
    } else {
      col++;
    }
  }
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof(buf[k]), "wf.json:%d:%d", line, col);
  return buf[k];
}

#define WANT_DIAGS(e, text, expected)                                          \
  do {                                                                         \
    char *got_ = diags_both(e, text);                                          \
    if (strcmp(got_, expected) != 0)                                           \
      fail_msg("got:\n%sexpected:\n%s", got_, expected);                       \
    free(got_);                                                                \
  } while (0)

/* text gives exactly one error, at the last `needle`, saying msg. */
static void want_error(ice_engine_t *e, const char *text, const char *needle,
                       const char *msg) {
  char want[512];

  snprintf(want, sizeof(want), "%s: error: %s\n", at(text, needle), msg);
  WANT_DIAGS(e, text, want);
}

/* Two plain nodes, then the bad one at line 4: the stream has compiled
 * and freed the first ones when it meets the problem. */
#define HEAD                                                                   \
  "{\"nodes\": [\n"                                                            \
  "  {\"id\": \"a\", \"type\": \"tool\", \"tool_name\": \"echo\", "            \
  "\"tool_args\": {}},\n"                                                      \
  "  {\"id\": \"b\", \"type\": \"tool\", \"tool_name\": \"echo\", "            \
  "\"tool_args\": {}, \"dependencies\": [\"a\"]},\n"

static void test_diags_node_errors(void **state) {
  ice_engine_t *e = mk();

  (void)state;
  want_error(e,
             HEAD "  {\"id\": \"c\", \"type\": \"tool\", \"tool_name\": "
                  "\"echo\", \"tool_args\": {}, \"dependencies\": [\"zz\"]}\n"
                  "]}\n",
             "dependencies", "node 'c': unknown dependency 'zz'");
  /* A duplicate of a node the stream already compiled and freed. */
  want_error(e,
             HEAD "  {\"id\": \"a\", \"type\": \"tool\", \"tool_name\": "
                  "\"echo\", \"tool_args\": {}}\n"
                  "]}\n",
             "id\"", "duplicate id 'a'");
  want_error(e,
             HEAD "  {\"id\": \"c\", \"type\": \"tool\", \"tool_name\": "
                  "\"ecko\", \"tool_args\": {}}\n"
                  "]}\n",
             "tool_name\": \"ecko",
             "node 'c': unknown tool 'ecko' (did you mean 'echo'?)");
  want_error(e,
             HEAD "  {\"id\": \"c\", \"type\": \"tool\", \"tool_name\": "
                  "\"echo\", \"tool_args\": [1]}\n"
                  "]}\n",
             "tool_args\": [1]",
             "node 'c': field 'tool_args' must be an object");
  /* A node on itself (a dependency on a node not before it). */
  want_error(e,
             HEAD "  {\"id\": \"c\", \"type\": \"tool\", \"tool_name\": "
                  "\"echo\", \"tool_args\": {}, \"dependencies\": [\"c\"]}\n"
                  "]}\n",
             "dependencies", "node 'c': a node may not depend on itself ('c')");
  /* A bad template in a plain node's tool_args. */
  want_error(e,
             HEAD "  {\"id\": \"c\", \"type\": \"tool\", \"tool_name\": "
                  "\"echo\", \"tool_args\": {\"k\": \"{{ a.v \"}}\n"
                  "]}\n",
             "tool_args\": {\"k",
             "node 'c': tool_args: $.k: unterminated "
             "'{{' (column 1)");
  done(e);
}

/* More problems in a node after streamed ones, each reported once, as
 * the positions path reports it: bad ids, a tool name too long to be
 * read straight, dependencies of the wrong type, a field given twice, a
 * node with no fields, an unknown type. */
static void test_diags_node_errors_more(void **state) {
  static const struct {
    const char *node, *needle, *msg;
  } cases[] = {
      {"{\"id\": \"\", \"type\": \"tool\", \"tool_name\": \"echo\"}",
       "id\": \"\"",
       "node #2: field 'id' must be a string matching "
       "^[A-Za-z_][A-Za-z0-9_-]*$"},
      {"{\"id\": \"9x\", \"type\": \"tool\", \"tool_name\": \"echo\"}",
       "id\": \"9x",
       "node #2: field 'id' must be a string matching "
       "^[A-Za-z_][A-Za-z0-9_-]*$"},
      {"{\"id\": \"b\", \"type\": \"tool\", \"tool_name\": \"echo\", "
       "\"dependencies\": \"a\"}",
       "dependencies", "node 'b': field 'dependencies' must be an array"},
      {"{\"id\": \"b\", \"type\": \"tool\", \"tool_name\": \"echo\", "
       "\"dependencies\": [1]}",
       "dependencies", "node 'b': dependencies[0] must be a node id string"},
      {"{\"id\": \"b\", \"type\": \"tool\", \"tool_name\": \"echo\", "
       "\"dependencies\": [\"a\"], \"id\": \"c\"}",
       "id\": \"c", "duplicate key 'id'"},
      /* On itself, with its dependencies before its id. */
      {"{\"dependencies\": [\"b\"], \"id\": \"b\", \"type\": \"tool\", "
       "\"tool_name\": \"echo\"}",
       "dependencies", "node 'b': a node may not depend on itself ('b')"},
      {"{\"id\": \"b\", \"type\": \"tol\", \"tool_name\": \"echo\"}",
       "type\": \"tol",
       "node 'b': unknown node type 'tol' (did you mean 'tool'?)"},
  };
  ice_engine_t *e = mk();
  char text[1024], want[1024], *got;

  (void)state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    snprintf(text, sizeof(text), "%s%s]}\n",
             "{\"nodes\": [{\"id\": \"a\", \"type\": \"tool\", \"tool_name\": "
             "\"echo\", \"tool_args\": {}},\n",
             cases[i].node);
    snprintf(want, sizeof(want), "%s: error: %s\n", at(text, cases[i].needle),
             cases[i].msg);
    got = diags_both(e, text);
    if (strcmp(got, want) != 0)
      fail_msg("case %zu:\n got: %swant: %s", i, got, want);
    free(got);
  }
  /* A tool name of 300 characters (unknown): one error, at it. */
  {
    char name[301];
    memset(name, 't', 300);
    name[300] = '\0';
    snprintf(text, sizeof(text),
             "{\"nodes\": [{\"id\": \"a\", \"type\": \"tool\", \"tool_name\": "
             "\"echo\", \"tool_args\": {}},\n"
             "{\"id\": \"b\", \"type\": \"tool\", \"tool_name\": \"%s\"}]}\n",
             name);
    got = diags_both(e, text);
    assert_non_null(strstr(got, "error: node 'b': unknown tool 'ttt"));
    assert_non_null(strstr(got, at(text, "tool_name\": \"ttt")));
    assert_ptr_equal(strchr(got, '\n'), got + strlen(got) - 1); /* one */
    free(got);
  }
  /* An empty node object. */
  snprintf(text, sizeof(text), "%s",
           "{\"nodes\": [{\"id\": \"a\", \"type\": \"tool\", \"tool_name\": "
           "\"echo\", \"tool_args\": {}},\n{}]}\n");
  snprintf(want, sizeof(want),
           "%s: error: node #2: missing required field 'id'\n"
           "%s: error: node #2: missing required field 'type'\n",
           at(text, "{}]"), at(text, "{}]"));
  got = diags_both(e, text);
  assert_string_equal(got, want);
  free(got);
  done(e);
}

/* Values nested to the document's limit are read, one level more is
 * refused, the same way the positions path does. */
static void test_diags_depth(void **state) {
  ice_engine_t *e = mk();
  int depth[2] = {252, 253};

  (void)state;
  for (int k = 0; k < 2; k++) {
    char *t = malloc(1024), *got;
    size_t len = 0;
    len += (size_t)snprintf(t, 1024,
                            "{\"nodes\": [{\"id\": \"a\", \"type\": "
                            "\"tool\", \"tool_name\": \"echo\", "
                            "\"tool_args\": {\"d\": ");
    for (int i = 0; i < depth[k]; i++)
      t[len++] = '[';
    for (int i = 0; i < depth[k]; i++)
      t[len++] = ']';
    strcpy(t + len, "}}]}\n");
    got = diags_both(e, t);
    if (k == 0) {
      assert_string_equal(got, "");
      json_decref(same_runs(t, NULL));
    } else {
      assert_non_null(strstr(got, "error: nesting deeper than 256 levels"));
    }
    free(got);
    free(t);
  }
  done(e);
}

/* A keyword id is valid with a warning: the load succeeds (the streamed
 * one gives up at the warning), and the warning has its position. */
static void test_diags_keyword_warning(void **state) {
  ice_engine_t *e = mk();
  const char *text =
      HEAD "  {\"id\": \"and\", \"type\": \"tool\", \"tool_name\": "
           "\"echo\", \"tool_args\": {}, \"dependencies\": [\"b\"]}\n"
           "]}\n";
  char *got = diags_both(e, text), want[512];
  ice_workflow_t *wf = NULL;

  (void)state;
  snprintf(want, sizeof(want),
           "%s: warning: node 'and': id 'and' is a keyword of expressions: "
           "expressions "
           "and templates cannot name it (read its output through "
           "input_mappings, or choose another id)\n",
           at(text, "id\": \"and"));
  assert_string_equal(got, want);
  free(got);
  assert_int_equal(
      ice_workflow_parse(e, "wf.json", text, strlen(text), 0, &wf, NULL), 0);
  ice_workflow_free(wf);
  done(e);
}

/* Syntax and shape errors: a syntax error in a node late in the file
 * (the earlier nodes were streamed), no nodes, nodes not an array. JSON
 * and YAML word syntax errors differently, so that one is a hard
 * expectation. */
static void test_diags_syntax_and_shape(void **state) {
  ice_engine_t *e = mk();
  loaded_t l;
  char *text, *s;
  size_t len = 0, cap = 1 << 16;

  (void)state;
  /* 200 good nodes, then a trailing comma in the last one. */
  text = malloc(cap);
  assert_non_null(text);
  len += (size_t)snprintf(text + len, cap - len, "{\"nodes\": [\n");
  for (int i = 0; i < 200; i++)
    len += (size_t)snprintf(text + len, cap - len,
                            "{\"id\": \"n%d\", \"type\": \"tool\", "
                            "\"tool_name\": \"echo\", \"tool_args\": {}},\n",
                            i);
  snprintf(text + len, cap - len, "{\"id\": \"bad\",}\n]}\n");
  l = parse_diags(e, text, 0);
  assert_int_equal(l.rc, ICE_EWORKFLOW);
  assert_int_equal(l.d.count, 1);
  s = ice_diag_format(&l.d.items[0]);
  {
    char want[256];
    snprintf(want, sizeof(want),
             "%s: error: JSON syntax error: JSON disallows trailing comma "
             "before closing brace",
             at(text, ",}"));
    assert_string_equal(s, want);
  }
  free(s);
  ice_diags_free(&l.d);
  free(text);

  want_error(e, "{\"name\": \"x\",\n \"nodes\": []}\n", "nodes",
             "'nodes' must hold at least one node");
  want_error(e, "{\"name\": \"x\",\n \"nodes\": {\"a\": 1}}\n", "{\"a",
             "'nodes' must be an array of nodes");
  {
    const char *t = "{\"nodes\": [1, {\"id\": \"a\"}]}\n";
    char want[256];
    snprintf(want, sizeof(want),
             "%s: error: nodes[0] must be a node object\n"
             "%s: error: node 'a': missing required field 'type'\n",
             at(t, "1,"), at(t, "{\"id"));
    WANT_DIAGS(e, t, want);
  }
  /* A top-level problem before "nodes" (checked at the first node). */
  want_error(e,
             "{\"max_parallel\": 0,\n \"nodes\": [{\"id\": \"a\", "
             "\"type\": \"tool\", \"tool_name\": \"echo\"}]}\n",
             "max_parallel", "max_parallel must be an integer >= 1");
  done(e);
}

/* A child file's problems, reported under the child's name, the same
 * whether the parent is read as JSON (streamed) or as YAML: an error, and
 * a warning alone (the parent is then valid). */
static void test_diags_subworkflow(void **state) {
  ice_engine_t *e = mk();
  char *t, *got;

  (void)state;
  put("bad.json",
      "{\"nodes\": [\n"
      " {\"id\": \"c1\", \"type\": \"tool\", \"tool_name\": \"echo\","
      "  \"tool_args\": {}, \"dependencies\": [\"nope\"]}\n"
      "]}\n");
  t = parent_doc("bad.json");
  got = diags_both(e, t);
  assert_non_null(strstr(got, "is not a valid workflow"));
  assert_non_null(strstr(got, "bad.json:2:"));
  assert_non_null(strstr(got, "unknown dependency 'nope'"));
  free(got);
  free(t);
  put("warn.json",
      "{\"nodes\": [\n"
      " {\"id\": \"c2\", \"type\": \"tool\", \"tool_name\": \"echo\","
      "  \"tool_args\": {\"y\": 1}},\n"
      " {\"id\": \"or\", \"type\": \"tool\", \"tool_name\": \"echo\","
      "  \"tool_args\": {}}\n"
      "]}\n");
  t = parent_doc("warn.json");
  got = diags_both(e, t);
  assert_non_null(strstr(got, "warn.json:3:"));
  assert_non_null(strstr(got, "warning: node 'or': id 'or' is a keyword"));
  assert_null(strstr(got, "error"));
  free(got);
  free(t);
  done(e);
}

/* Text the stream must refuse (it reads it itself): each gives exactly
 * one error, at `needle`. JSON and YAML word these differently, so they
 * are hard expectations. */
static void test_diags_bad_text(void **state) {
#define P                                                                      \
  "{\"id\": \"a\", \"type\": \"tool\", \"tool_name\": \"echo\", "              \
  "\"tool_args\": "                                                            \
  "{}}"
  static const struct {
    const char *text, *needle, *msg;
  } cases[] = {
      /* Text after the document. */
      {"{\"nodes\": [" P "]} x\n", "x\n",
       "JSON syntax error: Invalid JSON plain scalar"},
      /* Duplicate keys: at the top, in a plain node, in its tool_args. */
      {"{\"nodes\": [" P "], \"nodes\": [" P "]}\n", "nodes\": [{\"id",
       "duplicate key 'nodes'"},
      {"{\"nodes\": [{\"id\": \"a\", \"type\": \"tool\", \"tool_name\": "
       "\"echo\", \"tool_args\": {}, \"tool_args\": {}}]}\n",
       "tool_args\": {}}", "duplicate key 'tool_args'"},
      {"{\"nodes\": [" P ", {\"id\": \"b\", \"type\": \"tool\", "
       "\"tool_name\": \"echo\", \"tool_args\": {\"k\": 1, \"k\": 2}}]}\n",
       "k\": 2", "duplicate key 'k'"},
      /* A number out of range in a plain node's tool_args. */
      {"{\"nodes\": [" P ", {\"id\": \"b\", \"type\": \"tool\", "
       "\"tool_name\": \"echo\", \"tool_args\": {\"v\": 1e400}}]}\n",
       "1e400", "number 1e400 is out of range"},
      /* A trailing comma in "nodes", after plain nodes. */
      {"{\"nodes\": [" P ", " P ",]}\n", ",]}",
       "JSON syntax error: JSON disallows trailing comma before closing "
       "bracket"},
  };
#undef P
  ice_engine_t *e = mk();

  (void)state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    loaded_t l = parse_diags(e, cases[i].text, 0);
    char want[256], *got;
    assert_int_equal(l.rc, ICE_EWORKFLOW);
    if (l.d.count != 1) {
      print_diags(&l.d);
      fail_msg("case %zu: %zu diagnostics", i, l.d.count);
    }
    got = ice_diag_format(&l.d.items[0]);
    snprintf(want, sizeof(want), "%s: error: %s",
             at(cases[i].text, cases[i].needle), cases[i].msg);
    if (strcmp(got, want) != 0)
      fail_msg("case %zu:\n got: %s\nwant: %s", i, got, want);
    free(got);
    ice_diags_free(&l.d);
  }
  done(e);
}

/* ---- 3. ice_task_config on a streamed plain node ---- */

/* cfg nodes: one with nulls and nesting in tool_args, one with a template
 * and dependencies, one without tool_args (the default {}). */
static const char *const cfg_doc =
    "{\"nodes\": [\n"
    " {\"id\": \"a\", \"type\": \"tool\", \"tool_name\": \"cfg\","
    "  \"tool_args\": {\"k\": \"v\", \"nested\": {\"l\": [1, null, \"x\"]},"
    "  \"z\": null}},\n"
    " {\"id\": \"b\", \"type\": \"tool\", \"tool_name\": \"echo\","
    "  \"tool_args\": {}},\n"
    " {\"id\": \"c\", \"type\": \"tool\", \"tool_name\": \"cfg\","
    "  \"tool_args\": {\"t\": \"{{ a.args.k }}\"}, \"dependencies\": [\"a\", "
    "\"b\"]},\n"
    " {\"id\": \"d\", \"type\": \"tool\", \"tool_name\": \"cfg\"}\n"
    "]}\n";

/* Runs wf to the end, keeping our reference to it (th_run_wf drops
 * one), and returns the result (caller decrefs). */
static json_t *run_keep(ice_engine_t *e, ice_workflow_t *wf) {
  ice_run_opts_t o = ICE_RUN_OPTS_INIT;
  ice_run_t *r = NULL;
  json_t *res;

  assert_int_equal(ice_run_new(e, wf, &o, &r, NULL), 0);
  assert_int_equal(ice_run_execute(r), 0);
  res = json_deep_copy(ice_run_result(r));
  assert_non_null(res);
  ice_run_free(r);
  return res;
}

/* The config each cfg node completed with, as a new object id -> config;
 * each must have got the same object from both calls. */
static json_t *configs(ice_engine_t *e, ice_workflow_t *wf) {
  json_t *res = run_keep(e, wf), *out = json_object(), *o;
  const char *id;

  want_status(res, "completed");
  json_object_foreach(json_object_get(res, "output"), id, o) {
    if (json_object_get(o, "config") == NULL)
      continue;
    if (!json_is_true(json_object_get(o, "same")))
      fail_msg("node %s: ice_task_config gave two objects", id);
    json_object_set(out, id, json_object_get(o, "config"));
  }
  json_decref(res);
  return out;
}

/* What the file says, field by field, and what from_json's node gives. */
static void test_task_config(void **state) {
  ice_engine_t *e = mk();
  ice_workflow_t *ws = load_text(e, cfg_doc), *wr = load_doc(e, cfg_doc);
  json_t *s = configs(e, ws), *r = configs(e, wr);
  json_t *want_a =
      th_json("{\"id\": \"a\", \"type\": \"tool\", \"tool_name\": \"cfg\","
              " \"tool_args\": {\"k\": \"v\", \"nested\": {\"l\": [1, null, "
              "\"x\"]}, \"z\": null}}");
  json_t *want_c =
      th_json("{\"id\": \"c\", \"type\": \"tool\", \"tool_name\": \"cfg\","
              " \"tool_args\": {\"t\": \"{{ a.args.k }}\"},"
              " \"dependencies\": [\"a\", \"b\"]}");

  (void)state;
  want_equal(json_object_get(s, "a"), want_a, "config of a (vs the file)");
  want_equal(json_object_get(s, "c"), want_c, "config of c (vs the file)");
  want_equal(s, r, "task configs");
  json_decref(s);
  json_decref(r);
  /* A second run of the same workflow: the config made again on first
   * use is kept with the workflow, and is the same. */
  s = configs(e, ws);
  want_equal(json_object_get(s, "a"), want_a, "config of a (second run)");
  want_equal(json_object_get(s, "c"), want_c, "config of c (second run)");
  json_decref(s);
  json_decref(want_a);
  json_decref(want_c);
  ice_workflow_free(ws);
  ice_workflow_free(wr);
  done(e);
}

/* Dependencies repeated, out of order or empty in the file: the config
 * is the file's (such a node is not streamed, so nothing is lost), and
 * that of a node whose list was streamed gives it back as written. */
static void test_task_config_deps(void **state) {
  const char *doc =
      "{\"nodes\": [\n"
      " {\"id\": \"a\", \"type\": \"tool\", \"tool_name\": \"echo\","
      "  \"tool_args\": {}},\n"
      " {\"id\": \"b\", \"type\": \"tool\", \"tool_name\": \"echo\","
      "  \"tool_args\": {}},\n"
      " {\"id\": \"c\", \"type\": \"tool\", \"tool_name\": \"cfg\","
      "  \"tool_args\": {}, \"dependencies\": [\"b\", \"a\", \"b\"]},\n"
      " {\"id\": \"d\", \"type\": \"tool\", \"tool_name\": \"cfg\","
      "  \"tool_args\": {}, \"dependencies\": []},\n"
      " {\"id\": \"e\", \"type\": \"tool\", \"tool_name\": \"cfg\","
      "  \"tool_args\": {}, \"dependencies\": [\"a\", \"b\"]}\n"
      "]}\n";
  ice_engine_t *e = mk();
  ice_workflow_t *wf = load_text(e, doc);
  json_t *c = configs(e, wf);

  (void)state;
  th_assert_json(json_object_get(json_object_get(c, "c"), "dependencies"),
                 "[\"b\",\"a\",\"b\"]");
  th_assert_json(json_object_get(json_object_get(c, "d"), "dependencies"),
                 "[]");
  th_assert_json(json_object_get(json_object_get(c, "e"), "dependencies"),
                 "[\"a\",\"b\"]");
  json_decref(c);
  ice_workflow_free(wf);
  done(e);
}

/* The graph of a workflow whose configs were made again is unchanged. */
static void test_task_config_then_graph(void **state) {
  ice_engine_t *e = mk();
  ice_workflow_t *wf = load_text(e, cfg_doc);
  char *g1 = NULL, *g2 = NULL;

  (void)state;
  assert_int_equal(ice_workflow_graph(wf, "mermaid", &g1), 0);
  json_decref(configs(e, wf));
  assert_int_equal(ice_workflow_graph(wf, "mermaid", &g2), 0);
  assert_string_equal(g1, g2);
  free(g1);
  free(g2);
  ice_workflow_free(wf);
  done(e);
}

/* ---- 4. a large file, then nested ids ---- */

#define NBIG 3000

/* NBIG plain nodes, each on the one before (every 10th also on n0), then
 * a loop whose body's ids go into the id table after the stream; `dup`
 * names a body node (NULL: a fresh id). */
static char *big_doc(const char *dup) {
  size_t cap = (size_t)NBIG * 160 + 1024, len = 0;
  char *t = malloc(cap);

  assert_non_null(t);
  len += (size_t)snprintf(t + len, cap - len,
                          "{\"name\": \"big\", "
                          "\"nodes\": [\n");
  for (int i = 0; i < NBIG; i++) {
    if (i == 0)
      len += (size_t)snprintf(t + len, cap - len,
                              "{\"id\": \"n0\", \"type\": \"tool\", "
                              "\"tool_name\": \"echo\", \"tool_args\": "
                              "{\"i\": 0}},\n");
    else
      len += (size_t)snprintf(
          t + len, cap - len,
          "{\"id\": \"n%d\", \"type\": \"tool\", \"tool_name\": \"echo\", "
          "\"tool_args\": {\"i\": \"{{ n%d.i + 1 }}\"}, \"dependencies\": "
          "[\"n%d\"%s]},\n",
          i, i - 1, i - 1, i % 10 == 0 ? ", \"n0\"" : "");
  }
  snprintf(t + len, cap - len,
           "{\"id\": \"loop\", \"type\": \"loop\", \"dependencies\": "
           "[\"n%d\"], \"items_source\": \"[1, 2]\", \"item_var\": \"x\", "
           "\"body\": [\n"
           "  {\"id\": \"%s\", \"type\": \"tool\", \"tool_name\": \"echo\", "
           "\"tool_args\": {\"v\": \"{{ x + n%d.i }}\"}}]}\n"
           "]}\n",
           NBIG - 1, dup != NULL ? dup : "inner", NBIG - 1);
  return t;
}

static void test_big_runs(void **state) {
  char *t = big_doc(NULL);
  json_t *res = same_runs(t, NULL), *out;
  char id[16];

  (void)state;
  want_status(res, "completed");
  out = json_object_get(res, "output");
  assert_int_equal(json_object_size(out), NBIG + 1);
  for (int i = 0; i < NBIG; i++) {
    snprintf(id, sizeof(id), "n%d", i);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(out, id), "i")), i);
  }
  th_assert_json(json_object_get(out, "loop"), "[{\"v\":3000},{\"v\":3001}]");
  json_decref(res);
  free(t);
}

/* A body id that repeats a streamed top-level id, early or late. */
static void test_big_duplicate_ids(void **state) {
  ice_engine_t *e = mk();
  char *t = big_doc("n5"), *got;
  char want[128];

  (void)state;
  got = diags_both(e, t);
  /* At the body node (the last "n5"), on line NBIG + 3. */
  snprintf(want, sizeof(want), "%s: error: duplicate id 'n5'\n",
           at(t, "id\": \"n5\""));
  assert_string_equal(got, want);
  assert_non_null(strstr(want, "wf.json:3003:"));
  free(got);
  free(t);
  t = big_doc("n2999");
  got = diags_both(e, t);
  assert_non_null(strstr(got, "duplicate id 'n2999'"));
  free(got);
  free(t);
  done(e);
}

/* ---- 5. graphs ---- */

static void same_graph(const char *text) {
  static const char *const formats[] = {"dot", "mermaid"};

  for (size_t f = 0; f < 2; f++) {
    ice_engine_t *e = mk();
    ice_workflow_t *a = load_text(e, text), *b = load_doc(e, text);
    char *ga = NULL, *gb = NULL;
    assert_int_equal(ice_workflow_graph(a, formats[f], &ga), 0);
    assert_int_equal(ice_workflow_graph(b, formats[f], &gb), 0);
    if (strcmp(ga, gb) != 0)
      fail_msg("%s graphs differ:\nstreamed:\n%s\nfrom_json:\n%s", formats[f],
               ga, gb);
    free(ga);
    free(gb);
    ice_workflow_free(a);
    ice_workflow_free(b);
    done(e);
  }
}

static void test_graphs(void **state) {
  char *t = big_doc(NULL);

  (void)state;
  same_graph(mixed_doc);
  same_graph(fan_doc); /* repeated dependencies: one edge each */
  same_graph(cfg_doc);
  same_graph(t);
  free(t);
}

/* From inside: the stream did take the plain nodes (their objects are
 * gone) and only them, and a file it does not take keeps every object.
 * The tests above would pass as well if the stream never ran. */
static size_t objects_freed(const char *text) {
  ice_engine_t *e = mk();
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};
  size_t freed = 0;

  assert_int_equal(
      ice_workflow_parse(e, "t.json", text, strlen(text), 0, &wf, &d), 0);
  for (uint32_t i = 0; i < wf->nnodes; i++)
    freed += wf->nodes[i].def == NULL;
  ice_workflow_free(wf);
  ice_diags_free(&d);
  ice_engine_free(e);
  return freed;
}

static void test_stream_takes_plain_nodes(void **state) {
  (void)state;
  /* Three plain nodes; the loop and its body, the forward reference and
   * the node with run_if keep their objects. */
  assert_int_equal(
      objects_freed(
          "{\"nodes\": [\n"
          " {\"id\": \"a\", \"type\": \"tool\", \"tool_name\": \"echo\","
          "  \"tool_args\": {\"items\": [1, 2]}},\n"
          " {\"id\": \"b\", \"type\": \"tool\", \"tool_name\": \"echo\","
          "  \"dependencies\": [\"a\", \"d\"]},\n"
          " {\"id\": \"c\", \"type\": \"tool\", \"tool_name\": \"echo\","
          "  \"dependencies\": [\"a\"], \"run_if\": \"true\"},\n"
          " {\"id\": \"d\", \"type\": \"tool\", \"tool_name\": \"echo\","
          "  \"tool_args\": {}, \"dependencies\": [\"a\"]},\n"
          " {\"id\": \"L\", \"type\": \"loop\", \"items_source\": \"a.items\","
          "  \"dependencies\": [\"a\"], \"body\": [{\"id\": \"x\", \"type\":"
          "  \"tool\", \"tool_name\": \"echo\"}]},\n"
          " {\"id\": \"e\", \"type\": \"tool\", \"tool_name\": \"echo\","
          "  \"dependencies\": [\"d\", \"L\"]}\n"
          "]}\n"),
      3);
  /* A member after "nodes": the whole document, every object kept. */
  assert_int_equal(
      objects_freed("{\"nodes\": [{\"id\": \"a\", \"type\": \"tool\","
                    " \"tool_name\": \"echo\"}], \"name\": \"n\"}"),
      0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stream_takes_plain_nodes),
      cmocka_unit_test(test_same_chain),
      cmocka_unit_test(test_same_fan),
      cmocka_unit_test(test_same_forward_ref),
      cmocka_unit_test(test_same_mixed),
      cmocka_unit_test(test_same_member_after_nodes),
      cmocka_unit_test(test_same_nested_nodes_keys),
      cmocka_unit_test(test_same_text_forms),
      cmocka_unit_test(test_same_escaped_names),
      cmocka_unit_test(test_same_unicode_escapes),
      cmocka_unit_test(test_same_file_tools),
      cmocka_unit_test(test_same_inputs),
      cmocka_unit_test(test_same_subworkflow),
      cmocka_unit_test(test_diags_node_errors),
      cmocka_unit_test(test_diags_node_errors_more),
      cmocka_unit_test(test_diags_depth),
      cmocka_unit_test(test_diags_keyword_warning),
      cmocka_unit_test(test_diags_syntax_and_shape),
      cmocka_unit_test(test_diags_subworkflow),
      cmocka_unit_test(test_diags_bad_text),
      cmocka_unit_test(test_task_config),
      cmocka_unit_test(test_task_config_deps),
      cmocka_unit_test(test_task_config_then_graph),
      cmocka_unit_test(test_big_runs),
      cmocka_unit_test(test_big_duplicate_ids),
      cmocka_unit_test(test_graphs),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
