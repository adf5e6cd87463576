/* The `tool` node (SPEC §5.1): resolves `tool_name` once at validation,
 * renders `tool_args` per attempt, checks them against the node's input
 * schema and runs the tool on the attempt (toolcall.c). */
#include "../call.h"

typedef struct {
  int in_arena; /* a workflow's (arena.c): not freed on its own */
  ice__tooldef_t *def;
  ice__tmpl_t *args_tmpl; /* NULL when tool_args hold no template */
  json_t *args;           /* tool_args, or NULL (a reference: a streamed
                             load frees the node's object) */
} tool_conf_t;

static const ice_field_t tool_fields[] = {
    {"tool_name", ICE_T_STRING, 1, 0},
    {"tool_args", ICE_T_OBJECT, 0, 1},
    {NULL, 0, 0, 0},
};

static void conf_free(void *p, void *data) {
  (void)data;
  tool_conf_t *c = p;

  if (c == NULL)
    return;
  ice__tooldef_free(c->def);
  ice__tmpl_free(c->args_tmpl);
  json_decref(c->args);
  if (!c->in_arena)
    ice__free(c);
}

void *ice__tool_compile(ice__vctx_t *v, ice__node_t *n, const char *name,
                        json_t *args) {
  int in_arena;
  tool_conf_t *c = ice__arena_calloc(sizeof(*c), &in_arena);
  ice__err_t err;

  if (c == NULL) {
    ice__verr(v, n, n->def, NULL, "out of memory");
    return NULL;
  }
  c->in_arena = in_arena;
  n->xdata = c;
  if (args != NULL) {
    c->args = json_incref(args);
    if (ice__tmpl_compile(args, &c->args_tmpl, &err) != 0)
      ice__verr_tmpl(v, n, n->def, "tool_args", &err);
  }
  c->def = ice__tooldef_resolve(v, n, n->def, "tool_name", name);
  return c;
}

static void *compile(ice_compile_t *cc) {
  ice__node_t *n = cc->node;
  const char *name = json_string_value(json_object_get(n->def, "tool_name"));
  json_t *args = json_object_get(n->def, "tool_args");

  if (name == NULL)
    return NULL; /* reported by the field checks */
  return ice__tool_compile(cc->v, n, name, json_is_object(args) ? args : NULL);
}

json_t *ice__tool_config(const ice_workflow_t *wf, const ice__node_t *n) {
  const tool_conf_t *c = n->xdata;
  json_t *o = json_object(), *deps = n->ndeps > 0 ? json_array() : NULL;
  int bad = o == NULL || (n->ndeps > 0 && deps == NULL) || c == NULL;

  /* The fields a streamed node may have (load_stream.c), in the order a
   * file usually gives them. */
  bad = bad || json_object_set_new(o, "id", json_string(n->id)) != 0 ||
        json_object_set_new(o, "type", json_string(n->type)) != 0 ||
        json_object_set_new(o, "tool_name",
                            json_string(ice__tooldef_name(c->def))) != 0 ||
        (c->args != NULL && json_object_set(o, "tool_args", c->args) != 0);
  for (uint32_t j = 0; !bad && j < n->ndeps; j++) {
    const ice__scope_t *sc = &wf->scopes[n->scope];
    bad = json_array_append_new(
              deps, json_string(wf->nodes[sc->nodes[n->deps[j]]].id)) != 0;
  }
  if (!bad && deps != NULL) {
    bad = json_object_set_new(o, "dependencies", deps) != 0;
    deps = NULL;
  }
  json_decref(deps);
  if (bad) {
    json_decref(o);
    return NULL;
  }
  return o;
}

static void tool_start(ice_task_t *t) {
  const tool_conf_t *c = ice_task_compiled(t);
  const ice__node_t *n = ice__task_node(t);
  ice__err_t err;
  json_t *args;

  if (ice__tmpl_render_or_share(c->args_tmpl, c->args != NULL ? c->args : NULL,
                                ice__task_lookup, t, &args, &err) != 0) {
    ice__task_fail_kind(t, err.kind == 0 ? ICE__KIND_EXPRESSION : err.kind,
                        "tool_args: %s", err.msg);
    return;
  }
  if (args == NULL)
    args = json_object();
  if (n->in_schema != NULL &&
      ice__schema_check(n->in_schema, args, &err) != 0) {
    json_decref(args);
    ice__task_fail_kind(t, ICE__KIND_INPUT_VALIDATION, "%s", err.msg);
    return;
  }
  ice__tool_run(t, c->def, args);
}

static void tool_cancel(ice_task_t *t) {
  const tool_conf_t *c = ice_task_compiled(t);

  ice__tool_stop(t, c->def);
}

const ice_executor_t ice__exec_tool = {
    .abi = ICE_EXECUTOR_ABI,
    .type = "tool",
    .fields = tool_fields,
    .start = tool_start,
    .cancel = tool_cancel,
    .default_timeout = 30.0,
    .compile = compile,
    .free_compiled = conf_free,
};
