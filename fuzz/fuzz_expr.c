/* libFuzzer target: bytes -> the expression parser (SPEC §3.2), the names
 * an expression reads, and the evaluator against a fixed context with
 * every JSON type in it. Checks beyond "no crash, no leak": the source is
 * kept as given, an evaluation is deterministic, and a failure always has
 * a message. */
#include "expr.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char ctx_json[] =
    "{\"inputs\": {\"model\": \"gpt\", \"count\": 3, \"items\": [1, 2, 3],"
    " \"nested\": {\"a\": {\"b\": [10, {\"c\": \"deep\"}]}}, \"empty\": \"\","
    " \"zero\": 0, \"obj\": {\"0\": \"zero-key\", \"k\": 1}, \"k\": []},"
    " \"x\": 5, \"s\": \"h\\u00e9llo\", \"list\": [1, \"two\", 3.5, null, "
    "true], \"fetch\": {\"status\": \"ok\", \"rows\": [{\"id\": 1}, "
    "{\"id\": 2}]}, \"t\": true, \"f\": false, \"n\": null, \"r\": 2.5,"
    " \"big\": 9223372036854775807, \"neg\": -7, \"k\": \"model\","
    " \"tiny\": -9223372036854775808, \"e\": 1e308,"
    " \"kw\": {\"if\": 1, \"not\": 2, \"true\": 3}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static json_t *ctx;
  ice__expr_t *e = NULL;
  ice__err_t err;
  json_t *v = NULL, *w = NULL, *names;

  if (ctx == NULL && (ctx = json_loads(ctx_json, 0, NULL)) == NULL)
    abort();
  memset(&err, 0, sizeof(err));
  if (ice__expr_parse((const char *)data, size, &e, &err) != 0) {
    if (err.msg[0] == '\0')
      abort();
    return 0;
  }
  if (memchr(data, '\0', size) == NULL &&
      (strlen(ice__expr_source(e)) != size ||
       memcmp(ice__expr_source(e), data, size) != 0))
    abort();
  names = json_object();
  if (names == NULL || ice__expr_reads(e, names) != 0)
    abort();
  json_decref(names);
  if (ice__expr_eval(e, ice__lookup_object, ctx, &v, &err) == 0) {
    (void)ice__json_truthy(v);
    if (ice__expr_eval(e, ice__lookup_object, ctx, &w, &err) != 0 ||
        !ice__json_equal(v, w))
      abort();
    json_decref(w);
    json_decref(v);
  } else if (err.msg[0] == '\0') {
    abort();
  }
  ice__expr_free(e);
  return 0;
}
