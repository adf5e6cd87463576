/* Unit tests of ice__json_size: it equals the length of the compact text
 * ice_json_format prints, counts shared containers once (so a value whose
 * text doubles per level is measured in linear time), and stops at its cap.
 * Also the UTF-8 helpers that keep strings from outside in JSON. */
#include "helpers.h"

#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void expect_exact(const char *text) {
  json_t *v = th_json(text);
  char *s = ice_json_format(v, 0);

  assert_non_null(s);
  assert_int_equal(ice__json_size(v, SIZE_MAX - 1), strlen(s));
  assert_int_equal(ice__json_size(v, strlen(s)), strlen(s));
  assert_int_equal(ice__json_size(v, strlen(s) - 1), SIZE_MAX);
  free(s);
  json_decref(v);
}

static void test_exact(void **state) {
  expect_exact("{}");
  expect_exact("[]");
  expect_exact("[1, -2, 3.5, 0.1, 1e300, true, false, null]");
  expect_exact("{\"a\": {\"b\": [1, {\"c\": []}]}, \"d\": \"x\"}");
  expect_exact("{\"q\\\"k\": \"tab\\there \\\\ \\\"q\\\" \\u0001 \\n\"}");
  expect_exact("[\"\\u00e9\\u4e2d\", \"\\b\\f\\r\"]");
}

/* Integers are written by hand: every digit and both ends of the range. */
static void test_integers(void **state) {
  static const char text[] = "[0,-1,7,-10,1234567890,9223372036854775807,"
                             "-9223372036854775808]";
  json_t *v = th_json(text);
  char *s = ice_json_format(v, 0);

  (void)state;
  assert_string_equal(s, text);
  free(s);
  expect_exact(text);
  json_decref(v);
}

static void test_shared_counted_once(void **state) {
  /* Each level holds the previous one twice: 2^60 copies in text, 61
   * containers in memory. */
  json_t *v = json_pack("{s:s}", "leaf", "abc");
  for (int i = 0; i < 60; i++) {
    json_t *next = json_pack("{s:[O],s:O}", "branch_results", v, "merged", v);
    json_decref(v);
    v = next;
  }
  assert_int_equal(ice__json_size(v, (size_t)1 << 30), SIZE_MAX);
  json_decref(v);

  /* Small enough to print: the count still matches the text. */
  v = json_pack("{s:s}", "leaf", "abc");
  for (int i = 0; i < 8; i++) {
    json_t *next = json_pack("{s:[O],s:O}", "branch_results", v, "merged", v);
    json_decref(v);
    v = next;
  }
  char *s = ice_json_format(v, 0);
  assert_int_equal(ice__json_size(v, SIZE_MAX - 1), strlen(s));
  free(s);
  json_decref(v);
}

static void test_utf8_lossy(void **state) {
  json_t *v = ice__json_lossy("caf\xe9 ok", 7);
  char *d;

  assert_non_null(v);
  assert_string_equal(json_string_value(v), "caf\xef\xbf\xbd ok");
  json_decref(v);
  /* Valid text is kept as it is; a NUL is replaced, not an end. */
  v = ice__json_lossy("\xc3\xa9t\xc3\xa9", 5);
  assert_string_equal(json_string_value(v), "\xc3\xa9t\xc3\xa9");
  json_decref(v);
  d = ice__utf8_dup("a\0b", 3);
  assert_string_equal(d, "a\xef\xbf\xbd"
                         "b");
  free(d);
  /* Overlong forms, surrogates and cut sequences are invalid. */
  d = ice__utf8_dup("\xc0\xaf|\xed\xa0\x80|\xe2\x82", 10);
  assert_int_equal(ice__utf8_valid_prefix(d, strlen(d)), strlen(d));
  assert_null(strstr(d, "\xc0"));
  free(d);
  v = ice__json_lossy_cstr("plain");
  assert_string_equal(json_string_value(v), "plain");
  json_decref(v);
}

static void test_err_set_never_cuts_a_character(void **state) {
  ice__err_t err;
  char big[600];

  /* 509 ASCII bytes then a 3-byte character that straddles the limit. */
  memset(big, 'a', 509);
  memcpy(big + 509, "\xe2\x82\xac", 4);
  ice__err_set(&err, ICE__KIND_TOOL_ERROR, 0, "%s", big);
  assert_int_equal(ice__utf8_valid_prefix(err.msg, strlen(err.msg)),
                   strlen(err.msg));
  assert_int_equal(strlen(err.msg), 509);
}

static void expect_real(double d) {
  char fast[64], slow[64];

  ice__format_real(d, fast, sizeof(fast));
  ice__format_real_slow(d, slow, sizeof(slow));
  if (strcmp(fast, slow) != 0)
    fail_msg("%.17g: '%s', the reference '%s'", d, fast, slow);
}

/* Reals take a shortcut when they hold a short decimal (durations in ms,
 * rounded to microseconds): its text must be the reference's, digit for
 * digit, and the texts users see do not change. */
static void test_reals_as_before(void **state) {
  static const double fixed[] = {0.0,     -0.0,    0.1,     0.001,
                                 0.003,   1.0,     -2.0,    12.5,
                                 1e-4,    9.99e-5, 1e15,    1e16,
                                 123.456, 0.3,     1.0 / 3, 2.675,
                                 1e300,   -1e-300, 5e-324,  999999999999999.9};
  char small[4];
  unsigned long long x = 88172645463325252ULL;

  (void)state;
  for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
    expect_real(fixed[i]);
  for (int i = 0; i < 200000; i++) {
    double d;
    /* xorshift64: the same values on every run */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    switch (i % 4) {
    case 0: /* a duration: ms rounded to microseconds */
      d = ice__ms3((double)(x % 100000000) / 7919.0);
      break;
    case 1: /* a short decimal of any scale */
      d = (double)(long long)(x % 2000000001ULL - 1000000000) /
          pow(10.0, (double)(x >> 58) - 20);
      break;
    case 2: /* any bits but NaN and infinities */
      memcpy(&d, &x, sizeof(d));
      if (!isfinite(d))
        d = 1.5;
      break;
    default: /* near the ends of the shortcut's range */
      d = (x & 1 ? 1e-4 : 1e15) * (1.0 + ((double)(x % 2001) - 1000) * 1e-6);
    }
    expect_real(d);
  }
  /* A buffer too small is cut, never overrun. */
  ice__format_real(123.5, small, sizeof(small));
  assert_string_equal(small, "123");
}

typedef struct {
  char *s;
  size_t len;
  size_t calls;
  size_t fail_at; /* the call that fails, 0 = none */
} sink_t;

static int collect(const char *buf, size_t len, void *data) {
  sink_t *k = data;

  k->calls++;
  assert_true(len > 0 && len <= 65536);
  if (k->fail_at != 0 && k->calls == k->fail_at)
    return -1;
  k->s = realloc(k->s, k->len + len + 1);
  assert_non_null(k->s);
  memcpy(k->s + k->len, buf, len);
  k->len += len;
  k->s[k->len] = '\0';
  return 0;
}

/* ice_json_write hands out the text of ice_json_format, in pieces of at
 * most 64 KiB, and stops when its writer fails. */
static void test_write_in_pieces(void **state) {
  json_t *big = json_object();
  const char *texts[] = {"{}", "[1, 2.5, \"a\\\"b\", {\"k\": [null]}]",
                         "{\"q\": \"tab\\there\\u0001\"}"};

  (void)state;
  for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
    json_t *v = th_json(texts[i]);
    for (int indent = 0; indent <= 2; indent += 2) {
      sink_t k = {NULL, 0, 0, 0};
      char *ref = ice_json_format(v, indent);
      assert_int_equal(ice_json_write(v, indent, collect, &k), 0);
      assert_string_equal(k.s, ref);
      free(ref);
      free(k.s);
    }
    json_decref(v);
  }
  /* About 400 KB of text: several pieces, one string longer than one. */
  for (int i = 0; i < 10000; i++) {
    char key[32];
    snprintf(key, sizeof(key), "n%d", i);
    json_object_set_new(big, key,
                        json_pack("{s:s,s:i,s:f}", "status", "completed",
                                  "attempts", 1, "duration_ms", i / 1000.0));
  }
  {
    char *longs = malloc(100001);
    memset(longs, 'x', 100000);
    longs[100000] = '\0';
    json_object_set_new(big, "long", json_string(longs));
    free(longs);
  }
  for (int indent = 0; indent <= 2; indent += 2) {
    sink_t k = {NULL, 0, 0, 0};
    char *ref = ice_json_format(big, indent);
    assert_int_equal(ice_json_write(big, indent, collect, &k), 0);
    assert_true(k.calls > 4);
    assert_string_equal(k.s, ref);
    free(ref);
    free(k.s);
  }
  {
    sink_t k = {NULL, 0, 0, 2};
    assert_int_equal(ice_json_write(big, 0, collect, &k), -1);
    assert_int_equal(k.calls, 2);
    free(k.s);
  }
  json_decref(big);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exact),
      cmocka_unit_test(test_integers),
      cmocka_unit_test(test_shared_counted_once),
      cmocka_unit_test(test_utf8_lossy),
      cmocka_unit_test(test_err_set_never_cuts_a_character),
      cmocka_unit_test(test_reals_as_before),
      cmocka_unit_test(test_write_in_pieces),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
