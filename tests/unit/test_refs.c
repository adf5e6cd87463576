/* Sub-workflow references as a hostile user writes them (SPEC §7.4, §7.5,
 * issue 6): files that never end, each distinct file loaded once however
 * many references it has, errors of a shared child reported once,
 * reference cycles, odd paths; and the long-cycle message and the Mermaid
 * rendering of ids that are Mermaid keywords. */
#include "helpers.h"

#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- a private directory of workflow files ---- */

static char dir[64];

static int setup(void **state) {
  (void)state;
  return th_tmpdir(dir, sizeof(dir), "refs");
}

static int teardown(void **state) {
  (void)state;
  return th_rmtree(dir);
}

/* The path of name inside the directory (a static buffer per call site
 * is enough: callers copy or use it at once). */
static const char *at(const char *name) {
  static char buf[4][256];
  static int k;

  k = (k + 1) % 4;
  snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, name);
  return buf[k];
}

static void put_file(const char *name, const char *text) {
  FILE *f = fopen(at(name), "w");

  assert_non_null(f);
  fputs(text, f);
  assert_int_equal(fclose(f), 0);
}

static ice_engine_t *mk(void) {
  ice_engine_t *e = NULL;

  assert_int_equal(ice_engine_new(&e, NULL, NULL), 0);
  return e;
}

/* Loads name; returns its diagnostics, one formatted line each, and the
 * status in *rc. */
static char *load(ice_engine_t *e, const char *name, int *rc,
                  ice_workflow_t **wf_out) {
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};
  char *all = calloc(1, 1);
  size_t len = 0;

  *rc = ice_workflow_load(e, at(name), &wf, &d);
  for (size_t i = 0; i < d.count; i++) {
    char *s = ice_diag_format(&d.items[i]);
    all = realloc(all, len + strlen(s) + 2);
    memcpy(all + len, s, strlen(s));
    len += strlen(s);
    all[len++] = '\n';
    all[len] = '\0';
    free(s);
  }
  ice_diags_free(&d);
  if (wf_out != NULL)
    *wf_out = wf;
  else
    ice_workflow_free(wf);
  return all;
}

static size_t count_of(const char *hay, const char *needle) {
  size_t n = 0;

  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
    n++;
  return n;
}

static void want_has(const char *text, const char *needle) {
  if (strstr(text, needle) == NULL)
    fail_msg("expected '%s' in:\n%s", needle, text);
}

/* Loads name, which must be invalid; returns the diagnostics. */
static char *load_bad(ice_engine_t *e, const char *name) {
  int rc;
  char *d = load(e, name, &rc, NULL);

  if (rc != ICE_EWORKFLOW)
    fail_msg("%s: expected ICE_EWORKFLOW, got %d:\n%s", name, rc, d);
  return d;
}

static void load_good(ice_engine_t *e, const char *name) {
  int rc;
  char *d = load(e, name, &rc, NULL);

  if (rc != 0)
    fail_msg("%s did not validate:\n%s", name, d);
  free(d);
}

/* ---- files that never end ---- */

static void test_not_regular_files(void **state) {
  ice_engine_t *e = mk();
  char *d;

  (void)state;
  /* /dev/zero would be read for ever; so would a FIFO with no writer
   * wait for one. Both are refused at once, naming the path. */
  put_file("zero.yaml",
           "nodes:\n  - {id: z, type: workflow, workflow_ref: /dev/zero}\n"
           "  - {id: u, type: workflow, workflow_ref: /dev/urandom}\n");
  d = load_bad(e, "zero.yaml");
  want_has(d, "node 'z': workflow_ref '/dev/zero': cannot read '/dev/zero': "
              "not a regular file");
  want_has(d, "'/dev/urandom': not a regular file");
  free(d);
  assert_int_equal(mkfifo(at("fifo.yaml"), 0600), 0);
  put_file("fifo-ref.yaml",
           "nodes:\n  - {id: f, type: workflow, workflow_ref: fifo.yaml}\n");
  d = load_bad(e, "fifo-ref.yaml");
  want_has(d, "fifo.yaml': not a regular file");
  free(d);
  /* A directory, named plainly or with a trailing '/'. */
  assert_int_equal(mkdir(at("sub"), 0700), 0);
  put_file("dirs.yaml",
           "nodes:\n  - {id: a, type: workflow, workflow_ref: sub}\n"
           "  - {id: b, type: workflow, workflow_ref: 'sub/'}\n");
  d = load_bad(e, "dirs.yaml");
  want_has(d, "node 'a': workflow_ref 'sub': cannot read");
  want_has(d, "Is a directory");
  want_has(d, "node 'b': workflow_ref 'sub/': 'sub/' ends with '/'");
  free(d);
  assert_int_equal(e->subwf_loads, 0);
  ice_engine_free(e);
}

static void test_size_cap(void **state) {
  ice_engine_t *e = mk();
  char *d;
  int fd;

  (void)state;
  /* A sparse file one byte over 64 MiB: refused before it is read. */
  fd = open(at("huge.json"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(ftruncate(fd, ((off_t)64 << 20) + 1), 0);
  close(fd);
  put_file("big-ref.yaml",
           "nodes:\n  - {id: b, type: workflow, workflow_ref: huge.json}\n");
  d = load_bad(e, "big-ref.yaml");
  want_has(d, "huge.json': larger than the 64 MiB limit of workflow files");
  free(d);
  ice_engine_free(e);
}

/* ---- odd references ---- */

static void test_odd_references(void **state) {
  ice_engine_t *e = mk();
  char *d;

  (void)state;
  put_file("leaf.yaml",
           "nodes:\n  - {id: t, type: tool, tool_name: echo, tool_args: "
           "{x: 1}}\n");
  assert_int_equal(symlink("loop2", at("loop1")), 0);
  assert_int_equal(symlink("loop1", at("loop2")), 0);
  put_file("odd.yaml", "workflows: {none: '', gone: missing.yaml}\n"
                       "nodes:\n"
                       "  - {id: e, type: workflow, workflow_ref: ''}\n"
                       "  - {id: n, type: workflow, workflow_ref: none}\n"
                       "  - {id: g, type: workflow, workflow_ref: gone}\n"
                       "  - {id: s, type: workflow, workflow_ref: loop1}\n"
                       "  - {id: m, type: workflow, workflow_ref: nope.yaml}\n"
                       "  - {id: f, type: workflow, workflow_ref: "
                       "'leaf.yaml/'}\n");
  d = load_bad(e, "odd.yaml");
  /* The empty reference says so (it used to read the directory './'). */
  want_has(d, "node 'e': workflow_ref is empty");
  want_has(d, "node 'n': workflow_ref 'none': workflows.none is an empty "
              "path");
  want_has(d, "node 'g': workflow_ref 'gone': cannot read");
  want_has(d, "missing.yaml': No such file or directory");
  want_has(d, "node 's': workflow_ref 'loop1': cannot read");
  want_has(d, "Too many levels of symbolic links");
  want_has(d, "node 'm': workflow_ref 'nope.yaml': cannot read");
  want_has(d, "node 'f': workflow_ref 'leaf.yaml/': 'leaf.yaml/' ends with "
              "'/'");
  assert_null(strstr(d, "Is a directory"));
  free(d);
  /* Relative references start from the referring file's directory, at
   * every level: sub/mid.yaml's "leaf.yaml" is sub/leaf.yaml. */
  assert_int_equal(mkdir(at("sub"), 0700), 0);
  put_file("sub/leaf.yaml",
           "nodes:\n  - {id: deep, type: tool, tool_name: echo}\n");
  put_file("sub/mid.yaml",
           "nodes:\n  - {id: m, type: workflow, workflow_ref: leaf.yaml}\n");
  put_file("rel.yaml",
           "nodes:\n  - {id: r, type: workflow, workflow_ref: sub/mid.yaml}\n"
           "  - {id: l, type: workflow, workflow_ref: leaf.yaml}\n");
  load_good(e, "rel.yaml");
  assert_int_equal(e->subwf_loads, 3);
  if (geteuid() != 0) {
    /* Root reads any file: only others can see this refused. */
    put_file("secret.yaml", "nodes: []\n");
    assert_int_equal(chmod(at("secret.yaml"), 0), 0);
    put_file(
        "unread.yaml",
        "nodes:\n  - {id: u, type: workflow, workflow_ref: secret.yaml}\n");
    d = load_bad(e, "unread.yaml");
    want_has(d, "secret.yaml': Permission denied");
    free(d);
  }
  ice_engine_free(e);
}

/* An entry of `workflows` that no node uses is still checked (SPEC §4.1:
 * references that resolve to nothing). Needs the call of
 * ice__subwf_names_check in build() (src/workflow.c). */
static void test_unused_name_missing(void **state) {
  ice_engine_t *e = mk();
  char *d;

  (void)state;
  put_file("leaf.yaml", "nodes:\n  - {id: t, type: tool, tool_name: echo}\n");
  put_file("names.yaml", "workflows: {a: missing.yaml, b: leaf.yaml, c: '', "
                         "used: gone.yaml}\n"
                         "nodes:\n"
                         "  - {id: w, type: workflow, workflow_ref: b}\n"
                         "  - {id: x, type: workflow, workflow_ref: used}\n");
  d = load_bad(e, "names.yaml");
  want_has(d, "workflows.a: cannot read");
  want_has(d, "missing.yaml': No such file or directory");
  want_has(d, "workflows.c is an empty path");
  /* A used name is reported once, by its reference. */
  assert_int_equal(count_of(d, "gone.yaml"), 1);
  want_has(d, "node 'x': workflow_ref 'used': cannot read");
  assert_null(strstr(d, "workflows.b"));
  free(d);
  ice_engine_free(e);
}

/* ---- cycles of references ---- */

static void test_reference_cycles(void **state) {
  ice_engine_t *e = mk();
  char *d;

  (void)state;
  put_file("self.yaml",
           "nodes:\n  - {id: me, type: workflow, workflow_ref: self.yaml}\n");
  d = load_bad(e, "self.yaml");
  want_has(d, "node 'me': workflow_ref 'self.yaml' references itself");
  free(d);
  /* a -> b -> c -> a, with a second way into the cycle: each file's lines
   * once, and no endless recursion. */
  put_file("a.yaml",
           "nodes:\n  - {id: to_b, type: workflow, workflow_ref: b.yaml}\n"
           "  - {id: to_c, type: workflow, workflow_ref: c.yaml}\n");
  put_file("b.yaml",
           "nodes:\n  - {id: to_c, type: workflow, workflow_ref: c.yaml}\n");
  put_file("c.yaml",
           "nodes:\n  - {id: to_a, type: workflow, workflow_ref: a.yaml}\n");
  d = load_bad(e, "a.yaml");
  want_has(d, "node 'to_a': workflow_ref 'a.yaml' references itself");
  assert_int_equal(count_of(d, "references itself"), 1);
  assert_int_equal(count_of(d, "c.yaml:"), 1);
  assert_int_equal(count_of(d, "b.yaml:"), 1);
  free(d);
  /* The same through recursive's workflow_ref. */
  put_file("r.yaml", "nodes:\n  - {id: s, type: tool, tool_name: echo}\n"
                     "  - {id: r, type: recursive, recursive_sources: [s], "
                     "dependencies: [s], workflow_ref: r.yaml, "
                     "convergence_condition: 'true'}\n");
  d = load_bad(e, "r.yaml");
  want_has(d, "node 'r': workflow_ref 'r.yaml' references itself");
  free(d);
  ice_engine_free(e);
}

/* ---- each distinct file once ---- */

/* top.json refers to mid.json n times; mid.json to leaf.json n times. */
static void write_wide(int n, const char *leaf_tool) {
  char name[16];
  json_t *nodes;

  for (int f = 0; f < 2; f++) {
    nodes = json_array();
    for (int i = 0; i < n; i++) {
      snprintf(name, sizeof(name), "%s%d", f == 0 ? "t" : "m", i);
      json_array_append_new(
          nodes, json_pack("{s:s, s:s, s:s}", "id", name, "type", "workflow",
                           "workflow_ref", f == 0 ? "mid.json" : "leaf.json"));
    }
    json_t *doc = json_pack("{s:o}", "nodes", nodes);
    assert_int_equal(
        json_dump_file(doc, at(f == 0 ? "top.json" : "mid.json"), 0), 0);
    json_decref(doc);
  }
  json_t *leaf = json_pack("{s:[{s:s, s:s, s:s}]}", "nodes", "id", "t", "type",
                           "tool", "tool_name", leaf_tool);
  assert_int_equal(json_dump_file(leaf, at("leaf.json"), 0), 0);
  json_decref(leaf);
}

static void test_wide_loaded_once(void **state) {
  ice_engine_t *e = mk();
  uint64_t t0;
  char *d;
  int rc;

  (void)state;
  /* 200 x 200 references: 40,000 loads of leaf.json before (7 s, 140 MB);
   * now mid.json and leaf.json are read once each. */
  write_wide(200, "echo");
  t0 = uv_hrtime();
  d = load(e, "top.json", &rc, NULL);
  assert_int_equal(rc, 0);
  free(d);
  assert_int_equal(e->subwf_loads, 2);
  /* A generous bound (a sanitizer build): it takes milliseconds. */
  assert_true(uv_hrtime() - t0 < 5000000000ull);
  /* Each validation loads again: a fixed file is seen. */
  write_wide(200, "nope");
  d = load(e, "top.json", &rc, NULL);
  assert_int_equal(rc, ICE_EWORKFLOW);
  /* Twice each at most: an invalid JSON file is validated a second time
   * for its positions (ice_workflow_parse's fast path). */
  assert_true(e->subwf_loads - 2 <= 4);
  /* The leaf's error once; each reference says its child is not valid. */
  assert_int_equal(count_of(d, "unknown tool 'nope'"), 1);
  assert_int_equal(count_of(d, "top.json:"), 200);
  assert_int_equal(count_of(d, "mid.json:"), 200);
  assert_int_equal(count_of(d, "leaf.json:"), 1);
  /* Top-down: the first reference, then what it loaded. */
  assert_true(strstr(d, "node 't0'") < strstr(d, "node 'm0'"));
  assert_true(strstr(d, "node 'm199'") < strstr(d, "unknown tool"));
  assert_true(strstr(d, "unknown tool") < strstr(d, "node 't1'"));
  free(d);
  ice_engine_free(e);
}

static void test_tree_loaded_once(void **state) {
  ice_engine_t *e = mk();
  char name[32], text[256];
  char *d;
  int rc;

  (void)state;
  /* l0 -> l1 (twice) -> ... -> l15: 2^15 loads before, doubling per
   * level; now 15. */
  for (int k = 0; k < 16; k++) {
    snprintf(name, sizeof(name), "l%d.yaml", k);
    if (k == 15)
      snprintf(text, sizeof(text),
               "nodes:\n  - {id: leaf, type: tool, tool_name: echo}\n");
    else
      snprintf(text, sizeof(text),
               "nodes:\n  - {id: a, type: workflow, workflow_ref: l%d.yaml}\n"
               "  - {id: b, type: workflow, workflow_ref: l%d.yaml}\n",
               k + 1, k + 1);
    put_file(name, text);
  }
  load_good(e, "l0.yaml");
  assert_int_equal(e->subwf_loads, 15);
  /* Broken at the bottom: 2 lines per level and the leaf's own, once. */
  put_file("l15.yaml", "nodes:\n  - {id: leaf, type: tool, tool_name: echo, "
                       "bogus: 1}\n");
  d = load(e, "l0.yaml", &rc, NULL);
  assert_int_equal(rc, ICE_EWORKFLOW);
  assert_int_equal(count_of(d, "unknown field 'bogus'"), 1);
  assert_int_equal(count_of(d, "is not a valid workflow"), 30);
  free(d);
  ice_engine_free(e);
}

/* The shared child runs for every reference (it is one immutable
 * workflow), and the references share it. */
static void test_shared_child_runs(void **state) {
  ice_engine_t *e = mk();
  ice_workflow_t *wf = NULL;
  json_t *res;
  char *d;
  int rc;

  (void)state;
  put_file("kid.yaml", "nodes:\n  - {id: k, type: tool, tool_name: echo, "
                       "tool_args: {v: '{{ v }}'}}\n");
  put_file("two.yaml",
           "nodes:\n"
           "  - {id: a, type: workflow, workflow_ref: kid.yaml, inputs: {v: "
           "1}}\n"
           "  - {id: b, type: workflow, workflow_ref: kid.yaml, inputs: {v: "
           "2}}\n");
  d = load(e, "two.yaml", &rc, &wf);
  assert_int_equal(rc, 0);
  free(d);
  assert_int_equal(e->subwf_loads, 1);
  res = th_run_wf(e, wf, NULL, 0, NULL);
  {
    json_t *want = th_json("{\"a\": {\"k\": {\"v\": 1}}, "
                           "\"b\": {\"k\": {\"v\": 2}}}");
    assert_true(json_equal(json_object_get(res, "output"), want));
    json_decref(want);
  }
  json_decref(res);
  ice_engine_free(e);
}

/* ---- the cycle message ---- */

static void test_long_cycle_message(void **state) {
  ice_engine_t *e = mk();
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};
  json_t *nodes = json_array(), *doc;
  char id[64], *text, *msg = NULL;
  const char *p;

  (void)state;
  /* 500 nodes in one cycle, with ids long enough that the path would run
   * to 20,000 characters. */
  for (int i = 0; i < 500; i++) {
    char dep[64];
    snprintf(id, sizeof(id), "node_with_a_long_name_%03d", i);
    snprintf(dep, sizeof(dep), "node_with_a_long_name_%03d", (i + 499) % 500);
    json_array_append_new(nodes, json_pack("{s:s, s:s, s:s, s:[s]}", "id", id,
                                           "type", "tool", "tool_name", "echo",
                                           "dependencies", dep));
  }
  doc = json_pack("{s:o}", "nodes", nodes);
  text = json_dumps(doc, 0);
  json_decref(doc);
  assert_int_equal(
      ice_workflow_parse(e, "c.json", text, strlen(text), 0, &wf, &d),
      ICE_EWORKFLOW);
  free(text);
  for (size_t i = 0; i < d.count; i++) {
    if (strstr(d.items[i].message, "cycle:") != NULL)
      msg = d.items[i].message;
  }
  assert_non_null(msg);
  /* Cut at an id boundary, saying how many ids were left out, and still
   * closing the cycle on its first id. */
  assert_true(strlen(msg) < 700);
  p = strstr(msg, "cycle: ");
  assert_non_null(p);
  assert_non_null(strstr(msg, " -> ... ("));
  assert_non_null(strstr(msg, " more) -> "));
  {
    /* Every id shown is whole. */
    char *copy = strdup(p + 7), *save = NULL;
    int n = 0;
    for (char *tok = strtok_r(copy, " ", &save); tok != NULL;
         tok = strtok_r(NULL, " ", &save)) {
      if (strcmp(tok, "->") == 0 || strcmp(tok, "...") == 0 || tok[0] == '(' ||
          strcmp(tok, "more)") == 0)
        continue;
      assert_int_equal(strlen(tok), strlen("node_with_a_long_name_000"));
      assert_int_equal(strncmp(tok, "node_with_a_long_name_", 22), 0);
      n++;
    }
    free(copy);
    assert_true(n >= 4);
  }
  /* first ... -> last -> first: shown + left out = 500 + the closing one. */
  {
    const char *first = strstr(msg, "cycle: ") + 7;
    const char *end = msg + strlen(msg) - strlen("node_with_a_long_name_000");
    unsigned more = 0;
    assert_int_equal(strncmp(first, end, 25), 0);
    assert_int_equal(sscanf(strstr(msg, "... (") + 5, "%u", &more), 1);
    /* A -> B -> ... (K more) -> Y -> A: one arrow per id shown after the
     * first, one for the "...": K + arrows = 500 + 1. */
    assert_int_equal(more + (unsigned)count_of(msg, " -> "), 501);
  }
  ice_diags_free(&d);
  ice_engine_free(e);
}

static void test_short_cycle_whole(void **state) {
  ice_engine_t *e = mk();
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};
  const char *y = "nodes:\n"
                  "  - {id: a, type: tool, tool_name: echo, dependencies: "
                  "[c]}\n"
                  "  - {id: b, type: tool, tool_name: echo, dependencies: "
                  "[a]}\n"
                  "  - {id: c, type: tool, tool_name: echo, dependencies: "
                  "[b]}\n";

  (void)state;
  assert_int_equal(ice_workflow_parse(e, "s.yaml", y, strlen(y), 1, &wf, &d),
                   ICE_EWORKFLOW);
  assert_int_equal(d.count, 1);
  assert_string_equal(d.items[0].message, "node 'a': cycle: a -> b -> c -> a");
  assert_int_equal(d.items[0].line, 2);
  ice_diags_free(&d);
  ice_engine_free(e);
}

/* ---- Mermaid ids ---- */

static void test_mermaid_keyword_ids(void **state) {
  ice_engine_t *e = mk();
  ice_workflow_t *wf;
  char *out = NULL;

  (void)state;
  wf = th_wf(e, "name: kw\nnodes:\n"
                "  - {id: end, type: tool, tool_name: echo}\n"
                "  - {id: subgraph, type: tool, tool_name: echo, "
                "dependencies: [end]}\n"
                "  - {id: style, type: tool, tool_name: echo, dependencies: "
                "[subgraph]}\n"
                "  - {id: class, type: tool, tool_name: echo}\n"
                "  - {id: a--b, type: tool, tool_name: echo, dependencies: "
                "[class]}\n"
                "  - {id: end-x, type: tool, tool_name: echo}\n"
                "  - {id: n_0_end, type: tool, tool_name: echo}\n"
                "  - {id: fetch-data, type: tool, tool_name: echo, "
                "dependencies: [end-x]}\n"
                "  - {id: ops, type: tool, tool_name: echo, dependencies: "
                "[fetch-data]}\n");
  assert_int_equal(ice_workflow_graph(wf, "mermaid", &out), 0);
  /* Keywords and ids Mermaid misreads get an alias that no node has
   * (n_0_end exists, so the prefix grows to _n_); labels keep the id;
   * plain ids stay as they are. */
  assert_string_equal(out, "flowchart TD\n"
                           "  _n_0_end[\"end (tool)\"]\n"
                           "  _n_1_subgraph[\"subgraph (tool)\"]\n"
                           "  _n_2_style[\"style (tool)\"]\n"
                           "  _n_3_class[\"class (tool)\"]\n"
                           "  _n_4_a__b[\"a--b (tool)\"]\n"
                           "  _n_5_end_x[\"end-x (tool)\"]\n"
                           "  n_0_end[\"n_0_end (tool)\"]\n"
                           "  fetch-data[\"fetch-data (tool)\"]\n"
                           "  ops[\"ops (tool)\"]\n"
                           "  _n_0_end --> _n_1_subgraph\n"
                           "  _n_1_subgraph --> _n_2_style\n"
                           "  _n_3_class --> _n_4_a__b\n"
                           "  _n_5_end_x --> fetch-data\n"
                           "  fetch-data --> ops\n");
  free(out);
  /* dot quotes every id: keywords of dot (node, edge, graph) are fine. */
  assert_int_equal(ice_workflow_graph(wf, "dot", &out), 0);
  assert_non_null(strstr(out, "  \"end\" -> \"subgraph\";\n"));
  free(out);
  ice_workflow_free(wf);
  ice_engine_free(e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
      T(test_not_regular_files),   T(test_size_cap),
      T(test_odd_references),      T(test_unused_name_missing),
      T(test_reference_cycles),    T(test_wide_loaded_once),
      T(test_tree_loaded_once),    T(test_shared_child_runs),
      T(test_long_cycle_message),  T(test_short_cycle_whole),
      T(test_mermaid_keyword_ids),
#undef T
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
