/* libFuzzer target: bytes -> the template compiler and renderer (SPEC
 * §3.3). Bytes that parse as JSON are compiled as a value (templates in
 * every string of objects and arrays, keys left alone); any other bytes
 * are one string. Rendered against a fixed context; a compile or render
 * failure must have a message, and a value with no template must come
 * back as itself. */
#include "template.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char ctx_json[] =
    "{\"inputs\": {\"city\": \"Lisbon\", \"n\": 3, \"items\": [1, 2.5, \"x\","
    " null, true], \"deep\": {\"a\": {\"b\": [{\"c\": \"d\"}]}}, \"k\": []},"
    " \"greet\": {\"text\": \"hello\", \"length\": 5}, \"s\": \"str\","
    " \"u\": \"\\u00e9\", \"t\": true, \"n\": null, \"big\": "
    "9223372036854775807, \"r\": 0.1, \"o\": {}, \"l\": []}";

static void render(json_t *value, json_t *ctx) {
  ice__tmpl_t *t = NULL;
  ice__err_t err;
  json_t *out = NULL;

  memset(&err, 0, sizeof(err));
  if (ice__tmpl_compile(value, &t, &err) != 0) {
    if (t != NULL || err.msg[0] == '\0')
      abort();
    return;
  }
  if (ice__tmpl_render_or_share(t, value, ice__lookup_object, ctx, &out,
                                &err) == 0) {
    if (out == NULL || (t == NULL && out != value))
      abort();
    json_decref(out);
  } else if (err.msg[0] == '\0') {
    abort();
  }
  ice__tmpl_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static json_t *ctx;
  json_t *v;

  if (ctx == NULL && (ctx = json_loads(ctx_json, 0, NULL)) == NULL)
    abort();
  v = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
  if (v == NULL)
    v = json_stringn_nocheck((const char *)data, size);
  if (v == NULL)
    abort();
  render(v, ctx);
  json_decref(v);
  return 0;
}
