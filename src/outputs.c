/* The `outputs` of iceOS bundle workflows (SPEC §1.1): name -> value,
 * whose strings may hold templates. Compiled once at validation; rendered
 * by run.c once every top-level node is terminal and the run would
 * otherwise succeed, and then the run's `output`. */
#include "workflow.h"

#include <stdio.h>
#include <string.h>

typedef struct {
  const char *name;  /* borrowed from the document */
  json_t *value;     /* borrowed */
  ice__tmpl_t *tmpl; /* NULL when the value holds no template */
} output_t;

struct ice__outputs_s {
  output_t *items;
  size_t n;
};

void ice__outputs_free(ice__outputs_t *o) {
  if (o == NULL)
    return;
  for (size_t i = 0; i < o->n; i++)
    ice__tmpl_free(o->items[i].tmpl);
  ice__free(o->items);
  ice__free(o);
}

/* Reports a template error of outputs.NAME: the compiler's JSON path
 * ("$", "$.a[0]") becomes the output's ("outputs.NAME.a[0]"). */
static void report(ice__vctx_t *v, json_t *outputs, const char *name,
                   const ice__err_t *err) {
  const char *msg = err->msg, *sub = "";
  size_t sublen = 0;
  char col[32] = "";

  if (msg[0] == '$') {
    const char *colon = strstr(msg, ": ");
    if (colon != NULL) {
      sub = msg + 1;
      sublen = (size_t)(colon - sub);
      msg = colon + 2;
    }
  }
  if (err->col > 0)
    snprintf(col, sizeof(col), " (column %d)", err->col);
  ice__verr(v, NULL, outputs, name, "outputs.%s%.*s: %s%s", name, (int)sublen,
            sub, msg, col);
}

void ice__outputs_compile(ice__vctx_t *v, json_t *root) {
  json_t *x = ice__field(v, NULL, root, "outputs", ICE_T_OBJECT);
  ice__outputs_t *o;
  const char *k;
  json_t *val;

  if (x == NULL)
    return;
  o = ice__calloc(1, sizeof(*o));
  if (o == NULL)
    return;
  o->items = ice__calloc(json_object_size(x) + 1, sizeof(*o->items));
  if (o->items == NULL) {
    ice__free(o);
    return;
  }
  v->wf->outputs = o;
  json_object_foreach(x, k, val) {
    output_t *it = &o->items[o->n++];
    ice__err_t err;
    it->name = k;
    it->value = val;
    if (ice__tmpl_compile(val, &it->tmpl, &err) != 0)
      report(v, x, k, &err);
  }
}

/* ---- rendering ---------------------------------------------------------- */

typedef struct {
  json_t *inputs;
  json_t *nodes;
} ctx_t;

/* SPEC §3.1's order, later winning: the inputs flattened, `inputs`, then
 * the completed top-level nodes. */
/* Appends `Output NAME: MESSAGE` to errors; the message may hold any
 * bytes a value had, so it is made valid UTF-8. */
static void add_error(json_t *errors, const char *name, const char *msg) {
  char line[768];

  snprintf(line, sizeof(line), "Output %s: %s", name, msg);
  json_array_append_new(errors, ice__json_lossy_cstr(line));
}

static json_t *lookup(void *data, const char *name, size_t len) {
  const ctx_t *c = data;
  json_t *v = json_object_getn(c->nodes, name, len);

  if (v != NULL)
    return v;
  if (len == 6 && memcmp(name, "inputs", 6) == 0)
    return c->inputs;
  return json_object_getn(c->inputs, name, len);
}

int ice__outputs_render(const ice_workflow_t *wf, json_t *inputs, json_t *nodes,
                        json_t **out, json_t *errors) {
  const ice__outputs_t *o = wf->outputs;
  ctx_t c = {inputs, nodes};
  json_t *res = json_object();
  int bad = 0;

  *out = NULL;
  if (res == NULL) {
    add_error(errors, "", "out of memory");
    return -1;
  }
  for (size_t i = 0; o != NULL && i < o->n; i++) {
    const output_t *it = &o->items[i];
    ice__err_t err;
    json_t *v;
    if (ice__tmpl_render_or_share(it->tmpl, it->value, lookup, &c, &v, &err) !=
        0) {
      add_error(errors, it->name, err.msg);
      bad = 1;
      continue;
    }
    if (json_object_set_new(res, it->name, v) != 0) {
      add_error(errors, it->name, "out of memory");
      bad = 1;
    }
  }
  if (bad) {
    json_decref(res);
    return -1;
  }
  *out = res;
  return 0;
}
