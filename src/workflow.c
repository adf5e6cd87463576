/* The validated workflow (workflow.h): shared by every run of it through
 * a reference count, read-only once built. Its accessors and freeing;
 * building it is load.c's. */
#include "engine.h"

#include <string.h>

static void free_nodes(ice_workflow_t *wf) {
  for (uint32_t i = 0; i < wf->nnodes; i++) {
    ice__node_t *n = &wf->nodes[i];
    ice__free(n->deps);
    ice__free(n->back);
    ice__free(n->body);
    ice__free(n->outs);
    ice__free(n->maps);
    ice__free(n->child_scopes);
    ice__expr_free(n->run_if);
    ice__schema_free(n->in_schema);
    ice__schema_free(n->out_schema);
    if (n->xdata != NULL && n->ex->free_compiled != NULL)
      n->ex->free_compiled(n->xdata, n->ex->data);
  }
  ice__free(wf->nodes);
  for (uint32_t i = 0; i < wf->nscopes; i++)
    ice__free(wf->scopes[i].nodes);
  ice__free(wf->scopes);
}

void ice_workflow_free(ice_workflow_t *wf) {
  if (wf == NULL || --wf->refs > 0)
    return;
  free_nodes(wf);
  ice__schema_free(wf->input_schema);
  ice__outputs_free(wf->outputs);
  json_decref(wf->reads);
  ice__free(wf->pool_names);
  ice__free(wf->pool_sizes);
  json_decref(wf->ids);
  json_decref(wf->norm);
  json_decref(wf->doc);
  ice__pos_free(&wf->pos);
  ice__free(wf->file);
  ice__free(wf->dir);
  ice__free(wf->name);
  ice__free(wf);
}

void ice__workflow_ref(ice_workflow_t *wf) {
  wf->refs++;
}

uint32_t ice__node_scope_of(const ice_workflow_t *wf, const ice__node_t *n,
                            const json_t *list) {
  for (uint32_t c = 0; c < n->nchild; c++) {
    if (wf->scopes[n->child_scopes[c]].list == list)
      return n->child_scopes[c];
  }
  return ICE__NONE;
}

const char *ice_workflow_name(const ice_workflow_t *wf) {
  return wf->name;
}

size_t ice_workflow_node_count(const ice_workflow_t *wf) {
  return wf->nnodes;
}

const ice__node_t *ice__workflow_node(const ice_workflow_t *wf,
                                      const char *id) {
  json_t *x = json_object_get(wf->ids, id);

  return x == NULL ? NULL : &wf->nodes[json_integer_value(x)];
}
