/* Declared run inputs, the `inputs` key of iceOS bundle workflows (SPEC
 * §1.1): its shape checked at validation, and the run's inputs checked
 * against it when a run is created (run.c), before anything runs. The
 * names the file's expressions read are collected by expr_names.c. */
#include "workflow.h"

#include <stdio.h>
#include <string.h>

/* Checks one list of names (`what` is "inputs" or "inputs.required"...)
 * and adds each to seen, reporting one listed twice. */
static void check_names(ice__vctx_t *v, json_t *list, const char *what,
                        json_t *seen) {
  size_t i;
  json_t *x;

  json_array_foreach(list, i, x) {
    const char *name = json_string_value(x);
    if (name == NULL || name[0] == '\0' ||
        strlen(name) != json_string_length(x)) {
      ice__verr_item(v, NULL, list, i,
                     "%s[%zu] must be an input name (a "
                     "non-empty string)",
                     what, i);
      continue;
    }
    if (json_object_get(seen, name) != NULL) {
      ice__verr_item(v, NULL, list, i, "%s[%zu]: input '%s' is declared twice",
                     what, i, name);
      continue;
    }
    if (json_object_set_new(seen, name, json_true()) != 0)
      ice__verr_item(v, NULL, list, i, "out of memory");
  }
}

/* inputs.required or inputs.optional: an array of names, or null (as
 * iceOS writes an empty field). Returns the array or NULL. */
static json_t *list_of(ice__vctx_t *v, json_t *obj, const char *key,
                       json_t *seen) {
  json_t *x = json_object_get(obj, key);
  char what[32];

  if (x == NULL || json_is_null(x))
    return NULL;
  snprintf(what, sizeof(what), "inputs.%s", key);
  if (!json_is_array(x)) {
    ice__verr_value(v, NULL, obj, key, "%s must be an array of input names",
                    what);
    return NULL;
  }
  check_names(v, x, what, seen);
  return x;
}

void ice__inputs_compile(ice__vctx_t *v, json_t *root) {
  ice_workflow_t *wf = v->wf;
  json_t *x = ice__field(v, NULL, root, "inputs", ICE_T_OBJECT | ICE_T_ARRAY);
  json_t *seen;
  const char *k;
  json_t *val;

  if (x == NULL)
    return;
  wf->declares_inputs = 1;
  seen = json_object();
  if (seen == NULL)
    return;
  if (json_is_array(x)) {
    /* A bare list: every name is required. */
    check_names(v, x, "inputs", seen);
    wf->inputs_required = x;
    json_decref(seen);
    return;
  }
  json_object_foreach(x, k, val) {
    if (strcmp(k, "required") != 0 && strcmp(k, "optional") != 0 &&
        !ice__is_x_key(k))
      ice__verr(v, NULL, x, k,
                "inputs: unknown field '%s' (inputs has 'required' and "
                "'optional' lists of names)",
                k);
  }
  wf->inputs_required = list_of(v, x, "required", seen);
  wf->inputs_optional = list_of(v, x, "optional", seen);
  json_decref(seen);
}

/* ---- at run creation ---------------------------------------------------- */

static int in_list(const json_t *list, const char *name) {
  size_t i;
  json_t *x;

  json_array_foreach(list, i, x) {
    const char *s = json_string_value(x);
    if (s != NULL && strcmp(s, name) == 0)
      return 1;
  }
  return 0;
}

/* "topic, style (optional)" into buf, shortened with "..." when long. */
static void declared_text(const ice_workflow_t *wf, char *buf, size_t len) {
  const json_t *lists[2] = {wf->inputs_required, wf->inputs_optional};
  size_t used = 0;
  int any = 0;

  buf[0] = '\0';
  for (int l = 0; l < 2; l++) {
    size_t i;
    json_t *x;
    json_array_foreach(lists[l], i, x) {
      int n;
      if (!json_is_string(x))
        continue;
      n = snprintf(buf + used, len - used, "%s%s%s", any ? ", " : "",
                   json_string_value(x), l == 1 ? " (optional)" : "");
      any = 1;
      if (n < 0 || (size_t)n >= len - used) {
        /* Too long: end with "...", which always fits in the last bytes. */
        snprintf(buf + (len > 5 ? len - 5 : 0), len > 5 ? 5 : len, "...");
        return;
      }
      used += (size_t)n;
    }
  }
  if (!any)
    snprintf(buf, len, "none");
}

int ice__inputs_check(const ice_workflow_t *wf, json_t *inputs,
                      ice_diags_t *diags) {
  char declared[768], msg[1024];
  const char *k;
  json_t *x;
  size_t i;
  int bad = 0;

  if (!wf->declares_inputs)
    return 0;
  declared_text(wf, declared, sizeof(declared));
  json_array_foreach(wf->inputs_required, i, x) {
    const char *name = json_string_value(x);
    if (name == NULL || json_object_get(inputs, name) != NULL)
      continue;
    snprintf(msg, sizeof(msg),
             "missing required input '%s' (the workflow declares: %s)", name,
             declared);
    ice__diags_add(diags, wf->file, 0, 0, msg);
    bad = 1;
  }
  json_object_foreach(inputs, k, x) {
    if (in_list(wf->inputs_required, k) || in_list(wf->inputs_optional, k))
      continue;
    /* Read by an expression or template of the file: `inputs.K` or `K`
     * (or the whole inputs object). */
    if (json_object_get(wf->reads, k) != NULL ||
        json_object_get(wf->reads, "inputs") != NULL)
      continue;
    snprintf(msg, sizeof(msg),
             "input '%s' is not declared and nothing in the workflow reads "
             "it (the workflow declares: %s)",
             k, declared);
    ice__diags_add(diags, wf->file, 0, 0, msg);
    bad = 1;
  }
  return bad ? ICE_EINPUT : 0;
}

json_t *ice__inputs_declared(const ice_workflow_t *wf, json_t *inputs) {
  json_t *out;
  const char *k;
  json_t *x;

  if (!wf->declares_inputs)
    return json_incref(inputs);
  out = json_object();
  if (out == NULL)
    return NULL;
  json_object_foreach(inputs, k, x) {
    if ((in_list(wf->inputs_required, k) || in_list(wf->inputs_optional, k)) &&
        json_object_set(out, k, x) != 0) {
      json_decref(out);
      return NULL;
    }
  }
  return out;
}
