/* Engine overhead benchmarks (`make bench`): a chain of N `echo` tool
 * nodes, a fan-out/fan-in of N, and a loop over N items with an `echo`
 * body. Reports validation time and run time per node (or iteration) on
 * the real engine with no store; the best of several runs is printed,
 * since the minimum is the least noisy estimate of the engine's cost. */
#include <ice.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static json_t *echo_node(const char *id, const char *dep) {
  json_t *n = json_pack("{s:s,s:s,s:s,s:{s:i}}", "id", id, "type", "tool",
                        "tool_name", "echo", "tool_args", "x", 1);
  if (dep != NULL)
    json_object_set_new(n, "dependencies", json_pack("[s]", dep));
  return n;
}

static json_t *chain(int n) {
  json_t *nodes = json_array();
  char id[32], prev[32];

  for (int i = 0; i < n; i++) {
    snprintf(id, sizeof(id), "n%d", i);
    json_array_append_new(nodes, echo_node(id, i > 0 ? prev : NULL));
    memcpy(prev, id, sizeof(id));
  }
  return json_pack("{s:s,s:o,s:i}", "name", "chain", "nodes", nodes,
                   "max_parallel", 1000000);
}

static json_t *fan(int n) {
  json_t *nodes = json_array(), *deps = json_array();
  char id[32];

  json_array_append_new(nodes, echo_node("root", NULL));
  for (int i = 0; i < n; i++) {
    snprintf(id, sizeof(id), "n%d", i);
    json_array_append_new(nodes, echo_node(id, "root"));
    json_array_append_new(deps, json_string(id));
  }
  json_t *join = echo_node("join", NULL);
  json_object_set_new(join, "dependencies", deps);
  json_array_append_new(nodes, join);
  return json_pack("{s:s,s:o,s:i}", "name", "fan", "nodes", nodes,
                   "max_parallel", 1000000);
}

static json_t *loop(int n) {
  json_t *items = json_array();

  for (int i = 0; i < n; i++)
    json_array_append_new(items, json_integer(i));
  return json_pack("{s:s,s:{s:o},s:[{s:s,s:s,s:s,s:[{s:s,s:s,s:s,s:{s:s}}]}]}",
                   "name", "loop", "input_schema", "items", json_string("list"),
                   "nodes", "id", "l", "type", "loop", "items_source",
                   "inputs.items", "body", "id", "b", "type", "tool",
                   "tool_name", "echo", "tool_args", "v", "{{ item }}");
  (void)items;
}

static int bench(const char *label, json_t *doc, json_t *inputs, int units,
                 const char *unit) {
  double best_v = 1e9, best_r = 1e9;

  for (int rep = 0; rep < 5; rep++) {
    ice_engine_t *e;
    ice_workflow_t *wf;
    ice_run_t *run;
    ice_diags_t d = {0};
    ice_run_opts_t ro = ICE_RUN_OPTS_INIT;
    double t0, t1, t2;

    if (ice_engine_new(&e, NULL, NULL) != 0)
      return 1;
    t0 = now_s();
    if (ice_workflow_from_json(e, label, doc, &wf, &d) != 0) {
      fprintf(stderr, "%s: %s\n", label,
              d.count ? d.items[0].message : "invalid");
      return 1;
    }
    t1 = now_s();
    ro.inputs = inputs;
    if (ice_run_new(e, wf, &ro, &run, &d) != 0 || ice_run_execute(run) != 0)
      return 1;
    t2 = now_s();
    if (!json_is_true(json_object_get(ice_run_result(run), "success"))) {
      fprintf(stderr, "%s: run failed\n", label);
      return 1;
    }
    ice_run_free(run);
    ice_workflow_free(wf);
    if (ice_engine_free(e) != 0)
      return 1;
    if (t1 - t0 < best_v)
      best_v = t1 - t0;
    if (t2 - t1 < best_r)
      best_r = t2 - t1;
  }
  printf("%-26s validate %8.3f ms (%6.3f us/%s)   run %8.3f ms (%6.3f us/%s)\n",
         label, best_v * 1e3, best_v * 1e6 / units, unit, best_r * 1e3,
         best_r * 1e6 / units, unit);
  return 0;
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 10000;
  int rc = 0;
  json_t *doc, *inputs, *items = json_array();

  doc = chain(n);
  rc |= bench("chain of echo", doc, NULL, n, "node");
  json_decref(doc);
  doc = fan(n);
  rc |= bench("fan-out/fan-in of echo", doc, NULL, n + 2, "node");
  json_decref(doc);
  for (int i = 0; i < 10 * n; i++)
    json_array_append_new(items, json_integer(i));
  inputs = json_pack("{s:o}", "items", items);
  doc = loop(10 * n);
  rc |= bench("loop with echo body", doc, inputs, 10 * n, "iter");
  json_decref(doc);
  json_decref(inputs);
  return rc;
}
