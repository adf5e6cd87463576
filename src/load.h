/* The steps of building a workflow from its document, shared by the load
 * of a whole document (load.c) and the streamed load of a large JSON file
 * (load_stream.c). */
#ifndef ICE_LOAD_H
#define ICE_LOAD_H

#include "workflow.h"

/* Node objects as they are collected, nested lists included. */
typedef struct {
  ice__vctx_t *v;
  json_t **defs;   /* node objects, global order (NULL: a streamed node) */
  uint32_t *scope; /* scope of each */
  uint32_t n, cap;
  ice__scope_t *scopes;
  uint32_t nscopes, scap;
} collect_t;

/* A new scope owned by node parent (NONE at the top), from the JSON array
 * list, in *out. Room for one more node in c. 0 or -1 (ENOMEM). */
int ice__collect_scope(collect_t *c, uint32_t parent, json_t *list,
                       uint32_t *out);
int ice__collect_room(collect_t *c);
/* Collects the nested lists of nodes [first, end) of c. 0 or -1. */
int ice__collect_nested(collect_t *c, uint32_t first, uint32_t end);
void ice__collect_free(collect_t *c);

/* Checks the top-level fields of root and keeps what they set. */
void ice__load_top(ice__vctx_t *v, json_t *root);
/* c's nodes [from, c->n) become wf's, and its scopes from `scope` on are
 * wired to them; c's scopes pass to wf. 0 or ICE_ENOMEM. */
int ice__load_nodes(ice_workflow_t *wf, collect_t *c, uint32_t from,
                    uint32_t scope);
/* Node n's id, checked and added to the id table. 0 or ICE_ENOMEM. */
int ice__load_id(ice__vctx_t *v, ice__node_t *n);
/* Node n's type, then its fields (fields.c). */
void ice__load_check(ice__vctx_t *v, ice__node_t *n);
/* Node n's validate and compile hooks. */
void ice__load_compile(ice__vctx_t *v, ice__node_t *n);
/* The dependency graph, the file's tool definitions and its named
 * workflows. 0 or ICE_ENOMEM. */
int ice__load_graph(ice__vctx_t *v);

/* Builds wf from root, reporting through v (ctx: the builder's own). */
typedef int (*ice__build_fn)(ice__vctx_t *v, json_t *root, void *ctx);
/* A new workflow from doc (taken) and pos (taken), built by build_fn:
 * 0 with it in *out, ICE_EWORKFLOW when it reported an error (or nsoft,
 * problems the parser reported, is > 0), ICE_ENOMEM. */
int ice__load_finish(ice_engine_t *e, const char *name, json_t *doc,
                     ice__posmap_t *pos, int nsoft, ice_workflow_t **out,
                     ice_diags_t *diags, ice__build_fn build_fn, void *ctx);

/* The streamed load of JSON text (load_stream.c): its nodes are read one
 * at a time, and a node that needs nothing of its object at run time is
 * compiled at once and its object freed, so that the document is never
 * whole in memory. 0 with the workflow in *out, ICE_ENOMEM, 1 when the
 * file is not one it takes (an unusual shape: load the whole document), or
 * 2 when it has a problem to report (load it with positions, which
 * reports every problem). */
int ice__load_stream(ice_engine_t *e, const char *name, const char *text,
                     size_t len, ice_workflow_t **out);

#endif
