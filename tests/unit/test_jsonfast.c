/* Unit tests of the quick JSON reader of workflow files (jsonfast.c): what
 * it reads is what jansson's json_loadb(JSON_REJECT_DUPLICATES) reads, key
 * order and integer / real included, and what it cannot read plainly it
 * leaves (NULL) to the old path, which reports errors. */
#include "helpers.h"

#include "doc.h"

#include <stdlib.h>
#include <string.h>

/* The compact text of v, keys in order; reals and integers told apart. */
static char *text_of(const json_t *v) {
  char *s = ice_json_format(v, 0);

  assert_non_null(s);
  return s;
}

/* text is read by the quick reader, the same as by jansson. */
static void expect_same(const char *text) {
  json_t *fast = ice__json_fast_parse(text, strlen(text));
  json_t *ref = json_loadb(text, strlen(text), JSON_REJECT_DUPLICATES, NULL);
  char *a, *b;

  if (fast == NULL)
    fail_msg("not read quickly: %s", text);
  assert_non_null(ref);
  a = text_of(fast);
  b = text_of(ref);
  if (strcmp(a, b) != 0)
    fail_msg("%s: quick %s, jansson %s", text, a, b);
  /* Reals stay reals and integers integers (the text tells 1 and 1.0
   * apart, json_equal does not). */
  assert_true(json_equal(fast, ref));
  free(a);
  free(b);
  json_decref(fast);
  json_decref(ref);
}

/* text is left to the old path. */
static void expect_left(const char *text, size_t len) {
  json_t *fast = ice__json_fast_parse(text, len);

  if (fast != NULL) {
    char *a = text_of(fast);
    json_decref(fast);
    fail_msg("read quickly as %s: %.*s", a, (int)len, text);
  }
}

static void test_reads_as_jansson(void **state) {
  (void)state;
  expect_same("{}");
  expect_same("[]");
  expect_same(" \r\n\t{ \"a\" : [ 1 , -2 , 0 , -0 , 3.5 , -0.25 ] } \n");
  expect_same("{\"name\": \"chain\", \"nodes\": [{\"id\": \"n0\", \"type\": "
              "\"tool\", \"tool_name\": \"echo\", \"tool_args\": {\"x\": 0}},"
              " {\"id\": \"n1\", \"type\": \"tool\", \"tool_name\": \"echo\","
              " \"tool_args\": {\"x\": 1}, \"dependencies\": [\"n0\"]}]}");
  /* Keys keep the file's order, not a sorted or hashed one. */
  expect_same("{\"z\": 1, \"a\": 2, \"m\": {\"y\": [], \"b\": {}}}");
  expect_same("[true, false, null, \"\", [[[]]], {\"\": 0}]");
  expect_same("[1e3, 1E-3, 2.5e+2, 0.1, 123456789.000001, -0.0]");
  expect_same("[999999999999999999, -999999999999999999]");
  expect_same("[\"tab\\t nl\\n q\\\" bs\\\\ sl\\/ \\b\\f\\r\"]");
  expect_same(
      "{\"cafe\": \"\xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80 caf\xc3\xa9\"}");
}

static void test_leaves_the_rest(void **state) {
  static const char *const texts[] = {
      "",
      "   ",
      "1",                     /* not an object or array */
      "\"s\"",                 /* the same */
      "{\"a\": 1, \"a\": 2}",  /* a duplicate key */
      "{\"a\": 1,}",           /* a trailing comma */
      "[1,]",                  /* the same */
      "{\"a\" 1}",             /* no colon */
      "{a: 1}",                /* a bare key */
      "[01]",                  /* a leading zero */
      "[1.]",                  /* no fraction digits */
      "[.5]",                  /* no integer digits */
      "[1e]",                  /* no exponent digits */
      "[-]",                   /* a bare sign */
      "[+1]",                  /* a plus sign */
      "[1e999]",               /* a real out of range */
      "[1234567890123456789]", /* 19 digits: jansson decides */
      "[\"\\u0041\"]",         /* \u escapes: jansson decodes */
      "[\"\\x\"]",             /* a bad escape */
      "[\"a\nb\"]",            /* a raw control character */
      "[\"\xff\"]",            /* bad UTF-8 in a string */
      "{\"\xc3\": 1}",         /* bad UTF-8 in a key */
      "{\"caf\xc3\xa9\": 1}",  /* any non-ASCII key */
      "[\"\xed\xa0\x80\"]",    /* a UTF-16 surrogate */
      "[\"\xc0\xaf\"]",        /* an overlong form */
      "[\"open]",              /* an unterminated string */
      "[tru]",                 /* a cut literal */
      "[nul",                  /* a cut document */
      "{\"a\": [1, 2}",        /* a mismatched bracket */
      "[1] [2]",               /* two documents */
      "[1] x",                 /* trailing garbage */
      "\xef\xbb\xbf[1]",       /* a byte-order mark */
      "[\xc3\xa9]",            /* non-ASCII outside strings */
  };

  (void)state;
  for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
    expect_left(texts[i], strlen(texts[i]));
  /* A NUL byte inside the text. */
  expect_left("[\"a\0b\"]", 7);
  expect_left("[1]\0", 4);
}

/* The file limit: 256 levels are read, 257 are left to the old path
 * (which reports them), as ice__json_too_deep counts them. */
static void test_depth_limit(void **state) {
  char text[2 * 257 + 1];
  json_t *v;

  (void)state;
  memset(text, '[', 256);
  memset(text + 256, ']', 256);
  text[512] = '\0';
  v = ice__json_fast_parse(text, 512);
  assert_non_null(v);
  assert_false(ice__json_too_deep(v, ICE__DOC_MAX_DEPTH));
  json_decref(v);
  memset(text, '[', 257);
  memset(text + 257, ']', 257);
  text[514] = '\0';
  expect_left(text, 514);
  v = json_loadb(text, 514, 0, NULL);
  assert_non_null(v);
  assert_true(ice__json_too_deep(v, ICE__DOC_MAX_DEPTH));
  json_decref(v);
}

/* Every prefix of a valid document is either read as jansson reads it or
 * left: a cut anywhere is never read as something else, and never
 * leaks (ASan). */
static void test_every_prefix(void **state) {
  static const char doc[] =
      "{\"nodes\": [{\"id\": \"a\", \"tool_args\": {\"s\": \"x\\ty\", "
      "\"n\": -12, \"r\": 0.5, \"l\": [true, null, {}]}}], \"k\": []}";

  (void)state;
  for (size_t n = 0; n <= strlen(doc); n++) {
    json_t *fast = ice__json_fast_parse(doc, n);
    json_t *ref = json_loadb(doc, n, JSON_REJECT_DUPLICATES, NULL);
    if (fast != NULL) {
      char *a = text_of(fast), *b;
      assert_non_null(ref);
      b = text_of(ref);
      assert_string_equal(a, b);
      free(a);
      free(b);
    }
    json_decref(fast);
    json_decref(ref);
  }
}

/* Short strings that recur are one shared value (the document is never
 * changed in place), and the text still reads the same. */
static void test_recurring_strings_shared(void **state) {
  static const char text[] =
      "[{\"type\": \"tool\", \"id\": \"a\"}, {\"type\": \"tool\", "
      "\"deps\": [\"a\"], \"long\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"},"
      " \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"]";
  json_t *v = ice__json_fast_parse(text, strlen(text));
  json_t *n0, *n1;

  (void)state;
  assert_non_null(v);
  n0 = json_array_get(v, 0);
  n1 = json_array_get(v, 1);
  assert_ptr_equal(json_object_get(n0, "type"), json_object_get(n1, "type"));
  assert_ptr_equal(json_object_get(n0, "id"),
                   json_array_get(json_object_get(n1, "deps"), 0));
  /* Long strings are not looked up. */
  assert_ptr_not_equal(json_object_get(n1, "long"), json_array_get(v, 2));
  json_decref(v);
  expect_same(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reads_as_jansson),
      cmocka_unit_test(test_leaves_the_rest),
      cmocka_unit_test(test_depth_limit),
      cmocka_unit_test(test_every_prefix),
      cmocka_unit_test(test_recurring_strings_shared),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
