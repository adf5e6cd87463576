/* Unit tests of src/schema.c: both dialects and how one is chosen, every
 * JSON Schema keyword, exact error messages with their paths, compile
 * errors, $ref, recursion guards, and a seeded fuzz run that must neither
 * crash nor leak under ASan. */
#include "helpers.h"

#include "schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

static ice__schema_t *compile_ok(const char *text) {
  json_t *js = th_json(text);
  ice__schema_t *s = NULL;
  ice__err_t err = {0};

  if (ice__schema_compile(js, &s, &err) != 0)
    fail_msg("schema %s did not compile: %s", text, err.msg);
  json_decref(js);
  assert_non_null(s);
  return s;
}

static void compile_fails(const char *text, const char *msg) {
  json_t *js = th_json(text);
  ice__schema_t *s = (ice__schema_t *)1;
  ice__err_t err = {0};

  if (ice__schema_compile(js, &s, &err) == 0)
    fail_msg("schema %s compiled, expected: %s", text, msg);
  json_decref(js);
  assert_null(s);
  if (strcmp(err.msg, msg) != 0)
    fail_msg("schema %s\n expected: %s\n      got: %s", text, msg, err.msg);
}

/* Checks value against the compiled schema; msg NULL means it conforms. */
static void vcheck(const ice__schema_t *s, const char *value, const char *msg) {
  json_t *v = th_json(value);
  ice__err_t err = {0};
  int rc = ice__schema_check(s, v, &err);

  json_decref(v);
  if (msg == NULL && rc != 0)
    fail_msg("value %s rejected: %s", value, err.msg);
  if (msg != NULL && rc == 0)
    fail_msg("value %s accepted, expected: %s", value, msg);
  if (msg != NULL && strcmp(err.msg, msg) != 0)
    fail_msg("value %s\n expected: %s\n      got: %s", value, msg, err.msg);
}

/* One schema, one value: the common case in these tests. */
static void sexpect(const char *schema, const char *value, const char *msg) {
  ice__schema_t *s = compile_ok(schema);

  vcheck(s, value, msg);
  ice__schema_free(s);
}

/* ---- the simple form ---- */

static void test_simple_form(void **state) {
  ice__schema_t *s = compile_ok("{\"name\": \"str\", \"count\": \"int\", "
                                "\"ratio\": \"float\", \"ok\": \"bool\", "
                                "\"meta\": \"dict\", \"tags\": \"list\", "
                                "\"x\": \"any\"}");
  (void)state;
  vcheck(s,
         "{\"name\": \"a\", \"count\": 1, \"ratio\": 1, \"ok\": true, "
         "\"meta\": {}, \"tags\": [], \"x\": null}",
         NULL);
  vcheck(s,
         "{\"name\": \"a\", \"count\": 2.0, \"ratio\": 0.5, \"ok\": "
         "false, \"meta\": {\"k\": 1}, \"tags\": [1], \"x\": [1]}",
         NULL);
  vcheck(s,
         "{\"name\": \"a\", \"count\": \"1\", \"ratio\": 1, \"ok\": "
         "true, \"meta\": {}, \"tags\": [], \"x\": 1}",
         "$.count: expected integer, got string");
  vcheck(s,
         "{\"name\": \"a\", \"count\": 1.5, \"ratio\": 1, \"ok\": "
         "true, \"meta\": {}, \"tags\": [], \"x\": 1}",
         "$.count: expected integer, got number");
  vcheck(s,
         "{\"count\": 1, \"ratio\": 1, \"ok\": true, \"meta\": {}, "
         "\"tags\": [], \"x\": 1}",
         "$: missing required field 'name'");
  vcheck(s,
         "{\"name\": \"a\", \"count\": 1, \"ratio\": 1, \"ok\": true, "
         "\"meta\": {}, \"tags\": [], \"x\": 1, \"extra\": 2}",
         "$: unexpected field 'extra'");
  vcheck(s, "[1]", "$: expected object, got array");
  vcheck(s, "null", "$: expected object, got null");
  ice__schema_free(s);
}

static void test_simple_long_words(void **state) {
  ice__schema_t *s = compile_ok("{\"a\": \"string\", \"b\": \"integer\", "
                                "\"c\": \"number\", \"d\": \"boolean\", "
                                "\"e\": \"object\", \"f\": \"array\"}");
  (void)state;
  vcheck(s,
         "{\"a\": \"\", \"b\": -3, \"c\": 2.5, \"d\": false, \"e\": "
         "{}, \"f\": [null]}",
         NULL);
  vcheck(s,
         "{\"a\": \"\", \"b\": 1, \"c\": 2.5, \"d\": 0, \"e\": {}, "
         "\"f\": []}",
         "$.d: expected boolean, got integer");
  vcheck(s,
         "{\"a\": \"\", \"b\": 1, \"c\": true, \"d\": true, \"e\": "
         "{}, \"f\": []}",
         "$.c: expected number, got boolean");
  vcheck(s,
         "{\"a\": \"\", \"b\": 1, \"c\": 1, \"d\": true, \"e\": [], "
         "\"f\": []}",
         "$.e: expected object, got array");
  vcheck(s,
         "{\"a\": \"\", \"b\": 1, \"c\": 1, \"d\": true, \"e\": {}, "
         "\"f\": {}}",
         "$.f: expected array, got object");
  vcheck(s,
         "{\"a\": 1, \"b\": 1, \"c\": 1, \"d\": true, \"e\": {}, "
         "\"f\": []}",
         "$.a: expected string, got integer");
  ice__schema_free(s);
}

static void test_simple_compile_errors(void **state) {
  (void)state;
  compile_fails("{\"x\": \"strng\"}", "unknown type 'strng' for field 'x'");
  compile_fails("{\"a\": \"str\", \"x\": \"null\"}",
                "unknown type 'null' for field 'x'");
  compile_fails("{\"x\": 1}", "type of field 'x' must be a string");
  compile_fails("{\"x\": {\"y\": \"str\"}}",
                "type of field 'x' must be a string");
}

/* ---- dialect detection ---- */

static void test_detect_type_field_named_type(void **state) {
  (void)state;
  /* "str" is not a JSON Schema type name: a simple field called "type". */
  sexpect("{\"type\": \"str\"}", "{\"type\": \"tool\"}", NULL);
  sexpect("{\"type\": \"str\"}", "\"tool\"", "$: expected object, got string");
  sexpect("{\"type\": \"str\", \"n\": \"int\"}", "{\"type\": \"a\"}",
          "$: missing required field 'n'");
  /* A list that is not all JSON Schema type names is a simple field. */
  compile_fails("{\"type\": [\"str\"]}",
                "type of field 'type' must be a string");
  compile_fails("{\"type\": []}", "type of field 'type' must be a string");
  compile_fails("{\"type\": [\"string\", 1]}",
                "type of field 'type' must be a string");
}

static void test_detect_json_schema(void **state) {
  (void)state;
  /* A JSON Schema type name, alone or in a list. */
  sexpect("{\"type\": \"string\"}", "\"x\"", NULL);
  sexpect("{\"type\": \"string\"}", "1", "$: expected string, got integer");
  sexpect("{\"type\": [\"string\", \"null\"]}", "null", NULL);
  /* properties as an object; a string there is a simple-form field. */
  sexpect("{\"properties\": {\"a\": {\"type\": \"integer\"}}}", "{\"b\": 1}",
          NULL);
  compile_fails("{\"properties\": \"x\"}",
                "unknown type 'x' for field 'properties'");
  sexpect("{\"properties\": \"str\"}", "{\"properties\": \"p\"}", NULL);
  /* $schema, $ref, allOf/anyOf/oneOf. */
  sexpect("{\"$schema\": \"http://json-schema.org/draft-07/schema#\"}", "5",
          NULL);
  sexpect("{\"allOf\": [{\"type\": \"integer\"}]}", "5", NULL);
  sexpect("{\"anyOf\": [{\"type\": \"integer\"}]}", "\"a\"",
          "$: value does not match any schema in anyOf");
  sexpect("{\"oneOf\": [{\"type\": \"integer\"}]}", "5", NULL);
  sexpect("{\"$ref\": \"#/definitions/a\", \"definitions\": {\"a\": "
          "{\"type\": \"null\"}}}",
          "null", NULL);
  /* Other keywords alone do not make JSON Schema: they are fields. */
  compile_fails("{\"enum\": [1, 2]}", "type of field 'enum' must be a string");
  compile_fails("{\"description\": \"a thing\"}",
                "unknown type 'a thing' for field 'description'");
  /* The empty schema accepts anything. */
  sexpect("{}", "null", NULL);
  sexpect("{}", "{\"a\": 1}", NULL);
  sexpect("{}", "[1, \"x\"]", NULL);
}

/* ---- JSON Schema keywords ---- */

static void test_type(void **state) {
  (void)state;
  sexpect("{\"type\": \"integer\"}", "2", NULL);
  sexpect("{\"type\": \"integer\"}", "2.0", NULL);
  sexpect("{\"type\": \"integer\"}", "-0.0", NULL);
  sexpect("{\"type\": \"integer\"}", "2.5", "$: expected integer, got number");
  sexpect("{\"type\": \"number\"}", "2", NULL);
  sexpect("{\"type\": \"number\"}", "2.5", NULL);
  sexpect("{\"type\": \"number\"}", "\"2\"", "$: expected number, got string");
  sexpect("{\"type\": \"boolean\"}", "false", NULL);
  sexpect("{\"type\": \"boolean\"}", "null", "$: expected boolean, got null");
  sexpect("{\"type\": \"null\"}", "null", NULL);
  sexpect("{\"type\": \"null\"}", "true", "$: expected null, got boolean");
  sexpect("{\"type\": \"object\"}", "{}", NULL);
  sexpect("{\"type\": \"object\"}", "[]", "$: expected object, got array");
  sexpect("{\"type\": \"array\"}", "[]", NULL);
  sexpect("{\"type\": \"array\"}", "{}", "$: expected array, got object");
  sexpect("{\"type\": [\"string\", \"null\"]}", "1",
          "$: expected string or null, got integer");
  sexpect("{\"type\": [\"null\", \"string\", \"integer\"]}", "[]",
          "$: expected string, integer or null, got array");
  /* "number" already includes integers. */
  sexpect("{\"type\": [\"integer\", \"number\"]}", "true",
          "$: expected number, got boolean");
  sexpect("{\"type\": [\"integer\", \"boolean\"]}", "1.0", NULL);
  sexpect("{\"type\": [\"integer\", \"boolean\"]}", "1.5",
          "$: expected integer or boolean, got number");
}

static void test_properties_required(void **state) {
  ice__schema_t *s =
      compile_ok("{\"type\": \"object\", \"properties\": {\"name\": {\"type\": "
                 "\"string\"}, \"count\": {\"type\": \"integer\"}, \"inner\": "
                 "{\"properties\": {\"deep\": {\"type\": \"boolean\"}}}}, "
                 "\"required\": [\"name\"]}");
  (void)state;
  vcheck(s, "{\"name\": \"a\"}", NULL);
  vcheck(s, "{\"name\": \"a\", \"count\": 3, \"other\": [1]}", NULL);
  vcheck(s, "{\"count\": 3}", "$: missing required field 'name'");
  vcheck(s, "{\"name\": \"a\", \"count\": \"3\"}",
         "$.count: expected integer, got string");
  vcheck(s, "{\"name\": \"a\", \"inner\": {\"deep\": 1}}",
         "$.inner.deep: expected boolean, got integer");
  /* Properties only apply to objects. */
  vcheck(s, "\"x\"", "$: expected object, got string");
  ice__schema_free(s);
  /* required without properties, and without a type. */
  sexpect("{\"required\": [\"a\", \"b\"], \"type\": \"object\"}", "{\"a\": 1}",
          "$: missing required field 'b'");
  sexpect("{\"properties\": {}, \"required\": [\"a\"]}", "5", NULL);
}

static void test_additional_properties(void **state) {
  (void)state;
  sexpect("{\"properties\": {\"a\": {}}, \"additionalProperties\": false}",
          "{\"a\": 1}", NULL);
  sexpect("{\"properties\": {\"a\": {}}, \"additionalProperties\": false}",
          "{\"a\": 1, \"extra\": 2}", "$: unexpected field 'extra'");
  sexpect("{\"properties\": {\"a\": {}}, \"additionalProperties\": true}",
          "{\"a\": 1, \"extra\": 2}", NULL);
  sexpect("{\"properties\": {\"a\": {}}, \"additionalProperties\": "
          "{\"type\": \"string\"}}",
          "{\"a\": 1, \"b\": \"x\", \"c\": 3}",
          "$.c: expected string, got integer");
  sexpect("{\"type\": \"object\", \"additionalProperties\": {\"type\": "
          "\"integer\"}}",
          "{\"x\": 1, \"y\": 2}", NULL);
  /* A property whose schema is false is not "unexpected". */
  sexpect("{\"properties\": {\"a\": false}}", "{\"a\": 1}",
          "$.a: value is not allowed here");
}

static void test_items(void **state) {
  (void)state;
  sexpect("{\"type\": \"array\", \"items\": {\"type\": \"string\"}}",
          "[\"a\", \"b\"]", NULL);
  sexpect("{\"properties\": {\"tags\": {\"items\": {\"type\": \"string\"}}}}",
          "{\"tags\": [\"a\", \"b\", 3]}",
          "$.tags[2]: expected string, got integer");
  sexpect("{\"type\": \"array\", \"items\": {\"items\": {\"type\": "
          "\"null\"}}}",
          "[[null], [1]]", "$[1][0]: expected null, got integer");
  /* Tuple form, with and without additionalItems. */
  sexpect("{\"type\": \"array\", \"items\": [{\"type\": \"string\"}, "
          "{\"type\": \"integer\"}]}",
          "[\"a\", 1, true]", NULL);
  sexpect("{\"type\": \"array\", \"items\": [{\"type\": \"string\"}, "
          "{\"type\": \"integer\"}]}",
          "[\"a\", \"b\"]", "$[1]: expected integer, got string");
  sexpect("{\"type\": \"array\", \"items\": [{\"type\": \"string\"}], "
          "\"additionalItems\": "
          "false}",
          "[\"a\", 2]", "$[1]: value is not allowed here");
  sexpect("{\"type\": \"array\", \"items\": [{\"type\": \"string\"}], "
          "\"additionalItems\": "
          "{\"type\": \"integer\"}}",
          "[\"a\", 2, 3]", NULL);
  sexpect("{\"type\": \"array\", \"items\": [], \"additionalItems\": "
          "{\"type\": \"integer\"}}",
          "[\"a\"]", "$[0]: expected integer, got string");
  sexpect("{\"type\": \"array\", \"items\": true}", "[1, \"a\"]", NULL);
}

static void test_enum_const(void **state) {
  (void)state;
  sexpect("{\"type\": \"string\", \"enum\": [\"a\", \"b\"]}", "\"b\"", NULL);
  sexpect("{\"type\": \"string\", \"enum\": [\"a\", \"b\"]}", "\"c\"",
          "$: value is not one of the allowed values");
  sexpect("{\"properties\": {\"x\": {\"enum\": [1, null, {\"k\": [1]}]}}}",
          "{\"x\": {\"k\": [1]}}", NULL);
  sexpect("{\"properties\": {\"x\": {\"enum\": [1, null, {\"k\": [1]}]}}}",
          "{\"x\": {\"k\": [2]}}",
          "$.x: value is not one of the allowed values");
  /* Numbers compare by value: 1 and 1.0 are the same number. */
  sexpect("{\"properties\": {\"x\": {\"enum\": [1]}}}", "{\"x\": 1.0}", NULL);
  sexpect("{\"properties\": {\"x\": {\"enum\": [1.5]}}}", "{\"x\": 1.5}", NULL);
  sexpect("{\"properties\": {\"x\": {\"enum\": [1]}}}", "{\"x\": 2}",
          "$.x: value is not one of the allowed values");
  sexpect("{\"properties\": {\"x\": {\"enum\": []}}}", "{\"x\": 2}",
          "$.x: value is not one of the allowed values");
  sexpect("{\"properties\": {\"x\": {\"const\": \"on\"}}}", "{\"x\": \"on\"}",
          NULL);
  sexpect("{\"properties\": {\"x\": {\"const\": \"on\"}}}", "{\"x\": \"off\"}",
          "$.x: value is not equal to the required constant");
  sexpect("{\"properties\": {\"x\": {\"const\": null}}}", "{\"x\": null}",
          NULL);
  sexpect("{\"properties\": {\"x\": {\"const\": 3}}}", "{\"x\": 3.0}", NULL);
}

static void test_numbers(void **state) {
  (void)state;
  sexpect("{\"properties\": {\"n\": {\"maximum\": 10}}}", "{\"n\": 10}", NULL);
  sexpect("{\"properties\": {\"n\": {\"maximum\": 10}}}", "{\"n\": 12}",
          "$.n: 12 is greater than the maximum 10");
  sexpect("{\"properties\": {\"n\": {\"minimum\": 5}}}", "{\"n\": 3}",
          "$.n: 3 is less than the minimum 5");
  sexpect("{\"properties\": {\"n\": {\"minimum\": 5}}}", "{\"n\": 5}", NULL);
  sexpect("{\"properties\": {\"n\": {\"minimum\": 0.1}}}", "{\"n\": 0.05}",
          "$.n: 0.05 is less than the minimum 0.1");
  sexpect("{\"properties\": {\"n\": {\"maximum\": 2.5}}}", "{\"n\": 3}",
          "$.n: 3 is greater than the maximum 2.5");
  sexpect("{\"properties\": {\"n\": {\"maximum\": 2}}}", "{\"n\": 2.5}",
          "$.n: 2.5 is greater than the maximum 2");
  sexpect("{\"properties\": {\"n\": {\"exclusiveMinimum\": 0}}}",
          "{\"n\": 0.5}", NULL);
  sexpect("{\"properties\": {\"n\": {\"exclusiveMinimum\": 0}}}", "{\"n\": 0}",
          "$.n: 0 is not greater than the exclusive minimum 0");
  sexpect("{\"properties\": {\"n\": {\"exclusiveMaximum\": 10}}}",
          "{\"n\": 10}", "$.n: 10 is not less than the exclusive maximum 10");
  sexpect("{\"properties\": {\"n\": {\"exclusiveMaximum\": 10}}}",
          "{\"n\": 9.99}", NULL);
  /* Draft 4: booleans that make minimum/maximum exclusive. */
  sexpect("{\"properties\": {\"n\": {\"maximum\": 10, \"exclusiveMaximum\": "
          "true}}}",
          "{\"n\": 10}", "$.n: 10 is not less than the exclusive maximum 10");
  sexpect("{\"properties\": {\"n\": {\"minimum\": 1, \"exclusiveMinimum\": "
          "true}}}",
          "{\"n\": 1}", "$.n: 1 is not greater than the exclusive minimum 1");
  sexpect("{\"properties\": {\"n\": {\"minimum\": 1, \"exclusiveMinimum\": "
          "false}}}",
          "{\"n\": 1}", NULL);
  sexpect("{\"properties\": {\"n\": {\"exclusiveMinimum\": true}}}",
          "{\"n\": -5}", NULL);
  /* Limits print so that they read back as the same number. */
  sexpect("{\"properties\": {\"n\": {\"minimum\": 0.30000000000000004}}}",
          "{\"n\": 0.3}",
          "$.n: 0.3 is less than the minimum 0.30000000000000004");
  /* Integer limits stay exact beyond 2^53. */
  sexpect("{\"properties\": {\"n\": {\"maximum\": 9007199254740993}}}",
          "{\"n\": 9007199254740994}",
          "$.n: 9007199254740994 is greater than the maximum 9007199254740993");
  /* Number keywords ignore other types. */
  sexpect("{\"properties\": {\"n\": {\"minimum\": 5}}}", "{\"n\": \"1\"}",
          NULL);
}

static void test_string_lengths(void **state) {
  (void)state;
  sexpect("{\"type\": \"string\", \"minLength\": 2, \"maxLength\": 3}",
          "\"ab\"", NULL);
  sexpect("{\"type\": \"string\", \"minLength\": 2, \"maxLength\": 3}", "\"a\"",
          "$: string is shorter than the minimum length 2");
  sexpect("{\"type\": \"string\", \"minLength\": 2, \"maxLength\": 3}",
          "\"abcd\"", "$: string is longer than the maximum length 3");
  /* Code points, not bytes: "héé" is 3 characters in 5 bytes. */
  sexpect("{\"type\": \"string\", \"maxLength\": 3}", "\"h\\u00e9\\u00e9\"",
          NULL);
  sexpect("{\"type\": \"string\", \"maxLength\": 1}", "\"\\ud83d\\ude00\"",
          NULL);
  sexpect("{\"type\": \"string\", \"minLength\": 2}", "\"\\ud83d\\ude00\"",
          "$: string is shorter than the minimum length 2");
  sexpect("{\"type\": \"string\", \"minLength\": 2.0}", "\"ab\"", NULL);
  /* Length keywords ignore other types. */
  sexpect("{\"minLength\": 2, \"type\": [\"string\", \"integer\"]}", "1", NULL);
}

static void test_array_object_counts(void **state) {
  (void)state;
  sexpect("{\"type\": \"array\", \"minItems\": 1, \"maxItems\": 2}", "[1]",
          NULL);
  sexpect("{\"type\": \"array\", \"minItems\": 1, \"maxItems\": 2}", "[]",
          "$: array has fewer than 1 items");
  sexpect("{\"type\": \"array\", \"minItems\": 1, \"maxItems\": 2}",
          "[1, 2, 3]", "$: array has more than 2 items");
  sexpect("{\"type\": \"array\", \"uniqueItems\": true}", "[1, \"1\", [1]]",
          NULL);
  sexpect("{\"type\": \"array\", \"uniqueItems\": true}", "[1, 2, 1.0]",
          "$: items 0 and 2 are equal");
  sexpect("{\"type\": \"array\", \"uniqueItems\": false}", "[1, 1]", NULL);
  sexpect("{\"type\": \"object\", \"minProperties\": 1}", "{}",
          "$: object has fewer than 1 fields");
  sexpect("{\"type\": \"object\", \"maxProperties\": 1}",
          "{\"a\": 1, \"b\": 2}", "$: object has more than 1 fields");
  sexpect("{\"type\": \"object\", \"maxProperties\": 1}", "{\"a\": 1}", NULL);
}

static void test_pattern(void **state) {
  (void)state;
  sexpect("{\"properties\": {\"s\": {\"pattern\": \"^a\"}}}",
          "{\"s\": \"abc\"}", NULL);
  sexpect("{\"properties\": {\"s\": {\"pattern\": \"^a\"}}}",
          "{\"s\": \"bac\"}", "$.s: does not match pattern '^a'");
  /* Unanchored, as in JSON Schema. */
  sexpect("{\"type\": \"string\", \"pattern\": \"b+\"}", "\"abbc\"", NULL);
  sexpect("{\"type\": \"string\", \"pattern\": \"^(ab|cd)+$\"}", "\"abcdab\"",
          NULL);
  sexpect("{\"type\": \"string\", \"pattern\": \"^(ab|cd)+$\"}", "\"abc\"",
          "$: does not match pattern '^(ab|cd)+$'");
  /* \d and \D are rewritten for POSIX; it would otherwise match 'd'. */
  sexpect("{\"type\": \"string\", \"pattern\": \"^\\\\d+$\"}", "\"123\"", NULL);
  sexpect("{\"type\": \"string\", \"pattern\": \"^\\\\d+$\"}", "\"ddd\"",
          "$: does not match pattern '^\\d+$'");
  sexpect("{\"type\": \"string\", \"pattern\": \"^\\\\D$\"}", "\"x\"", NULL);
  sexpect("{\"type\": \"string\", \"pattern\": \"^\\\\D$\"}", "\"1\"",
          "$: does not match pattern '^\\D$'");
  sexpect("{\"type\": \"string\", \"pattern\": \"^[\\\\dx]+$\"}", "\"1x2\"",
          NULL);
  sexpect("{\"type\": \"string\", \"pattern\": \"^[\\\\dx]+$\"}", "\"1y\"",
          "$: does not match pattern '^[\\dx]+$'");
  /* Brackets: classes, a leading ']' and a negation. */
  sexpect("{\"type\": \"string\", \"pattern\": \"^[[:alpha:]_]+$\"}",
          "\"ab_c\"", NULL);
  sexpect("{\"type\": \"string\", \"pattern\": \"^[]a]+$\"}", "\"]a]\"", NULL);
  sexpect("{\"type\": \"string\", \"pattern\": \"^[^]a]+$\"}", "\"]\"",
          "$: does not match pattern '^[^]a]+$'");
  sexpect("{\"type\": \"string\", \"pattern\": \"^[[.a.][=b=]]+$\"}", "\"ab\"",
          NULL);
  sexpect("{\"type\": \"string\", \"pattern\": \"a\\\\.b\"}", "\"a.b\"", NULL);
  sexpect("{\"type\": \"string\", \"pattern\": \"a\\\\.b\"}", "\"axb\"",
          "$: does not match pattern 'a\\.b'");
  /* A trailing backslash is passed to regcomp, which rejects it. */
  {
    json_t *js = th_json("{\"type\": \"string\", \"pattern\": \"a\\\\\"}");
    ice__schema_t *s = NULL;
    ice__err_t err = {0};
    assert_int_equal(ice__schema_compile(js, &s, &err), -1);
    assert_non_null(strstr(err.msg, "invalid 'pattern' 'a\\': "));
    json_decref(js);
  }
  /* pattern ignores other types. */
  sexpect("{\"pattern\": \"^a\", \"type\": [\"string\", \"null\"]}", "null",
          NULL);
}

/* Patterns that glibc's regcomp would expand past any reasonable memory or
 * time, or parse on a recursion deep enough to overflow the stack, are
 * refused before it sees them (found by fuzz/fuzz_schema; the inputs are
 * in fuzz/regressions/schema). Real patterns still compile, and ECMA-262's
 * lazy quantifiers match what they match there. */
static void test_pattern_too_big(void **state) {
  static const char *const big[] = {
      "^x{1,32767}$",                     /* 8 GB */
      "((((((((((x+)+)+)+)+)+)+)+)+)+)+", /* doubles 11 times */
      "((a{1,40}){1,40})",                /* 1,600 copies */
      /* empty alternatives, copied: 0.05 s for these 64, 98 s for 500 */
      "^(ab|D||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||)"
      "+$",
  };
  static const char *const stacked[] = {
      "^-**************+*", "x++++++++", "a**", "a+??", "a{2}{3}", "a?*"};
  char deep[200], text[600], msg[600];

  (void)state;
  for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
    snprintf(text, sizeof(text), "{\"type\": \"string\", \"pattern\": \"%s\"}",
             big[i]);
    snprintf(msg, sizeof(msg),
             "invalid 'pattern' '%s': too large once its repetitions are "
             "expanded",
             big[i]);
    compile_fails(text, msg);
  }
  for (size_t i = 0; i < sizeof(stacked) / sizeof(stacked[0]); i++) {
    snprintf(text, sizeof(text), "{\"type\": \"string\", \"pattern\": \"%s\"}",
             stacked[i]);
    snprintf(msg, sizeof(msg),
             "invalid 'pattern' '%s': a quantifier repeats a quantifier",
             stacked[i]);
    compile_fails(text, msg);
  }
  /* 256 optional atoms, copied: 0.2 s (4 s under ASan) */
  strcpy(text, "{\"type\": \"string\", \"pattern\": \"^(");
  for (int i = 0; i < 256; i++)
    strcat(text, "x?");
  strcat(text, ")+$\"}");
  {
    json_t *js = th_json(text);
    ice__schema_t *s = NULL;
    ice__err_t err = {0};
    assert_int_equal(ice__schema_compile(js, &s, &err), -1);
    assert_non_null(strstr(err.msg, "invalid 'pattern' '^(x?x?"));
    json_decref(js);
  }
  memset(deep, '(', 33);
  deep[33] = 'x';
  memset(deep + 34, ')', 33);
  deep[67] = '\0';
  snprintf(text, sizeof(text), "{\"type\": \"string\", \"pattern\": \"%s\"}",
           deep);
  snprintf(msg, sizeof(msg), "invalid 'pattern' '%s': too many nested groups",
           deep);
  compile_fails(text, msg);
  deep[66] = '\0'; /* deep + 1: 32 deep, accepted */
  snprintf(text, sizeof(text), "{\"type\": \"string\", \"pattern\": \"^%s$\"}",
           deep + 1);
  sexpect(text, "\"x\"", NULL);
  sexpect("{\"type\": \"string\", \"pattern\": \"^[a-z0-9._%+-]{1,64}@"
          "[a-z0-9.-]{1,255}\\\\.[a-z]{2,}$\"}",
          "\"ada@example.org\"", NULL);
  sexpect("{\"type\": \"string\", \"pattern\": \"^x{1,500}$\"}", "\"xxx\"",
          NULL);
  sexpect(
      "{\"type\": \"string\", \"pattern\": \"^[]{]{2,}[[:digit:]{]+\\\\{$\"}",
      "\"{{1{\"", NULL);
  sexpect("{\"type\": \"string\", \"pattern\": \"^(a|b|)+c$\"}", "\"abac\"",
          NULL);
  sexpect("{\"type\": \"string\", \"pattern\": \"^(a|b|)+c$\"}", "\"c\"", NULL);
  /* Lazy: a+? still needs one a (glibc alone would read (a+)?). */
  sexpect("{\"type\": \"string\", \"pattern\": \"^a+?b*?c??d{2}?$\"}",
          "\"aadd\"", NULL);
  sexpect("{\"type\": \"string\", \"pattern\": \"^a+?b*?c??d{2}?$\"}", "\"dd\"",
          "$: does not match pattern '^a+?b*?c??d{2}?$'");
}

static void test_all_any_one_not(void **state) {
  ice__schema_t *s;

  (void)state;
  sexpect("{\"allOf\": [{\"type\": \"integer\"}, {\"minimum\": 3}]}", "4",
          NULL);
  sexpect("{\"allOf\": [{\"type\": \"integer\"}, {\"minimum\": 3}]}", "2",
          "$: 2 is less than the minimum 3");
  s = compile_ok("{\"properties\": {\"x\": {\"anyOf\": [{\"type\": "
                 "\"string\"}, {\"type\": \"integer\", \"minimum\": 0}]}}}");
  vcheck(s, "{\"x\": \"a\"}", NULL);
  vcheck(s, "{\"x\": 3}", NULL);
  vcheck(s, "{\"x\": -3}", "$.x: value does not match any schema in anyOf");
  vcheck(s, "{\"x\": null}", "$.x: value does not match any schema in anyOf");
  ice__schema_free(s);
  s = compile_ok("{\"properties\": {\"x\": {\"oneOf\": [{\"type\": "
                 "\"integer\"}, {\"type\": \"number\", \"minimum\": 10}, "
                 "{\"type\": \"null\"}]}}}");
  vcheck(s, "{\"x\": 3}", NULL);
  vcheck(s, "{\"x\": 10.5}", NULL);
  vcheck(s, "{\"x\": null}", NULL);
  vcheck(s, "{\"x\": 12}",
         "$.x: value matches schemas 0 and 1 in oneOf, expected "
         "exactly one");
  vcheck(s, "{\"x\": 2.5}", "$.x: value does not match any schema in oneOf");
  ice__schema_free(s);
  sexpect("{\"properties\": {\"x\": {\"not\": {\"type\": \"string\"}}}}",
          "{\"x\": 1}", NULL);
  sexpect("{\"properties\": {\"x\": {\"not\": {\"type\": \"string\"}}}}",
          "{\"x\": \"s\"}", "$.x: value matches the schema in 'not'");
  /* Boolean schemas inside JSON Schema. */
  sexpect("{\"anyOf\": [false, true]}", "1", NULL);
  sexpect("{\"allOf\": [true, false]}", "1", "$: value is not allowed here");
}

static void test_ref(void **state) {
  ice__schema_t *s;

  (void)state;
  s = compile_ok("{\"definitions\": {\"pos\": {\"type\": \"integer\", "
                 "\"minimum\": 1}}, \"type\": \"object\", \"properties\": "
                 "{\"a\": {\"$ref\": \"#/definitions/pos\"}, \"b\": {\"$ref\": "
                 "\"#/definitions/pos\"}}}");
  vcheck(s, "{\"a\": 1, \"b\": 2}", NULL);
  vcheck(s, "{\"a\": 1, \"b\": 0}", "$.b: 0 is less than the minimum 1");
  vcheck(s, "{\"a\": \"x\"}", "$.a: expected integer, got string");
  ice__schema_free(s);
  /* $defs, and a recursive tree. */
  s = compile_ok("{\"$defs\": {\"node\": {\"type\": \"object\", "
                 "\"properties\": {\"v\": {\"type\": \"integer\"}, \"kids\": "
                 "{\"type\": \"array\", \"items\": {\"$ref\": "
                 "\"#/$defs/node\"}}}, \"required\": [\"v\"]}}, \"$ref\": "
                 "\"#/$defs/node\"}");
  vcheck(s, "{\"v\": 1, \"kids\": [{\"v\": 2, \"kids\": [{\"v\": 3}]}]}", NULL);
  vcheck(s,
         "{\"v\": 1, \"kids\": [{\"v\": 2, \"kids\": [{\"v\": "
         "\"3\"}]}]}",
         "$.kids[0].kids[0].v: expected integer, got string");
  vcheck(s, "{\"v\": 1, \"kids\": [{}]}",
         "$.kids[0]: missing required field 'v'");
  ice__schema_free(s);
  /* "#" is the root itself. */
  s = compile_ok("{\"type\": \"array\", \"items\": {\"$ref\": \"#\"}}");
  vcheck(s, "[[], [[]]]", NULL);
  vcheck(s, "[[], [1]]", "$[1][0]: expected array, got integer");
  ice__schema_free(s);
  /* Any local JSON pointer, with ~0/~1 escapes and array indexes. */
  sexpect("{\"definitions\": {\"a/b\": {\"type\": \"null\"}, \"c~d\": "
          "{\"type\": \"string\"}}, \"properties\": {\"x\": {\"$ref\": "
          "\"#/definitions/a~1b\"}, \"y\": {\"$ref\": "
          "\"#/definitions/c~0d\"}}}",
          "{\"x\": null, \"y\": 1}", "$.y: expected string, got integer");
  sexpect("{\"x-list\": [{\"type\": \"null\"}], "
          "\"properties\": {\"x\": {\"$ref\": \"#/x-list/0\"}}}",
          "{\"x\": 1}", "$.x: expected null, got integer");
  /* $ref next to other keywords: both apply. */
  sexpect("{\"definitions\": {\"i\": {\"type\": \"integer\"}}, \"$ref\": "
          "\"#/definitions/i\", \"minimum\": 3}",
          "2", "$: 2 is less than the minimum 3");
  sexpect("{\"definitions\": {\"i\": {\"type\": \"integer\"}}, \"$ref\": "
          "\"#/definitions/i\", \"minimum\": 3}",
          "3.5", "$: expected integer, got number");
  /* A ref chain resolves, and a definition can be a boolean. */
  sexpect("{\"definitions\": {\"a\": {\"$ref\": \"#/definitions/b\"}, \"b\": "
          "false}, \"$ref\": \"#/definitions/a\"}",
          "1", "$: value is not allowed here");
}

static void test_ref_errors(void **state) {
  (void)state;
  compile_fails("{\"$ref\": \"#/definitions/nope\"}",
                "$ref '#/definitions/nope' does not resolve");
  compile_fails("{\"$ref\": \"#/definitions\"}",
                "$ref '#/definitions' does not resolve");
  compile_fails("{\"$ref\": \"other.json#/a\"}",
                "unsupported $ref 'other.json#/a' (only local refs such as "
                "'#/definitions/name' are supported)");
  compile_fails("{\"$ref\": \"#a\"}",
                "unsupported $ref '#a' (only local refs such as "
                "'#/definitions/name' are supported)");
  compile_fails("{\"$ref\": 5}", "'$ref' must be a string");
  compile_fails("{\"$ref\": \"#\"}", "$ref loop through '#'");
  compile_fails("{\"definitions\": {\"a\": {\"$ref\": \"#/definitions/b\"}, "
                "\"b\": {\"allOf\": [{\"$ref\": \"#/definitions/a\"}]}}, "
                "\"type\": \"object\"}",
                "$ref loop through '#/definitions/a'");
  compile_fails("{\"definitions\": {\"a\": {\"not\": {\"$ref\": "
                "\"#/definitions/a\"}}}, \"$ref\": \"#/definitions/a\"}",
                "$ref loop through '#/definitions/a'");
  compile_fails("{\"definitions\": {\"a\": {\"minimum\": \"x\"}}, \"type\": "
                "\"object\"}",
                "'minimum' must be a number (at #/definitions/a)");
  compile_fails("{\"definitions\": 1, \"type\": \"object\"}",
                "'definitions' must be an object");
  compile_fails("{\"$defs\": [], \"type\": \"object\"}",
                "'$defs' must be an object");
  compile_fails("{\"$ref\": \"#/definitions/x\", \"definitions\": {\"x\": 3}}",
                "a schema must be an object or a boolean "
                "(at #/definitions/x)");
  compile_fails("{\"$ref\": \"#/items/0\", \"items\": [1]}",
                "a schema must be an object or a boolean (at #/items/0)");
  compile_fails("{\"$ref\": \"#/items/x\", \"items\": [{}]}",
                "$ref '#/items/x' does not resolve");
  compile_fails("{\"$ref\": \"#/items/-1\", \"items\": [{}]}",
                "$ref '#/items/-1' does not resolve");
  compile_fails("{\"$ref\": \"#/items/\", \"items\": [{}]}",
                "$ref '#/items/' does not resolve");
  compile_fails("{\"$ref\": \"#/type/x\", \"type\": \"object\"}",
                "$ref '#/type/x' does not resolve");
}

/* Pointer tokens of any length resolve. */
static void test_ref_long_token(void **state) {
  char text[1400];
  char name[600];
  ice__schema_t *s;

  (void)state;
  memset(name, 'k', sizeof(name) - 1);
  name[sizeof(name) - 1] = '\0';
  snprintf(text, sizeof(text),
           "{\"$ref\": \"#/definitions/%s\", \"definitions\": {\"%s\": "
           "{\"type\": \"null\"}}}",
           name, name);
  s = compile_ok(text);
  vcheck(s, "null", NULL);
  vcheck(s, "1", "$: expected null, got integer");
  ice__schema_free(s);
}

/* Keywords of the wrong type are schema errors, with where they are. */
static void test_keyword_errors(void **state) {
  (void)state;
  compile_fails("{\"type\": \"string\", \"minimum\": \"x\"}",
                "'minimum' must be a number");
  compile_fails("{\"properties\": {\"a\": {\"maximum\": null}}}",
                "'maximum' must be a number (at #/properties/a)");
  compile_fails("{\"type\": \"number\", \"exclusiveMinimum\": \"1\"}",
                "'exclusiveMinimum' must be a number");
  compile_fails("{\"type\": \"number\", \"exclusiveMaximum\": []}",
                "'exclusiveMaximum' must be a number");
  compile_fails("{\"type\": \"object\", \"required\": 5}",
                "'required' must be an array of strings");
  compile_fails("{\"type\": \"object\", \"required\": [\"a\", 1]}",
                "'required' must be an array of strings");
  compile_fails("{\"type\": \"string\", \"minLength\": -1}",
                "'minLength' must be a non-negative integer");
  compile_fails("{\"type\": \"string\", \"maxLength\": 1.5}",
                "'maxLength' must be a non-negative integer");
  compile_fails("{\"type\": \"array\", \"minItems\": \"1\"}",
                "'minItems' must be a non-negative integer");
  compile_fails("{\"type\": \"array\", \"maxItems\": 1e300}",
                "'maxItems' must be a non-negative integer");
  compile_fails("{\"type\": \"object\", \"maxProperties\": true}",
                "'maxProperties' must be a non-negative integer");
  compile_fails("{\"type\": \"array\", \"uniqueItems\": 1}",
                "'uniqueItems' must be a boolean");
  compile_fails("{\"type\": \"string\", \"pattern\": 1}",
                "'pattern' must be a string");
  {
    json_t *js = json_loads("{\"type\": \"string\", \"pattern\": "
                            "\"a\\u0000b\"}",
                            JSON_ALLOW_NUL, NULL);
    ice__schema_t *s = NULL;
    ice__err_t err = {0};
    assert_non_null(js);
    assert_int_equal(ice__schema_compile(js, &s, &err), -1);
    assert_string_equal(err.msg, "'pattern' must be a string");
    json_decref(js);
  }
  {
    json_t *js = th_json("{\"type\": \"string\", \"pattern\": \"(a\"}");
    ice__schema_t *s = NULL;
    ice__err_t err = {0};
    assert_int_equal(ice__schema_compile(js, &s, &err), -1);
    assert_null(s);
    assert_non_null(strstr(err.msg, "invalid 'pattern' '(a': "));
    json_decref(js);
  }
  /* Not a JSON Schema type name, so a simple field called "type". */
  compile_fails("{\"type\": \"strng\"}",
                "unknown type 'strng' for field 'type'");
  compile_fails("{\"type\": \"strng\", \"properties\": {}}",
                "unknown type 'strng' in 'type'");
  compile_fails("{\"type\": [\"string\", \"strng\"], \"properties\": {}}",
                "unknown type 'strng' in 'type'");
  compile_fails("{\"type\": [\"string\", 1], \"properties\": {}}",
                "'type' must be a type name or a list of them");
  compile_fails("{\"type\": 1, \"properties\": {}}",
                "'type' must be a type name or a list of them");
  compile_fails("{\"type\": [], \"properties\": {}}",
                "'type' must be a type name or a list of them");
  compile_fails("{\"type\": \"object\", \"properties\": 1}",
                "'properties' must be an object");
  compile_fails("{\"properties\": {\"a\": 1}}",
                "a schema must be an object or a boolean (at #/properties/a)");
  compile_fails("{\"type\": \"string\", \"enum\": \"a\"}",
                "'enum' must be an array");
  compile_fails("{\"allOf\": []}",
                "'allOf' must be a non-empty array of schemas");
  compile_fails("{\"anyOf\": {}}",
                "'anyOf' must be a non-empty array of schemas");
  compile_fails("{\"oneOf\": [{}, 2]}",
                "a schema must be an object or a boolean (at #/oneOf/1)");
  compile_fails("{\"type\": \"array\", \"items\": 1}",
                "a schema must be an object or a boolean (at #/items)");
  compile_fails("{\"type\": \"array\", \"items\": [{}, \"x\"]}",
                "a schema must be an object or a boolean (at #/items/1)");
  compile_fails("{\"type\": \"array\", \"additionalItems\": 1}",
                "a schema must be an object or a boolean "
                "(at #/additionalItems)");
  compile_fails("{\"type\": \"object\", \"additionalProperties\": \"no\"}",
                "a schema must be an object or a boolean "
                "(at #/additionalProperties)");
  compile_fails("{\"type\": \"object\", \"not\": null}",
                "a schema must be an object or a boolean (at #/not)");
  /* Pointer escapes in the location. */
  compile_fails("{\"properties\": {\"a/b~c\": {\"minimum\": \"x\"}}}",
                "'minimum' must be a number (at #/properties/a~1b~0c)");
}

static void test_root_errors(void **state) {
  ice__schema_t *s = (ice__schema_t *)1;
  ice__err_t err = {0};
  json_t *js = th_json("[]");

  (void)state;
  assert_int_equal(ice__schema_compile(js, &s, &err), -1);
  assert_null(s);
  assert_string_equal(err.msg, "schema must be an object");
  json_decref(js);
  compile_fails("true", "schema must be an object");
  compile_fails("\"str\"", "schema must be an object");
  assert_int_equal(ice__schema_compile(NULL, &s, &err), -1);
  assert_string_equal(err.msg, "schema must be an object");
  assert_int_equal(ice__schema_compile(NULL, NULL, &err), -1);
  /* A NULL err is allowed. */
  js = th_json("{\"x\": \"nope\"}");
  assert_int_equal(ice__schema_compile(js, &s, NULL), -1);
  json_decref(js);
  /* No schema accepts everything; no value is an error. */
  js = th_json("1");
  assert_int_equal(ice__schema_check(NULL, js, &err), 0);
  json_decref(js);
  s = compile_ok("{}");
  assert_int_equal(ice__schema_check(s, NULL, &err), -1);
  assert_string_equal(err.msg, "$: no value");
  ice__schema_free(s);
  ice__schema_free(NULL);
}

static void test_paths(void **state) {
  (void)state;
  sexpect("{\"properties\": {\"a b\": {\"type\": \"string\"}}}", "{\"a b\": 1}",
          "$[\"a b\"]: expected string, got integer");
  sexpect("{\"properties\": {\"q\\\"\\\\\": {\"type\": \"string\"}}}",
          "{\"q\\\"\\\\\": 1}",
          "$[\"q\\\"\\\\\"]: expected string, got integer");
  sexpect("{\"properties\": {\"_a9\": {\"type\": \"string\"}}}", "{\"_a9\": 1}",
          "$._a9: expected string, got integer");
  sexpect("{\"properties\": {\"9a\": {\"type\": \"string\"}}}", "{\"9a\": 1}",
          "$[\"9a\"]: expected string, got integer");
  sexpect("{\"properties\": {\"\": {\"type\": \"string\"}}}", "{\"\": 1}",
          "$[\"\"]: expected string, got integer");
  sexpect("{\"properties\": {\"a\": {\"items\": {\"properties\": {\"b\": "
          "{\"items\": {\"type\": \"null\"}}}}}}}",
          "{\"a\": [{}, {\"b\": [null, null, 0]}]}",
          "$.a[1].b[2]: expected null, got integer");
}

/* Errors found by a branch of anyOf/oneOf/not are not reported. */
static void test_err_untouched_on_success(void **state) {
  ice__schema_t *s = compile_ok(
      "{\"anyOf\": [{\"type\": \"string\"}, {\"type\": \"integer\"}]}");
  ice__err_t err;
  json_t *v = th_json("5");

  (void)state;
  memset(&err, 0, sizeof(err));
  assert_int_equal(ice__schema_check(s, v, &err), 0);
  assert_string_equal(err.msg, "");
  json_decref(v);
  ice__schema_free(s);
}

/* ---- recursion guards ---- */

static char *nested_schema(int levels) {
  size_t cap = (size_t)levels * 32 + 64, len = 0;
  char *t = malloc(cap);

  assert_non_null(t);
  for (int i = 0; i < levels; i++)
    len += (size_t)sprintf(t + len, "{\"type\": \"array\", \"items\": ");
  len += (size_t)sprintf(t + len, "{\"type\": \"null\"}");
  for (int i = 0; i < levels; i++)
    len += (size_t)sprintf(t + len, "}");
  return t;
}

static void test_depth_limit(void **state) {
  char *ok = nested_schema(64), *deep = nested_schema(65);
  json_t *js = th_json(deep);
  ice__schema_t *s = NULL;
  ice__err_t err = {0};

  (void)state;
  s = compile_ok(ok);
  ice__schema_free(s);
  assert_int_equal(ice__schema_compile(js, &s, &err), -1);
  assert_non_null(strstr(err.msg, "schema is nested more than 64 levels "
                                  "deep (at #/items/items/items"));
  json_decref(js);
  free(ok);
  free(deep);
}

static void test_check_depth_limit(void **state) {
  ice__schema_t *s = compile_ok("{\"type\": \"array\", \"items\": {\"$ref\": "
                                "\"#\"}}");
  json_t *v = json_array(), *cur = v;
  ice__err_t err = {0};

  (void)state;
  for (int i = 0; i < 2000; i++) {
    json_t *next = json_array();
    json_array_append_new(cur, next);
    cur = next;
  }
  assert_int_equal(ice__schema_check(s, v, &err), -1);
  assert_non_null(strstr(err.msg, "value is nested too deeply for the "
                                  "schema"));
  assert_true(strncmp(err.msg, "$[0][0]", 7) == 0);
  json_decref(v);
  /* Moderately deep values still pass. */
  v = th_json("[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]");
  assert_int_equal(ice__schema_check(s, v, &err), 0);
  json_decref(v);
  ice__schema_free(s);
}

static void test_long_ref_chain(void **state) {
  /* 300 definitions, each referring to the next through allOf and $ref,
   * stay within the nesting limit at each site but make a long chain. */
  size_t cap = 300 * 80 + 200, len = 0;
  char *t = malloc(cap);
  json_t *js;
  ice__schema_t *s = NULL;
  ice__err_t err = {0};

  (void)state;
  assert_non_null(t);
  len += (size_t)sprintf(t + len, "{\"$ref\": \"#/definitions/d0\", "
                                  "\"definitions\": {");
  for (int i = 0; i < 300; i++)
    len +=
        (size_t)sprintf(t + len, "%s\"d%d\": {\"$ref\": \"#/definitions/d%d\"}",
                        i ? ", " : "", i, i + 1);
  sprintf(t + len, ", \"d300\": {\"type\": \"null\"}}}");
  js = th_json(t);
  assert_int_equal(ice__schema_compile(js, &s, &err), -1);
  assert_non_null(strstr(err.msg, "schema is nested more than 64 levels"));
  json_decref(js);
  free(t);
}

/* Cross edges can make a chain longer than the nesting limit: d_i is
 * compiled from the definitions (depth 2) yet refers to d_{i+1} that was
 * already compiled, so the chain grows past MAX_CHAIN without nesting. */
static void test_long_chain_through_cache(void **state) {
  size_t cap = 400 * 80 + 200, len = 0;
  char *t = malloc(cap);
  json_t *js;
  ice__schema_t *s = NULL;
  ice__err_t err = {0};
  const int n = 300;

  (void)state;
  assert_non_null(t);
  len += (size_t)sprintf(t + len, "{\"type\": \"object\", \"$ref\": "
                                  "\"#/definitions/d0\", \"definitions\": {");
  /* Written last-first so each definition's target is compiled already. */
  for (int i = n; i >= 0; i--) {
    if (i == n)
      len += (size_t)sprintf(t + len, "\"d%d\": {\"type\": \"null\"}", i);
    else
      len += (size_t)sprintf(
          t + len, ", \"d%d\": {\"$ref\": \"#/definitions/d%d\"}", i, i + 1);
  }
  sprintf(t + len, "}}");
  js = th_json(t);
  assert_int_equal(ice__schema_compile(js, &s, &err), -1);
  assert_string_equal(err.msg, "chain of $ref/allOf/anyOf/oneOf/not is "
                               "longer than 256");
  json_decref(js);
  free(t);
}

/* ---- fuzz ---- */

static uint64_t rng_state;

static unsigned rnd(unsigned n) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (unsigned)(rng_state % n);
}

static const char *const fuzz_keys[] = {"a", "b", "c", "d e"};
static const char *const fuzz_strings[] = {
    "", "a", "abc", "h\xc3\xa9", "123", "zz9", "\xf0\x9f\x98\x80"};

static json_t *gen_value(int depth) {
  switch (rnd(depth > 3 ? 5 : 7)) {
  case 0:
    return json_null();
  case 1:
    return json_boolean(rnd(2));
  case 2:
    return json_integer((json_int_t)rnd(21) - 10);
  case 3:
    return json_real(((double)rnd(41) - 20) / 4);
  case 4:
    return json_string(fuzz_strings[rnd(ICE__ARRAY_SIZE(fuzz_strings))]);
  case 5: {
    json_t *a = json_array();
    for (unsigned i = rnd(4); i > 0; i--)
      json_array_append_new(a, gen_value(depth + 1));
    return a;
  }
  default: {
    json_t *o = json_object();
    for (unsigned i = rnd(4); i > 0; i--)
      json_object_set_new(o, fuzz_keys[rnd(4)], gen_value(depth + 1));
    return o;
  }
  }
}

static const char *const fuzz_types[] = {
    "string", "number", "integer", "boolean", "object", "array", "null", "str",
};
static const char *const fuzz_patterns[] = {
    "^a", "b+$", "\\d", "[[:alpha:]]", "(", "[a", "^(a|b)*$"};
static const char *const fuzz_refs[] = {"#/definitions/d0", "#/definitions/d1",
                                        "#/definitions/d2", "#",
                                        "#/nope",           "http://x/y"};

static json_t *gen_schema(int depth);

static json_t *gen_schema_list(int depth) {
  json_t *a = json_array();

  for (unsigned i = rnd(3); i > 0 || json_array_size(a) == 0; i--) {
    json_array_append_new(a, gen_schema(depth + 1));
    if (rnd(4) == 0)
      break;
  }
  return a;
}

/* A sub-schema of a few random keywords, mostly well-formed. */
static json_t *gen_schema(int depth) {
  json_t *o;
  unsigned n;

  if (rnd(10) == 0)
    return rnd(2) ? json_true() : json_false();
  if (rnd(40) == 0)
    return gen_value(3);
  o = json_object();
  n = depth > 3 ? rnd(2) : rnd(4);
  for (unsigned i = 0; i < n; i++) {
    switch (rnd(20)) {
    case 0:
      json_object_set_new(o, "type", json_string(fuzz_types[rnd(8)]));
      break;
    case 1: {
      json_t *t = json_array();
      json_array_append_new(t, json_string(fuzz_types[rnd(7)]));
      json_array_append_new(t, json_string(fuzz_types[rnd(8)]));
      json_object_set_new(o, "type", t);
      break;
    }
    case 2: {
      json_t *p = json_object();
      for (unsigned k = rnd(3); k > 0; k--)
        json_object_set_new(p, fuzz_keys[rnd(4)], gen_schema(depth + 1));
      json_object_set_new(o, "properties", p);
      break;
    }
    case 3: {
      json_t *r = json_array();
      for (unsigned k = rnd(3); k > 0; k--)
        json_array_append_new(r, rnd(10) ? json_string(fuzz_keys[rnd(4)])
                                         : json_integer(1));
      json_object_set_new(o, "required", r);
      break;
    }
    case 4:
      json_object_set_new(o, "additionalProperties",
                          rnd(2) ? json_boolean(rnd(2))
                                 : gen_schema(depth + 1));
      break;
    case 5:
      json_object_set_new(
          o, "items", rnd(3) ? gen_schema(depth + 1) : gen_schema_list(depth));
      break;
    case 6:
      json_object_set_new(o, "additionalItems", gen_schema(depth + 1));
      break;
    case 7: {
      json_t *e = json_array();
      for (unsigned k = rnd(4); k > 0; k--)
        json_array_append_new(e, gen_value(2));
      json_object_set_new(o, "enum", e);
      break;
    }
    case 8:
      json_object_set_new(o, "const", gen_value(2));
      break;
    case 9: {
      static const char *const kw[] = {"minimum", "maximum", "exclusiveMinimum",
                                       "exclusiveMaximum"};
      json_object_set_new(o, kw[rnd(4)],
                          rnd(12) ? json_real(((double)rnd(21) - 10) / 2)
                                  : json_boolean(rnd(2)));
      break;
    }
    case 10: {
      static const char *const kw[] = {"minLength",     "maxLength",
                                       "minItems",      "maxItems",
                                       "minProperties", "maxProperties"};
      json_object_set_new(o, kw[rnd(6)],
                          json_integer((json_int_t)rnd(5) - (rnd(15) == 0)));
      break;
    }
    case 11:
      json_object_set_new(o, "pattern", json_string(fuzz_patterns[rnd(7)]));
      break;
    case 12:
      json_object_set_new(o, "allOf", gen_schema_list(depth));
      break;
    case 13:
      json_object_set_new(o, "anyOf", gen_schema_list(depth));
      break;
    case 14:
      json_object_set_new(o, "oneOf", gen_schema_list(depth));
      break;
    case 15:
      json_object_set_new(o, "not", gen_schema(depth + 1));
      break;
    case 16:
      json_object_set_new(o, "$ref", json_string(fuzz_refs[rnd(6)]));
      break;
    case 17:
      json_object_set_new(o, "uniqueItems", json_boolean(rnd(2)));
      break;
    case 18:
      json_object_set_new(o, "title", json_string("ignored"));
      break;
    default:
      json_object_set_new(o, "minimum", json_string("bad"));
      break;
    }
  }
  return o;
}

static json_t *gen_root(void) {
  static const char *const words[] = {"str",  "int",  "float", "bool",
                                      "dict", "list", "any",   "strng"};
  json_t *o;

  if (rnd(4) == 0) {
    o = json_object();
    for (unsigned k = rnd(4); k > 0; k--)
      json_object_set_new(o, fuzz_keys[rnd(4)], json_string(words[rnd(8)]));
    return o;
  }
  o = gen_schema(0);
  if (!json_is_object(o)) {
    json_decref(o);
    o = json_object();
  }
  if (rnd(2)) {
    json_t *defs = json_object();
    json_object_set_new(defs, "d0", gen_schema(1));
    json_object_set_new(defs, "d1", gen_schema(1));
    json_object_set_new(defs, "d2", gen_schema(1));
    json_object_set_new(o, "definitions", defs);
  }
  return o;
}

static void test_fuzz(void **state) {
  int compiled = 0, failed = 0, passed = 0, rejected = 0;

  (void)state;
  rng_state = 0x9E3779B97F4A7C15ull;
  for (int i = 0; i < 4000; i++) {
    json_t *js = gen_root();
    ice__schema_t *s = NULL;
    ice__err_t err = {0};

    if (ice__schema_compile(js, &s, &err) != 0) {
      assert_null(s);
      assert_true(err.msg[0] != '\0');
      failed++;
      json_decref(js);
      continue;
    }
    compiled++;
    /* The schema JSON may go away: the compiled form owns its data. */
    json_decref(js);
    for (int k = 0; k < 8; k++) {
      json_t *v = gen_value(0);
      memset(&err, 0, sizeof(err));
      if (ice__schema_check(s, v, &err) == 0) {
        passed++;
      } else {
        assert_true(err.msg[0] == '$');
        assert_non_null(strstr(err.msg, ": "));
        rejected++;
      }
      json_decref(v);
    }
    ice__schema_free(s);
  }
  /* The generator must exercise every outcome to be worth anything. */
  assert_true(compiled > 500);
  assert_true(failed > 200);
  assert_true(passed > 500);
  assert_true(rejected > 500);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_simple_form),
      cmocka_unit_test(test_simple_long_words),
      cmocka_unit_test(test_simple_compile_errors),
      cmocka_unit_test(test_detect_type_field_named_type),
      cmocka_unit_test(test_detect_json_schema),
      cmocka_unit_test(test_type),
      cmocka_unit_test(test_properties_required),
      cmocka_unit_test(test_additional_properties),
      cmocka_unit_test(test_items),
      cmocka_unit_test(test_enum_const),
      cmocka_unit_test(test_numbers),
      cmocka_unit_test(test_string_lengths),
      cmocka_unit_test(test_array_object_counts),
      cmocka_unit_test(test_pattern),
      cmocka_unit_test(test_pattern_too_big),
      cmocka_unit_test(test_all_any_one_not),
      cmocka_unit_test(test_ref),
      cmocka_unit_test(test_ref_errors),
      cmocka_unit_test(test_ref_long_token),
      cmocka_unit_test(test_keyword_errors),
      cmocka_unit_test(test_root_errors),
      cmocka_unit_test(test_paths),
      cmocka_unit_test(test_err_untouched_on_success),
      cmocka_unit_test(test_depth_limit),
      cmocka_unit_test(test_check_depth_limit),
      cmocka_unit_test(test_long_ref_chain),
      cmocka_unit_test(test_long_chain_through_cache),
      cmocka_unit_test(test_fuzz),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
