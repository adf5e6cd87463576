/* The minimal example of ice_orchestrator's README, in C: one `tool` node
 * that runs the built-in `echo` tool, built as a JSON document with
 * jansson, validated, run, and its output printed.
 *
 *   cc minimal.c $(pkg-config --cflags --libs ice) -o minimal
 *   ./minimal        # prints {"msg":"hi"}
 *
 * Exits 0 when the output is {"msg": "hi"}, 1 otherwise, so that ctest can
 * run it as a test. */

/* <ice.h> includes <uv.h>, which needs POSIX types that strict -std=c11
 * hides. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <ice.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_diags(const ice_diags_t *d) {
  for (size_t i = 0; i < d->count; i++) {
    char *line = ice_diag_format(&d->items[i]);
    if (line != NULL) {
      fprintf(stderr, "%s\n", line);
      free(line);
    }
  }
}

int main(void) {
  ice_engine_t *engine = NULL;
  ice_workflow_t *wf = NULL;
  ice_run_t *run = NULL;
  ice_diags_t diags = {0};
  json_t *doc, *hello;
  char *text;
  int rc, ok = 0;

  /* nodes = [ToolNodeConfig(id="hello", type="tool", tool_name="echo",
   *                         tool_args={"msg": "hi"})] */
  doc = json_pack("{s:s, s:s, s:[{s:s, s:s, s:s, s:{s:s}}]}", "name", "demo",
                  "version", "0.1", "nodes", "id", "hello", "type", "tool",
                  "tool_name", "echo", "tool_args", "msg", "hi");
  if (doc == NULL)
    return 1;

  /* NULL: the engine makes its own libuv loop. */
  rc = ice_engine_new(&engine, NULL, NULL);
  if (rc != 0) {
    fprintf(stderr, "engine: %s\n", ice_strerror(rc));
    json_decref(doc);
    return 1;
  }

  /* Loading validates (the C form of wf.validate()). The workflow keeps
   * its own reference to doc, so ours can go now. */
  rc = ice_workflow_from_json(engine, "demo", doc, &wf, &diags);
  json_decref(doc);
  if (rc != 0) {
    print_diags(&diags);
    goto out;
  }

  /* result = await wf.execute() */
  rc = ice_run_new(engine, wf, NULL, &run, &diags);
  if (rc == 0)
    rc = ice_run_execute(run);
  if (rc != 0) {
    fprintf(stderr, "run: %s\n", ice_strerror(rc));
    print_diags(&diags);
    goto out;
  }

  /* print(result.output["hello"]); the value is borrowed from the run. */
  hello = ice_run_output(run, "hello");
  text = hello != NULL ? ice_json_format(hello, 0) : NULL;
  if (text != NULL) {
    printf("%s\n", text);
    ok = strcmp(text, "{\"msg\":\"hi\"}") == 0;
    free(text);
  }

out:
  ice_diags_free(&diags);
  ice_run_free(run);
  ice_workflow_free(wf);
  if (ice_engine_free(engine) != 0) {
    fprintf(stderr, "engine still busy\n");
    ok = 0;
  }
  return ok ? 0 : 1;
}
