/* The validated, immutable form of a workflow file, shared by every run of
 * it: nodes with dense indices, scopes (the top level and each nested list
 * of a control-flow node), compiled expressions, templates and schemas.
 * Per-run state never lives here (see core.h). */
#ifndef ICE_WORKFLOW_H
#define ICE_WORKFLOW_H

#include "doc.h"
#include "expr.h"
#include "internal.h"
#include "schema.h"
#include "template.h"

#include <ice.h>
#include <stdarg.h>

#define ICE__NONE UINT32_MAX

typedef enum {
  ICE__TRIGGER_ALL_SUCCESS,
  ICE__TRIGGER_ALL_DONE,
  ICE__TRIGGER_ONE_SUCCESS,
  ICE__TRIGGER_NONE_FAILED
} ice__trigger_t;

typedef enum {
  ICE__POLICY_HALT,
  ICE__POLICY_CONTINUE,
  ICE__POLICY_ALWAYS
} ice__policy_t;

typedef enum {
  ICE__BACKOFF_FIXED,
  ICE__BACKOFF_LINEAR,
  ICE__BACKOFF_EXPONENTIAL
} ice__backoff_t;

typedef struct {
  int max_attempts;
  ice__backoff_t strategy;
  double backoff_seconds;
  double max_backoff_seconds;
  int jitter;
  uint32_t retry_on; /* bit per ice__kind_t */
} ice__retry_t;

typedef struct {
  const char *key;  /* borrowed from the document */
  uint32_t src;     /* local index of the source dependency, or NONE */
  const char *path; /* source_output_key ("" = whole output) */
  json_t *literal;  /* borrowed: the value when not a mapping */
} ice__mapping_t;

/* A nested list of nodes (or the top level): runs as one frame. */
typedef struct {
  uint32_t *nodes; /* global indices, in file order */
  uint32_t n;
  uint32_t parent;     /* global index of the owning node, NONE at top */
  json_t *list;        /* borrowed: the JSON array the nodes came from */
  uint32_t *outs_pool; /* the nodes' outs lists, one block (graph.c) */
} ice__scope_t;

/* A node's policies, which most nodes of a workflow share: one copy per
 * distinct set (fields.c), in the workflow's list. */
typedef struct ice__node_opts_s {
  ice__retry_t retry;
  double timeout;   /* seconds, 0 = none */
  double cache_ttl; /* seconds a cached output stays good; 0 = for ever */
  int use_cache;    /* memoise its output across runs (SPEC §2.1) */
  struct ice__node_opts_s *next;
} ice__node_opts_t;

typedef struct ice__node_s {
  /* Pointers and doubles first, then 32-bit fields: no padding (one node
   * is 224 bytes, not 248; a workflow holds one per node). */
  const char *id; /* borrowed from def */
  const char *type;
  const ice_executor_t *ex;
  json_t *def;    /* borrowed; the document owns it */
  uint32_t *deps; /* local indices, sorted */
  /* Dependencies on a recursive node whose cycle this node is on: ignored
   * for scheduling (SPEC §7.4). back[j] != 0 marks deps[j]. NULL = none. */
  uint8_t *back;
  /* Recursive nodes: the body (local indices of the nodes on cycles
   * through it). Body nodes: rec_owner is the local index of their
   * recursive node, else NONE. rec_pending: scheduling dependencies inside
   * the body (plus the recursive node), for re-running an iteration. */
  uint32_t *body;
  uint32_t *outs; /* local indices of dependents, in its scope's outs_pool */
  ice__expr_t *run_if;
  ice__schema_t *in_schema;
  ice__schema_t *out_schema;
  ice__mapping_t *maps;
  uint32_t *child_scopes; /* scopes owned by a control-flow node */
  void *xdata;            /* executor-specific compiled config */
  /* Retry policy, timeout, cache settings: set by ice__check_node (NULL
   * only in a workflow that failed validation). */
  const ice__node_opts_t *opt;
  uint32_t idx;   /* global index */
  uint32_t local; /* index inside its scope */
  uint32_t scope;
  uint32_t ndeps;
  uint32_t nsched; /* dependencies that count for scheduling */
  uint32_t nbody;
  uint32_t rec_owner;
  uint32_t rec_pending;
  uint32_t nouts;
  uint32_t depth; /* longest path from a root of the scope */
  ice__trigger_t trigger;
  uint32_t nmaps;
  uint32_t nchild;
  uint32_t pool1; /* index + 1 of its pool in the workflow's pools; 0 none */
} ice__node_t;

struct ice_workflow_s {
  int refs;
  ice_engine_t *engine;
  char *file; /* as given */
  char *dir;  /* directory for relative paths */
  char *name;
  json_t *doc;
  ice__posmap_t pos;
  ice__node_t *nodes;
  uint32_t nnodes;
  ice__scope_t *scopes;
  uint32_t nscopes;
  /* id -> global index: open addressing over the nodes' ids, each slot
   * the id's hash << 32 | its global index + 1 (0: empty), so that a
   * probe reads a node's id only when the hashes agree (at 100,000 nodes,
   * each read is a cache miss); idcap is a power of two. */
  uint64_t *idtab;
  uint32_t idcap;
  ice__policy_t policy;
  int max_parallel;
  ice__schema_t *input_schema;
  json_t *tools; /* borrowed: the file's `tools` object or NULL */
  /* Concurrency pools (SPEC §4.2): `llm` first, then the file's `pools`
   * in file order. Names borrowed from the document, or static. */
  const char **pool_names;
  uint32_t *pool_sizes;
  uint32_t npools;
  /* Copies of node objects (and sub-objects) without their null optional
   * fields (SPEC §1.1: null means absent); the nodes' defs point here. */
  json_t *norm;
  /* Bundle workflows (SPEC §1.1). The declared `inputs` (inputs.c): the
   * arrays of names are borrowed from the document, NULL when absent. */
  int declares_inputs;
  json_t *inputs_required;
  json_t *inputs_optional;
  /* The names the file's expressions and templates read (expr_names.c),
   * collected while it is built when it declares inputs; else NULL. */
  json_t *reads;
  /* `outputs`, compiled (outputs.c); NULL when the file has none. */
  struct ice__outputs_s *outputs;
  /* Tool definitions shared by the nodes that name the same tool
   * (toolcall.c). */
  struct ice__tooldef_s *tooldefs;
  /* The nodes' dependency lists, one block (graph.c); a list that grows
   * later has its own allocation (ice__deps_pooled). */
  uint32_t *deps_pool;
  size_t deps_used;
  ice__node_opts_t *opts; /* the nodes' distinct policies (fields.c) */
  uint32_t idused;        /* ids in idtab */
  /* What the streamed load compiled for its plain nodes (their ids, tool
   * configs, templates, expressions: load_stream.c), freed last. */
  ice__arena_t arena;
};

/* The child scope of node n that came from the JSON array `list`, or NONE
 * (control-flow nodes find their nested lists with it). */
uint32_t ice__node_scope_of(const ice_workflow_t *wf, const ice__node_t *n,
                            const json_t *list);

/* Members remembered for the node object being checked. */
#define ICE__VCTX_MEMBERS 12

/* Validation context handed to built-in compile hooks. */
typedef struct {
  ice_workflow_t *wf;
  ice_diags_t *diags;
  int errors;
  /* The members of the node object ice__check_node is checking (when it
   * has few): ice__field looks up the twenty-odd fields a node may have,
   * most of them absent, without hashing each name. NULL otherwise. */
  const json_t *memo_obj;
  uint32_t memo_n;
  uint64_t memo_first; /* a bit per remembered key (fields.c, memo_bit) */
  const char *memo_keys[ICE__VCTX_MEMBERS];
  json_t *memo_vals[ICE__VCTX_MEMBERS];
  /* A streamed load (load_stream.c): the dependencies it resolved for the
   * nodes whose object it freed, at streamed_off[node] in streamed_deps;
   * NULL otherwise. */
  const uint32_t *streamed_deps, *streamed_off;
} ice__vctx_t;

/* A node being validated, as a compile hook (ABI 2) sees it. */
struct ice_compile_s {
  ice__vctx_t *v;
  ice__node_t *node;
};

/* Reports a problem at the position of `key` inside `container` (or of the
 * container when key is NULL). The message is prefixed with the node id
 * when n is not NULL. */
void ice__verr(ice__vctx_t *v, const ice__node_t *n, json_t *container,
               const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* The same as a warning (SPEC §1.1): reported, but the load succeeds. */
void ice__vwarn(ice__vctx_t *v, const ice__node_t *n, json_t *container,
                const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* 1 when `field` of a node of type `type` is an iceOS field that ice
 * accepts and ignores (SPEC §1.1), e.g. ("loop", "parallel"); a field
 * inside a sub-object is named with a dot ("llm_config.timeout"). */
int ice__iceos_ignored(const char *type, const char *field);

/* The same at item i of an array (or at the array when unknown), and at
 * the value obj[key] when it is a container (else at the key); and the
 * va_list form every report goes through (diag.c). */
void ice__verr_item(ice__vctx_t *v, const ice__node_t *n, json_t *list,
                    size_t i, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void ice__verr_value(ice__vctx_t *v, const ice__node_t *n, json_t *obj,
                     const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void ice__vreport(ice__vctx_t *v, int severity, const ice__node_t *n,
                  json_t *container, uint64_t h, const char *fmt, va_list ap);
/* Entries of a NULL-ended list of names. */
size_t ice__list_len(const char *const *list);

/* Checks the file's `tools` definitions (tooldefs.c). Returns 0. */
int ice__tool_defs_check(ice__vctx_t *v);

/* The definition of tool or agent `name` as the workflow sees it (defs.c):
 * its own `tools` / `agents`, then the engine's tool files (SPEC §1.1);
 * NULL when neither has it. *dir (may be NULL) is the directory that
 * definition's relative paths start from. Borrowed. */
json_t *ice__wf_tool_def(const ice_workflow_t *wf, const char *name,
                         const char **dir);
json_t *ice__wf_agent_def(const ice_workflow_t *wf, const char *name,
                          const char **dir);

/* ---- inputs.c, outputs.c: bundle workflows (SPEC §1.1) ------------------ */

/* Checks the top-level `inputs` of root and keeps what it declares. */
void ice__inputs_compile(ice__vctx_t *v, json_t *root);
/* The checks of run inputs (an object, borrowed) against what wf
 * declares: every required one given, and every other one declared or
 * read by an expression of the file. 0, or ICE_EINPUT with one message
 * per problem in diags. 0 when wf declares no inputs. */
int ice__inputs_check(const ice_workflow_t *wf, json_t *inputs,
                      ice_diags_t *diags);
/* The members of inputs that wf declares, as a new object; a new
 * reference to inputs itself when wf declares none. NULL on ENOMEM. */
json_t *ice__inputs_declared(const ice_workflow_t *wf, json_t *inputs);

typedef struct ice__outputs_s ice__outputs_t;
/* Checks and compiles the top-level `outputs` of root (wf->outputs). */
void ice__outputs_compile(ice__vctx_t *v, json_t *root);
/* Renders wf's outputs against the run's inputs (flattened and as
 * `inputs`) and its completed top-level nodes (id -> output), both
 * borrowed. 0 with a new object in *out, or -1 after appending one line
 * `Output NAME: MESSAGE` per failed output to errors (a JSON array). */
int ice__outputs_render(const ice_workflow_t *wf, json_t *inputs, json_t *nodes,
                        json_t **out, json_t *errors);
void ice__outputs_free(ice__outputs_t *o);

/* ---- fields.c: one node's fields ---------------------------------------- */

struct ice__type_entry_s; /* engine.h */

/* obj[key] when present and of one of the types (ICE_T_* bits); else NULL,
 * reporting a wrong type. */
json_t *ice__field(ice__vctx_t *v, const ice__node_t *n, json_t *obj,
                   const char *key, unsigned types);
int ice__is_x_key(const char *k);
int ice__in_list(const char *k, const char *const *list);
/* ^[A-Za-z_][A-Za-z0-9_-]*$ */
int ice__valid_id(const char *s);
/* The node object without its null optional fields (SPEC §1.1): def
 * itself when it has none, else a copy kept by the workflow. */
json_t *ice__node_drop_nulls(ice_workflow_t *wf, json_t *def);
/* Checks the common fields of node n and the fields its type declares
 * (te NULL: an unknown type, whose fields are not reported). */
void ice__check_node(ice__vctx_t *v, ice__node_t *n,
                     const struct ice__type_entry_s *te);

/* Reports a template or expression error of field `key`, with the column
 * inside the string when known. */
void ice__verr_tmpl(ice__vctx_t *v, const ice__node_t *n, json_t *container,
                    const char *key, const ice__err_t *err);

/* Writes " (did you mean 'X'?)" into buf when one of the n candidates is
 * a likely typo of word, else "". Returns buf, for use in messages. */
const char *ice__hint(char *buf, size_t len, const char *word,
                      const char *const *cands, size_t n);

/* ice__diags_add and ice__diags_add_sev are declared in diag.h. */

void ice__workflow_ref(ice_workflow_t *wf);
/* 1 when deps is a list inside wf->deps_pool (not freed on its own). */
int ice__deps_pooled(const ice_workflow_t *wf, const uint32_t *deps);
/* Drops the workflow's references to its shared tool definitions
 * (toolcall.c). */
void ice__tooldefs_release(ice_workflow_t *wf);

/* A copy of s (len bytes and a NUL) that lives as long as wf; NULL on
 * ENOMEM. */
const char *ice__workflow_keep(ice_workflow_t *wf, const char *s, size_t len);

/* Compiles tool node n (exec/tool.c): tool_args (an object or NULL) and
 * the tool `name`, reported at n->def (which may be NULL). The compiled
 * config, also in n->xdata; NULL on ENOMEM. */
void *ice__tool_compile(ice__vctx_t *v, ice__node_t *n, const char *name,
                        json_t *args);

/* The config object of tool node n, whose object a streamed load freed,
 * made again from what it compiled (exec/tool.c); a new reference, NULL on
 * ENOMEM. */
json_t *ice__tool_config(const ice_workflow_t *wf, const ice__node_t *n);

/* Looks a node up by id; NULL when unknown. */
const ice__node_t *ice__workflow_node(const ice_workflow_t *wf, const char *id);
/* The global index of the node with id (len bytes), or ICE__NONE. */
uint32_t ice__workflow_find(const ice_workflow_t *wf, const char *id,
                            size_t len);
/* Adds node i (its id set) to the id table, sized for nnodes on first use:
 * 0, 1 when another node has the id, or ICE_ENOMEM. */
int ice__workflow_add_id(ice_workflow_t *wf, uint32_t i);

#endif
