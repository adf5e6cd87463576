/* libFuzzer target: bytes -> the workflow loaders and validation, and the
 * tool-file loader (ice_engine_add_tool_text). The first byte is the mode:
 *
 *   bit 0  the workflow is YAML (else JSON)
 *   bit 1  the rest is TOOLS '\0' WORKFLOW: TOOLS is a tool file added to
 *          a fresh engine, WORKFLOW (may be empty or absent) is loaded by
 *          that engine, so that names resolve through the tool file
 *   bit 2  the tool file is YAML (else JSON)
 *
 * Any input must give a workflow or diagnostics: never a crash, a hang or
 * a leak. The files are named as if in examples/ (run from the repository
 * root), so that the examples' relative paths (sub-workflows, tools,
 * modules) resolve as they do for the seeds. */
#include <ice.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void drain(ice_diags_t *d) {
  for (size_t i = 0; i < d->count; i++)
    free(ice_diag_format(&d->items[i]));
  ice_diags_free(d);
}

/* A JSON file that loads (through the streamed load, src/load_stream.c)
 * must load the same from its document, which never streams: the same
 * nodes and the same graph. */
static void same_as_document(ice_engine_t *e, const char *text, size_t len,
                             const ice_workflow_t *wf) {
  json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
  ice_workflow_t *other = NULL;
  ice_diags_t d = {0};
  char *a = NULL, *b = NULL;

  if (doc == NULL)
    return; /* the quick reader's limits differ from jansson's */
  if (ice_workflow_from_json(e, "examples/fuzz.json", doc, &other, &d) != 0 ||
      ice_workflow_node_count(other) != ice_workflow_node_count(wf) ||
      ice_workflow_graph(wf, "dot", &a) != 0 ||
      ice_workflow_graph(other, "dot", &b) != 0 || strcmp(a, b) != 0)
    abort();
  free(a);
  free(b);
  drain(&d);
  ice_workflow_free(other);
  json_decref(doc);
}

static void load(ice_engine_t *e, const char *text, size_t len, int yaml) {
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};

  if (ice_workflow_parse(e, yaml ? "examples/fuzz.yaml" : "examples/fuzz.json",
                         text, len, yaml, &wf, &d) == 0) {
    if (wf == NULL || ice_workflow_name(wf) == NULL)
      abort(); /* accepted: a workflow, or there must be diagnostics */
    (void)ice_workflow_node_count(wf);
    if (!yaml)
      same_as_document(e, text, len, wf);
  }
  drain(&d);
  ice_workflow_free(wf);
}

static void with_tools(const char *text, size_t len, int mode) {
  const char *nul = memchr(text, '\0', len);
  size_t tlen = nul != NULL ? (size_t)(nul - text) : len;
  ice_engine_t *e;
  ice_diags_t d = {0};
  json_t *files;

  if (ice_engine_new(&e, NULL, NULL) != 0)
    abort();
  ice_engine_add_tool_text(
      e, mode & 4 ? "examples/fuzz-tools.yaml" : "examples/fuzz-tools.json",
      text, tlen, &d);
  drain(&d);
  files = ice_engine_tool_files(e);
  json_decref(files);
  if (nul != NULL)
    load(e, nul + 1, len - tlen - 1, mode & 1);
  if (ice_engine_free(e) != 0)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static ice_engine_t *e;

  if (size < 1)
    return 0;
  if (data[0] & 2) {
    with_tools((const char *)data + 1, size - 1, data[0]);
    return 0;
  }
  if (e == NULL && ice_engine_new(&e, NULL, NULL) != 0)
    abort();
  load(e, (const char *)data + 1, size - 1, data[0] & 1);
  return 0;
}
