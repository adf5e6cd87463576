/* Shared pieces of the control-flow executors. */
#include "flow.h"

#include <string.h>

json_t *ice__frame_outputs(const ice__frame_t *f) {
  json_t *o = json_object();
  const ice_workflow_t *wf = f->run->wf;

  for (uint32_t k = 0; o != NULL && k < f->n; k++) {
    if (f->slots[k].state == ICE__ST_COMPLETED)
      json_object_set(o, wf->nodes[f->scope->nodes[k]].id, f->slots[k].output);
  }
  return o;
}

json_t *ice__frame_last_output(const ice__frame_t *f) {
  if (f->n == 0 || f->slots[f->n - 1].state != ICE__ST_COMPLETED)
    return NULL;
  return f->slots[f->n - 1].output;
}

const ice__node_t *ice__frame_failed(const ice__frame_t *f,
                                     const ice__slot_t **slot) {
  for (uint32_t k = 0; k < f->n; k++) {
    if (f->slots[k].state == ICE__ST_FAILED) {
      if (slot != NULL)
        *slot = &f->slots[k];
      return &f->run->wf->nodes[f->scope->nodes[k]];
    }
  }
  return NULL;
}

int ice__frame_succeeded(const ice__frame_t *f) {
  for (uint32_t k = 0; k < f->n; k++) {
    uint8_t s = f->slots[k].state;
    if (s != ICE__ST_COMPLETED && s != ICE__ST_SKIPPED)
      return 0;
  }
  return 1;
}

long ice__field_int(ice__vctx_t *v, ice__node_t *n, const char *key, long dflt,
                    long min) {
  json_t *x = json_object_get(n->def, key);

  if (x == NULL || !json_is_integer(x))
    return dflt; /* absent, or a wrong type already reported */
  if (json_integer_value(x) < min || json_integer_value(x) > 100000000) {
    ice__verr(v, n, n->def, key, "%s must be an integer >= %ld", key, min);
    return dflt;
  }
  return (long)json_integer_value(x);
}

ice__expr_t *ice__field_expr(ice__vctx_t *v, ice__node_t *n, const char *key) {
  const char *src = json_string_value(json_object_get(n->def, key));
  ice__expr_t *e = NULL;
  ice__err_t err;

  if (src == NULL)
    return NULL;
  if (ice__expr_parse(src, strlen(src), &e, &err) != 0)
    ice__verr(v, n, n->def, key, "%s: column %d: %s", key, err.col, err.msg);
  return e;
}

void ice__fail_nested(ice_task_t *t, const char *where, const ice__node_t *n,
                      const ice__slot_t *s) {
  ice__task_fail_kind(t, s->err_kind, "%s: node '%s' failed: %s", where, n->id,
                      s->err_msg != NULL ? s->err_msg : "failed");
}

void ice__flow_done(ice_task_t *t, json_t *out) {
  /* Control-flow outputs embed their children's outputs (shared, not
   * copied); nesting can make their text explode while memory does not. */
  if (out != NULL && ice__json_size(out, ICE__MAX_TEXT_BYTES) == SIZE_MAX) {
    json_decref(out);
    ice__task_fail_kind(t, ICE__KIND_RESOURCE_LIMIT,
                        "output: its JSON text would be over %zu MiB "
                        "(nested outputs repeated at every level)",
                        ICE__MAX_TEXT_BYTES >> 20);
    return;
  }
  ice__task_done_raw(t, out);
}
