/* The checks of one node's fields (SPEC §2.1, §1.1): the common fields,
 * iceOS's serialised fields and nulls, retry policies, schemas, pools, and
 * the fields a node type declares; and what a type's compile hook sees of
 * the node (ABI 2). Type-specific meaning is the executors'. */
#include "engine.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
/* A key's bit in ice__vctx_t.memo_first: from its first two bytes
 * (field names share first letters: trigger_rule, timeout_seconds). */
static uint64_t memo_bit(const char *key) {
  unsigned h = (unsigned char)key[0] * 7u;

  if (key[0] != '\0')
    h += (unsigned char)key[1];
  return UINT64_C(1) << (h & 63);
}

/* obj[key], from the remembered members when obj is the node object
 * being checked. */
static json_t *member(const ice__vctx_t *v, json_t *obj, const char *key) {
  if (v == NULL || obj == NULL || obj != v->memo_obj)
    return json_object_get(obj, key);
  /* Most fields asked for are absent: no key starts like this one. */
  if (!(v->memo_first & memo_bit(key)))
    return NULL;
  for (uint32_t i = 0; i < v->memo_n; i++) {
    if (v->memo_keys[i][0] == key[0] && strcmp(v->memo_keys[i], key) == 0)
      return v->memo_vals[i];
  }
  return NULL;
}

json_t *ice__field(ice__vctx_t *v, const ice__node_t *n, json_t *obj,
                   const char *key, unsigned types) {
  json_t *x = member(v, obj, key);

  if (x == NULL)
    return NULL;
  if ((type_bit(x) & types) == 0) {
    ice__verr(v, n, obj, key, "field '%s' must be %s", key, types_text(types));
    return NULL;
  }
  return x;
}

int ice__is_x_key(const char *k) {
  return k[0] == 'x' && k[1] == '-';
}

/* The first byte first: most names of a list differ there, and a call of
 * strcmp per entry costs more than the whole compare. */
int ice__in_list(const char *k, const char *const *list) {
  for (; *list != NULL; list++) {
    if ((*list)[0] == k[0] && strcmp(k, *list) == 0)
      return 1;
  }
  return 0;
}

static int in_fields(const char *k, const ice_field_t *f) {
  for (; f != NULL && f->name != NULL; f++) {
    if (f->name[0] == k[0] && strcmp(k, f->name) == 0)
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
    if (iceos_ignored[i].field[0] == field[0] &&
        strcmp(field, iceos_ignored[i].field) == 0 &&
        strcmp(type, iceos_ignored[i].type) == 0)
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
  if (ice__in_list(key, common_fields) || ice__in_list(key, iceos_fields) ||
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

json_t *ice__node_drop_nulls(ice_workflow_t *wf, json_t *def) {
  const char *type = json_string_value(json_object_get(def, "type"));
  node_kind_t k = {type != NULL ? ice__engine_type(wf->engine, type) : NULL,
                   type};

  return k.te != NULL ? drop_nulls(wf, def, drop_typed_field, &k)
                      : drop_nulls(wf, def, drop_node_field, def);
}

/* The index + 1 of pool `name` in the workflow, or 0. */
static uint32_t pool_index(const ice_workflow_t *wf, const char *name) {
  for (uint32_t i = 0; i < wf->npools; i++) {
    if (strcmp(wf->pool_names[i], name) == 0)
      return i + 1;
  }
  return 0;
}

/* ---- node checks -------------------------------------------------------- */

int ice__valid_id(const char *s) {
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
  return ice__in_list(key, retry_keys);
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

static void check_retry(ice__vctx_t *v, ice__node_t *n, ice__node_opts_t *o) {
  json_t *def = n->def, *rp, *x;
  double d;

  o->retry = (ice__retry_t){1, ICE__BACKOFF_EXPONENTIAL, 1.0, 60.0,
                            0, default_retry_on()};
  rp = ice__field(v, n, def, "retry_policy", ICE_T_OBJECT);
  if (rp != NULL) {
    const char *k;
    /* null for one of its fields means absent, as on the node. */
    json_t *copy = drop_nulls(v->wf, rp, drop_retry_field, NULL);
    if (copy != NULL)
      rp = copy;
    json_object_foreach(rp, k, x) {
      char h[96];
      if (!ice__in_list(k, retry_keys))
        ice__verr(
            v, n, rp, k, "unknown field 'retry_policy.%s'%s", k,
            ice__hint(h, sizeof(h), k, retry_keys, ice__list_len(retry_keys)));
    }
    o->retry.max_attempts = 3;
    if ((x = ice__field(v, n, rp, "max_attempts", ICE_T_INT)) != NULL) {
      if (json_integer_value(x) < 1 || json_integer_value(x) > 1000)
        ice__verr(v, n, rp, "max_attempts",
                  "retry_policy.max_attempts must be between 1 and 1000");
      else
        o->retry.max_attempts = (int)json_integer_value(x);
    }
    if ((x = ice__field(v, n, rp, "backoff_strategy", ICE_T_STRING)) != NULL) {
      const char *s = json_string_value(x);
      if (strcmp(s, "fixed") == 0)
        o->retry.strategy = ICE__BACKOFF_FIXED;
      else if (strcmp(s, "linear") == 0)
        o->retry.strategy = ICE__BACKOFF_LINEAR;
      else if (strcmp(s, "exponential") != 0)
        ice__verr(v, n, rp, "backoff_strategy",
                  "retry_policy.backoff_strategy '%s' is not one of fixed, "
                  "linear, exponential",
                  s);
    }
    if ((x = ice__field(v, n, rp, "backoff_seconds", ICE_T_NUMBER)) != NULL) {
      if (!number_of(x, &d) || d < 0 || d > 86400)
        ice__verr(v, n, rp, "backoff_seconds",
                  "retry_policy.backoff_seconds must be between 0 and 86400");
      else
        o->retry.backoff_seconds = d;
    }
    if ((x = ice__field(v, n, rp, "max_backoff_seconds", ICE_T_NUMBER)) !=
        NULL) {
      if (!number_of(x, &d) || d < 0 || d > 86400)
        ice__verr(v, n, rp, "max_backoff_seconds",
                  "retry_policy.max_backoff_seconds must be between 0 and "
                  "86400");
      else
        o->retry.max_backoff_seconds = d;
    }
    if ((x = ice__field(v, n, rp, "jitter", ICE_T_BOOL)) != NULL)
      o->retry.jitter = json_is_true(x);
    if ((x = ice__field(v, n, rp, "retry_on", ICE_T_ARRAY)) != NULL) {
      size_t i;
      json_t *kv;
      o->retry.retry_on = 0;
      json_array_foreach(x, i, kv) {
        int kind = json_is_string(kv)
                       ? ice__kind_from_name(json_string_value(kv))
                       : -1;
        if (kind < 0)
          ice__verr(v, n, rp, "retry_on",
                    "retry_policy.retry_on[%zu] is not an error kind", i);
        else
          o->retry.retry_on |= UINT32_C(1) << kind;
      }
    }
  }
  if ((x = ice__field(v, n, def, "retries", ICE_T_INT)) != NULL) {
    if (rp != NULL)
      ice__verr(v, n, def, "retries",
                "give either 'retries' or 'retry_policy', not both");
    else if (json_integer_value(x) < 0 || json_integer_value(x) > 999)
      ice__verr(v, n, def, "retries", "retries must be between 0 and 999");
    else
      o->retry.max_attempts = (int)json_integer_value(x) + 1;
  }
  if ((x = ice__field(v, n, def, "backoff_seconds", ICE_T_NUMBER)) != NULL &&
      rp == NULL) {
    if (!number_of(x, &d) || d < 0 || d > 86400)
      ice__verr(v, n, def, "backoff_seconds",
                "backoff_seconds must be between 0 and 86400");
    else
      o->retry.backoff_seconds = d;
  }
}

static void check_schema_field(ice__vctx_t *v, ice__node_t *n, const char *key,
                               ice__schema_t **out) {
  json_t *x = ice__field(v, n, n->def, key, ICE_T_OBJECT);
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
    json_t *x = ice__field(v, n, n->def, acc[i].name, acc[i].types);
    if (x != NULL &&
        (json_is_object(x) ? json_object_size(x) > 0 : json_array_size(x) > 0))
      ice__vwarn(v, n, n->def, acc[i].name,
                 "'%s' is accepted for iceOS compatibility and ignored "
                 "(iceOS does not act on it either)",
                 acc[i].name);
  }
}

static int same_opts(const ice__node_opts_t *a, const ice__node_opts_t *b) {
  const ice__retry_t *x = &a->retry, *y = &b->retry;

  return x->max_attempts == y->max_attempts && x->strategy == y->strategy &&
         x->backoff_seconds == y->backoff_seconds &&
         x->max_backoff_seconds == y->max_backoff_seconds &&
         x->jitter == y->jitter && x->retry_on == y->retry_on &&
         a->timeout == b->timeout && a->cache_ttl == b->cache_ttl &&
         a->use_cache == b->use_cache;
}

/* The workflow's copy of o: most nodes share their policies (W1: one copy
 * for 100,000 nodes), so nodes point to one of the workflow's list (its
 * latest 64 entries are searched). NULL on ENOMEM, reported. */
static const ice__node_opts_t *intern_opts(ice__vctx_t *v, ice__node_t *n,
                                           const ice__node_opts_t *o) {
  ice__node_opts_t *p = v->wf->opts;

  for (int i = 0; p != NULL && i < 64; p = p->next, i++) {
    if (same_opts(p, o))
      return p;
  }
  p = ice__malloc(sizeof(*p));
  if (p == NULL) {
    ice__verr(v, n, n->def, NULL, "out of memory");
    return NULL;
  }
  *p = *o;
  p->next = v->wf->opts;
  v->wf->opts = p;
  return p;
}

void ice__check_node(ice__vctx_t *v, ice__node_t *n,
                     const ice__type_entry_t *te) {
  json_t *def = n->def, *x;
  const char *k;
  double d;
  ice__node_opts_t o;

  memset(&o, 0, sizeof(o));

  v->memo_obj = NULL;
  v->memo_n = 0;
  v->memo_first = 0;
  json_object_foreach(def, k, x) {
    if (v->memo_n < ICE__VCTX_MEMBERS) {
      v->memo_keys[v->memo_n] = k;
      v->memo_vals[v->memo_n] = x;
      v->memo_first |= memo_bit(k);
    }
    v->memo_n++;
  }
  /* Remembered only when all of them fit. */
  if (v->memo_n <= ICE__VCTX_MEMBERS)
    v->memo_obj = def;
  json_object_foreach(def, k, x) {
    if (ice__in_list(k, common_fields) || ice__is_x_key(k) ||
        ice__in_list(k, iceos_fields) || ice__iceos_ignored(n->type, k))
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
  ice__field(v, n, def, "dependencies", ICE_T_ARRAY);
  check_iceos_fields(v, n);
  if ((x = ice__field(v, n, def, "run_if", ICE_T_STRING)) != NULL) {
    ice__err_t err;
    const char *src = json_string_value(x);
    if (ice__expr_parse(src, strlen(src), &n->run_if, &err) != 0)
      ice__verr(v, n, def, "run_if", "run_if: column %d: %s", err.col, err.msg);
  }
  n->trigger = ICE__TRIGGER_ALL_SUCCESS;
  if ((x = ice__field(v, n, def, "trigger_rule", ICE_T_STRING)) != NULL) {
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
  o.timeout = te != NULL ? te->ex->default_timeout : 0;
  if ((x = ice__field(v, n, def, "timeout_seconds", ICE_T_NUMBER)) != NULL) {
    if (!number_of(x, &d) || d <= 0 || d > 31536000)
      ice__verr(v, n, def, "timeout_seconds",
                "timeout_seconds must be a number > 0");
    else
      o.timeout = d;
  }
  check_retry(v, n, &o);
  check_schema_field(v, n, "input_schema", &n->in_schema);
  check_schema_field(v, n, "output_schema", &n->out_schema);
  o.use_cache = json_is_true(ice__field(v, n, def, "use_cache", ICE_T_BOOL));
  if ((x = ice__field(v, n, def, "pool", ICE_T_STRING)) != NULL) {
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
  if ((x = ice__field(v, n, def, "cache_ttl_seconds", ICE_T_NUMBER)) != NULL &&
      json_number_value(x) < 0)
    ice__verr(v, n, def, "cache_ttl_seconds", "cache_ttl_seconds must be >= 0");
  else if (x != NULL)
    o.cache_ttl = json_number_value(x);
  /* Type-specific required fields and types. */
  if (te != NULL) {
    for (const ice_field_t *f = te->ex->fields; f != NULL && f->name != NULL;
         f++) {
      json_t *fv;
      if (member(v, def, f->name) == NULL) {
        if (f->required)
          ice__verr(v, n, def, NULL, "missing required field '%s'", f->name);
        continue;
      }
      /* Lists of nested nodes were checked while collecting them. */
      if (f->types & (ICE_T_NODES | ICE_T_NODE_LISTS))
        continue;
      fv = ice__field(v, n, def, f->name, f->types);
      /* Types with a compile hook compile their templates themselves; for
       * the others a syntax error is still found here, at validation. */
      if (fv != NULL && f->templated && te->ex->compile == NULL) {
        ice__tmpl_t *tm = NULL;
        ice__err_t err;
        if (ice__tmpl_compile(fv, &tm, &err) != 0)
          ice__verr_tmpl(v, n, def, f->name, &err);
        ice__tmpl_free(tm);
      }
    }
  }
  v->memo_obj = NULL;
  n->opt = intern_opts(v, n, &o);
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
  ice__vreport(c->v, ICE_DIAG_ERROR, c->node, c->node->def,
               field != NULL ? ice__pos_key(field) : ICE__POS_SELF, fmt, ap);
  va_end(ap);
}
