/* The expression language of SPEC §3.2, second half: ice__expr_eval walks
 * the AST of expr_parse.c over borrowed JSON values, so resolving a path
 * allocates nothing and only results are new values; and the value rules
 * (truthiness, deep equality) shared with the rest of the engine. */
#include "casemap.h"
#include "expr_ast.h"
#include "template.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_digit(int c) {
  return c >= '0' && c <= '9';
}

static const char *type_name(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT:
    return "object";
  case JSON_ARRAY:
    return "list";
  case JSON_STRING:
    return "string";
  case JSON_INTEGER:
    return "integer";
  case JSON_REAL:
    return "number";
  case JSON_TRUE:
  case JSON_FALSE:
    return "boolean";
  default:
    return "null";
  }
}

/* ---- Values ---- */

int ice__json_truthy(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT:
    return json_object_size(v) != 0;
  case JSON_ARRAY:
    return json_array_size(v) != 0;
  case JSON_STRING:
    return json_string_length(v) != 0;
  case JSON_INTEGER:
    return json_integer_value(v) != 0;
  case JSON_REAL:
    return json_real_value(v) != 0.0;
  case JSON_TRUE:
    return 1;
  default:
    return 0;
  }
}

/* Exact comparison of an integer with a double: -1, 0 or 1. */
static int cmp_int_real(json_int_t i, double r) {
  double fl;
  json_int_t li;

  if (r < -9223372036854775808.0)
    return 1;
  if (r >= 9223372036854775808.0)
    return -1;
  fl = floor(r);
  li = (json_int_t)fl;
  if (i != li)
    return i < li ? -1 : 1;
  return r > fl ? -1 : 0;
}

static int cmp_numbers(const json_t *a, const json_t *b) {
  if (json_is_integer(a) && json_is_integer(b)) {
    json_int_t x = json_integer_value(a), y = json_integer_value(b);
    return x < y ? -1 : x > y;
  }
  if (json_is_integer(a))
    return cmp_int_real(json_integer_value(a), json_real_value(b));
  if (json_is_integer(b))
    return -cmp_int_real(json_integer_value(b), json_real_value(a));
  return json_real_value(a) < json_real_value(b)
             ? -1
             : json_real_value(a) > json_real_value(b);
}

static int cmp_strings(const json_t *a, const json_t *b) {
  size_t la = json_string_length(a), lb = json_string_length(b);
  int c = memcmp(json_string_value(a), json_string_value(b), la < lb ? la : lb);

  if (c != 0)
    return c < 0 ? -1 : 1;
  return la < lb ? -1 : la > lb;
}

int ice__json_equal(const json_t *a, const json_t *b) {
  const char *key;
  size_t klen;
  json_t *va;

  if (a == b)
    return 1;
  if (a == NULL || b == NULL)
    return 0;
  if (json_is_number(a) && json_is_number(b))
    return cmp_numbers(a, b) == 0;
  if (json_typeof(a) != json_typeof(b))
    return 0;
  switch (json_typeof(a)) {
  case JSON_STRING:
    return cmp_strings(a, b) == 0;
  case JSON_ARRAY:
    if (json_array_size(a) != json_array_size(b))
      return 0;
    for (size_t i = 0; i < json_array_size(a); i++) {
      if (!ice__json_equal(json_array_get(a, i), json_array_get(b, i)))
        return 0;
    }
    return 1;
  case JSON_OBJECT:
    if (json_object_size(a) != json_object_size(b))
      return 0;
    json_object_keylen_foreach((json_t *)a, key, klen, va) {
      if (!ice__json_equal(va, json_object_getn(b, key, klen)))
        return 0;
    }
    return 1;
  default:
    return 1; /* true, false, null: same type is same value */
  }
}

/* ---- Evaluation ---- */

/* eval() returns OK with *out a new reference, UNDEF when the value is an
 * unresolved path (c->undef names it), or ERR with c->err filled. */
enum { ERR = -1, OK = 0, UNDEF = 1 };

typedef struct {
  ice__lookup_fn lookup;
  void *data;
  ice__err_t *err;
  const char *src;
  const node *undef;
} ctx_t;

static int eval(const node *n, ctx_t *c, json_t **out);

static int rt_error(ctx_t *c, const node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int rt_error(ctx_t *c, const node *n, const char *fmt, ...) {
  va_list ap;
  char msg[sizeof(c->err->msg)];

  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  ice__err_set(c->err, ICE__KIND_EXPRESSION, ice__expr_col(c->src, n->off),
               "%s", msg);
  return ERR;
}

static int undef_error(ctx_t *c) {
  const node *p = c->undef;

  ice__err_set(c->err, ICE__KIND_EXPRESSION, ice__expr_col(c->src, p->start),
               "undefined: %.*s", (int)(p->end - p->start), c->src + p->start);
  return ERR;
}

/* eval() for operands that must be defined. */
static int eval_value(const node *n, ctx_t *c, json_t **out) {
  int r = eval(n, c, out);

  return r == UNDEF ? undef_error(c) : r;
}

static int oom_error(ctx_t *c, const node *n) {
  return rt_error(c, n, "out of memory");
}

static int new_value(ctx_t *c, const node *n, json_t *v, json_t **out) {
  if (v == NULL)
    return oom_error(c, n);
  *out = v;
  return OK;
}

static int new_real(ctx_t *c, const node *n, double d, json_t **out) {
  if (!isfinite(d))
    return rt_error(c, n, "number out of range");
  return new_value(c, n, json_real(d), out);
}

static int new_bool(bool b, json_t **out) {
  *out = b ? json_true() : json_false();
  return OK;
}

static double num_value(const json_t *v) {
  return json_is_integer(v) ? (double)json_integer_value(v)
                            : json_real_value(v);
}

/* One path segment: the child of v, or NULL when it does not resolve. */
static const json_t *step_key(const json_t *v, const char *key, size_t len) {
  return json_is_object(v) ? json_object_getn(v, key, len) : NULL;
}

static const json_t *step_index(const json_t *v, json_int_t i, const char *key,
                                size_t len) {
  if (json_is_object(v))
    return json_object_getn(v, key, len);
  if (!json_is_array(v))
    return NULL;
  if (i < 0)
    i += (json_int_t)json_array_size(v);
  if (i < 0 || (size_t)i >= json_array_size(v))
    return NULL;
  return json_array_get(v, (size_t)i);
}

static int eval_path(const node *n, ctx_t *c, json_t **out) {
  json_t *hold = NULL;
  const json_t *v;
  int r;

  if (n->name != NULL) {
    v = c->lookup != NULL ? c->lookup(c->data, n->name, n->name_len) : NULL;
  } else {
    r = eval(n->kids[0], c, &hold);
    if (r != OK)
      return r;
    v = hold;
  }
  for (size_t i = 0; i < n->nsegs && v != NULL; i++) {
    const seg_t *s = &n->segs[i];
    json_t *k;
    char buf[32];

    switch (s->kind) {
    case SEG_KEY:
      v = step_key(v, json_string_value(s->key), json_string_length(s->key));
      break;
    case SEG_INDEX:
      v = step_index(v, s->index, json_string_value(s->key),
                     json_string_length(s->key));
      break;
    default:
      r = eval_value(s->expr, c, &k);
      if (r != OK) {
        json_decref(hold);
        return r;
      }
      if (json_is_string(k)) {
        v = step_key(v, json_string_value(k), json_string_length(k));
      } else if (json_is_integer(k)) {
        int len = snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
                           json_integer_value(k));
        v = step_index(v, json_integer_value(k), buf, (size_t)len);
      } else {
        r = rt_error(c, s->expr, "cannot index with %s", type_name(k));
        json_decref(k);
        json_decref(hold);
        return r;
      }
      json_decref(k);
      break;
    }
  }
  if (v == NULL) {
    json_decref(hold);
    c->undef = n;
    return UNDEF;
  }
  *out = json_incref((json_t *)v);
  json_decref(hold);
  return OK;
}

static int eval_container(const node *n, ctx_t *c, json_t **out) {
  json_t *res = n->kind == N_LIST ? json_array() : json_object();

  if (res == NULL)
    return oom_error(c, n);
  for (size_t i = 0; i < n->nkids; i++) {
    json_t *v;
    int r = eval_value(n->kids[i], c, &v), fail;

    if (r != OK) {
      json_decref(res);
      return r;
    }
    if (n->kind == N_LIST)
      fail = json_array_append_new(res, v);
    else
      fail = json_object_setn_new(res, json_string_value(n->keys[i]),
                                  json_string_length(n->keys[i]), v);
    if (fail) {
      json_decref(res);
      return oom_error(c, n);
    }
  }
  *out = res;
  return OK;
}

/* Python's floor division and modulo on doubles (CPython float_divmod). */
static void real_divmod(double a, double b, double *div, double *mod) {
  double m = fmod(a, b), d = (a - m) / b, fd;

  if (m != 0.0) {
    if ((b < 0) != (m < 0)) {
      m += b;
      d -= 1.0;
    }
  } else {
    m = copysign(0.0, b);
  }
  if (d != 0.0) {
    fd = floor(d);
    if (d - fd > 0.5)
      fd += 1.0;
  } else {
    fd = copysign(0.0, a / b);
  }
  *div = fd;
  *mod = m;
}

static const char *const bin_verbs[] = {
    "add", "subtract", "multiply", "divide", "floor-divide", "take modulo of",
};

static int arith(const node *n, const json_t *a, const json_t *b, ctx_t *c,
                 json_t **out) {
  int op = n->op;

  if (op == OP_ADD && json_is_string(a) && json_is_string(b)) {
    size_t la = json_string_length(a), lb = json_string_length(b);
    char *buf = ice__malloc(la + lb);
    json_t *s;

    if (buf == NULL)
      return oom_error(c, n);
    memcpy(buf, json_string_value(a), la);
    memcpy(buf + la, json_string_value(b), lb);
    s = json_stringn_nocheck(buf, la + lb);
    ice__free(buf);
    return new_value(c, n, s, out);
  }
  if (op == OP_ADD && json_is_array(a) && json_is_array(b)) {
    json_t *l = json_array();

    if (l == NULL || json_array_extend(l, (json_t *)a) ||
        json_array_extend(l, (json_t *)b)) {
      json_decref(l);
      return oom_error(c, n);
    }
    *out = l;
    return OK;
  }
  if (!json_is_number(a) || !json_is_number(b))
    return rt_error(c, n, "cannot %s %s and %s", bin_verbs[op], type_name(a),
                    type_name(b));
  if (op == OP_DIV) {
    if (num_value(b) == 0.0)
      return rt_error(c, n, "division by zero");
    return new_real(c, n, num_value(a) / num_value(b), out);
  }
  if (json_is_integer(a) && json_is_integer(b)) {
    json_int_t x = json_integer_value(a), y = json_integer_value(b), z = 0;
    bool over = false;

    switch (op) {
    case OP_ADD:
      over = __builtin_add_overflow(x, y, &z);
      break;
    case OP_SUB:
      over = __builtin_sub_overflow(x, y, &z);
      break;
    case OP_MUL:
      over = __builtin_mul_overflow(x, y, &z);
      break;
    default:
      if (y == 0)
        return rt_error(c, n, "division by zero");
      if (y == -1) {
        /* INT64_MIN / -1 traps in C; the remainder is always 0. */
        if (op == OP_MOD)
          z = 0;
        else
          over = __builtin_sub_overflow((json_int_t)0, x, &z);
        break;
      }
      z = op == OP_FDIV ? x / y : x % y;
      if (x % y != 0 && ((x < 0) != (y < 0)))
        z = op == OP_FDIV ? z - 1 : z + y;
      break;
    }
    if (over)
      return rt_error(c, n, "integer overflow");
    return new_value(c, n, json_integer(z), out);
  } else {
    double x = num_value(a), y = num_value(b), d, m;

    switch (op) {
    case OP_ADD:
      return new_real(c, n, x + y, out);
    case OP_SUB:
      return new_real(c, n, x - y, out);
    case OP_MUL:
      return new_real(c, n, x * y, out);
    default:
      if (y == 0.0)
        return rt_error(c, n, "division by zero");
      real_divmod(x, y, &d, &m);
      return new_real(c, n, op == OP_FDIV ? d : m, out);
    }
  }
}

static int eval_bin(const node *n, ctx_t *c, json_t **out) {
  json_t *a, *b;
  int r = eval_value(n->kids[0], c, &a);

  if (r != OK)
    return r;
  r = eval_value(n->kids[1], c, &b);
  if (r != OK) {
    json_decref(a);
    return r;
  }
  r = arith(n, a, b, c, out);
  json_decref(a);
  json_decref(b);
  return r;
}

/* Ordering for `<` and min/max: two numbers or two strings. */
static int order(ctx_t *c, const node *n, const json_t *a, const json_t *b,
                 int *res) {
  if (json_is_number(a) && json_is_number(b))
    *res = cmp_numbers(a, b);
  else if (json_is_string(a) && json_is_string(b))
    *res = cmp_strings(a, b);
  else
    return rt_error(c, n, "cannot compare %s and %s", type_name(a),
                    type_name(b));
  return OK;
}

static bool has_substring(const json_t *hay, const json_t *needle) {
  const char *h = json_string_value(hay), *s = json_string_value(needle);
  size_t hl = json_string_length(hay), nl = json_string_length(needle);

  if (nl == 0)
    return true;
  for (size_t i = 0; i + nl <= hl; i++) {
    if (h[i] == s[0] && memcmp(h + i, s, nl) == 0)
      return true;
  }
  return false;
}

static int contains(ctx_t *c, const node *n, const json_t *item,
                    const json_t *in, bool *res) {
  switch (json_typeof(in)) {
  case JSON_ARRAY:
    *res = false;
    for (size_t i = 0; i < json_array_size(in) && !*res; i++)
      *res = ice__json_equal(item, json_array_get(in, i));
    return OK;
  case JSON_OBJECT:
    *res = json_is_string(item) &&
           json_object_getn(in, json_string_value(item),
                            json_string_length(item)) != NULL;
    return OK;
  case JSON_STRING:
    if (!json_is_string(item))
      return rt_error(c, n, "cannot test whether %s is in a string",
                      type_name(item));
    *res = has_substring(in, item);
    return OK;
  default:
    return rt_error(c, n, "cannot test membership in %s", type_name(in));
  }
}

static int compare(ctx_t *c, const node *n, int op, const json_t *a,
                   const json_t *b, bool *res) {
  int o;

  switch (op) {
  case C_EQ:
    *res = ice__json_equal(a, b);
    return OK;
  case C_NE:
    *res = !ice__json_equal(a, b);
    return OK;
  case C_IN:
  case C_NOTIN:
    if (contains(c, n, a, b, res) != OK)
      return ERR;
    if (op == C_NOTIN)
      *res = !*res;
    return OK;
  default:
    if (order(c, n, a, b, &o) != OK)
      return ERR;
    *res = op == C_LT   ? o < 0
           : op == C_LE ? o <= 0
           : op == C_GT ? o > 0
                        : o >= 0;
    return OK;
  }
}

static int eval_cmp(const node *n, ctx_t *c, json_t **out) {
  json_t *a, *b;
  bool res = true;
  int r = eval_value(n->kids[0], c, &a);

  if (r != OK)
    return r;
  for (size_t i = 1; i < n->nkids && res; i++) {
    r = eval_value(n->kids[i], c, &b);
    if (r != OK) {
      json_decref(a);
      return r;
    }
    r = compare(c, n, n->ops[i - 1], a, b, &res);
    json_decref(a);
    a = b;
    if (r != OK) {
      json_decref(a);
      return r;
    }
  }
  json_decref(a);
  return new_bool(res, out);
}

static int fn_len(ctx_t *c, const node *n, const json_t *v, json_t **out) {
  size_t len = 0;

  if (json_is_string(v)) {
    const char *s = json_string_value(v);
    for (size_t i = 0; i < json_string_length(v); i++)
      len += ((unsigned char)s[i] & 0xC0) != 0x80;
  } else if (json_is_array(v)) {
    len = json_array_size(v);
  } else if (json_is_object(v)) {
    len = json_object_size(v);
  } else {
    return rt_error(c, n, "len() of %s", type_name(v));
  }
  return new_value(c, n, json_integer((json_int_t)len), out);
}

/* Leading and trailing ASCII whitespace is ignored, as in Python. */
static void trim(const char **s, size_t *len) {
  while (*len > 0 && strchr(" \t\n\r\f\v", (*s)[0]) != NULL && (*s)[0])
    (*s)++, (*len)--;
  while (*len > 0 && strchr(" \t\n\r\f\v", (*s)[*len - 1]) != NULL &&
         (*s)[*len - 1])
    (*len)--;
}

static int fn_int(ctx_t *c, const node *n, const json_t *v, json_t **out) {
  if (json_is_integer(v))
    return new_value(c, n, json_incref((json_t *)v), out);
  if (json_is_real(v)) {
    double d = json_real_value(v);
    if (!(d > -9223372036854775809.0 && d < 9223372036854775808.0))
      return rt_error(c, n, "integer overflow");
    return new_value(c, n, json_integer((json_int_t)d), out);
  }
  if (json_is_boolean(v))
    return new_value(c, n, json_integer(json_is_true(v)), out);
  if (json_is_string(v)) {
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    char buf[32], *end;
    long long x;

    trim(&s, &len);
    if (len == 0 || len >= sizeof(buf))
      goto bad;
    memcpy(buf, s, len);
    buf[len] = '\0';
    /* strtoll would accept inner spaces after the sign; Python does not. */
    if (!is_digit(buf[buf[0] == '-' || buf[0] == '+']))
      goto bad;
    errno = 0;
    x = strtoll(buf, &end, 10);
    if (*end != '\0')
      goto bad;
    if (errno == ERANGE)
      return rt_error(c, n, "integer overflow");
    return new_value(c, n, json_integer(x), out);
  bad:
    return rt_error(
        c, n, "int() of invalid string '%.*s'",
        (int)(json_string_length(v) > 60 ? 60 : json_string_length(v)),
        json_string_value(v));
  }
  return rt_error(c, n, "int() of %s", type_name(v));
}

static int fn_float(ctx_t *c, const node *n, const json_t *v, json_t **out) {
  if (json_is_number(v))
    return new_value(c, n, json_real(num_value(v)), out);
  if (json_is_boolean(v))
    return new_value(c, n, json_real(json_is_true(v) ? 1.0 : 0.0), out);
  if (json_is_string(v)) {
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    char buf[128], *end;
    double d;

    trim(&s, &len);
    if (len == 0 || len >= sizeof(buf))
      goto bad;
    memcpy(buf, s, len);
    buf[len] = '\0';
    d = strtod(buf, &end);
    if (*end != '\0')
      goto bad;
    if (!isfinite(d))
      return rt_error(c, n, "number out of range");
    return new_value(c, n, json_real(d), out);
  bad:
    return rt_error(
        c, n, "float() of invalid string '%.*s'",
        (int)(json_string_length(v) > 60 ? 60 : json_string_length(v)),
        json_string_value(v));
  }
  return rt_error(c, n, "float() of %s", type_name(v));
}

/* Decodes the UTF-8 character at s (n > 0 bytes left) into *cp; returns
 * its length, or 0 when the bytes there are not one. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
  size_t len;
  uint32_t c;

  if (s[0] < 0x80) {
    *cp = s[0];
    return 1;
  }
  if (s[0] >= 0xC2 && s[0] <= 0xDF) {
    len = 2;
    c = s[0] & 0x1F;
  } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
    len = 3;
    c = s[0] & 0x0F;
  } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
    len = 4;
    c = s[0] & 0x07;
  } else {
    return 0;
  }
  if (n < len)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    c = (c << 6) | (s[i] & 0x3F);
  }
  /* Overlong forms, surrogates and code points past U+10FFFF. */
  if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
      (c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF)
    return 0;
  *cp = c;
  return len;
}

static size_t utf8_encode(uint32_t c, char *out) {
  if (c < 0x80) {
    out[0] = (char)c;
    return 1;
  }
  if (c < 0x800) {
    out[0] = (char)(0xC0 | (c >> 6));
    out[1] = (char)(0x80 | (c & 0x3F));
    return 2;
  }
  if (c < 0x10000) {
    out[0] = (char)(0xE0 | (c >> 12));
    out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[2] = (char)(0x80 | (c & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (c >> 18));
  out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
  out[3] = (char)(0x80 | (c & 0x3F));
  return 4;
}

static int fn_case(ctx_t *c, const node *n, const json_t *v, json_t **out) {
  const unsigned char *in;
  size_t len, o = 0;
  int upper = n->op == F_UPPER;
  char *buf;
  json_t *s;

  if (!json_is_string(v))
    return rt_error(c, n, "%s() of %s", upper ? "upper" : "lower",
                    type_name(v));
  /* Unicode simple case mapping, code point by code point (casemap.c):
   * "ÉCOLE" -> "école". A mapping may change a character's length by a
   * byte either way (U+023A 'Ⱥ', 2 bytes, lowers to U+2C65, 3 bytes), so
   * the result gets room for 3/2 of the input. Bytes that are not UTF-8
   * are kept as they are. */
  in = (const unsigned char *)json_string_value(v);
  len = json_string_length(v);
  buf = ice__malloc(len + len / 2 + 4);
  if (buf == NULL)
    return oom_error(c, n);
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    size_t k = utf8_decode(in + i, len - i, &cp);
    if (k == 0) {
      buf[o++] = (char)in[i++];
      continue;
    }
    if (cp < 0x80) {
      if (upper && cp >= 'a' && cp <= 'z')
        cp -= 32;
      else if (!upper && cp >= 'A' && cp <= 'Z')
        cp += 32;
      buf[o++] = (char)cp;
    } else {
      o += utf8_encode(ice__case_map(cp, upper), buf + o);
    }
    i += k;
  }
  s = json_stringn_nocheck(buf, o);
  ice__free(buf);
  return new_value(c, n, s, out);
}

static int fn_abs(ctx_t *c, const node *n, const json_t *v, json_t **out) {
  if (json_is_integer(v)) {
    json_int_t x = json_integer_value(v);
    if (x == INT64_MIN)
      return rt_error(c, n, "integer overflow");
    return new_value(c, n, json_integer(x < 0 ? -x : x), out);
  }
  if (json_is_real(v))
    return new_value(c, n, json_real(fabs(json_real_value(v))), out);
  return rt_error(c, n, "abs() of %s", type_name(v));
}

/* round(x) gives an integer; round(x, n) keeps the type of x. Halves go
 * to the even neighbour, as in Python. */
static int fn_round(ctx_t *c, const node *n, const json_t *v, const json_t *nd,
                    json_t **out) {
  json_int_t digits;

  if (!json_is_number(v))
    return rt_error(c, n, "round() of %s", type_name(v));
  if (nd == NULL) {
    double d;

    if (json_is_integer(v))
      return new_value(c, n, json_incref((json_t *)v), out);
    d = rint(json_real_value(v));
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
      return rt_error(c, n, "integer overflow");
    return new_value(c, n, json_integer((json_int_t)d), out);
  }
  if (!json_is_integer(nd))
    return rt_error(c, n, "round() digits must be an integer, not %s",
                    type_name(nd));
  digits = json_integer_value(nd);
  if (json_is_integer(v)) {
    json_int_t x = json_integer_value(v), p = 1, q, r, z;

    if (digits >= 0)
      return new_value(c, n, json_incref((json_t *)v), out);
    if (digits < -18) {
      /* 10^19 does not fit: only |x| > 5e18 rounds away from 0. */
      if (digits == -19 &&
          (x > 5000000000000000000LL || x < -5000000000000000000LL))
        return rt_error(c, n, "integer overflow");
      return new_value(c, n, json_integer(0), out);
    }
    for (json_int_t i = 0; i < -digits; i++)
      p *= 10;
    q = x / p;
    r = x % p;
    if (r < 0)
      q -= 1, r += p;
    if (2 * r > p || (2 * r == p && (q & 1)))
      q += 1;
    if (__builtin_mul_overflow(q, p, &z))
      return rt_error(c, n, "integer overflow");
    return new_value(c, n, json_integer(z), out);
  } else {
    double x = json_real_value(v), res;

    if (digits > 323) {
      res = x;
    } else if (digits >= 0) {
      /* printf rounds the exact binary value correctly, like Python. */
      char buf[700];
      snprintf(buf, sizeof(buf), "%.*f", (int)digits, x);
      res = strtod(buf, NULL);
    } else if (digits < -308) {
      res = copysign(0.0, x);
    } else {
      double p = pow(10.0, (double)-digits);
      res = rint(x / p) * p;
    }
    return new_real(c, n, res, out);
  }
}

static int fn_minmax(ctx_t *c, const node *n, json_t **args, size_t nargs,
                     json_t **out) {
  const char *name = n->op == F_MIN ? "min" : "max";
  json_t *const *items = args;
  size_t count = nargs;
  json_t *best;

  if (nargs == 1) {
    if (!json_is_array(args[0]))
      return rt_error(c, n, "%s() of a single %s", name, type_name(args[0]));
    count = json_array_size(args[0]);
    if (count == 0)
      return rt_error(c, n, "%s() of an empty list", name);
    items = NULL;
  }
  best = items != NULL ? items[0] : json_array_get(args[0], 0);
  for (size_t i = 1; i < count; i++) {
    json_t *v = items != NULL ? items[i] : json_array_get(args[0], i);
    int o;

    if (order(c, n, v, best, &o) != OK)
      return ERR;
    if (n->op == F_MIN ? o < 0 : o > 0)
      best = v;
  }
  *out = json_incref(best);
  return OK;
}

static int call(const node *n, ctx_t *c, json_t **args, json_t **out) {
  char *text;
  json_t *s;

  switch (n->op) {
  case F_LEN:
    return fn_len(c, n, args[0], out);
  case F_STR:
    if (json_is_string(args[0]))
      return new_value(c, n, json_incref(args[0]), out);
    text = ice__json_text(args[0]);
    if (text == NULL)
      return oom_error(c, n);
    s = json_string_nocheck(text);
    ice__free(text);
    return new_value(c, n, s, out);
  case F_INT:
    return fn_int(c, n, args[0], out);
  case F_FLOAT:
    return fn_float(c, n, args[0], out);
  case F_LOWER:
  case F_UPPER:
    return fn_case(c, n, args[0], out);
  case F_ABS:
    return fn_abs(c, n, args[0], out);
  case F_ROUND:
    return fn_round(c, n, args[0], n->nkids > 1 ? args[1] : NULL, out);
  default:
    return fn_minmax(c, n, args, n->nkids, out);
  }
}

static int eval_call(const node *n, ctx_t *c, json_t **out) {
  json_t *small[4], **args = small;
  size_t got = 0;
  int r = OK;

  if (n->op == F_EXISTS) {
    json_t *v;

    r = eval(n->kids[0], c, &v);
    if (r == ERR)
      return r;
    if (r == OK)
      json_decref(v);
    return new_bool(r == OK, out);
  }
  if (n->nkids > ICE__ARRAY_SIZE(small)) {
    args = ice__malloc(n->nkids * sizeof(*args));
    if (args == NULL)
      return oom_error(c, n);
  }
  for (; got < n->nkids && r == OK; got++) {
    r = eval_value(n->kids[got], c, &args[got]);
    if (r != OK)
      break;
  }
  if (r == OK)
    r = call(n, c, args, out);
  for (size_t i = 0; i < got; i++)
    json_decref(args[i]);
  if (args != small)
    ice__free(args);
  return r;
}

static int eval(const node *n, ctx_t *c, json_t **out) {
  json_t *a;
  int r;

  switch (n->kind) {
  case N_LIT:
    *out = json_incref(n->lit);
    return OK;
  case N_LIST:
  case N_OBJECT:
    return eval_container(n, c, out);
  case N_PATH:
    return eval_path(n, c, out);
  case N_NOT:
    r = eval(n->kids[0], c, &a);
    if (r == ERR)
      return r;
    /* An undefined operand is falsy here, so `not x` is true. */
    if (r == UNDEF)
      return new_bool(true, out);
    r = ice__json_truthy(a);
    json_decref(a);
    return new_bool(!r, out);
  case N_NEG:
  case N_POS:
    r = eval_value(n->kids[0], c, &a);
    if (r != OK)
      return r;
    if (!json_is_number(a)) {
      r = rt_error(c, n, "cannot %s %s",
                   n->kind == N_NEG ? "negate" : "apply unary '+' to",
                   type_name(a));
    } else if (n->kind == N_POS) {
      *out = json_incref(a);
    } else if (json_is_integer(a)) {
      if (json_integer_value(a) == INT64_MIN)
        r = rt_error(c, n, "integer overflow");
      else
        r = new_value(c, n, json_integer(-json_integer_value(a)), out);
    } else {
      r = new_value(c, n, json_real(-json_real_value(a)), out);
    }
    json_decref(a);
    return r;
  case N_AND:
  case N_OR:
    /* Python semantics: the result is an operand, and an undefined left
     * operand counts as false instead of failing. */
    a = NULL;
    r = eval(n->kids[0], c, &a);
    if (r == ERR)
      return r;
    if ((r == OK && ice__json_truthy(a)) == (n->kind == N_OR)) {
      *out = a;
      return r;
    }
    json_decref(a);
    return eval(n->kids[1], c, out);
  case N_COND:
    r = eval_value(n->kids[2], c, &a);
    if (r != OK)
      return r;
    r = ice__json_truthy(a);
    json_decref(a);
    return eval(n->kids[r ? 0 : 1], c, out);
  case N_BIN:
    return eval_bin(n, c, out);
  case N_CMP:
    return eval_cmp(n, c, out);
  default:
    return eval_call(n, c, out);
  }
}

int ice__expr_eval(const ice__expr_t *e, ice__lookup_fn lookup, void *data,
                   json_t **out, ice__err_t *err) {
  ctx_t c;
  int r;

  c.lookup = lookup;
  c.data = data;
  c.err = err;
  c.src = e->src;
  c.undef = NULL;
  *out = NULL;
  r = eval_value(e->root, &c, out);
  if (r != OK) {
    *out = NULL;
    return -1;
  }
  return 0;
}
