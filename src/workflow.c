/* Loading and validating a workflow (SPEC §1, §2, §4.1): top-level keys,
 * every node (nested ones included) with its common fields, then the
 * type-specific checks of each executor. Every problem is reported; none
 * stops the others. The graph checks (dependencies, cycles, depth) are in
 * graph.c. */
#include "engine.h"
#include "graph.h"
#include "readfile.h"

#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reports at the position of member h of container (an object key's hash
 * or an array index's), else of the container itself. */
static void vreport(ice__vctx_t *v, int severity, const ice__node_t *n,
                    json_t *container, uint64_t h, const char *fmt,
                    va_list ap) {
  char msg[768], full[1024];
  int line = 0, col = 0;

  vsnprintf(msg, sizeof(msg), fmt, ap);
  if (container != NULL) {
    if (h == ICE__POS_SELF ||
        !ice__pos_get(&v->wf->pos, container, h, &line, &col))
      ice__pos_get(&v->wf->pos, container, ICE__POS_SELF, &line, &col);
  }
  if (n != NULL && n->id != NULL)
    snprintf(full, sizeof(full), "node '%s': %s", n->id, msg);
  else if (n != NULL)
    snprintf(full, sizeof(full), "node #%u: %s", n->idx + 1, msg);
  else
    snprintf(full, sizeof(full), "%s", msg);
  ice__diags_add_sev(v->diags, severity, v->wf->file, line, col, full);
  if (severity == ICE_DIAG_ERROR)
    v->errors++;
}

void ice__verr(ice__vctx_t *v, const ice__node_t *n, json_t *container,
               const char *key, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  vreport(v, ICE_DIAG_ERROR, n, container,
          key != NULL ? ice__pos_key(key) : ICE__POS_SELF, fmt, ap);
  va_end(ap);
}

void ice__vwarn(ice__vctx_t *v, const ice__node_t *n, json_t *container,
                const char *key, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  vreport(v, ICE_DIAG_WARNING, n, container,
          key != NULL ? ice__pos_key(key) : ICE__POS_SELF, fmt, ap);
  va_end(ap);
}

/* An error at item i of the array list (or at the list when unknown). */
static void verr_item(ice__vctx_t *v, const ice__node_t *n, json_t *list,
                      size_t i, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void verr_item(ice__vctx_t *v, const ice__node_t *n, json_t *list,
                      size_t i, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  vreport(v, ICE_DIAG_ERROR, n, list, ice__pos_index(i), fmt, ap);
  va_end(ap);
}

/* An error at the value obj[key] when it is a container (its own
 * position), else at the key. */
static void verr_value(ice__vctx_t *v, const ice__node_t *n, json_t *obj,
                       const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void verr_value(ice__vctx_t *v, const ice__node_t *n, json_t *obj,
                       const char *key, const char *fmt, ...) {
  json_t *x = json_object_get(obj, key);
  int line, col;
  va_list ap;

  va_start(ap, fmt);
  if (x != NULL && ice__pos_get(&v->wf->pos, x, ICE__POS_SELF, &line, &col))
    vreport(v, ICE_DIAG_ERROR, n, x, ICE__POS_SELF, fmt, ap);
  else
    vreport(v, ICE_DIAG_ERROR, n, obj, ice__pos_key(key), fmt, ap);
  va_end(ap);
}

void ice__verr_tmpl(ice__vctx_t *v, const ice__node_t *n, json_t *container,
                    const char *key, const ice__err_t *err) {
  if (err->col > 0)
    ice__verr(v, n, container, key, "%s: %s (column %d)", key, err->msg,
              err->col);
  else
    ice__verr(v, n, container, key, "%s: %s", key, err->msg);
}

const char *ice__hint(char *buf, size_t len, const char *word,
                      const char *const *cands, size_t n) {
  const char *best = ice__closest(word, cands, n);

  if (best == NULL)
    buf[0] = '\0';
  else
    snprintf(buf, len, " (did you mean '%s'?)", best);
  return buf;
}

static size_t list_len(const char *const *list) {
  size_t n = 0;

  while (list[n] != NULL)
    n++;
  return n;
}

/* ---- field helpers ------------------------------------------------------ */

static unsigned type_bit(const json_t *x) {
  switch (json_typeof(x)) {
  case JSON_NULL:
    return ICE_T_NULL;
  case JSON_TRUE:
  case JSON_FALSE:
    return ICE_T_BOOL;
  case JSON_INTEGER:
    return ICE_T_INT;
  case JSON_REAL:
    return ICE_T_REAL;
  case JSON_STRING:
    return ICE_T_STRING;
  case JSON_ARRAY:
    return ICE_T_ARRAY;
  default:
    return ICE_T_OBJECT;
  }
}

static const char *types_text(unsigned t) {
  switch (t) {
  case ICE_T_BOOL:
    return "a boolean";
  case ICE_T_INT:
    return "an integer";
  case ICE_T_NUMBER:
    return "a number";
  case ICE_T_STRING:
    return "a string";
  case ICE_T_ARRAY:
    return "an array";
  case ICE_T_OBJECT:
    return "an object";
  case ICE_T_STRING | ICE_T_BOOL:
    return "a string or a boolean";
  case ICE_T_STRING | ICE_T_OBJECT:
    return "a string or an object";
  case ICE_T_STRING | ICE_T_ARRAY:
    return "a string or an array";
  default:
    return "of another type";
  }
}

/* Checks that obj[key], when present, has one of the types; returns the
 * value when it does, NULL otherwise (reporting wrong types). */
static json_t *field(ice__vctx_t *v, const ice__node_t *n, json_t *obj,
                     const char *key, unsigned types) {
  json_t *x = json_object_get(obj, key);

  if (x == NULL)
    return NULL;
  if ((type_bit(x) & types) == 0) {
    ice__verr(v, n, obj, key, "field '%s' must be %s", key, types_text(types));
    return NULL;
  }
  return x;
}

static int is_x_key(const char *k) {
  return k[0] == 'x' && k[1] == '-';
}

static int in_list(const char *k, const char *const *list) {
  for (; *list != NULL; list++) {
    if (strcmp(k, *list) == 0)
      return 1;
  }
  return 0;
}

static int in_fields(const char *k, const ice_field_t *f) {
  for (; f != NULL && f->name != NULL; f++) {
    if (strcmp(k, f->name) == 0)
      return 1;
  }
  return 0;
}

static int number_of(const json_t *x, double *out) {
  if (!json_is_number(x))
    return 0;
  *out = json_number_value(x);
  return 1;
}

/* ---- common node fields ------------------------------------------------- */

static const char *const common_fields[] = {"id",
                                            "type",
                                            "name",
                                            "description",
                                            "metadata",
                                            "dependencies",
                                            "run_if",
                                            "trigger_rule",
                                            "timeout_seconds",
                                            "retry_policy",
                                            "retries",
                                            "backoff_seconds",
                                            "input_schema",
                                            "output_schema",
                                            "input_mappings",
                                            "use_cache",
                                            "cache_ttl_seconds",
                                            "pool",
                                            NULL};

/* ---- iceOS's serialised nodes (SPEC §1.1) ---------------------------------
 */

/* iceOS model fields that every node may carry. ice does not act on them
 * (nor does iceOS); the last four warn when they are not empty. `provider`
 * is ignored only on types that do not declare it themselves (the types
 * that make no LLM call). */
static const char *const iceos_fields[] = {"level",
                                           "provider",
                                           "output_mappings",
                                           "input_selection",
                                           "output_selection",
                                           "context_rules",
                                           NULL};

/* Type-specific iceOS fields that ice accepts and ignores. Types that are
 * not built yet are listed too, so that their executors find the table
 * ready (ice__iceos_ignored). */
static const struct {
  const char *type;
  const char *field;
} iceos_ignored[] = {
    {"llm", "format_specifications"},
    {"llm", "coerce_output_types"},
    {"llm", "coerce_input_types"},
    {"llm", "output_format"},
    {"llm", "llm_config.timeout"},
    {"llm", "llm_config.max_retries"},
    {"llm", "llm_config.custom_parameters"},
    {"agent", "agent_attr"},
    {"agent", "version_constraint"},
    {"loop", "parallel"},
    {"code", "imports"},
};

int ice__iceos_ignored(const char *type, const char *field) {
  for (size_t i = 0; type != NULL && i < ICE__ARRAY_SIZE(iceos_ignored); i++) {
    if (strcmp(type, iceos_ignored[i].type) == 0 &&
        strcmp(field, iceos_ignored[i].field) == 0)
      return 1;
  }
  return 0;
}

/* Whether key is an optional field of a node of type te (NULL: unknown
 * type): null then means absent. Required fields keep their null, which
 * their type check reports. */
static int optional_node_field(const char *key, const ice__type_entry_t *te,
                               const char *type) {
  if (strcmp(key, "id") == 0 || strcmp(key, "type") == 0)
    return 0;
  if (in_list(key, common_fields) || in_list(key, iceos_fields) ||
      ice__iceos_ignored(type, key))
    return 1;
  for (const ice_field_t *f = te != NULL ? te->ex->fields : NULL;
       f != NULL && f->name != NULL; f++) {
    if (strcmp(key, f->name) == 0)
      return !f->required;
  }
  return 0;
}

/* obj without its members for which drop(key) holds and whose value is
 * null: obj itself when there are none, else a shallow copy (kept alive in
 * wf->norm) with obj's positions. NULL on ENOMEM. */
static json_t *drop_nulls(ice_workflow_t *wf, json_t *obj,
                          int (*drop)(const char *key, const void *ctx),
                          const void *ctx) {
  const char *k;
  json_t *x, *copy;
  int line, col, any = 0;

  json_object_foreach(obj, k, x) {
    if (json_is_null(x) && drop(k, ctx))
      any = 1;
  }
  if (!any)
    return obj;
  copy = json_object();
  if (copy == NULL)
    return NULL;
  if (wf->norm == NULL)
    wf->norm = json_array();
  if (wf->norm == NULL || json_array_append_new(wf->norm, copy) != 0)
    return NULL;
  json_object_foreach(obj, k, x) {
    if (json_is_null(x) && drop(k, ctx))
      continue;
    if (json_object_set(copy, k, x) != 0)
      return NULL;
    if (ice__pos_get(&wf->pos, obj, ice__pos_key(k), &line, &col) &&
        ice__pos_put(&wf->pos, copy, ice__pos_key(k), line, col) != 0)
      return NULL;
  }
  if (ice__pos_get(&wf->pos, obj, ICE__POS_SELF, &line, &col) &&
      ice__pos_put(&wf->pos, copy, ICE__POS_SELF, line, col) != 0)
    return NULL;
  return copy;
}

static int drop_node_field(const char *key, const void *ctx) {
  const json_t *def = ctx;
  const char *type = json_string_value(json_object_get(def, "type"));
  return optional_node_field(key, NULL, type);
}

typedef struct {
  const ice__type_entry_t *te;
  const char *type;
} node_kind_t;

static int drop_typed_field(const char *key, const void *ctx) {
  const node_kind_t *k = ctx;
  return optional_node_field(key, k->te, k->type);
}

/* ---- collecting nodes (nested lists included) --------------------------- */

typedef struct {
  ice__vctx_t *v;
  json_t **defs;   /* node objects, global order */
  uint32_t *scope; /* scope of each */
  uint32_t n, cap;
  ice__scope_t *scopes;
  uint32_t nscopes, scap;
} collect_t;

static int new_scope(collect_t *c, uint32_t parent, json_t *list,
                     uint32_t *out) {
  if (c->nscopes == c->scap) {
    uint32_t ncap = c->scap == 0 ? 8 : c->scap * 2;
    ice__scope_t *s = ice__realloc(c->scopes, ncap * sizeof(*s));
    if (s == NULL)
      return -1;
    c->scopes = s;
    c->scap = ncap;
  }
  c->scopes[c->nscopes] = (ice__scope_t){NULL, 0, parent, list};
  *out = c->nscopes++;
  return 0;
}

static int add_def(collect_t *c, json_t *def, uint32_t scope) {
  if (c->n == c->cap) {
    uint32_t ncap = c->cap == 0 ? 64 : c->cap * 2;
    json_t **d = ice__realloc(c->defs, ncap * sizeof(*d));
    uint32_t *s = ice__realloc(c->scope, ncap * sizeof(*s));
    if (d != NULL)
      c->defs = d;
    if (s != NULL)
      c->scope = s;
    if (d == NULL || s == NULL)
      return -1;
    c->cap = ncap;
  }
  /* null optional fields are absent from here on (SPEC §1.1). */
  {
    const char *type = json_string_value(json_object_get(def, "type"));
    node_kind_t k = {
        type != NULL ? ice__engine_type(c->v->wf->engine, type) : NULL, type};
    def = k.te != NULL ? drop_nulls(c->v->wf, def, drop_typed_field, &k)
                       : drop_nulls(c->v->wf, def, drop_node_field, def);
    if (def == NULL)
      return -1;
  }
  c->defs[c->n] = def;
  c->scope[c->n] = scope;
  c->n++;
  return 0;
}

/* The node at global index g, good enough to prefix a message with its id
 * before ids are checked. */
static ice__node_t msg_node(collect_t *c, uint32_t g) {
  ice__node_t o;

  memset(&o, 0, sizeof(o));
  o.idx = g;
  o.id = json_string_value(json_object_get(c->defs[g], "id"));
  return o;
}

/* Adds the nodes of one array as a new scope, then recurses into the
 * nested lists of its control-flow nodes. `what` names the array in
 * messages ("nodes", "body", "branches[1]"); parent is the owning node
 * (NONE at the top). Depth is bounded by the document's nesting limit. */
static int collect_list(collect_t *c, json_t *list, uint32_t parent,
                        const char *what) {
  ice__node_t owner = {0};
  const ice__node_t *on = NULL;
  uint32_t scope, first;
  size_t i;
  json_t *def;

  if (parent != ICE__NONE) {
    owner = msg_node(c, parent);
    on = &owner;
  }
  if (new_scope(c, parent, list, &scope) != 0)
    return -1;
  first = c->n;
  json_array_foreach(list, i, def) {
    if (!json_is_object(def)) {
      verr_item(c->v, on, list, i, "%s[%zu] must be a node object", what, i);
      continue;
    }
    if (add_def(c, def, scope) != 0)
      return -1;
  }
  /* Record the scope's members before recursing (indices are stable). */
  c->scopes[scope].n = c->n - first;
  c->scopes[scope].nodes =
      ice__malloc(sizeof(uint32_t) * (c->scopes[scope].n + 1));
  if (c->scopes[scope].nodes == NULL)
    return -1;
  for (uint32_t k = 0; k < c->scopes[scope].n; k++)
    c->scopes[scope].nodes[k] = first + k;
  /* Then the nested lists of each node: the fields its type declares as
   * lists of nodes (ICE_T_NODES) or lists of such lists (ICE_T_NODE_LISTS).
   * The loader names no type: a registered type nests the same way. */
  for (uint32_t g = first, end = c->n; g < end; g++) {
    const char *type = json_string_value(json_object_get(c->defs[g], "type"));
    const ice__type_entry_t *te =
        type != NULL ? ice__engine_type(c->v->wf->engine, type) : NULL;
    for (const ice_field_t *f = te != NULL ? te->ex->fields : NULL;
         f != NULL && f->name != NULL; f++) {
      int lists = (f->types & ICE_T_NODE_LISTS) != 0;
      ice__node_t self;
      json_t *sub;
      if (!(f->types & (ICE_T_NODES | ICE_T_NODE_LISTS)))
        continue;
      sub = json_object_get(c->defs[g], f->name);
      if (sub == NULL)
        continue;
      self = msg_node(c, g);
      /* One message per problem, at the value, naming the node. */
      if (!json_is_array(sub)) {
        verr_value(c->v, &self, c->defs[g], f->name,
                   "field '%s' must be an array of %s", f->name,
                   lists ? "lists of nodes" : "nodes");
      } else if (lists) {
        size_t b;
        json_t *br;
        json_array_foreach(sub, b, br) {
          char label[48];
          snprintf(label, sizeof(label), "%s[%zu]", f->name, b);
          if (!json_is_array(br))
            verr_item(c->v, &self, sub, b, "%s must be an array of nodes",
                      label);
          else if (collect_list(c, br, g, label) != 0)
            return -1;
        }
      } else if (collect_list(c, sub, g, f->name) != 0) {
        return -1;
      }
    }
  }
  return 0;
}

/* ---- top-level keys ----------------------------------------------------- */

static const char *const top_keys[] = {
    "nodes",        "name",        "version",  "schema_version", "blueprint_id",
    "id",           "description", "metadata", "failure_policy", "max_parallel",
    "input_schema", "tools",       "agents",   "workflows",      "llm",
    "pools",        NULL};

static int parse_policy(const char *s, ice__policy_t *out) {
  static const struct {
    const char *name;
    ice__policy_t p;
  } map[] = {{"halt", ICE__POLICY_HALT},
             {"HALT", ICE__POLICY_HALT},
             {"halt_on_first_error", ICE__POLICY_HALT},
             {"continue_possible", ICE__POLICY_CONTINUE},
             {"CONTINUE_POSSIBLE", ICE__POLICY_CONTINUE},
             {"continue_if_possible", ICE__POLICY_CONTINUE},
             {"always", ICE__POLICY_ALWAYS},
             {"ALWAYS", ICE__POLICY_ALWAYS},
             {"always_continue", ICE__POLICY_ALWAYS}};
  for (size_t i = 0; i < ICE__ARRAY_SIZE(map); i++) {
    if (strcmp(s, map[i].name) == 0) {
      *out = map[i].p;
      return 0;
    }
  }
  return -1;
}

static char *stem_of(const char *file) {
  const char *base = strrchr(file, '/');
  const char *dot;

  base = base != NULL ? base + 1 : file;
  dot = strrchr(base, '.');
  /* A file name is bytes; the workflow's name goes into JSON. */
  return ice__utf8_dup(base, dot != NULL && dot != base ? (size_t)(dot - base)
                                                        : strlen(base));
}

/* `pools` (SPEC §4.2): name -> size >= 1. `llm` exists without being
 * defined (size 16) and comes first; an entry resizes it. */
static void check_pools(ice__vctx_t *v, json_t *pools) {
  ice_workflow_t *wf = v->wf;
  size_t n = 1 + json_object_size(pools);
  const char *k;
  json_t *x;

  wf->pool_names = ice__calloc(n, sizeof(*wf->pool_names));
  wf->pool_sizes = ice__calloc(n, sizeof(*wf->pool_sizes));
  if (wf->pool_names == NULL || wf->pool_sizes == NULL)
    return;
  wf->pool_names[0] = "llm";
  wf->pool_sizes[0] = 16;
  wf->npools = 1;
  json_object_foreach(pools, k, x) {
    uint32_t i = strcmp(k, "llm") == 0 ? 0 : wf->npools;
    if (!json_is_integer(x) || json_integer_value(x) < 1 ||
        json_integer_value(x) > 1000000) {
      ice__verr(v, NULL, pools, k, "pools.%s must be an integer >= 1", k);
      continue;
    }
    wf->pool_names[i] = k;
    wf->pool_sizes[i] = (uint32_t)json_integer_value(x);
    if (i == wf->npools)
      wf->npools++;
  }
}

/* The index + 1 of pool `name` in the workflow, or 0. */
static uint32_t pool_index(const ice_workflow_t *wf, const char *name) {
  for (uint32_t i = 0; i < wf->npools; i++) {
    if (strcmp(wf->pool_names[i], name) == 0)
      return i + 1;
  }
  return 0;
}

static void check_top(ice__vctx_t *v, json_t *root) {
  ice_workflow_t *wf = v->wf;
  const char *k;
  json_t *x;
  const char *name = NULL;

  json_object_foreach(root, k, x) {
    char h[96];
    if (!in_list(k, top_keys) && !is_x_key(k))
      ice__verr(v, NULL, root, k, "unknown field '%s' at the top level%s", k,
                ice__hint(h, sizeof(h), k, top_keys, list_len(top_keys)));
  }
  if ((x = field(v, NULL, root, "name", ICE_T_STRING)) != NULL)
    name = json_string_value(x);
  field(v, NULL, root, "version", ICE_T_STRING);
  if ((x = field(v, NULL, root, "schema_version", ICE_T_STRING)) != NULL) {
    const char *sv = json_string_value(x);
    if (strcmp(sv, "1.1.0") != 0 && strcmp(sv, "1.2.0") != 0)
      ice__verr(v, NULL, root, "schema_version",
                "schema_version '%s' is not supported (use 1.1.0 or 1.2.0)",
                sv);
  }
  if (name == NULL) {
    json_t *md = json_object_get(root, "metadata");
    name = json_string_value(json_object_get(md, "draft_name"));
  }
  if (name == NULL)
    name = json_string_value(json_object_get(root, "blueprint_id"));
  wf->name = name != NULL ? ice__strdup(name) : stem_of(wf->file);

  wf->policy = ICE__POLICY_CONTINUE;
  if ((x = field(v, NULL, root, "failure_policy", ICE_T_STRING)) != NULL &&
      parse_policy(json_string_value(x), &wf->policy) != 0)
    ice__verr(v, NULL, root, "failure_policy",
              "failure_policy '%s' is not one of halt, continue_possible, "
              "always",
              json_string_value(x));
  wf->max_parallel = 5;
  if ((x = field(v, NULL, root, "max_parallel", ICE_T_INT)) != NULL) {
    if (json_integer_value(x) < 1 || json_integer_value(x) > 1000000)
      ice__verr(v, NULL, root, "max_parallel",
                "max_parallel must be an integer >= 1");
    else
      wf->max_parallel = (int)json_integer_value(x);
  }
  if ((x = field(v, NULL, root, "input_schema", ICE_T_OBJECT)) != NULL) {
    ice__err_t err;
    if (ice__schema_compile(x, &wf->input_schema, &err) != 0)
      ice__verr(v, NULL, root, "input_schema", "input_schema: %s", err.msg);
  }
  wf->tools = field(v, NULL, root, "tools", ICE_T_OBJECT);
  check_pools(v, field(v, NULL, root, "pools", ICE_T_OBJECT));
  field(v, NULL, root, "agents", ICE_T_OBJECT);
  field(v, NULL, root, "llm", ICE_T_OBJECT);
  if ((x = field(v, NULL, root, "workflows", ICE_T_OBJECT)) != NULL) {
    const char *wk;
    json_t *wv;
    json_object_foreach(x, wk, wv) {
      if (!json_is_string(wv))
        ice__verr(v, NULL, x, wk, "workflows.%s must be a path string", wk);
    }
  }
}

/* ---- node checks -------------------------------------------------------- */

static int valid_id(const char *s) {
  if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') ||
        s[0] == '_'))
    return 0;
  for (const char *p = s + 1; *p != '\0'; p++) {
    if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
          (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
      return 0;
  }
  return 1;
}

static const char *const retry_keys[] = {"max_attempts",
                                         "backoff_strategy",
                                         "backoff_seconds",
                                         "max_backoff_seconds",
                                         "jitter",
                                         "retry_on",
                                         NULL};

static int drop_retry_field(const char *key, const void *ctx) {
  (void)ctx;
  return in_list(key, retry_keys);
}

/* Error kinds that are not retried unless retry_on names them. */
static uint32_t default_retry_on(void) {
  uint32_t m = 0;

  for (int k = 1; k < ICE__KIND_COUNT; k++)
    m |= UINT32_C(1) << k;
  m &= ~((UINT32_C(1) << ICE__KIND_INPUT_VALIDATION) |
         (UINT32_C(1) << ICE__KIND_OUTPUT_VALIDATION) |
         (UINT32_C(1) << ICE__KIND_EXPRESSION) |
         (UINT32_C(1) << ICE__KIND_TEMPLATE) |
         (UINT32_C(1) << ICE__KIND_INPUT_MAPPING) |
         (UINT32_C(1) << ICE__KIND_CANCELLED) |
         (UINT32_C(1) << ICE__KIND_NON_RETRYABLE));
  return m;
}

static void check_retry(ice__vctx_t *v, ice__node_t *n) {
  json_t *def = n->def, *rp, *x;
  double d;

  n->retry = (ice__retry_t){1, ICE__BACKOFF_EXPONENTIAL, 1.0, 60.0,
                            0, default_retry_on()};
  rp = field(v, n, def, "retry_policy", ICE_T_OBJECT);
  if (rp != NULL) {
    const char *k;
    /* null for one of its fields means absent, as on the node. */
    json_t *copy = drop_nulls(v->wf, rp, drop_retry_field, NULL);
    if (copy != NULL)
      rp = copy;
    json_object_foreach(rp, k, x) {
      char h[96];
      if (!in_list(k, retry_keys))
        ice__verr(v, n, rp, k, "unknown field 'retry_policy.%s'%s", k,
                  ice__hint(h, sizeof(h), k, retry_keys, list_len(retry_keys)));
    }
    n->retry.max_attempts = 3;
    if ((x = field(v, n, rp, "max_attempts", ICE_T_INT)) != NULL) {
      if (json_integer_value(x) < 1 || json_integer_value(x) > 1000)
        ice__verr(v, n, rp, "max_attempts",
                  "retry_policy.max_attempts must be between 1 and 1000");
      else
        n->retry.max_attempts = (int)json_integer_value(x);
    }
    if ((x = field(v, n, rp, "backoff_strategy", ICE_T_STRING)) != NULL) {
      const char *s = json_string_value(x);
      if (strcmp(s, "fixed") == 0)
        n->retry.strategy = ICE__BACKOFF_FIXED;
      else if (strcmp(s, "linear") == 0)
        n->retry.strategy = ICE__BACKOFF_LINEAR;
      else if (strcmp(s, "exponential") != 0)
        ice__verr(v, n, rp, "backoff_strategy",
                  "retry_policy.backoff_strategy '%s' is not one of fixed, "
                  "linear, exponential",
                  s);
    }
    if ((x = field(v, n, rp, "backoff_seconds", ICE_T_NUMBER)) != NULL) {
      if (!number_of(x, &d) || d < 0 || d > 86400)
        ice__verr(v, n, rp, "backoff_seconds",
                  "retry_policy.backoff_seconds must be between 0 and 86400");
      else
        n->retry.backoff_seconds = d;
    }
    if ((x = field(v, n, rp, "max_backoff_seconds", ICE_T_NUMBER)) != NULL) {
      if (!number_of(x, &d) || d < 0 || d > 86400)
        ice__verr(v, n, rp, "max_backoff_seconds",
                  "retry_policy.max_backoff_seconds must be between 0 and "
                  "86400");
      else
        n->retry.max_backoff_seconds = d;
    }
    if ((x = field(v, n, rp, "jitter", ICE_T_BOOL)) != NULL)
      n->retry.jitter = json_is_true(x);
    if ((x = field(v, n, rp, "retry_on", ICE_T_ARRAY)) != NULL) {
      size_t i;
      json_t *kv;
      n->retry.retry_on = 0;
      json_array_foreach(x, i, kv) {
        int kind = json_is_string(kv)
                       ? ice__kind_from_name(json_string_value(kv))
                       : -1;
        if (kind < 0)
          ice__verr(v, n, rp, "retry_on",
                    "retry_policy.retry_on[%zu] is not an error kind", i);
        else
          n->retry.retry_on |= UINT32_C(1) << kind;
      }
    }
  }
  if ((x = field(v, n, def, "retries", ICE_T_INT)) != NULL) {
    if (rp != NULL)
      ice__verr(v, n, def, "retries",
                "give either 'retries' or 'retry_policy', not both");
    else if (json_integer_value(x) < 0 || json_integer_value(x) > 999)
      ice__verr(v, n, def, "retries", "retries must be between 0 and 999");
    else
      n->retry.max_attempts = (int)json_integer_value(x) + 1;
  }
  if ((x = field(v, n, def, "backoff_seconds", ICE_T_NUMBER)) != NULL &&
      rp == NULL) {
    if (!number_of(x, &d) || d < 0 || d > 86400)
      ice__verr(v, n, def, "backoff_seconds",
                "backoff_seconds must be between 0 and 86400");
    else
      n->retry.backoff_seconds = d;
  }
}

static void check_schema_field(ice__vctx_t *v, ice__node_t *n, const char *key,
                               ice__schema_t **out) {
  json_t *x = field(v, n, n->def, key, ICE_T_OBJECT);
  ice__err_t err;

  if (x != NULL && ice__schema_compile(x, out, &err) != 0)
    ice__verr(v, n, n->def, key, "%s: %s", key, err.msg);
}

/* The iceOS fields ice accepts without acting on them (SPEC §1.1): each
 * must have iceOS's type, and a non-empty one warns, once, at its key.
 * `level` and an ignored `provider` are not looked at. */
static void check_iceos_fields(ice__vctx_t *v, ice__node_t *n) {
  static const struct {
    const char *name;
    unsigned types;
  } acc[] = {{"output_mappings", ICE_T_OBJECT},
             {"input_selection", ICE_T_ARRAY},
             {"output_selection", ICE_T_ARRAY},
             {"context_rules", ICE_T_OBJECT}};

  for (size_t i = 0; i < ICE__ARRAY_SIZE(acc); i++) {
    json_t *x = field(v, n, n->def, acc[i].name, acc[i].types);
    if (x != NULL &&
        (json_is_object(x) ? json_object_size(x) > 0 : json_array_size(x) > 0))
      ice__vwarn(v, n, n->def, acc[i].name,
                 "'%s' is accepted for iceOS compatibility and ignored "
                 "(iceOS does not act on it either)",
                 acc[i].name);
  }
}

static void check_common(ice__vctx_t *v, ice__node_t *n,
                         const ice__type_entry_t *te) {
  json_t *def = n->def, *x;
  const char *k;
  double d;

  json_object_foreach(def, k, x) {
    if (in_list(k, common_fields) || is_x_key(k) || in_list(k, iceos_fields) ||
        ice__iceos_ignored(n->type, k))
      continue;
    /* A node of unknown type is reported once, not once per field. */
    if (te == NULL || te->ex->fields == NULL)
      continue;
    if (!in_fields(k, te->ex->fields)) {
      const char *names[64];
      size_t nn = 0;
      char h[96];
      for (const char *const *c = common_fields; *c != NULL && nn < 63; c++)
        names[nn++] = *c;
      for (const ice_field_t *f = te->ex->fields; f->name != NULL && nn < 63;
           f++)
        names[nn++] = f->name;
      ice__verr(v, n, def, k, "unknown field '%s'%s", k,
                ice__hint(h, sizeof(h), k, names, nn));
    }
  }
  field(v, n, def, "dependencies", ICE_T_ARRAY);
  check_iceos_fields(v, n);
  if ((x = field(v, n, def, "run_if", ICE_T_STRING)) != NULL) {
    ice__err_t err;
    const char *src = json_string_value(x);
    if (ice__expr_parse(src, strlen(src), &n->run_if, &err) != 0)
      ice__verr(v, n, def, "run_if", "run_if: column %d: %s", err.col, err.msg);
  }
  n->trigger = ICE__TRIGGER_ALL_SUCCESS;
  if ((x = field(v, n, def, "trigger_rule", ICE_T_STRING)) != NULL) {
    const char *s = json_string_value(x);
    if (strcmp(s, "all_done") == 0)
      n->trigger = ICE__TRIGGER_ALL_DONE;
    else if (strcmp(s, "one_success") == 0)
      n->trigger = ICE__TRIGGER_ONE_SUCCESS;
    else if (strcmp(s, "none_failed") == 0)
      n->trigger = ICE__TRIGGER_NONE_FAILED;
    else if (strcmp(s, "all_success") != 0)
      ice__verr(v, n, def, "trigger_rule",
                "trigger_rule '%s' is not one of all_success, all_done, "
                "one_success, none_failed",
                s);
  }
  n->timeout = te != NULL ? te->ex->default_timeout : 0;
  if ((x = field(v, n, def, "timeout_seconds", ICE_T_NUMBER)) != NULL) {
    if (!number_of(x, &d) || d <= 0 || d > 31536000)
      ice__verr(v, n, def, "timeout_seconds",
                "timeout_seconds must be a number > 0");
    else
      n->timeout = d;
  }
  check_retry(v, n);
  check_schema_field(v, n, "input_schema", &n->in_schema);
  check_schema_field(v, n, "output_schema", &n->out_schema);
  field(v, n, def, "use_cache", ICE_T_BOOL);
  if ((x = field(v, n, def, "pool", ICE_T_STRING)) != NULL) {
    const char *p = json_string_value(x);
    n->pool1 = pool_index(v->wf, p);
    if (n->pool1 == 0) {
      char h[96];
      ice__verr(v, n, def, "pool", "unknown pool '%s'%s", p,
                ice__hint(h, sizeof(h), p, v->wf->pool_names, v->wf->npools));
    } else if (te != NULL && (te->ex->flags & ICE_EX_CONTROL_FLOW)) {
      /* It would hold a slot while its nested nodes wait for one. */
      ice__verr(v, n, def, "pool",
                "a %s node takes no pool (its nested nodes may)", n->type);
      n->pool1 = 0;
    }
  }
  if ((x = field(v, n, def, "cache_ttl_seconds", ICE_T_NUMBER)) != NULL &&
      json_number_value(x) < 0)
    ice__verr(v, n, def, "cache_ttl_seconds", "cache_ttl_seconds must be >= 0");
  /* Type-specific required fields and types. */
  if (te != NULL) {
    for (const ice_field_t *f = te->ex->fields; f != NULL && f->name != NULL;
         f++) {
      json_t *fv;
      if (json_object_get(def, f->name) == NULL) {
        if (f->required)
          ice__verr(v, n, def, NULL, "missing required field '%s'", f->name);
        continue;
      }
      /* Lists of nested nodes were checked while collecting them. */
      if (f->types & (ICE_T_NODES | ICE_T_NODE_LISTS))
        continue;
      fv = field(v, n, def, f->name, f->types);
      /* Types with a compile hook compile their templates themselves; for
       * the others a syntax error is still found here, at validation. */
      if (fv != NULL && f->templated && n->bi == NULL &&
          te->ex->compile == NULL) {
        ice__tmpl_t *tm = NULL;
        ice__err_t err;
        if (ice__tmpl_compile(fv, &tm, &err) != 0)
          ice__verr_tmpl(v, n, def, f->name, &err);
        ice__tmpl_free(tm);
      }
    }
  }
}

/* ---- building ----------------------------------------------------------- */

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
    if (n->xdata != NULL && n->bi != NULL && n->bi->free_data != NULL)
      n->bi->free_data(n->xdata);
    else if (n->xdata != NULL && n->bi == NULL && n->ex->free_compiled != NULL)
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

static int build(ice__vctx_t *v, json_t *root) {
  ice_workflow_t *wf = v->wf;
  collect_t c;
  json_t *nodes;
  int rc = 0;

  memset(&c, 0, sizeof(c));
  c.v = v;
  if (!json_is_object(root)) {
    ice__verr(v, NULL, root, NULL, "a workflow must be an object with 'nodes'");
    return 0;
  }
  check_top(v, root);
  nodes = json_object_get(root, "nodes");
  if (nodes == NULL) {
    ice__verr(v, NULL, root, NULL, "missing required field 'nodes'");
    return 0;
  }
  if (json_is_array(nodes) && json_array_size(nodes) == 0) {
    ice__verr(v, NULL, root, "nodes", "'nodes' must hold at least one node");
    return 0;
  }
  if (!json_is_array(nodes)) {
    verr_value(v, NULL, root, "nodes", "'nodes' must be an array of nodes");
    return 0;
  }
  if (collect_list(&c, nodes, ICE__NONE, "nodes") != 0) {
    rc = ICE_ENOMEM;
    goto out;
  }
  if (c.nscopes == 0)
    goto out;
  wf->nodes = ice__calloc(c.n, sizeof(ice__node_t));
  wf->ids = json_object();
  if (wf->nodes == NULL || wf->ids == NULL) {
    rc = ICE_ENOMEM;
    goto out;
  }
  wf->nnodes = c.n;
  wf->scopes = c.scopes;
  wf->nscopes = c.nscopes;
  c.scopes = NULL;
  for (uint32_t s = 0; s < wf->nscopes; s++) {
    for (uint32_t k = 0; k < wf->scopes[s].n; k++) {
      ice__node_t *n = &wf->nodes[wf->scopes[s].nodes[k]];
      n->scope = s;
      n->local = k;
    }
    if (wf->scopes[s].parent != ICE__NONE) {
      ice__node_t *p = &wf->nodes[wf->scopes[s].parent];
      uint32_t *cs =
          ice__realloc(p->child_scopes, (p->nchild + 1) * sizeof(uint32_t));
      if (cs == NULL) {
        rc = ICE_ENOMEM;
        goto out;
      }
      p->child_scopes = cs;
      p->child_scopes[p->nchild++] = s;
    }
  }
  /* Ids first, so that every later message can name its node. */
  for (uint32_t i = 0; i < c.n; i++) {
    ice__node_t *n = &wf->nodes[i];
    json_t *idv = json_object_get(c.defs[i], "id");
    n->idx = i;
    n->def = c.defs[i];
    if (idv == NULL) {
      ice__verr(v, n, n->def, NULL, "missing required field 'id'");
      continue;
    }
    if (!json_is_string(idv) || !valid_id(json_string_value(idv))) {
      ice__verr(v, n, n->def, "id",
                "field 'id' must be a string matching "
                "^[A-Za-z_][A-Za-z0-9_-]*$");
      continue;
    }
    n->id = json_string_value(idv);
    if (ice__expr_is_keyword(n->id, strlen(n->id)))
      /* SPEC §2.1 allows the id, but no expression can name it (§3.2):
       * say so, and how its output can still be read. */
      ice__vwarn(v, n, n->def, "id",
                 "id '%s' is a keyword of expressions: expressions and "
                 "templates cannot name it (read its output through "
                 "input_mappings, or choose another id)",
                 n->id);
    if (json_object_get(wf->ids, n->id) != NULL) {
      ice__verr(v, NULL, n->def, "id", "duplicate id '%s'", n->id);
      continue;
    }
    if (json_object_set_new(wf->ids, n->id, json_integer(i)) != 0) {
      rc = ICE_ENOMEM;
      goto out;
    }
  }
  for (uint32_t i = 0; i < c.n; i++) {
    ice__node_t *n = &wf->nodes[i];
    json_t *tv = json_object_get(n->def, "type");
    const ice__type_entry_t *te = NULL;
    if (tv == NULL) {
      ice__verr(v, n, n->def, NULL, "missing required field 'type'");
    } else if (!json_is_string(tv)) {
      ice__verr(v, n, n->def, "type", "field 'type' must be a string");
    } else {
      n->type = json_string_value(tv);
      te = ice__engine_type(wf->engine, n->type);
      if (te == NULL) {
        const char *names[64];
        size_t nn = 0;
        char h[96];
        for (size_t t = 0; t < wf->engine->ntypes && nn < 64; t++)
          names[nn++] = wf->engine->types[t].ex->type;
        ice__verr(v, n, n->def, "type", "unknown node type '%s'%s", n->type,
                  ice__hint(h, sizeof(h), n->type, names, nn));
      }
    }
    if (te != NULL) {
      n->ex = te->ex;
      n->bi = te->bi;
    }
    check_common(v, n, te);
  }
  rc = ice__graph_check(v);
  if (rc == 0)
    rc = ice__tool_defs_check(v);
  if (rc == 0)
    rc = ice__subwf_names_check(v);
  if (rc != 0)
    goto out;
  /* Type-specific checks come last: they may look at resolved deps. */
  for (uint32_t i = 0; i < wf->nnodes; i++) {
    ice__node_t *n = &wf->nodes[i];
    if (n->ex == NULL)
      continue;
    if (n->bi != NULL && n->bi->compile != NULL) {
      rc = n->bi->compile(v, n);
      if (rc != 0)
        goto out;
      continue;
    }
    if (n->ex->validate != NULL) {
      char msg[512] = "";
      if (n->ex->validate(n->def, msg, sizeof(msg)) != 0)
        ice__verr(v, n, n->def, NULL, "%s", msg[0] ? msg : "invalid config");
    }
    if (n->ex->compile != NULL) {
      /* Once per node, at validation; every attempt gets the result. */
      ice_compile_t cc = {v, n};
      n->xdata = n->ex->compile(&cc);
    }
  }
out:
  for (uint32_t i = 0; c.scopes != NULL && i < c.nscopes; i++)
    ice__free(c.scopes[i].nodes);
  ice__free(c.scopes);
  ice__free(c.defs);
  ice__free(c.scope);
  return rc;
}

static char *dir_of(const char *file) {
  const char *slash = strrchr(file, '/');

  if (slash == NULL)
    return ice__strdup(".");
  if (slash == file)
    return ice__strdup("/");
  return ice__strndup(file, (size_t)(slash - file));
}

/* Validates doc. nsoft: problems the parser already reported (the load
 * fails, but every other problem is still found). Warnings alone do not
 * fail it. */
static int finish(ice_engine_t *e, const char *name, json_t *doc,
                  ice__posmap_t *pos, int nsoft, ice_workflow_t **out,
                  ice_diags_t *diags) {
  ice_workflow_t *wf;
  ice__vctx_t v;
  int rc;

  wf = ice__calloc(1, sizeof(*wf));
  if (wf == NULL) {
    json_decref(doc);
    ice__pos_free(pos);
    return ICE_ENOMEM;
  }
  wf->refs = 1;
  wf->engine = e;
  wf->doc = doc;
  wf->pos = *pos;
  wf->file = ice__strdup(name != NULL ? name : "<workflow>");
  wf->dir = dir_of(wf->file);
  if (wf->file == NULL || wf->dir == NULL) {
    ice_workflow_free(wf);
    return ICE_ENOMEM;
  }
  v = (ice__vctx_t){wf, diags, 0};
  rc = build(&v, doc);
  if (rc == 0 && (v.errors > 0 || nsoft > 0))
    rc = ICE_EWORKFLOW;
  if (rc != 0) {
    ice_workflow_free(wf);
    return rc;
  }
  *out = wf;
  return 0;
}

int ice_workflow_parse(ice_engine_t *e, const char *name, const char *text,
                       size_t len, int is_yaml, ice_workflow_t **out,
                       ice_diags_t *diags) {
  ice__posmap_t pos = {0};
  json_t *doc;
  char msg[512];
  int line, col, nsoft = 0;

  *out = NULL;
  if (e == NULL || text == NULL)
    return ICE_EINVAL;
  if (!is_yaml) {
    /* Fast path: jansson reads JSON several times faster than libfyaml and
     * with a fraction of the memory, but keeps no positions. Positions
     * only matter for diagnostics, so any problem sends the text through
     * libfyaml again, which reports it with its line and column. */
    json_t *fast = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    /* jansson allows 2048 levels; files get the same limit either way. */
    if (fast != NULL && ice__json_too_deep(fast, ICE__DOC_MAX_DEPTH)) {
      json_decref(fast);
      fast = NULL;
    }
    if (fast != NULL) {
      ice_diags_t quiet = {0};
      int rc = finish(e, name, fast, &pos, 0, out, &quiet);
      /* Warnings need their positions too. */
      int redo = rc == ICE_EWORKFLOW || (rc == 0 && quiet.count > 0);
      ice_diags_free(&quiet);
      if (!redo)
        return rc;
      ice_workflow_free(*out);
      *out = NULL;
      pos = (ice__posmap_t){0};
    }
  }
  if (ice__doc_parse_all(text, len, is_yaml, &doc, &pos, diags, name, &nsoft,
                         &line, &col, msg, sizeof(msg)) != 0) {
    ice__pos_free(&pos);
    ice__diags_add_sev(diags, ICE_DIAG_ERROR, name, line, col, msg);
    return ICE_EWORKFLOW;
  }
  return finish(e, name, doc, &pos, nsoft, out, diags);
}

int ice_workflow_from_json(ice_engine_t *e, const char *name, json_t *doc,
                           ice_workflow_t **out, ice_diags_t *diags) {
  ice__posmap_t pos = {0};

  *out = NULL;
  if (e == NULL || doc == NULL)
    return ICE_EINVAL;
  /* The document is kept as it is; the caller must not change it. */
  return finish(e, name, json_incref(doc), &pos, 0, out, diags);
}

static int has_suffix(const char *s, const char *suf) {
  size_t n = strlen(s), m = strlen(suf);

  return n >= m && strcmp(s + n - m, suf) == 0;
}

int ice_workflow_load(ice_engine_t *e, const char *path, ice_workflow_t **out,
                      ice_diags_t *diags) {
  char *buf = NULL, why[256];
  size_t len = 0;
  int rc;

  *out = NULL;
  if (e == NULL || path == NULL)
    return ICE_EINVAL;
  /* Bounded and non-blocking: /dev/zero or a FIFO must not hang. */
  rc = ice__file_read(path, 0, &buf, &len, why, sizeof(why));
  if (rc != 0) {
    char msg[320];
    snprintf(msg, sizeof(msg), "cannot read the workflow: %s", why);
    ice__diags_add_sev(diags, ICE_DIAG_ERROR, path, 0, 0, msg);
    return rc;
  }
  {
    /* Sub-workflows check this stack to refuse a file that includes
     * itself. */
    char *real = realpath(path, NULL);
    int pushed = 0;
    if (real != NULL && e->nloading < ICE__MAX_LOADING) {
      e->loading[e->nloading++] = real;
      pushed = 1;
    } else if (real != NULL) {
      free(real);
      ice__free(buf);
      ice__diags_add_sev(diags, ICE_DIAG_ERROR, path, 0, 0,
                         "workflow files nested too deeply (sub-workflows)");
      return ICE_EWORKFLOW;
    }
    rc = ice_workflow_parse(
        e, path, buf, len,
        has_suffix(path, ".yaml") || has_suffix(path, ".yml"), out, diags);
    if (pushed)
      free(e->loading[--e->nloading]);
  }
  ice__free(buf);
  return rc;
}

/* ---- what a compile hook sees (ABI 2) ------------------------------------ */

json_t *ice_compile_config(const ice_compile_t *c) {
  return c->node->def;
}

const char *ice_compile_node_id(const ice_compile_t *c) {
  return c->node->id;
}

void *ice_compile_executor_data(const ice_compile_t *c) {
  return c->node->ex->data;
}

const char *ice_compile_dir(const ice_compile_t *c) {
  return c->v->wf->dir;
}

void ice_compile_error(ice_compile_t *c, const char *field, const char *fmt,
                       ...) {
  va_list ap;

  va_start(ap, fmt);
  vreport(c->v, ICE_DIAG_ERROR, c->node, c->node->def,
          field != NULL ? ice__pos_key(field) : ICE__POS_SELF, fmt, ap);
  va_end(ap);
}
