/* The validated workflow (workflow.h): shared by every run of it through
 * a reference count, read-only once built. Its accessors and freeing;
 * building it is load.c's. */
#include "engine.h"

#include <string.h>

static void free_nodes(ice_workflow_t *wf) {
  for (uint32_t i = 0; i < wf->nnodes; i++) {
    ice__node_t *n = &wf->nodes[i];
    if (!ice__deps_pooled(wf, n->deps))
      ice__free(n->deps);
    ice__free(n->back);
    ice__free(n->body);
    ice__free(n->maps);
    ice__free(n->child_scopes);
    ice__expr_free(n->run_if);
    ice__schema_free(n->in_schema);
    ice__schema_free(n->out_schema);
    if (n->xdata != NULL && n->ex->free_compiled != NULL)
      n->ex->free_compiled(n->xdata, n->ex->data);
  }
  ice__free(wf->nodes);
  for (uint32_t i = 0; i < wf->nscopes; i++) {
    ice__free(wf->scopes[i].nodes);
    ice__free(wf->scopes[i].outs_pool);
  }
  ice__free(wf->scopes);
}

const char *ice__workflow_keep(ice_workflow_t *wf, const char *s, size_t len) {
  char *out = ice__arena_alloc(&wf->arena, len + 1);

  if (out != NULL)
    memcpy(out, s, len); /* zeroed: the NUL is there */
  return out;
}

void ice_workflow_free(ice_workflow_t *wf) {
  if (wf == NULL || --wf->refs > 0)
    return;
  free_nodes(wf);
  ice__tooldefs_release(wf);
  ice__free(wf->deps_pool);
  for (ice__node_opts_t *o = wf->opts, *next; o != NULL; o = next) {
    next = o->next;
    ice__free(o);
  }
  ice__schema_free(wf->input_schema);
  ice__outputs_free(wf->outputs);
  json_decref(wf->reads);
  ice__free(wf->pool_names);
  ice__free(wf->pool_sizes);
  ice__free(wf->idtab);
  json_decref(wf->norm);
  json_decref(wf->doc);
  ice__pos_free(&wf->pos);
  ice__free(wf->file);
  ice__free(wf->dir);
  ice__free(wf->name);
  ice__arena_free(&wf->arena); /* after everything made in it */
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

uint32_t ice__workflow_find(const ice_workflow_t *wf, const char *id,
                            size_t len) {
  uint32_t h;

  if (wf->idcap == 0)
    return ICE__NONE;
  h = ice__fnv1a32(id, len);
  for (uint32_t s = h & (wf->idcap - 1);; s = (s + 1) & (wf->idcap - 1)) {
    uint64_t e = wf->idtab[s];
    uint32_t g = (uint32_t)e;
    const char *other;
    if (g == 0)
      return ICE__NONE;
    if ((uint32_t)(e >> 32) != h)
      continue;
    other = wf->nodes[g - 1].id;
    if (strnlen(other, len + 1) == len && memcmp(other, id, len) == 0)
      return g - 1;
  }
}

/* Puts entry e (hash << 32 | index + 1) in tab, of cap slots. */
static void id_put(uint64_t *tab, uint32_t cap, uint64_t e) {
  uint32_t s = (uint32_t)(e >> 32) & (cap - 1);

  while (tab[s] != 0)
    s = (s + 1) & (cap - 1);
  tab[s] = e;
}

int ice__workflow_add_id(ice_workflow_t *wf, uint32_t i) {
  const char *id = wf->nodes[i].id;
  size_t len = strlen(id);

  /* At most half full: probes stay short. The table is sized for the
   * nodes known at its first use; a streamed load finds nested ones
   * later, and it grows for them. */
  if (wf->idcap == 0 || 2 * ((uint64_t)wf->idused + 1) > wf->idcap) {
    uint32_t cap = 16;
    uint64_t *tab;
    while (cap < 2 * (uint64_t)wf->nnodes ||
           cap < 2 * ((uint64_t)wf->idused + 1))
      cap *= 2;
    tab = ice__calloc(cap, sizeof(*tab));
    if (tab == NULL)
      return ICE_ENOMEM;
    for (uint32_t k = 0; k < wf->idcap; k++) {
      if (wf->idtab[k] != 0)
        id_put(tab, cap, wf->idtab[k]);
    }
    ice__free(wf->idtab);
    wf->idtab = tab;
    wf->idcap = cap;
  }
  if (ice__workflow_find(wf, id, len) != ICE__NONE)
    return 1;
  id_put(wf->idtab, wf->idcap,
         (uint64_t)ice__fnv1a32(id, len) << 32 | (uint64_t)(i + 1));
  wf->idused++;
  return 0;
}

const ice__node_t *ice__workflow_node(const ice_workflow_t *wf,
                                      const char *id) {
  uint32_t g = ice__workflow_find(wf, id, strlen(id));

  return g == ICE__NONE ? NULL : &wf->nodes[g];
}
