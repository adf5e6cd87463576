/* Shared compile-time checks of the built-in executors. */
#include "flow.h"

#include <string.h>

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
