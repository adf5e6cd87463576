/* Unit tests of templates (SPEC §3.3): whole-string templates keep their
 * type, mixed strings get the text forms, errors name the JSON path and
 * column, untemplated subtrees are shared after rendering, allocation
 * failures are reported, and a seeded fuzz run never crashes or leaks. */
#include "helpers.h"

#include "expr.h"
#include "template.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *ctx;

static int setup(void **state) {
  ctx = th_json("{\"inputs\": {\"model\": \"gpt\", \"count\": 3,"
                " \"items\": [1, 2], \"cfg\": {\"k\": 1, \"a\": [0.5]}},"
                " \"a\": 1, \"b\": 2, \"r\": 2.0, \"q\": \"say \\\"hi\\\"\","
                " \"u\": \"\\u00e9\", \"t\": true, \"n\": null}");
  return 0;
}

static int teardown(void **state) {
  json_decref(ctx);
  return 0;
}

/* Compiles and renders `value_json`; fails the test on any error. */
static json_t *render(const char *value_json) {
  json_t *value = th_json(value_json), *out;
  ice__tmpl_t *t;
  ice__err_t err;

  if (ice__tmpl_compile(value, &t, &err) != 0)
    fail_msg("compile of %s failed: %s", value_json, err.msg);
  if (ice__tmpl_render_or_share(t, value, ice__lookup_object, ctx, &out,
                                &err) != 0)
    fail_msg("render of %s failed: %s", value_json, err.msg);
  ice__tmpl_free(t);
  json_decref(value);
  return out;
}

static void renders(const char *value_json, const char *expected) {
  json_t *v = render(value_json), *want = th_json(expected);
  char *a = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  char *b = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);

  if (strcmp(a, b) != 0 || json_typeof(v) != json_typeof(want))
    fail_msg("%s: expected %s, got %s", value_json, b, a);
  free(a);
  free(b);
  json_decref(v);
  json_decref(want);
}

static void compile_fails(const char *value_json, int kind, int col,
                          const char *msg) {
  json_t *value = th_json(value_json);
  ice__tmpl_t *t = (ice__tmpl_t *)1;
  ice__err_t err;

  memset(&err, 0, sizeof(err));
  if (ice__tmpl_compile(value, &t, &err) == 0)
    fail_msg("compile of %s succeeded", value_json);
  assert_null(t);
  if (err.kind != kind || err.col != col || strcmp(err.msg, msg) != 0)
    fail_msg("%s: expected %s col %d \"%s\", got %s col %d \"%s\"", value_json,
             ice__kind_name(kind), col, msg, ice__kind_name(err.kind), err.col,
             err.msg);
  json_decref(value);
}

static void render_fails(const char *value_json, const char *msg) {
  json_t *value = th_json(value_json), *out = (json_t *)1;
  ice__tmpl_t *t;
  ice__err_t err;

  assert_int_equal(ice__tmpl_compile(value, &t, &err), 0);
  assert_non_null(t);
  assert_int_equal(ice__tmpl_render(t, ice__lookup_object, ctx, &out, &err),
                   -1);
  assert_int_equal(err.kind, ICE__KIND_EXPRESSION);
  assert_string_equal(err.msg, msg);
  ice__tmpl_free(t);
  json_decref(value);
}

static void text_is(const char *value_json, const char *expected) {
  json_t *v = th_json(value_json);
  char *s = ice__json_text(v);

  assert_non_null(s);
  if (strcmp(s, expected) != 0)
    fail_msg("text of %s: expected %s, got %s", value_json, expected, s);
  free(s);
  json_decref(v);
}

static void test_no_template(void **state) {
  static const char *const values[] = {
      "\"plain\"",
      "\"{ not one }\"",
      "\"}} {\"",
      "\"\"",
      "\"{\"",
      "{\"a\": \"plain\", \"b\": [1, \"x\", {\"c\": null}]}",
      "[]",
      "{}",
      "42",
      "null",
      "[[[\"a\"]], {\"{{\": \"keys are not\"}]",
  };

  for (size_t i = 0; i < ICE__ARRAY_SIZE(values); i++) {
    json_t *v = th_json(values[i]), *out;
    ice__tmpl_t *t = (ice__tmpl_t *)1;
    ice__err_t err;

    assert_int_equal(ice__tmpl_compile(v, &t, &err), 0);
    assert_null(t);
    /* Without a template, rendering is the value itself. */
    assert_int_equal(
        ice__tmpl_render_or_share(NULL, v, ice__lookup_object, ctx, &out, &err),
        0);
    assert_ptr_equal(out, v);
    json_decref(out);
    json_decref(v);
  }
}

static void test_whole_keeps_type(void **state) {
  renders("\"{{ inputs.count }}\"", "3");
  renders("\"{{inputs.count}}\"", "3");
  renders("\"{{ r }}\"", "2.0");
  renders("\"{{ t }}\"", "true");
  renders("\"{{ n }}\"", "null");
  renders("\"{{ inputs.items }}\"", "[1, 2]");
  renders("\"{{ inputs.cfg }}\"", "{\"k\": 1, \"a\": [0.5]}");
  renders("\"{{ inputs.model }}\"", "\"gpt\"");
  renders("\"{{ a + b }}\"", "3");
  renders("\"{{ 'a}}b' }}\"", "\"a}}b\"");
  renders("\"{{ \\\"x}}\\\" + 'y' }}\"", "\"x}}y\"");
  renders("\"{{ {'k': [1, 2] } }}\"", "{\"k\": [1, 2]}");
  renders("{\"n\": \"{{ inputs.count }}\", \"s\": \"{{ inputs.model }}\"}",
          "{\"n\": 3, \"s\": \"gpt\"}");
}

static void test_whole_result_is_shared(void **state) {
  json_t *out = render("\"{{ inputs.cfg }}\"");

  assert_ptr_equal(out, json_object_get(json_object_get(ctx, "inputs"), "cfg"));
  json_decref(out);
}

static void test_text_forms(void **state) {
  renders("\" {{ inputs.count }}\"", "\" 3\"");
  renders("\"{{ inputs.count }} \"", "\"3 \"");
  renders("\"n={{ inputs.count }}, r={{ r }}, s={{ inputs.model }}\"",
          "\"n=3, r=2.0, s=gpt\"");
  renders("\"b={{ t }} f={{ false }} z={{ n }}\"", "\"b=true f=false z=null\"");
  renders("\"l={{ inputs.items }} o={{ inputs.cfg }}\"",
          "\"l=[1,2] o={\\\"k\\\":1,\\\"a\\\":[0.5]}\"");
  renders("\"{{ a }}{{ b }}\"", "\"12\"");
  renders("\"{{ q }} / {{ [q] }}\"",
          "\"say \\\"hi\\\" / [\\\"say \\\\\\\"hi\\\\\\\"\\\"]\"");
  renders("\"{{ u }}{{ [u] }}\"", "\"\\u00e9[\\\"\\u00e9\\\"]\"");
  renders("\"x{{ 0.1 + 0.2 }}\"", "\"x0.30000000000000004\"");
  renders("\"x{{ 1 / 3 }}\"", "\"x0.3333333333333333\"");
  renders("\"{{ '' }}-\"", "\"-\"");
}

static void test_embedded_nul(void **state) {
  json_t *value = json_stringn("a\0{{ 1 }}\0", 10), *out;
  ice__tmpl_t *t;
  ice__err_t err;

  assert_int_equal(ice__tmpl_compile(value, &t, &err), 0);
  assert_int_equal(ice__tmpl_render(t, ice__lookup_object, ctx, &out, &err), 0);
  assert_int_equal(json_string_length(out), 4);
  assert_memory_equal(json_string_value(out),
                      "a\0"
                      "1\0",
                      4);
  json_decref(out);
  ice__tmpl_free(t);
  json_decref(value);
}

static void test_nested_values(void **state) {
  renders("{\"q\": \"{{ inputs.model }}\", \"list\": [\"{{ a }}\", \"x\","
          " {\"deep\": \"v={{ b }}\"}], \"keep\": {\"k\": [1]}}",
          "{\"q\": \"gpt\", \"list\": [1, \"x\", {\"deep\": \"v=2\"}],"
          " \"keep\": {\"k\": [1]}}");
  renders("[\"x\", \"{{ a }}\", \"y\", \"{{ b }}\"]", "[\"x\", 1, \"y\", 2]");
  /* Key order is the value's own, templated or not. */
  renders("{\"z\": 1, \"m\": \"{{ a }}\", \"a\": 2}",
          "{\"z\": 1, \"m\": 1, \"a\": 2}");
}

static void test_shared_subtrees(void **state) {
  json_t *value =
      th_json("{\"a\": {\"deep\": [1, 2]}, \"b\": \"{{ a }}\", \"c\": [\"k\","
              " {\"t\": \"{{ b }}\", \"same\": {\"x\": 1}}, {\"u\": 1}]}");
  json_t *out, *out2;
  ice__tmpl_t *t;
  ice__err_t err;
  json_t *vc, *oc;

  assert_int_equal(ice__tmpl_compile(value, &t, &err), 0);
  assert_non_null(t);
  assert_int_equal(ice__tmpl_render(t, ice__lookup_object, ctx, &out, &err), 0);
  th_assert_json(out, "{\"a\":{\"deep\":[1,2]},\"b\":1,\"c\":[\"k\","
                      "{\"t\":2,\"same\":{\"x\":1}},{\"u\":1}]}");
  vc = json_object_get(value, "c");
  oc = json_object_get(out, "c");
  assert_ptr_not_equal(out, value);
  assert_ptr_not_equal(oc, vc);
  assert_ptr_equal(json_object_get(out, "a"), json_object_get(value, "a"));
  assert_ptr_equal(json_array_get(oc, 0), json_array_get(vc, 0));
  assert_ptr_equal(json_array_get(oc, 2), json_array_get(vc, 2));
  assert_ptr_equal(json_object_get(json_array_get(oc, 1), "same"),
                   json_object_get(json_array_get(vc, 1), "same"));
  /* The input is untouched, and a second render gives the same result. */
  th_assert_json(value, "{\"a\":{\"deep\":[1,2]},\"b\":\"{{ a }}\",\"c\":["
                        "\"k\",{\"t\":\"{{ b }}\",\"same\":{\"x\":1}},"
                        "{\"u\":1}]}");
  assert_int_equal(
      ice__tmpl_render_or_share(t, value, ice__lookup_object, ctx, &out2, &err),
      0);
  assert_true(json_equal(out, out2));
  json_decref(out);
  json_decref(out2);
  /* The compiled template keeps the value alive on its own. */
  json_decref(value);
  assert_int_equal(ice__tmpl_render(t, ice__lookup_object, ctx, &out, &err), 0);
  assert_int_equal(json_integer_value(json_object_get(out, "b")), 1);
  json_decref(out);
  ice__tmpl_free(t);
  ice__tmpl_free(NULL);
}

static void test_compile_errors(void **state) {
  compile_fails("{\"query\": \"abc {{ x\"}", ICE__KIND_TEMPLATE, 5,
                "$.query: unterminated '{{'");
  compile_fails("\"{{\"", ICE__KIND_TEMPLATE, 1, "$: unterminated '{{'");
  compile_fails("\"{{ a }} and {{ b }\"", ICE__KIND_TEMPLATE, 13,
                "$: unterminated '{{'");
  compile_fails("{\"a\": [{\"b\": \"{{ 1 +\"}]}", ICE__KIND_TEMPLATE, 1,
                "$.a[0].b: unterminated '{{'");
  compile_fails("{\"a\": [{\"b\": \"x {{ 1 + }}\"}]}", ICE__KIND_EXPRESSION, 10,
                "$.a[0].b: unexpected end of expression");
  compile_fails("{\"we ird\": [\"ok\", \"{{ }}\"]}", ICE__KIND_EXPRESSION, 3,
                "$[\"we ird\"][1]: empty expression");
  compile_fails("{\"my-key_2\": \"{{ foo(1) }}\"}", ICE__KIND_EXPRESSION, 4,
                "$.my-key_2: unknown function 'foo'");
  compile_fails("{\"0\": \"\\u00e9\\u00e9 {{ 1 + + }}\"}", ICE__KIND_EXPRESSION,
                13, "$[\"0\"]: unexpected end of expression");
  /* An unterminated string ends at the first "}}" after all, so the
   * error is the string's. */
  compile_fails("\"{{ 'it }} more\"", ICE__KIND_EXPRESSION, 4,
                "$: unterminated string");
  compile_fails("\"{{ 'a}}' \"", ICE__KIND_TEMPLATE, 1, "$: unterminated '{{'");
  compile_fails("\"{{{ a }}}\"", ICE__KIND_EXPRESSION, 5,
                "$: expected a string key but found 'a'");
  compile_fails("[1, \"{{ ok }}\", \"{{ (1 }}\"]", ICE__KIND_EXPRESSION, 7,
                "$[2]: expected ')' but found end of expression");
}

static void test_long_path_in_error(void **state) {
  char key[300], json[700];
  json_t *value;
  ice__tmpl_t *t;
  ice__err_t err;

  memset(key, 'k', sizeof(key) - 1);
  key[sizeof(key) - 1] = '\0';
  snprintf(json, sizeof(json), "{\"%s\": {\"%s\": [\"{{\"]}}", key, key);
  value = th_json(json);
  assert_int_equal(ice__tmpl_compile(value, &t, &err), -1);
  assert_int_equal(err.kind, ICE__KIND_TEMPLATE);
  assert_non_null(strstr(err.msg, "...: unterminated '{{'"));
  assert_memory_equal(err.msg, "$.kkkk", 6);
  json_decref(value);
  snprintf(json, sizeof(json),
           "{\"%.150s\": {\"%.150s\": {\"%.93s\":"
           " [[\"{{\"]]}}}",
           key, key, key);
  value = th_json(json);
  assert_int_equal(ice__tmpl_compile(value, &t, &err), -1);
  assert_non_null(strstr(err.msg, "...: unterminated '{{'"));
  json_decref(value);
}

static void test_render_errors(void **state) {
  render_fails("\"{{ nope }}\"", "undefined: nope");
  render_fails("\"x {{ inputs.model.x }}\"", "undefined: inputs.model.x");
  render_fails("{\"a\": [\"{{ 1 + 'a' }}\"]}", "cannot add integer and string");
  render_fails("{\"a\": \"ok {{ a }}\", \"b\": \"{{ 1 / 0 }}\"}",
               "division by zero");
}

static void test_json_text(void **state) {
  text_is("\"plain\"", "plain");
  text_is("\"\"", "");
  text_is("1", "1");
  text_is("-9223372036854775808", "-9223372036854775808");
  text_is("true", "true");
  text_is("false", "false");
  text_is("null", "null");
  text_is("2.0", "2.0");
  text_is("-0.0", "-0.0");
  text_is("0.0", "0.0");
  text_is("0.1", "0.1");
  text_is("123.456", "123.456");
  text_is("1e15", "1000000000000000.0");
  text_is("1e16", "1e+16");
  text_is("1.5e16", "1.5e+16");
  text_is("1e22", "1e+22");
  text_is("0.0001", "0.0001");
  text_is("0.00001", "1e-05");
  text_is("1.5e-7", "1.5e-07");
  text_is("5e-324", "5e-324");
  text_is("-2.5e-320", "-2.5e-320");
  text_is("2.2250738585072014e-308", "2.2250738585072014e-308");
  text_is("1.7976931348623157e308", "1.7976931348623157e+308");
  text_is("0.30000000000000004", "0.30000000000000004");
  text_is("123456789012345678.0", "1.2345678901234568e+17");
  text_is("1234567.0", "1234567.0");
  text_is("[]", "[]");
  text_is("{}", "{}");
  text_is("[1, 2.5, \"a\", null, [true], {}]", "[1,2.5,\"a\",null,[true],{}]");
  text_is("{\"z\": 1, \"a\": {\"k\": [0.5]}}", "{\"z\":1,\"a\":{\"k\":[0.5]}}");
  text_is("[\"q\\\"b\\\\s\\n\\t\\r\\b\\f\\u0001\\u001f/\\u00e9\"]",
          "[\"q\\\"b\\\\s\\n\\t\\r\\b\\f\\u0001\\u001f/\xc3\xa9\"]");
  text_is("{\"k\\\"ey\": 1}", "{\"k\\\"ey\":1}");
}

static void test_shortest_round_trip(void **state) {
  /* Every double printed must read back as itself. */
  uint64_t x = 0x9e3779b97f4a7c15ULL;

  for (int i = 0; i < 20000; i++) {
    double d;
    uint64_t bits;
    json_t *v;
    char *s;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    bits = x;
    memcpy(&d, &bits, sizeof(d));
    if (!isfinite(d))
      continue;
    v = json_real(d);
    s = ice__json_text(v);
    assert_non_null(s);
    if (strtod(s, NULL) != d)
      fail_msg("%s does not round-trip %.17g", s, d);
    free(s);
    json_decref(v);
  }
}

/* ---- Allocation failures ---- */

static long alloc_budget = -1;

static void *failing_malloc(size_t n) {
  if (alloc_budget == 0)
    return NULL;
  if (alloc_budget > 0)
    alloc_budget--;
  return malloc(n);
}

static void test_allocation_failures(void **state) {
  static const char *const values[] = {
      "{\"a\": \"x {{ inputs.items }} {{ 2.5 }}\", \"b\": [1, \"{{ a }}\","
      " {\"c\": \"{{ inputs.cfg }}\"}], \"d\": {\"e\": 1}}",
      "[\"{{ [a, b] }}\", \"{{ 'x' + 'y' }}\"]",
  };

  for (size_t i = 0; i < ICE__ARRAY_SIZE(values); i++) {
    json_t *value = th_json(values[i]);

    for (long budget = 0;; budget++) {
      ice__tmpl_t *t;
      ice__err_t err;
      json_t *out;
      int rc;

      json_set_alloc_funcs(failing_malloc, free);
      alloc_budget = budget;
      rc = ice__tmpl_compile(value, &t, &err);
      if (rc == 0) {
        rc = ice__tmpl_render(t, ice__lookup_object, ctx, &out, &err);
        if (rc == 0)
          json_decref(out);
        ice__tmpl_free(t);
      }
      alloc_budget = -1;
      json_set_alloc_funcs(malloc, free);
      if (rc == 0)
        break;
      assert_true(budget < 1000);
      assert_true(err.msg[0] != '\0');
    }
    json_decref(value);
  }
}

/* ---- Fuzz ---- */

static uint64_t rng_state;

static uint32_t rnd(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}

static const char *const seeds[] = {
    "{{ inputs.count }}",
    "n={{ inputs.count }}, s={{ inputs.model }}!",
    "{{ 'a}}b' }} and {{ \"c\" + 'd' }}",
    "{{ {'k': [a, b] } }}",
    "x {{ inputs.cfg }} y {{ inputs.items[0] }} z",
    "{{ nope or 'd' }}{{ r }}",
    "{{{ a }}}",
    "plain text",
};

static const char *const pieces[] = {
    "{{",      "}}", "{", "}", "'", "\"", "\\", " ",        "a",
    "inputs.", "+",  "[", "]", "(", ")",  "1",  "\xc3\xa9", "\xff",
};

static void test_fuzz(void **state) {
  char buf[256];
  size_t compiled = 0, rendered = 0;

  rng_state = 0x7e3915eedULL;
  for (int i = 0; i < 200000; i++) {
    const char *sd = seeds[rnd() % ICE__ARRAY_SIZE(seeds)];
    size_t len = strlen(sd), n = rnd() % 3;
    json_t *str, *value, *out;
    ice__tmpl_t *t;
    ice__err_t err;

    memcpy(buf, sd, len);
    for (size_t k = 0; k <= n; k++) {
      size_t at = rnd() % (len + 1);
      unsigned what = rnd() % 4;

      if (what == 0 && at < len) {
        memmove(buf + at, buf + at + 1, len - at - 1);
        len--;
      } else if (what == 1 && at < len) {
        buf[at] = (char)(rnd() & 0xFF);
      } else {
        const char *p = pieces[rnd() % ICE__ARRAY_SIZE(pieces)];
        size_t pl = strlen(p);
        if (len + pl > sizeof(buf))
          continue;
        memmove(buf + at + pl, buf + at, len - at);
        memcpy(buf + at, p, pl);
        len += pl;
      }
    }
    /* Invalid UTF-8 cannot be a JSON string: that input is skipped. */
    str = json_stringn(buf, len);
    if (str == NULL)
      continue;
    value = json_pack("{s:o, s:[i, O]}", "k", str, "l", 1, str);
    assert_non_null(value);
    if (ice__tmpl_compile(value, &t, &err) != 0) {
      assert_true(err.kind == ICE__KIND_TEMPLATE ||
                  err.kind == ICE__KIND_EXPRESSION);
      assert_true(err.col >= 1);
      assert_true(strncmp(err.msg, "$.k: ", 5) == 0);
      json_decref(value);
      continue;
    }
    compiled++;
    if (ice__tmpl_render_or_share(t, value, ice__lookup_object, ctx, &out,
                                  &err) == 0) {
      rendered++;
      /* The untemplated element is shared in every render. */
      assert_ptr_equal(json_array_get(json_object_get(out, "l"), 0),
                       json_array_get(json_object_get(value, "l"), 0));
      json_decref(out);
    }
    ice__tmpl_free(t);
    json_decref(value);
  }
  assert_true(compiled > 20000);
  assert_true(rendered > 10000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_no_template),
      cmocka_unit_test(test_whole_keeps_type),
      cmocka_unit_test(test_whole_result_is_shared),
      cmocka_unit_test(test_text_forms),
      cmocka_unit_test(test_embedded_nul),
      cmocka_unit_test(test_nested_values),
      cmocka_unit_test(test_shared_subtrees),
      cmocka_unit_test(test_compile_errors),
      cmocka_unit_test(test_long_path_in_error),
      cmocka_unit_test(test_render_errors),
      cmocka_unit_test(test_json_text),
      cmocka_unit_test(test_shortest_round_trip),
      cmocka_unit_test(test_allocation_failures),
      cmocka_unit_test(test_fuzz),
  };

  return cmocka_run_group_tests(tests, setup, teardown);
}
