/* The file's `tools` definitions (SPEC §5.1), checked at validation whether
 * or not a node uses them (tooldefs.c): every problem at its position, all
 * of them at once; and pools as the loader sees them. */
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses YAML text that must fail; returns the diagnostics joined by
 * newlines (caller frees). */
static char *diags_of(ice_engine_t *e, const char *text) {
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};
  char *all = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&all, &len);

  assert_int_equal(
      ice_workflow_parse(e, "t.yaml", text, strlen(text), 1, &wf, &d),
      ICE_EWORKFLOW);
  for (size_t i = 0; i < d.count; i++) {
    char *s = ice_diag_format(&d.items[i]);
    fprintf(f, "%s\n", s);
    free(s);
  }
  fclose(f);
  ice_diags_free(&d);
  return all;
}

static void want(const char *all, const char *line) {
  if (strstr(all, line) == NULL)
    fail_msg("missing: %s\nin:\n%s", line, all);
}

static void test_every_definition_problem(void **state) {
  ice_engine_t *e = NULL;
  char *all;

  (void)state;
  assert_int_equal(ice_engine_new(&e, NULL, NULL), 0);
  all =
      diags_of(e, "tools:\n"
                  "  a: 5\n"
                  "  b: {command: [x], colour: red}\n"
                  "  c: {wasm: f.wasm, command: [x], fuel: 0}\n"
                  "  d: {env: {}}\n"
                  "  f: {command: []}\n"
                  "  g: {command: [ok, '']}\n"
                  "  h: {command: [x], env: [1]}\n"
                  "  i: {command: [x], env: {A: 1, '': y, 'B=C': z, D: null}}\n"
                  "  j: {command: [x], cwd: 7}\n"
                  "  k: {command: [x], sandbox: 1}\n"
                  "  l: {command: [x], sandbox: {max_output_bytes: 0}}\n"
                  "nodes: [{id: n, type: tool, tool_name: echo}]\n");
  want(all, "t.yaml:2:3: error: tools.a must be an object");
  want(all, "t.yaml:3:21: error: tools.b: unknown field 'colour'");
  want(all, "error: tools.c: set either command or wasm, not both");
  want(all, "error: tools.c.fuel must be an integer >= 1");
  want(all, "t.yaml:5:6: error: tools.d: missing required field 'command'");
  want(all, "t.yaml:6:7: error: tools.f.command must be a non-empty array");
  want(all, "t.yaml:7:7: error: tools.g.command[1] must be a non-empty string");
  want(all, "t.yaml:8:21: error: tools.h.env must be an object");
  want(all, "error: tools.i.env.A must be a string or null");
  want(all, "error: tools.i.env: invalid name ''");
  want(all, "error: tools.i.env: invalid name 'B=C'");
  want(all, "t.yaml:10:21: error: tools.j.cwd must be a string");
  want(all, "t.yaml:11:21: error: tools.k.sandbox must be an object");
  want(all, "error: tools.l.sandbox.max_output_bytes must be an integer >= 1");
  /* `D: null` removes a variable: not a problem. */
  assert_null(strstr(all, "env.D"));
  free(all);
  assert_int_equal(ice_engine_free(e), 0);
}

static void test_pools_resize_llm_and_share_names(void **state) {
  ice_engine_t *e = NULL;
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};
  const char *ok = "pools: {llm: 2, io: 1}\n"
                   "nodes:\n"
                   "  - {id: a, type: tool, tool_name: echo, pool: llm}\n"
                   "  - {id: b, type: tool, tool_name: echo, pool: io}\n";
  char *all;

  (void)state;
  assert_int_equal(ice_engine_new(&e, NULL, NULL), 0);
  assert_int_equal(ice_workflow_parse(e, "t.yaml", ok, strlen(ok), 1, &wf, &d),
                   0);
  ice_workflow_free(wf);
  all = diags_of(e, "pools: {io: 'x', big: 2000000}\n"
                    "nodes:\n"
                    "  - {id: p, type: parallel, pool: io, branches: "
                    "[[{id: q, type: tool, tool_name: echo, pool: 5}]]}\n");
  want(all, "error: pools.io must be an integer >= 1");
  want(all, "error: pools.big must be an integer >= 1");
  want(all, "error: node 'q': field 'pool' must be a string");
  free(all);
  assert_int_equal(ice_engine_free(e), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_definition_problem),
      cmocka_unit_test(test_pools_resize_llm_and_share_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
