/* libFuzzer target: bytes -> the expression parser and evaluator, and the
 * template compiler and renderer, against a small fixed context. */
#include "../src/expr.h"
#include "../src/template.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static json_t *ctx;
  ice__expr_t *e = NULL;
  ice__tmpl_t *t = NULL;
  ice__err_t err;
  json_t *v = NULL, *s;

  if (ctx == NULL)
    ctx = json_loads("{\"a\": {\"b\": [1, 2.5, \"x\", null, true]}, "
                     "\"n\": 3, \"s\": \"str\", \"inputs\": {\"k\": [] }}",
                     0, NULL);
  if (ice__expr_parse((const char *)data, size, &e, &err) == 0) {
    if (ice__expr_eval(e, ice__lookup_object, ctx, &v, &err) == 0)
      json_decref(v);
    ice__expr_free(e);
  }
  s = json_stringn_nocheck((const char *)data, size);
  if (s != NULL && ice__tmpl_compile(s, &t, &err) == 0) {
    v = NULL;
    if (ice__tmpl_render_or_share(t, s, ice__lookup_object, ctx, &v, &err) == 0)
      json_decref(v);
    ice__tmpl_free(t);
  }
  json_decref(s);
  return 0;
}
