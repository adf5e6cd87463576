/* Unit tests of the expression language (SPEC §3.2): literals, precedence,
 * chained comparisons, short-circuits, undefined paths, functions, errors
 * with their columns, the depth guards, allocation failures and a seeded
 * fuzz run that must never crash or leak. */
#include "helpers.h"

#include "expr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *ctx;

static const char *ctx_json =
    "{\"inputs\": {\"model\": \"gpt\", \"count\": 3, \"items\": [1, 2, 3],"
    " \"nested\": {\"a\": {\"b\": [10, {\"c\": \"deep\"}]}}, \"empty\": \"\","
    " \"zero\": 0, \"obj\": {\"0\": \"zero-key\", \"k\": 1}},"
    " \"x\": 5, \"s\": \"h\\u00e9llo\", \"list\": [1, \"two\", 3.5, null, "
    "true],"
    " \"fetch\": {\"status\": \"ok\", \"rows\": [{\"id\": 1}, {\"id\": 2}]},"
    " \"t\": true, \"f\": false, \"n\": null, \"r\": 2.5,"
    " \"big\": 9223372036854775807, \"neg\": -7, \"k\": \"model\","
    " \"kw\": {\"if\": 1, \"not\": 2, \"true\": 3}}";

static int setup(void **state) {
  ctx = th_json(ctx_json);
  return 0;
}

static int teardown(void **state) {
  json_decref(ctx);
  ctx = NULL;
  return 0;
}

/* Evaluates src against ctx; fails the test on any error. */
static json_t *ev(const char *src) {
  ice__expr_t *e;
  ice__err_t err;
  json_t *v;

  memset(&err, 0, sizeof(err));
  if (ice__expr_parse(src, strlen(src), &e, &err) != 0)
    fail_msg("parse of `%s` failed at col %d: %s", src, err.col, err.msg);
  if (ice__expr_eval(e, ice__lookup_object, ctx, &v, &err) != 0)
    fail_msg("eval of `%s` failed: %s", src, err.msg);
  ice__expr_free(e);
  return v;
}

/* Asserts that src evaluates to the JSON `expected`, type included
 * (1 and 1.0 differ here, unlike ==). */
static void ok(const char *src, const char *expected) {
  json_t *v = ev(src), *want = th_json(expected);
  char *a = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  char *b = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);

  if (strcmp(a, b) != 0 || json_typeof(v) != json_typeof(want))
    fail_msg("`%s`: expected %s, got %s", src, b, a);
  free(a);
  free(b);
  json_decref(v);
  json_decref(want);
}

/* Asserts that src parses but fails to evaluate with message msg. */
static void fails(const char *src, const char *msg) {
  ice__expr_t *e;
  ice__err_t err;
  json_t *v = (json_t *)1;

  memset(&err, 0, sizeof(err));
  if (ice__expr_parse(src, strlen(src), &e, &err) != 0)
    fail_msg("parse of `%s` failed: %s", src, err.msg);
  if (ice__expr_eval(e, ice__lookup_object, ctx, &v, &err) == 0)
    fail_msg("eval of `%s` succeeded", src);
  assert_null(v);
  assert_int_equal(err.kind, ICE__KIND_EXPRESSION);
  if (strcmp(err.msg, msg) != 0)
    fail_msg("`%s`: expected error \"%s\", got \"%s\"", src, msg, err.msg);
  ice__expr_free(e);
}

/* Like fails(), also checking the column of the runtime error. */
static void fails_at(const char *src, int col, const char *msg) {
  ice__expr_t *e;
  ice__err_t err;
  json_t *v;

  fails(src, msg);
  assert_int_equal(ice__expr_parse(src, strlen(src), &e, &err), 0);
  assert_int_equal(ice__expr_eval(e, ice__lookup_object, ctx, &v, &err), -1);
  if (err.col != col)
    fail_msg("`%s`: expected col %d, got %d", src, col, err.col);
  ice__expr_free(e);
}

/* Asserts a syntax error at column col with message msg. */
static void bad(const char *src, int col, const char *msg) {
  ice__expr_t *e = (ice__expr_t *)1;
  ice__err_t err;

  memset(&err, 0, sizeof(err));
  if (ice__expr_parse(src, strlen(src), &e, &err) == 0)
    fail_msg("parse of `%s` succeeded", src);
  assert_null(e);
  assert_int_equal(err.kind, ICE__KIND_EXPRESSION);
  if (strcmp(err.msg, msg) != 0 || err.col != col)
    fail_msg("`%s`: expected col %d \"%s\", got col %d \"%s\"", src, col, msg,
             err.col, err.msg);
}

/* A keyword cannot be a name (it is an operator or a literal), and
 * ice__expr_is_keyword, which the loader asks about every id, says so for
 * each of them and for nothing else. */
static void test_keywords(void **state) {
  static const char *const words[] = {"and",   "or",    "not",  "in",
                                      "if",    "else",  "true", "True",
                                      "false", "False", "null", "None"};
  static const char *const names[] = {"a",    "an",    "andy", "o",    "i",
                                      "nul",  "nulls", "NULL", "TRUE", "falsy",
                                      "x_in", "None_", "el"};
  ice__expr_t *e = NULL;
  ice__err_t err;

  (void)state;
  for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
    assert_true(ice__expr_is_keyword(words[i], strlen(words[i])));
    /* Not a path: alone it is a literal or a syntax error. */
    if (ice__expr_parse(words[i], strlen(words[i]), &e, &err) == 0) {
      json_t *v = NULL;
      assert_int_equal(ice__expr_eval(e, NULL, NULL, &v, &err), 0);
      json_decref(v);
      ice__expr_free(e);
    }
  }
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    assert_false(ice__expr_is_keyword(names[i], strlen(names[i])));
}

static void test_literals(void **state) {
  ok("42", "42");
  ok("0", "0");
  ok("2.5", "2.5");
  ok("1e3", "1000.0");
  ok("1.5E-1", "0.15");
  ok("'single'", "\"single\"");
  ok("\"double\"", "\"double\"");
  ok("'a\\n\\t\\\\\\'\\\"\\/\\r\\b\\f'", "\"a\\n\\t\\\\'\\\"/\\r\\b\\f\"");
  ok("'\\u00e9\\u20ac'", "\"\\u00e9\\u20ac\"");
  ok("'\\ud83d\\ude00'", "\"\\ud83d\\ude00\"");
  ok("true", "true");
  ok("True", "true");
  ok("false", "false");
  ok("False", "false");
  ok("null", "null");
  ok("None", "null");
  ok("[]", "[]");
  ok("[1, 'a', [true], ]", "[1, \"a\", [true]]");
  ok("{}", "{}");
  ok("{'k': 1, \"z\": [x], 'a': {'b': null}}",
     "{\"k\": 1, \"z\": [5], \"a\": {\"b\": null}}");
  ok("{'k': 1, 'k': 2}", "{\"k\": 2}");
  ok("9223372036854775807", "9223372036854775807");
  ok("-9223372036854775808", "-9223372036854775808");
  ok("-9223372036854775808.5", "-9223372036854775808.0");
  ok("  \t\n 7 \r\n", "7");
}

static void test_precedence(void **state) {
  ok("1 + 2 * 3", "7");
  ok("(1 + 2) * 3", "9");
  ok("10 - 2 - 3", "5");
  ok("2 * 3 % 4", "2");
  ok("100 / 10 / 5", "2.0");
  ok("-2 * 3", "-6");
  ok("- -3", "3");
  ok("+3", "3");
  ok("-x", "-5");
  ok("+r", "2.5");
  ok("- -x", "5");
  ok("-r", "-2.5");
  ok("-(1 + 1)", "-2");
  ok("not 1 == 2", "true");
  ok("not true or true", "true");
  ok("true or false and false", "true");
  ok("(true or false) and false", "false");
  ok("not not 3", "true");
  ok("1 if false else 2 if true else 3", "2");
  ok("1 + 1 if false else 0", "0");
  ok("'y' if 1 < 2 and 2 < 3 else 'n'", "\"y\"");
  ok("1 + 2 == 3 and 2 * 2 == 4", "true");
  ok("x * 2 + 1 > 10", "true");
  ok("[1, 2][0] + {'a': 5}.a", "6");
  ok("(x)", "5");
}

static void test_arithmetic(void **state) {
  ok("7 / 2", "3.5");
  ok("6 / 3", "2.0");
  ok("7 // 2", "3");
  ok("-7 // 2", "-4");
  ok("7 // -2", "-4");
  ok("-7 // -2", "3");
  ok("6 // -3", "-2");
  ok("7 % 3", "1");
  ok("-7 % 3", "2");
  ok("7 % -3", "-2");
  ok("-7 % -3", "-1");
  ok("-6 % 3", "0");
  ok("7.5 // 2", "3.0");
  ok("-7.5 // 2", "-4.0");
  ok("-7.5 % 2", "0.5");
  ok("7.5 % -2", "-0.5");
  ok("6.0 % 3", "0.0");
  ok("0.6 // 0.2", "2.0");
  ok("0.6 % 0.2", "0.19999999999999996");
  ok("-0.0 // 1", "-0.0");
  ok("-6.0 % 3", "0.0");
  ok("1 + 2.5", "3.5");
  ok("2.5 - 1", "1.5");
  ok("2 * 1.5", "3.0");
  ok("'ab' + 'cd'", "\"abcd\"");
  ok("s + '!'", "\"h\\u00e9llo!\"");
  ok("[1] + [2, [3]]", "[1, 2, [3]]");
  ok("[] + []", "[]");
  ok("-9223372036854775808 % -1", "0");
  ok("big - 1", "9223372036854775806");
  ok("neg // 2", "-4");
}

static void test_overflow_and_zero(void **state) {
  fails("big + 1", "integer overflow");
  fails("-big - 2", "integer overflow");
  fails("big * 2", "integer overflow");
  fails("-9223372036854775808 // -1", "integer overflow");
  fails("-(-9223372036854775808)", "integer overflow");
  fails("abs(-9223372036854775807 - 1)", "integer overflow");
  fails_at("1 / 0", 3, "division by zero");
  fails("1 // 0", "division by zero");
  fails("1 % 0", "division by zero");
  fails("1.0 / 0.0", "division by zero");
  fails("1.5 // 0", "division by zero");
  fails("1.5 % 0.0", "division by zero");
  fails("1e308 * 10", "number out of range");
  fails("-1e308 - 1e308", "number out of range");
  fails("1e308 + 1e308", "number out of range");
  bad("9223372036854775808", 1, "integer literal too large");
  bad("99999999999999999999999", 1, "integer literal too large");
  bad("1 + 9223372036854775808", 5, "integer literal too large");
  bad("1e999", 1, "number out of range");
  bad("100000000000000000000000000000000000000000000000000000000000000000000",
      1, "integer literal too large");
  bad("1000000000000000000000000000000000000000000000000000000000000000000e999",
      1, "number out of range");
  ok("0.0000000000000000000000000000000000000000000000000000000000000000001",
     "1e-67");
  ok("1000000000000000000000000000000000000000000000000000000000000000000.0",
     "1e66");
}

static void test_comparisons(void **state) {
  ok("1 == 1.0", "true");
  ok("1 != 1.0", "false");
  ok("1 == 2", "false");
  ok("'a' == 'a'", "true");
  ok("'a' == 'ab'", "false");
  ok("null == None", "true");
  ok("true == True", "true");
  ok("false != true", "true");
  ok("true == 1", "false");
  ok("[1, {'a': 2}] == [1.0, {'a': 2.0}]", "true");
  ok("{'a': 1, 'b': 2} == {'b': 2, 'a': 1}", "true");
  ok("{'a': 1} == {'b': 1}", "false");
  ok("{'a': 1} == {'a': 1, 'b': 2}", "false");
  ok("[1, 2] == [1, 2, 3]", "false");
  ok("[1, 2] == [1, 3]", "false");
  ok("[] == {}", "false");
  ok("inputs.items == [1, 2, 3]", "true");
  ok("9007199254740993 == 9007199254740992.0", "false");
  ok("9007199254740992 == 9007199254740992.0", "true");
  ok("1 < 2", "true");
  ok("2 <= 2", "true");
  ok("3 > 2.5", "true");
  ok("2.5 >= 3", "false");
  ok("2 < 2.5", "true");
  ok("3 < 2.5", "false");
  ok("2 > 2.0", "false");
  ok("2.5 > 2", "true");
  ok("2.0 >= 2", "true");
  ok("-9223372036854775807 > -1e19", "true");
  ok("9223372036854775807 < 1e19", "true");
  ok("1.5 < 2.5", "true");
  ok("'a' < 'b'", "true");
  ok("'b' < 'abc'", "false");
  ok("'ab' < 'abc'", "true");
  ok("'abc' <= 'abc'", "true");
  ok("'\\u00e9' > 'z'", "true");
  ok("0 < x < 10", "true");
  ok("0 < x > 10", "false");
  ok("1 < 2 < 3 < 4", "true");
  ok("1 < 2 > 3 < 4", "false");
  ok("3 > 2 > 1", "true");
  ok("1 == 1 == 1.0", "true");
  ok("1 < 2 == true", "false");
  /* A false link stops the chain: the bad comparison is not reached. */
  ok("2 < 1 < 'a'", "false");
  fails("1 < 2 < 'a'", "cannot compare integer and string");
}

static void test_in(void **state) {
  ok("2 in [1, 2]", "true");
  ok("2.0 in [1, 2]", "true");
  ok("[1] in [[1], 2]", "true");
  ok("3 in [1, 2]", "false");
  ok("3 not in [1, 2]", "true");
  ok("2 not in [1, 2]", "false");
  ok("'k' in {'k': 1}", "true");
  ok("'v' in {'k': 'v'}", "false");
  ok("1 in {'1': 1}", "false");
  ok("'ell' in 'hello'", "true");
  ok("'' in 'hello'", "true");
  ok("'lo!' in 'hello'", "false");
  ok("'hello!' in 'hello'", "false");
  ok("'model' in inputs", "true");
  ok("'gpt' in inputs.model", "true");
  ok("not 'x' in 'abc'", "true");
  ok("1 in [1] in [[1]]", "true");
  ok("1 in [1] in [true]", "false");
  fails_at("1 in 5", 3, "cannot test membership in integer");
  fails("1 in 'abc'", "cannot test whether integer is in a string");
  fails("1 in null", "cannot test membership in null");
}

static void test_logic_returns_operands(void **state) {
  ok("0 or ''", "\"\"");
  ok("0 and x", "0");
  ok("3 and 'y'", "\"y\"");
  ok("[] or {}", "{}");
  ok("'' or 'default'", "\"default\"");
  ok("inputs.model or 'default'", "\"gpt\"");
  ok("inputs.empty or 'default'", "\"default\"");
  ok("inputs.zero or 7", "7");
  ok("null or false", "false");
  ok("x and r", "2.5");
  ok("n or f or 'last'", "\"last\"");
  ok("t and f", "false");
  ok("not []", "true");
  ok("not {'a': 1}", "false");
  ok("not 0.0", "true");
  ok("not ''", "true");
  ok("not 'x'", "false");
  ok("not null", "true");
  ok("not neg", "false");
}

static void test_short_circuit(void **state) {
  ok("true or nothing.here", "true");
  ok("false and missing", "false");
  ok("missing or 'default'", "\"default\"");
  ok("inputs.missing or 'd'", "\"d\"");
  ok("missing.deep[3].x or 1", "1");
  ok("x.y if false else 1", "1");
  ok("1 if true else 1 / 0", "1");
  ok("1 / 0 if false else 2", "2");
  ok("true or 1 / 0", "true");
  ok("false and 1 / 0", "false");
  ok("(missing and 1) or 2", "2");
  ok("missing or other or 3", "3");
  ok("x.y or x", "5");
}

static int lookups;

static json_t *counting_lookup(void *data, const char *name, size_t len) {
  lookups++;
  return ice__lookup_object(data, name, len);
}

static int count_lookups(const char *src) {
  ice__expr_t *e;
  ice__err_t err;
  json_t *v;

  assert_int_equal(ice__expr_parse(src, strlen(src), &e, &err), 0);
  lookups = 0;
  assert_int_equal(ice__expr_eval(e, counting_lookup, ctx, &v, &err), 0);
  json_decref(v);
  ice__expr_free(e);
  return lookups;
}

static void test_evaluation_counts(void **state) {
  /* The middle of a chain is evaluated once. */
  assert_int_equal(count_lookups("0 < x < 10"), 1);
  assert_int_equal(count_lookups("x < 0 < x"), 1);
  assert_int_equal(count_lookups("false and boom"), 0);
  assert_int_equal(count_lookups("true or boom"), 0);
  assert_int_equal(count_lookups("x if true else boom"), 1);
  assert_int_equal(count_lookups("boom if false else 1"), 0);
  assert_int_equal(count_lookups("x or boom"), 1);
  assert_int_equal(count_lookups("exists(inputs.items[x])"), 2);
}

static void test_undefined(void **state) {
  fails_at("inputs.nope", 1, "undefined: inputs.nope");
  fails("nope", "undefined: nope");
  fails("inputs.items[7]", "undefined: inputs.items[7]");
  fails("inputs.items[-4]", "undefined: inputs.items[-4]");
  fails("x.y", "undefined: x.y");
  fails("s.0", "undefined: s.0");
  fails_at("1 + inputs . nope", 5, "undefined: inputs . nope");
  fails("nope and 1", "undefined: nope");
  fails("nope or other", "undefined: other");
  fails("nope + 1", "undefined: nope");
  fails("1 + nope", "undefined: nope");
  fails("-nope", "undefined: nope");
  fails("len(nope)", "undefined: nope");
  fails("nope if true else 1", "undefined: nope");
  fails("1 if nope else 2", "undefined: nope");
  fails("[1, nope]", "undefined: nope");
  fails("{'a': nope.b}", "undefined: nope.b");
  fails("inputs.items[nope]", "undefined: nope");
  fails("nope == null", "undefined: nope");
  fails("null == nope", "undefined: nope");
  fails("1 < x < nope", "undefined: nope");
  fails("(nope).a", "undefined: nope");
  fails("(inputs).nope", "undefined: (inputs).nope");
  fails("[1, 2][5]", "undefined: [1, 2][5]");
  ok("not nope", "true");
  ok("not inputs.nope.deeper", "true");
  ok("not (nope and 1)", "true");
  ok("(nope if true else 1) or 2", "2");
}

static void test_paths(void **state) {
  ok("inputs.model", "\"gpt\"");
  ok("inputs.items[0]", "1");
  ok("inputs.items.1", "2");
  ok("inputs.items[-1]", "3");
  ok("inputs.items[-3]", "1");
  ok("inputs.nested.a.b.1.c", "\"deep\"");
  ok("inputs.nested['a'][\"b\"][1]['c']", "\"deep\"");
  ok("inputs.nested.a.b[0]", "10");
  ok("inputs[k]", "\"gpt\"");
  ok("inputs['mo' + 'del']", "\"gpt\"");
  ok("inputs.obj.0", "\"zero-key\"");
  ok("inputs.obj[0]", "\"zero-key\"");
  ok("inputs.obj[x - 5]", "\"zero-key\"");
  ok("list[1 + 1]", "3.5");
  ok("list[-x]", "1");
  ok("list[3]", "null");
  ok("([1, 2, 3])[1]", "2");
  ok("{'a': {'b': 7}}.a.b", "7");
  ok("fetch.rows[1].id", "2");
  ok("fetch.rows.0.id", "1");
  ok("kw.if + kw.not + kw.true", "6");
  fails("inputs.items['0']", "undefined: inputs.items['0']");
  fails("inputs.items.k", "undefined: inputs.items.k");
  fails_at("inputs[true]", 8, "cannot index with boolean");
  fails("inputs[null]", "cannot index with null");
  fails("list[1.0]", "cannot index with number");
  fails("inputs[1 / 0]", "division by zero");
}

static void test_exists(void **state) {
  ok("exists(inputs.model)", "true");
  ok("exists(inputs.nope)", "false");
  ok("exists(nope.deep.er)", "false");
  ok("exists(inputs.items[2])", "true");
  ok("exists(inputs.items[5])", "false");
  ok("exists(n)", "true");
  ok("exists((inputs).model)", "true");
  ok("exists(inputs.items[x - 4])", "true");
  ok("not exists(nope)", "true");
  fails("exists(inputs.items[nope])", "undefined: nope");
  fails("exists(inputs[1 / 0])", "division by zero");
  bad("exists(1)", 8, "exists() requires a path");
  bad("exists(x + 1)", 10, "exists() requires a path");
  bad("exists()", 1, "exists() takes 1 argument but 0 given");
}

static void test_functions(void **state) {
  ok("len(s)", "5");
  ok("len('')", "0");
  ok("len([1, 2])", "2");
  ok("len({})", "0");
  ok("len(inputs)", "7");
  fails_at("len(5)", 1, "len() of integer");
  ok("str(1)", "\"1\"");
  ok("str(-12)", "\"-12\"");
  ok("str(2.0)", "\"2.0\"");
  ok("str(0.1)", "\"0.1\"");
  ok("str(1e16)", "\"1e+16\"");
  ok("str(1.5e-7)", "\"1.5e-07\"");
  ok("str(true)", "\"true\"");
  ok("str(false)", "\"false\"");
  ok("str(null)", "\"null\"");
  ok("str([1, 'a'])", "\"[1,\\\"a\\\"]\"");
  ok("str({'k': 1.5, 'a': []})", "\"{\\\"k\\\":1.5,\\\"a\\\":[]}\"");
  ok("str('x')", "\"x\"");
  ok("int('12')", "12");
  ok("int(' -3 ')", "-3");
  ok("int('+4')", "4");
  ok("int(3.9)", "3");
  ok("int(-3.9)", "-3");
  ok("int(7)", "7");
  ok("int(true)", "1");
  ok("int(false)", "0");
  fails("int('1.5')", "int() of invalid string '1.5'");
  fails("int('abc')", "int() of invalid string 'abc'");
  fails("int('')", "int() of invalid string ''");
  fails("int('- 3')", "int() of invalid string '- 3'");
  fails("int('1 2')", "int() of invalid string '1 2'");
  fails("int(null)", "int() of null");
  fails("int(1e19)", "integer overflow");
  fails("int('99999999999999999999')", "integer overflow");
  ok("float('1.5')", "1.5");
  ok("float(' 2 ')", "2.0");
  ok("float(2)", "2.0");
  ok("float(2.5)", "2.5");
  ok("float(true)", "1.0");
  fails("float('x')", "float() of invalid string 'x'");
  fails("float('')", "float() of invalid string ''");
  fails("float('1e999')", "number out of range");
  fails("float([])", "float() of list");
  ok("lower('AbC')", "\"abc\"");
  ok("upper('abc-1')", "\"ABC-1\"");
  ok("upper(s)", "\"H\\u00c9LLO\"");
  fails("lower(1)", "lower() of integer");
  fails("upper(null)", "upper() of null");
  ok("abs(-3)", "3");
  ok("abs(3)", "3");
  ok("abs(-2.5)", "2.5");
  ok("abs(neg)", "7");
  fails("abs('a')", "abs() of string");
}

static void test_min_max_round(void **state) {
  ok("min(3, 1, 2)", "1");
  ok("max(3, 1, 2)", "3");
  ok("min([4, 2])", "2");
  ok("max(inputs.items)", "3");
  ok("max(1, 2.5)", "2.5");
  ok("min(1, 1.0)", "1");
  ok("min('b', 'a')", "\"a\"");
  ok("max('b', 'a', 'c')", "\"c\"");
}

static void test_round(void **state) {
  ok("round(2.5)", "2");
  ok("round(3.5)", "4");
  ok("round(-2.5)", "-2");
  ok("round(2.4)", "2");
  ok("round(7)", "7");
  ok("round(7, 1)", "7");
  ok("round(2.675, 2)", "2.67");
  ok("round(0.125, 2)", "0.12");
  ok("round(1.5, 0)", "2.0");
  ok("round(2.5, 0)", "2.0");
  ok("round(1234, -2)", "1200");
  ok("round(1250, -2)", "1200");
  ok("round(1350, -2)", "1400");
  ok("round(-1250, -2)", "-1200");
  ok("round(-1251, -2)", "-1300");
  ok("round(5, -1)", "0");
  ok("round(15, -1)", "20");
  ok("round(42, -19)", "0");
  ok("round(42, -30)", "0");
  ok("round(1234.5, -2)", "1200.0");
  ok("round(1.25, 400)", "1.25");
  ok("round(1.25, -400)", "0.0");
  fails("round(6000000000000000000, -19)", "integer overflow");
  fails("round(9223372036854775807, -1)", "integer overflow");
  fails("round('a')", "round() of string");
  fails("round(1.5, 1.0)", "round() digits must be an integer, not number");
  fails("round(1e300)", "integer overflow");
  fails("round(1.7e308, -308)", "number out of range");
}

static void test_type_errors(void **state) {
  fails_at("1 + 'a'", 3, "cannot add integer and string");
  fails_at("'a' < 1", 5, "cannot compare string and integer");
  fails("'a' - 'b'", "cannot subtract string and string");
  fails("[1] * 2", "cannot multiply list and integer");
  fails("1 / 'a'", "cannot divide integer and string");
  fails("1 // []", "cannot floor-divide integer and list");
  fails("{} % 1", "cannot take modulo of object and integer");
  fails("true + 1", "cannot add boolean and integer");
  fails("1.5 + 'x'", "cannot add number and string");
  fails("{'a': 1} + {'b': 2}", "cannot add object and object");
  fails("null < 1", "cannot compare null and integer");
  fails("[1] < [2]", "cannot compare list and list");
  fails_at("-'a'", 1, "cannot negate string");
  fails("+[]", "cannot apply unary '+' to list");
  fails("min(1, 'a')", "cannot compare string and integer");
  fails("max([1, null])", "cannot compare null and integer");
  fails("min([])", "min() of an empty list");
  fails("max(5)", "max() of a single integer");
}

static void test_parse_errors(void **state) {
  bad("", 1, "empty expression");
  bad("   ", 1, "empty expression");
  bad("(1 + 2", 7, "expected ')' but found end of expression");
  bad("1 +", 4, "unexpected end of expression");
  bad("1 2", 3, "unexpected '2'");
  bad("a b", 3, "unexpected 'b'");
  bad("a 'b'", 3, "unexpected string literal");
  bad("a.", 3, "expected a key or index after '.' but found end of expression");
  bad("a.[1]", 3, "expected a key or index after '.' but found '['");
  bad("a[1", 4, "expected ']' but found end of expression");
  bad("[1, 2", 6, "expected ']' but found end of expression");
  bad("[1 2]", 4, "expected ']' but found '2'");
  bad("{'a' 1}", 6, "expected ':' but found '1'");
  bad("{a: 1}", 2, "expected a string key but found 'a'");
  bad("{'a': 1", 8, "expected '}' but found end of expression");
  bad("'abc", 1, "unterminated string");
  bad("'abc\\", 1, "unterminated string");
  bad("x + \"\\q\"", 6, "invalid escape '\\q'");
  bad("'\\ud800'", 2, "invalid \\u escape");
  bad("'\\udc00'", 2, "invalid \\u escape");
  bad("'\\ud800\\u0041'", 2, "invalid \\u escape");
  bad("'\\u12'", 2, "invalid \\u escape");
  bad("'\\uzzzz'", 2, "invalid \\u escape");
  bad("a = 1", 3, "unexpected '=' (use '==' to compare)");
  bad("a # b", 3, "unexpected character '#'");
  bad("a ! b", 3, "unexpected character '!'");
  bad("1 if 2", 7, "expected 'else' but found end of expression");
  bad("x not 1", 3, "unexpected 'not'");
  bad("1 ** 2", 4, "unexpected '*'");
  bad(")", 1, "unexpected ')'");
  bad("foo(1)", 1, "unknown function 'foo'");
  bad("len()", 1, "len() takes 1 argument but 0 given");
  bad("1 + len(1, 2)", 5, "len() takes 1 argument but 2 given");
  bad("round(1, 2, 3)", 1, "round() takes 1 or 2 arguments but 3 given");
  bad("min()", 1, "min() takes at least 1 argument");
  bad("len(1", 6, "expected ')' but found end of expression");
  bad("x.y(1)", 4, "unexpected '('");
  bad("else", 1, "unexpected 'else'");
  bad("-", 2, "unexpected end of expression");
  bad("not", 4, "unexpected end of expression");
  bad("a.9223372036854775808", 3,
      "expected a key or index after '.' but "
      "found '9223372036854775808'");
  /* Columns count code points, not bytes. */
  bad("'\\u00e9' + 'é' + )", 18, "unexpected ')'");
  bad("é", 1, "unexpected character");
  bad("'\xff'", 1, "invalid UTF-8 in string");
  /* A lexical error after a syntax error is not reported first. */
  bad(") 'unterminated", 1, "unexpected ')'");
  bad("a not #", 3, "unexpected 'not'");
  bad("a #", 3, "unexpected character '#'");
}

static void test_parse_error_token_text_truncated(void **state) {
  bad("1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 3,
      "unexpected 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'");
}

static char *repeat(const char *unit, size_t n, const char *mid,
                    const char *close) {
  size_t ul = strlen(unit), ml = strlen(mid), cl = strlen(close);
  char *s = malloc(n * (ul + cl) + ml + 1), *p = s;

  assert_non_null(s);
  for (size_t i = 0; i < n; i++, p += ul)
    memcpy(p, unit, ul);
  memcpy(p, mid, ml);
  p += ml;
  for (size_t i = 0; i < n; i++, p += cl)
    memcpy(p, close, cl);
  *p = '\0';
  return s;
}

static void deep(const char *unit, size_t n, const char *mid, const char *close,
                 const char *expected) {
  char *s = repeat(unit, n, mid, close);

  ok(s, expected != NULL ? expected : s);
  free(s);
}

static void deep_fails(const char *unit, size_t n, const char *mid,
                       const char *close) {
  char *s = repeat(unit, n, mid, close);
  ice__expr_t *e;
  ice__err_t err;

  assert_int_equal(ice__expr_parse(s, strlen(s), &e, &err), -1);
  assert_string_equal(err.msg, "expression nested too deeply");
  assert_true(err.col > 0);
  free(s);
}

static void test_depth_guard(void **state) {
  deep("(", 150, "1", ")", "1");
  deep("[", 150, "", "]", NULL); /* the source is its own JSON */
  deep("not ", 150, "true", "", "true");
  deep("-", 150, "x", "", "5");
  deep("", 0, "1", "", "1");
  deep_fails("(", 100000, "1", ")");
  deep_fails("[", 100000, "", "]");
  deep_fails("{'a': ", 100000, "1", "}");
  deep_fails("not ", 100000, "true", "");
  deep_fails("-", 100000, "1", "");
  deep_fails("len(", 100000, "1", ")");
  deep_fails("x[", 100000, "0", "]");
  deep_fails("1 if true else ", 100000, "1", "");
  /* Long flat chains do not recurse in the parser but do in the
   * evaluator, so their height is bounded too. */
  deep("1 + ", 500, "1", "", "501");
  deep("x.", 0, "y or 1", "", "1");
  deep_fails("1 + ", 5000, "1", "");
  deep_fails("a or ", 5000, "1", "");
  /* A comparison chain is one flat node. */
  deep("1 <= ", 5000, "1", "", "true");
}

static void test_long_path_chain_guard(void **state) {
  char *s = malloc(3 * 5000 + 2);
  ice__expr_t *e;
  ice__err_t err;

  assert_non_null(s);
  s[0] = 'x';
  for (int i = 0; i < 5000; i++)
    memcpy(s + 1 + 3 * i, "[0]", 3);
  s[1 + 3 * 5000] = '\0';
  /* Constant segments add no height: a long path is fine. */
  assert_int_equal(ice__expr_parse(s, strlen(s), &e, &err), 0);
  ice__expr_free(e);
  for (int i = 0; i < 5000; i++)
    memcpy(s + 1 + 3 * i, "[x]", 3);
  assert_int_equal(ice__expr_parse(s, strlen(s), &e, &err), 0);
  ice__expr_free(e);
  free(s);
}

static void test_values_api(void **state) {
  json_t *v = th_json("[null, false, true, 0, 1, 0.0, 0.5, \"\", \"a\", [],"
                      " [0], {}, {\"a\": null}]");
  const int truthy[] = {0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1};
  json_t *a = th_json("{\"x\": [1, 2.0, {\"y\": \"z\"}], \"n\": null}");
  json_t *b = th_json("{\"n\": null, \"x\": [1.0, 2, {\"y\": \"z\"}]}");
  json_t *c = th_json("{\"n\": false, \"x\": [1.0, 2, {\"y\": \"z\"}]}");
  ice__expr_t *e;
  ice__err_t err;
  const char *src = "x + 1  ";

  for (size_t i = 0; i < json_array_size(v); i++)
    assert_int_equal(ice__json_truthy(json_array_get(v, i)), truthy[i]);
  assert_true(ice__json_equal(a, b));
  assert_false(ice__json_equal(a, c));
  assert_true(ice__json_equal(a, a));
  assert_false(ice__json_equal(a, NULL));
  assert_false(ice__json_equal(json_true(), json_false()));
  assert_int_equal(ice__expr_parse(src, 5, &e, &err), 0);
  assert_string_equal(ice__expr_source(e), "x + 1");
  ice__expr_free(e);
  ice__expr_free(NULL);
  json_decref(v);
  json_decref(a);
  json_decref(b);
  json_decref(c);
}

static void test_no_lookup(void **state) {
  ice__expr_t *e;
  ice__err_t err;
  json_t *v;

  assert_int_equal(ice__expr_parse("a.b or 2", 8, &e, &err), 0);
  assert_int_equal(ice__expr_eval(e, NULL, NULL, &v, &err), 0);
  assert_int_equal(json_integer_value(v), 2);
  json_decref(v);
  ice__expr_free(e);
  assert_int_equal(ice__expr_parse("a", 1, &e, &err), 0);
  assert_int_equal(ice__expr_eval(e, NULL, NULL, &v, &err), -1);
  assert_string_equal(err.msg, "undefined: a");
  ice__expr_free(e);
}

static void test_results_share_context(void **state) {
  json_t *v = ev("inputs.items");

  /* A path result is the context's own value, not a copy. */
  assert_ptr_equal(v, json_object_get(json_object_get(ctx, "inputs"), "items"));
  json_decref(v);
  v = ev("true");
  assert_ptr_equal(v, json_true());
  v = ev("null or None");
  assert_ptr_equal(v, json_null());
}

static void test_embedded_nul_source(void **state) {
  ice__expr_t *e;
  ice__err_t err;
  json_t *v = ev("'nul\\0x' + \"\\u0000\"");

  assert_int_equal(json_string_length(v), 6);
  assert_memory_equal(json_string_value(v), "nul\0x\0", 6);
  json_decref(v);

  assert_int_equal(ice__expr_parse("1 +\0 2", 6, &e, &err), -1);
  assert_int_equal(err.col, 4);
  assert_string_equal(err.msg, "unexpected character");
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

/* lower() and upper() map every cased letter (Unicode simple case
 * mapping), not only ASCII ones; other characters stay as they are. */
static void test_case_mapping(void **state) {
  (void)state;
  /* Latin-1 Supplement and Latin Extended-A/B. */
  ok("lower('\u00c9COLE')", "\"\u00e9cole\"");
  ok("upper('\u00e9cole \u00e0 \u00ff')", "\"\u00c9COLE \u00c0 \u0178\"");
  ok("lower('\u0141\u00d3D\u0179 \u01c4')", "\"\u0142\u00f3d\u017a \u01c6\"");
  /* Greek and Cyrillic. */
  ok("upper('\u03c9\u03bc\u03ad\u03b3\u03b1')",
     "\"\u03a9\u039c\u0388\u0393\u0391\"");
  ok("lower('\u03a3\u039f\u03a6\u0399\u0391')",
     "\"\u03c3\u03bf\u03c6\u03b9\u03b1\"");
  ok("lower('\u041f\u0420\u0418\u0412\u0415\u0422, \u0401\u0436')",
     "\"\u043f\u0440\u0438\u0432\u0435\u0442, \u0451\u0436\"");
  ok("upper('\u043f\u0440\u0438\u0432\u0435\u0442')",
     "\"\u041f\u0420\u0418\u0412\u0415\u0422\"");
  /* Armenian, Georgian, and outside the BMP (Deseret). */
  ok("upper('\u0570\u0561\u0575')", "\"\u0540\u0531\u0545\"");
  ok("upper('\u2d00')", "\"\u10a0\"");
  ok("lower('\U00010400')", "\"\U00010428\"");
  /* Scripts without case, digits and symbols are unchanged. */
  ok("upper('\u65e5\u672c\u8a9e 123 \u2603')",
     "\"\u65e5\u672c\u8a9e 123 \u2603\"");
  ok("lower('\u0639\u0631\u0628\u064a')", "\"\u0639\u0631\u0628\u064a\"");
  /* Lengths change: U+023A (2 bytes) lowers to U+2C65 (3 bytes), the
   * Kelvin sign (3 bytes) to 'k'. */
  ok("lower('\u023a\u023a\u023a')", "\"\u2c65\u2c65\u2c65\"");
  ok("lower('\u212a')", "\"k\"");
  ok("len(lower('\u023a'))", "1");
  /* Mappings to several characters are left out: the character stays. */
  ok("upper('\u00df')", "\"\u00df\"");
  ok("upper('\u017f')", "\"S\"");
  ok("lower('')", "\"\"");
}

/* Bytes that are not UTF-8 (a value made with json_stringn_nocheck, as
 * lossy paths may) are kept as they are around mapped letters. */
static void test_case_mapping_bad_bytes(void **state) {
  json_t *obj = json_object(), *v = NULL;
  ice__expr_t *e;
  ice__err_t err;

  (void)state;
  json_object_set_new(obj, "b", json_stringn_nocheck("A\xff\xc3\x89\xc3", 5));
  assert_int_equal(ice__expr_parse("lower(b)", 8, &e, &err), 0);
  assert_int_equal(ice__expr_eval(e, ice__lookup_object, obj, &v, &err), 0);
  assert_int_equal(json_string_length(v), 5);
  assert_memory_equal(json_string_value(v), "a\xff\xc3\xa9\xc3", 5);
  json_decref(v);
  ice__expr_free(e);
  json_decref(obj);
}

/* Every jansson allocation in parse and eval fails in turn: each must be
 * reported as an error without crashing or leaking. */
static void test_allocation_failures(void **state) {
  static const char *const exprs[] = {
      "[1, 'a', {'k': [x, 2.5]}] + [inputs.items]",
      "str({'a': [1, 2.5, null]}) + upper('x') + lower('Y')",
      "'ab' + 'c'",
      "len(s) + int('3') + int(2.5) + round(2.5) + round(15, -1) + abs(-1)",
      "float('2') + float(1) + round(1.25, 1) + r * 2 - 1 + r // 1 + 1 / 2",
      "-x + -r + inputs.items[len(k) - 5] + len(inputs.obj[0])",
      "min(1, 2, 3, 4, 5, 6) + max([1, 2])",
      "-9223372036854775808",
      "str(1)",
  };

  for (size_t i = 0; i < ICE__ARRAY_SIZE(exprs); i++) {
    for (long budget = 0;; budget++) {
      ice__expr_t *e;
      ice__err_t err;
      json_t *v;
      int rc;

      json_set_alloc_funcs(failing_malloc, free);
      alloc_budget = budget;
      rc = ice__expr_parse(exprs[i], strlen(exprs[i]), &e, &err);
      if (rc == 0) {
        rc = ice__expr_eval(e, ice__lookup_object, ctx, &v, &err);
        if (rc == 0)
          json_decref(v);
        ice__expr_free(e);
      }
      alloc_budget = -1;
      json_set_alloc_funcs(malloc, free);
      if (rc == 0)
        break;
      if (err.kind != ICE__KIND_EXPRESSION || budget >= 1000)
        fail_msg("`%s` budget %ld: %s", exprs[i], budget, err.msg);
    }
  }
}

/* ---- Fuzz ---- */

static uint64_t rng_state;

static uint32_t rnd(void) {
  /* xorshift64*: fixed seed, so the run is reproducible. */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}

static const char *const seeds[] = {
    "1 + 2 * 3 - 4 // 5 % 6 / 7",
    "inputs.model or 'default'",
    "0 < x < 10 and not (s == 'a') or r >= 2.5",
    "x if t else -r",
    "len(list) + int('12') + round(r, 1) + abs(neg)",
    "exists(inputs.nested.a.b[1].c) and 'c' in inputs.nested.a.b[1]",
    "[1, 'two', {'k': [x, null, True]}][2]['k'][0]",
    "str(inputs.items) + upper(s) + lower('X')",
    "min(inputs.items) < max(1, 2.5, r) <= 3 not in [1, 2]",
    "fetch.rows.1.id == 2 != false",
    "{'a': \"\\u00e9\\n\", 'b': [1e3, -2.5E-2]}.a",
    "big + 1 if false else big - 1",
    "float('1.5') // 0.5 % 2",
    "inputs[k] + inputs.obj.0",
    "kw.if + kw.not",
};

static const char *const words[] = {
    " ",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    ".",
    "+",
    "-",
    "*",
    "/",
    "//",
    "%",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "in",
    "not",
    "and",
    "or",
    "if",
    "else",
    "x",
    "inputs",
    "nope",
    "len(",
    "exists(",
    "min(",
    "round(",
    "'",
    "\"",
    "\\",
    "\\u",
    "0",
    "9223372036854775808",
    "1.5",
    "1e",
    "true",
    "None",
    "s",
    "list",
    "r",
    "big",
    "=",
    "#",
    "\xc3\xa9",
    "\xff",
    "\0",
};

static void mutate(char *buf, size_t *len, size_t cap) {
  size_t n = 1 + rnd() % 3;

  for (size_t k = 0; k < n; k++) {
    size_t at = *len == 0 ? 0 : rnd() % (*len + 1);
    unsigned what = rnd() % 5;

    if (what == 0 && *len > 0 && at < *len) { /* delete a run */
      size_t del = 1 + rnd() % 3;
      if (at + del > *len)
        del = *len - at;
      memmove(buf + at, buf + at + del, *len - at - del);
      *len -= del;
    } else if (what == 1 && at < *len) { /* replace a byte */
      buf[at] = (char)(rnd() & 0xFF);
    } else { /* insert a word */
      const char *w = words[rnd() % ICE__ARRAY_SIZE(words)];
      size_t wl = w[0] == '\0' ? 1 : strlen(w);
      if (*len + wl > cap)
        continue;
      memmove(buf + at + wl, buf + at, *len - at);
      memcpy(buf + at, w, wl);
      *len += wl;
    }
  }
}

static void test_fuzz(void **state) {
  char buf[512];
  size_t parsed = 0, evaluated = 0;

  rng_state = 0x1ce5eedULL;
  for (int i = 0; i < 200000; i++) {
    size_t len;
    ice__expr_t *e;
    ice__err_t err;
    json_t *v;

    if (i % 10 == 0) { /* random bytes, biased to printable */
      len = rnd() % 40;
      for (size_t j = 0; j < len; j++)
        buf[j] =
            rnd() % 4 == 0 ? (char)(rnd() & 0xFF) : (char)(' ' + rnd() % 95);
    } else {
      const char *sd = seeds[rnd() % ICE__ARRAY_SIZE(seeds)];
      len = strlen(sd);
      memcpy(buf, sd, len);
      mutate(buf, &len, sizeof(buf));
    }
    memset(&err, 0, sizeof(err));
    if (ice__expr_parse(buf, len, &e, &err) != 0) {
      assert_int_equal(err.kind, ICE__KIND_EXPRESSION);
      assert_true(err.col >= 1 && (size_t)err.col <= len + 1);
      assert_true(err.msg[0] != '\0');
      continue;
    }
    parsed++;
    if (ice__expr_eval(e, ice__lookup_object, ctx, &v, &err) == 0) {
      evaluated++;
      json_decref(v);
    } else {
      assert_int_equal(err.kind, ICE__KIND_EXPRESSION);
      assert_true(err.msg[0] != '\0');
    }
    ice__expr_free(e);
  }
  /* The mutations must reach the evaluator, not just the parser. */
  assert_true(parsed > 20000);
  assert_true(evaluated > 5000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_keywords),
      cmocka_unit_test(test_literals),
      cmocka_unit_test(test_precedence),
      cmocka_unit_test(test_arithmetic),
      cmocka_unit_test(test_overflow_and_zero),
      cmocka_unit_test(test_comparisons),
      cmocka_unit_test(test_in),
      cmocka_unit_test(test_logic_returns_operands),
      cmocka_unit_test(test_short_circuit),
      cmocka_unit_test(test_evaluation_counts),
      cmocka_unit_test(test_undefined),
      cmocka_unit_test(test_paths),
      cmocka_unit_test(test_exists),
      cmocka_unit_test(test_functions),
      cmocka_unit_test(test_min_max_round),
      cmocka_unit_test(test_round),
      cmocka_unit_test(test_type_errors),
      cmocka_unit_test(test_parse_errors),
      cmocka_unit_test(test_parse_error_token_text_truncated),
      cmocka_unit_test(test_depth_guard),
      cmocka_unit_test(test_long_path_chain_guard),
      cmocka_unit_test(test_values_api),
      cmocka_unit_test(test_no_lookup),
      cmocka_unit_test(test_results_share_context),
      cmocka_unit_test(test_embedded_nul_source),
      cmocka_unit_test(test_case_mapping),
      cmocka_unit_test(test_case_mapping_bad_bytes),
      cmocka_unit_test(test_allocation_failures),
      cmocka_unit_test(test_fuzz),
  };

  return cmocka_run_group_tests(tests, setup, teardown);
}
