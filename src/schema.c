/* Schemas (SPEC §2.3): a schema object is compiled once into a tree of
 * nodes (regexes compiled, limits parsed, $refs resolved to node pointers)
 * so that checking a value walks the tree without allocating. Two dialects
 * compile to the same nodes: a practical subset of JSON Schema, and the
 * simple form {field: "str"|"int"|...} of iceOS. */
#include "schema.h"

#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deeper schemas are rejected: they are never written by hand and would
 * let a hostile file exhaust the stack during compilation. */
#define MAX_DEPTH 64
/* A chain of $ref/allOf/anyOf/oneOf/not that never descends into the value
 * longer than this is surely a mistake; it also bounds the loop search. */
#define MAX_CHAIN 256
/* Recursive $refs make checking depth follow the value's depth rather than
 * the schema's, so checking has its own bound. */
#define MAX_CHECK_DEPTH 1000

enum {
  T_NULL = 1u << 0,
  T_BOOLEAN = 1u << 1,
  T_INTEGER = 1u << 2,
  T_NUMBER = 1u << 3,
  T_STRING = 1u << 4,
  T_ARRAY = 1u << 5,
  T_OBJECT = 1u << 6,
};

/* Order used when listing expected types in messages ("string or null"). */
static const struct {
  const char *name;
  unsigned bit;
} type_names[] = {
    {"string", T_STRING},   {"number", T_NUMBER}, {"integer", T_INTEGER},
    {"boolean", T_BOOLEAN}, {"object", T_OBJECT}, {"array", T_ARRAY},
    {"null", T_NULL},
};

/* A numeric limit keeps integers exact so that limits beyond 2^53 still
 * compare correctly against integer values. */
typedef struct {
  int set;
  int is_int;
  json_int_t i;
  double d;
} num_t;

typedef struct node_s node_t;

typedef struct {
  char *name;
  node_t *schema;
} prop_t;

typedef struct {
  node_t **v;
  size_t n;
} list_t;

struct node_s {
  const json_t *src; /* the schema JSON it came from, to share $ref targets */
  unsigned types;    /* 0: any type */
  int never;         /* the schema `false` */
  node_t *ref;
  char *ref_str;
  json_t *enum_vals;
  json_t *const_val;
  num_t min, max, xmin, xmax;
  /* Unset minimums are 0 and unset maximums SIZE_MAX: no flags needed. */
  size_t min_len, max_len, min_items, max_items, min_props, max_props;
  int unique;
  int has_re;
  regex_t re;
  char *pattern;
  prop_t *props; /* sorted by name for bsearch */
  size_t nprops;
  char **required;
  size_t nrequired;
  node_t *additional; /* NULL: extra fields are allowed */
  node_t *items;
  node_t **tuple;
  size_t ntuple;
  node_t *additional_items;
  list_t all_of, any_of, one_of;
  node_t *not_;
  int mark; /* loop search: 0 new, 1 on the stack, 2 done */
};

struct ice__schema_s {
  node_t *root;
  node_t **nodes; /* every node, owned here; sub-node pointers borrow */
  size_t n, cap;
};

/* A path as a chain of stack frames: built for free while descending and
 * only turned into text when an error is reported. */
typedef struct path_s {
  const struct path_s *up;
  const char *key; /* NULL: an array index */
  size_t index;
  int raw; /* key is a whole JSON pointer ("#/definitions/x") */
} path_t;

typedef struct {
  ice__schema_t *s;
  json_t *root;
  ice__err_t *err;
} cctx_t;

/* ---- text helpers ---- */

typedef struct {
  char *buf;
  size_t cap, len;
} sbuf_t;

static void sb_put(sbuf_t *b, const char *s, size_t n) {
  for (size_t i = 0; i < n && b->len + 1 < b->cap; i++)
    b->buf[b->len++] = s[i];
  b->buf[b->len] = '\0';
}

static void sb_puts(sbuf_t *b, const char *s) {
  sb_put(b, s, strlen(s));
}

static int is_ident(const char *s) {
  if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
    return 0;
  for (s++; *s; s++) {
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
          (*s >= '0' && *s <= '9') || *s == '_'))
      return 0;
  }
  return 1;
}

/* "$.a.b[2]" for values; odd keys are quoted: $["a b"]. */
static void fmt_value_path(sbuf_t *b, const path_t *p) {
  char num[32];

  if (p == NULL) {
    sb_puts(b, "$");
    return;
  }
  fmt_value_path(b, p->up);
  if (p->key == NULL) {
    snprintf(num, sizeof(num), "[%zu]", p->index);
    sb_puts(b, num);
  } else if (is_ident(p->key)) {
    sb_puts(b, ".");
    sb_puts(b, p->key);
  } else {
    sb_puts(b, "[\"");
    for (const char *k = p->key; *k; k++) {
      if (*k == '"' || *k == '\\')
        sb_puts(b, "\\");
      sb_put(b, k, 1);
    }
    sb_puts(b, "\"]");
  }
}

/* "#/properties/a" for places in a schema (JSON pointer, RFC 6901). */
static void fmt_pointer(sbuf_t *b, const path_t *p) {
  char num[32];

  if (p == NULL) {
    sb_puts(b, "#");
    return;
  }
  if (p->raw) {
    sb_puts(b, p->key);
    return;
  }
  fmt_pointer(b, p->up);
  if (p->key == NULL) {
    snprintf(num, sizeof(num), "/%zu", p->index);
    sb_puts(b, num);
    return;
  }
  sb_puts(b, "/");
  for (const char *k = p->key; *k; k++) {
    if (*k == '~')
      sb_puts(b, "~0");
    else if (*k == '/')
      sb_puts(b, "~1");
    else
      sb_put(b, k, 1);
  }
}

/* Shortest text that reads back as the same double, so 0.1 is "0.1". */
static void fmt_double(char *buf, size_t cap, double d) {
  snprintf(buf, cap, "%.15g", d);
  if (strtod(buf, NULL) != d)
    snprintf(buf, cap, "%.17g", d);
}

static void fmt_num_value(char *buf, size_t cap, const json_t *v) {
  if (json_is_integer(v))
    snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
  else
    fmt_double(buf, cap, json_real_value(v));
}

static void fmt_limit(char *buf, size_t cap, const num_t *l) {
  if (l->is_int)
    snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, l->i);
  else
    fmt_double(buf, cap, l->d);
}

/* ---- errors ---- */

/* A check failure. err == NULL means the caller only wants a yes/no (the
 * branches of anyOf/oneOf/not), so nothing is formatted. */
static int fail(ice__err_t *err, const path_t *p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(ice__err_t *err, const path_t *p, const char *fmt, ...) {
  char path[200], msg[300];
  sbuf_t b = {path, sizeof(path), 0};
  va_list ap;

  if (err == NULL)
    return -1;
  path[0] = '\0';
  fmt_value_path(&b, p);
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  return ice__err_set(err, ICE__KIND_NONE, 0, "%s: %s", path, msg);
}

/* A compile error; problems below the root say where they are. */
static int cerr(cctx_t *c, const path_t *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int cerr(cctx_t *c, const path_t *where, const char *fmt, ...) {
  char at[200], msg[300];
  sbuf_t b = {at, sizeof(at), 0};
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (where == NULL)
    return ice__err_set(c->err, ICE__KIND_NONE, 0, "%s", msg);
  at[0] = '\0';
  fmt_pointer(&b, where);
  return ice__err_set(c->err, ICE__KIND_NONE, 0, "%s (at %s)", msg, at);
}

/* ---- nodes ---- */

static void node_free(node_t *n) {
  for (size_t i = 0; i < n->nprops; i++)
    ice__free(n->props[i].name);
  ice__free(n->props);
  for (size_t i = 0; i < n->nrequired; i++)
    ice__free(n->required[i]);
  ice__free(n->required);
  ice__free(n->tuple);
  ice__free(n->all_of.v);
  ice__free(n->any_of.v);
  ice__free(n->one_of.v);
  json_decref(n->enum_vals);
  json_decref(n->const_val);
  if (n->has_re)
    regfree(&n->re);
  ice__free(n->pattern);
  ice__free(n->ref_str);
  ice__free(n);
}

void ice__schema_free(ice__schema_t *s) {
  if (s == NULL)
    return;
  for (size_t i = 0; i < s->n; i++)
    node_free(s->nodes[i]);
  ice__free(s->nodes);
  ice__free(s);
}

static node_t *new_node(cctx_t *c, const json_t *src) {
  ice__schema_t *s = c->s;
  node_t *n;

  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 16;
    node_t **v = ice__realloc(s->nodes, cap * sizeof(*v));
    if (v == NULL) {
      cerr(c, NULL, "out of memory");
      return NULL;
    }
    s->nodes = v;
    s->cap = cap;
  }
  n = ice__calloc(1, sizeof(*n));
  if (n == NULL) {
    cerr(c, NULL, "out of memory");
    return NULL;
  }
  n->src = src;
  n->max_len = n->max_items = n->max_props = SIZE_MAX;
  s->nodes[s->n++] = n;
  return n;
}

/* ---- compiling JSON Schema ---- */

static unsigned type_bit(const char *name) {
  for (size_t i = 0; i < ICE__ARRAY_SIZE(type_names); i++) {
    if (strcmp(type_names[i].name, name) == 0)
      return type_names[i].bit;
  }
  return 0;
}

static node_t *compile_sub(cctx_t *c, json_t *js, const path_t *where,
                           int depth);

static int get_num(cctx_t *c, json_t *o, const char *key, const path_t *w,
                   num_t *out) {
  json_t *v = json_object_get(o, key);

  if (v == NULL)
    return 0;
  if (!json_is_number(v))
    return cerr(c, w, "'%s' must be a number", key);
  out->set = 1;
  out->is_int = json_is_integer(v);
  out->i = out->is_int ? json_integer_value(v) : 0;
  out->d = json_number_value(v);
  return 0;
}

static int get_count(cctx_t *c, json_t *o, const char *key, const path_t *w,
                     size_t *out) {
  json_t *v = json_object_get(o, key);
  double d;

  if (v == NULL)
    return 0;
  /* 3.0 is accepted for 3, as JSON Schema allows. */
  d = json_number_value(v);
  if (!json_is_number(v) || d < 0 || d != floor(d) || d > 9e15)
    return cerr(c, w, "'%s' must be a non-negative integer", key);
  *out = json_is_integer(v) ? (size_t)json_integer_value(v) : (size_t)d;
  return 0;
}

static int compile_type(cctx_t *c, node_t *n, json_t *t, const path_t *w) {
  size_t i;
  json_t *e;

  if (json_is_string(t)) {
    n->types = type_bit(json_string_value(t));
    if (n->types == 0)
      return cerr(c, w, "unknown type '%s' in 'type'", json_string_value(t));
    return 0;
  }
  if (!json_is_array(t) || json_array_size(t) == 0)
    return cerr(c, w, "'type' must be a type name or a list of them");
  json_array_foreach(t, i, e) {
    unsigned bit = json_is_string(e) ? type_bit(json_string_value(e)) : 0;
    if (bit == 0) {
      if (!json_is_string(e))
        return cerr(c, w, "'type' must be a type name or a list of them");
      return cerr(c, w, "unknown type '%s' in 'type'", json_string_value(e));
    }
    n->types |= bit;
  }
  return 0;
}

static int prop_cmp(const void *a, const void *b) {
  return strcmp(((const prop_t *)a)->name, ((const prop_t *)b)->name);
}

static int compile_props(cctx_t *c, node_t *n, json_t *props, const path_t *w,
                         int depth) {
  path_t pw = {w, "properties", 0, 0};
  const char *key;
  json_t *sub;

  if (!json_is_object(props))
    return cerr(c, w, "'properties' must be an object");
  n->props = ice__calloc(json_object_size(props), sizeof(*n->props));
  if (n->props == NULL)
    return cerr(c, NULL, "out of memory");
  json_object_foreach(props, key, sub) {
    path_t kw = {&pw, key, 0, 0};
    prop_t *p = &n->props[n->nprops];
    p->name = ice__strdup(key);
    if (p->name == NULL)
      return cerr(c, NULL, "out of memory");
    n->nprops++;
    p->schema = compile_sub(c, sub, &kw, depth + 1);
    if (p->schema == NULL)
      return -1;
  }
  qsort(n->props, n->nprops, sizeof(*n->props), prop_cmp);
  return 0;
}

static int compile_required(cctx_t *c, node_t *n, json_t *req,
                            const path_t *w) {
  size_t i;
  json_t *e;

  if (!json_is_array(req))
    return cerr(c, w, "'required' must be an array of strings");
  json_array_foreach(req, i, e) {
    if (!json_is_string(e))
      return cerr(c, w, "'required' must be an array of strings");
  }
  n->required = ice__calloc(json_array_size(req), sizeof(*n->required));
  if (n->required == NULL)
    return cerr(c, NULL, "out of memory");
  json_array_foreach(req, i, e) {
    n->required[i] = ice__strdup(json_string_value(e));
    if (n->required[i] == NULL)
      return cerr(c, NULL, "out of memory");
    n->nrequired++;
  }
  return 0;
}

/* Compiles the schemas of an array keyword (allOf, items as a tuple...). */
static int compile_list(cctx_t *c, json_t *arr, const char *key, int nonempty,
                        const path_t *w, int depth, node_t ***out,
                        size_t *nout) {
  path_t kw = {w, key, 0, 0};
  size_t i;
  json_t *e;

  if (!json_is_array(arr) || (nonempty && json_array_size(arr) == 0))
    return cerr(c, w, "'%s' must be a non-empty array of schemas", key);
  *out = ice__calloc(json_array_size(arr), sizeof(**out));
  if (*out == NULL)
    return cerr(c, NULL, "out of memory");
  json_array_foreach(arr, i, e) {
    path_t iw = {&kw, NULL, i, 0};
    (*out)[i] = compile_sub(c, e, &iw, depth + 1);
    if ((*out)[i] == NULL)
      return -1;
    *nout = i + 1;
  }
  return 0;
}

/* POSIX ERE has no \d, and glibc would silently read it as a literal 'd';
 * since JSON Schema patterns use it all the time it is rewritten as
 * [0-9] (and \D as [^0-9]). Everything else is passed to regcomp as is. */
static char *translate_pattern(const char *p) {
  size_t n = strlen(p), o = 0;
  char *out = ice__malloc(3 * n + 1);
  int in_bracket = 0;

  if (out == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    char ch = p[i];
    if (in_bracket) {
      if (ch == '[' && i + 1 < n &&
          (p[i + 1] == ':' || p[i + 1] == '.' || p[i + 1] == '=')) {
        /* [:alpha:] and friends contain a ']' that does not close. */
        char end = p[i + 1];
        const char *close = NULL;
        for (size_t j = i + 2; j + 1 < n; j++) {
          if (p[j] == end && p[j + 1] == ']') {
            close = p + j;
            break;
          }
        }
        if (close != NULL) {
          size_t len = (size_t)(close - (p + i)) + 2;
          memcpy(out + o, p + i, len);
          o += len;
          i += len - 1;
          continue;
        }
      } else if (ch == '\\' && i + 1 < n && p[i + 1] == 'd') {
        memcpy(out + o, "0-9", 3);
        o += 3;
        i++;
        continue;
      } else if (ch == ']') {
        in_bracket = 0;
      }
      out[o++] = ch;
      continue;
    }
    if (ch == '\\' && i + 1 < n) {
      if (p[i + 1] == 'd' || p[i + 1] == 'D') {
        const char *rep = p[i + 1] == 'd' ? "[0-9]" : "[^0-9]";
        memcpy(out + o, rep, strlen(rep));
        o += strlen(rep);
      } else {
        out[o++] = ch;
        out[o++] = p[i + 1];
      }
      i++;
      continue;
    }
    out[o++] = ch;
    if (ch == '[') {
      in_bracket = 1;
      /* A leading '^' negates and a ']' right after is a literal. */
      if (i + 1 < n && p[i + 1] == '^')
        out[o++] = p[++i];
      if (i + 1 < n && p[i + 1] == ']')
        out[o++] = p[++i];
    }
  }
  out[o] = '\0';
  return out;
}

/* glibc's regcomp builds a tree in which a repetition is copies of what it
 * repeats (X+ is X X*, X{n,m} m copies of X, nested for each level), on
 * recursion as deep as the groups, and computes each node's epsilon
 * closure: x{1,32767} took 8 GB and 18 s, a run of + signs 4 GB, 20,000
 * nested groups overflowed the stack, (a|||...|)+ with 500 empty
 * alternatives took 98 s, -********************+* 3.7 s (all found by
 * fuzz/fuzz_schema). So a pattern is checked first, and rewritten in
 * place:
 * - a quantifier may not follow a quantifier, except one '?', ECMA-262's
 *   lazy mark, which is dropped (it changes what a match captures, not
 *   whether it matches): x** and x+*? are errors there too;
 * - at most PATTERN_MAX_DEPTH nested groups;
 * - at most PATTERN_MAX_NODES nodes once repetitions are expanded, a copy
 *   of a group counting once more for each of its alternatives that may
 *   match the empty string (memory grows up to the square of the nodes:
 *   x{1,500}, about 1,000 nodes, takes 2 MB).
 * Returns NULL, or what is wrong. */
#define PATTERN_MAX_NODES 1024
#define PATTERN_MAX_DEPTH 32

typedef struct {
  double total;  /* nodes in the group so far */
  double last;   /* nodes of its last atom, with its repetitions */
  double eps;    /* alternatives inside that may match "", nested too */
  double leps;   /* the last atom's eps, when it is a group */
  int null_alts; /* its own closed alternatives that may match "" */
  int alt_null;  /* the current alternative may match "" so far */
  int pre_null;  /* alt_null before the last atom */
  int quant;     /* 0, or 1 after a quantifier, 2 after its lazy mark */
} pat_level_t;

static void pat_open(pat_level_t *g) {
  memset(g, 0, sizeof(*g));
  g->alt_null = g->pre_null = 1;
}

static void pat_atom(pat_level_t *g, double nodes, int null, double eps) {
  g->pre_null = g->alt_null;
  g->alt_null = g->alt_null && null;
  g->total += nodes;
  g->last = nodes;
  g->leps = eps;
  g->quant = 0;
}

/* The last atom repeated: k copies, at least min. */
static const char *pat_repeat(pat_level_t *g, double k, unsigned long min) {
  double copies = k > 1 ? (k - 1) * (1 + g->leps) : 0;

  if (g->quant != 0)
    return "a quantifier repeats a quantifier";
  g->quant = 1;
  if (min == 0)
    g->alt_null = g->pre_null;
  g->total += g->last * copies + k;
  g->last += g->last * copies + k;
  return NULL;
}

/* The length of the interval at p ("{n}", "{n,}", "{n,m}"), or 0. */
static size_t pat_interval(const char *p, unsigned long *lo,
                           unsigned long *hi) {
  char *end;

  if (p[1] < '0' || p[1] > '9')
    return 0;
  *lo = *hi = strtoul(p + 1, &end, 10);
  if (*end == ',') {
    end++;
    if (*end >= '0' && *end <= '9')
      *hi = strtoul(end, &end, 10);
    else
      *hi = *lo + 1;
  }
  return *end == '}' ? (size_t)(end - p) + 1 : 0;
}

/* The length of the bracket expression at p ('['), up to its ']'. */
static size_t pat_bracket(const char *p) {
  size_t i = 1;

  if (p[i] == '^')
    i++;
  if (p[i] == ']')
    i++;
  while (p[i] != '\0' && p[i] != ']') {
    if (p[i] == '[' &&
        (p[i + 1] == ':' || p[i + 1] == '.' || p[i + 1] == '=')) {
      const char *close = strchr(p + i + 2, p[i + 1]);
      if (close != NULL && close[1] == ']')
        i = (size_t)(close + 1 - p);
    }
    i++;
  }
  return p[i] == ']' ? i + 1 : i;
}

static const char *pattern_check(char *p) {
  pat_level_t lv[PATTERN_MAX_DEPTH + 1], *g = lv;
  const char *bad = NULL;
  size_t i = 0, o = 0, n;

  pat_open(g);
  while (p[i] != '\0' && bad == NULL) {
    unsigned long lo = 0, hi = 0;
    size_t iv = p[i] == '{' ? pat_interval(p + i, &lo, &hi) : 0;

    n = 1; /* bytes of p at i that are kept */
    if (p[i] == '(') {
      if (g == lv + PATTERN_MAX_DEPTH)
        return "too many nested groups";
      pat_open(++g);
    } else if (p[i] == ')' && g > lv) {
      double nodes = g->total + 1, eps = g->eps + g->alt_null;
      int null = g->null_alts > 0 || g->alt_null;
      g--;
      g->eps += eps;
      pat_atom(g, nodes, null, eps);
    } else if (p[i] == '|') {
      g->null_alts += g->alt_null;
      g->eps += g->alt_null;
      g->total += 1;
      g->last = g->leps = 0;
      g->alt_null = g->pre_null = 1;
      g->quant = 0;
    } else if (p[i] == '?' && g->quant == 1) {
      g->quant = 2; /* lazy: the same strings match */
      n = 0;
    } else if (p[i] == '*' || p[i] == '?' || p[i] == '+') {
      bad = pat_repeat(g, p[i] == '+' ? 2 : 1, p[i] == '+');
    } else if (iv > 0) {
      bad = pat_repeat(g, hi > lo ? (double)hi : (double)lo, lo);
      n = iv;
    } else {
      if (p[i] == '\\' && p[i + 1] != '\0')
        n = 2;
      else if (p[i] == '[')
        n = pat_bracket(p + i);
      else
        n = 1;
      pat_atom(g, 1, 0, 0);
    }
    if (g->total > PATTERN_MAX_NODES || g->last > PATTERN_MAX_NODES)
      bad = "too large once its repetitions are expanded";
    memmove(p + o, p + i, n);
    o += n;
    i += n > 0 ? n : 1;
  }
  p[o] = '\0';
  return bad;
}

static int compile_pattern(cctx_t *c, node_t *n, json_t *pat, const path_t *w) {
  const char *bad;
  char *ere;
  int rc;

  if (!json_is_string(pat) ||
      strlen(json_string_value(pat)) != json_string_length(pat))
    return cerr(c, w, "'pattern' must be a string");
  n->pattern = ice__strdup(json_string_value(pat));
  ere = translate_pattern(json_string_value(pat));
  if (n->pattern == NULL || ere == NULL) {
    ice__free(ere);
    return cerr(c, NULL, "out of memory");
  }
  bad = pattern_check(ere);
  if (bad != NULL) {
    ice__free(ere);
    return cerr(c, w, "invalid 'pattern' '%s': %s", n->pattern, bad);
  }
  rc = regcomp(&n->re, ere, REG_EXTENDED | REG_NOSUB);
  ice__free(ere);
  if (rc != 0) {
    char why[128];
    regerror(rc, &n->re, why, sizeof(why));
    return cerr(c, w, "invalid 'pattern' '%s': %s", n->pattern, why);
  }
  n->has_re = 1;
  return 0;
}

/* Follows a local JSON pointer ("#", "#/definitions/a", "#/$defs/a/b").
 * *oom is set when the scratch buffer cannot be had. */
static json_t *resolve_pointer(json_t *root, const char *ref, int *oom) {
  json_t *cur = root;
  const char *p = ref + 1;
  char *tok = ice__malloc(strlen(ref) + 1);

  if (tok == NULL) {
    *oom = 1;
    return NULL;
  }
  while (*p == '/' && cur != NULL) {
    size_t n = 0;
    for (p++; *p && *p != '/'; p++) {
      char ch = *p;
      if (ch == '~' && (p[1] == '0' || p[1] == '1')) {
        ch = p[1] == '0' ? '~' : '/';
        p++;
      }
      tok[n++] = ch;
    }
    tok[n] = '\0';
    if (json_is_object(cur)) {
      cur = json_object_get(cur, tok);
    } else if (json_is_array(cur)) {
      char *end;
      unsigned long idx = strtoul(tok, &end, 10);
      cur = (n == 0 || *end || tok[0] == '-') ? NULL : json_array_get(cur, idx);
    } else {
      cur = NULL;
    }
  }
  ice__free(tok);
  return *p == '\0' ? cur : NULL;
}

/* Schemas reached through $ref are shared: a target compiled once is found
 * again by its JSON, which is what makes recursive schemas finite. */
static node_t *get_or_compile(cctx_t *c, json_t *js, const path_t *where,
                              int depth) {
  for (size_t i = 0; i < c->s->n; i++) {
    if (c->s->nodes[i]->src == js)
      return c->s->nodes[i];
  }
  return compile_sub(c, js, where, depth);
}

static int compile_ref(cctx_t *c, node_t *n, json_t *ref, const path_t *w,
                       int depth) {
  const char *s;
  json_t *target;
  int oom = 0;

  if (!json_is_string(ref))
    return cerr(c, w, "'$ref' must be a string");
  s = json_string_value(ref);
  if (s[0] != '#' || (s[1] != '\0' && s[1] != '/'))
    return cerr(c, w,
                "unsupported $ref '%s' (only local refs such as "
                "'#/definitions/name' are supported)",
                s);
  n->ref_str = ice__strdup(s);
  if (n->ref_str == NULL)
    return cerr(c, NULL, "out of memory");
  target = resolve_pointer(c->root, s, &oom);
  if (oom)
    return cerr(c, NULL, "out of memory");
  if (target == NULL)
    return cerr(c, w, "$ref '%s' does not resolve", s);
  {
    path_t tw = {NULL, n->ref_str, 0, 1};
    n->ref = get_or_compile(c, target, &tw, depth + 1);
  }
  return n->ref == NULL ? -1 : 0;
}

static int compile_defs(cctx_t *c, json_t *o, const char *key, const path_t *w,
                        int depth) {
  json_t *defs = json_object_get(o, key), *sub;
  path_t kw = {w, key, 0, 0};
  const char *name;

  if (defs == NULL)
    return 0;
  if (!json_is_object(defs))
    return cerr(c, w, "'%s' must be an object", key);
  /* Compiled even when unused so that a broken definition is reported
   * when the workflow is validated, not when a $ref first meets it. */
  json_object_foreach(defs, name, sub) {
    path_t dw = {&kw, name, 0, 0};
    if (get_or_compile(c, sub, &dw, depth + 1) == NULL)
      return -1;
  }
  return 0;
}

/* Draft 4 wrote exclusiveMaximum as a boolean that modifies maximum;
 * later drafts as a number. Both are read. */
static int compile_exclusive(cctx_t *c, json_t *o, const char *key,
                             const path_t *w, num_t *plain, num_t *excl) {
  json_t *v = json_object_get(o, key);

  if (json_is_boolean(v)) {
    if (json_is_true(v) && plain->set) {
      *excl = *plain;
      plain->set = 0;
    }
    return 0;
  }
  if (v != NULL && !json_is_number(v))
    return cerr(c, w, "'%s' must be a number", key);
  return get_num(c, o, key, w, excl);
}

static int compile_keywords(cctx_t *c, node_t *n, json_t *o, const path_t *w,
                            int depth) {
  json_t *v;

  if (compile_defs(c, o, "definitions", w, depth) ||
      compile_defs(c, o, "$defs", w, depth))
    return -1;
  if ((v = json_object_get(o, "type")) && compile_type(c, n, v, w))
    return -1;
  if ((v = json_object_get(o, "enum"))) {
    if (!json_is_array(v))
      return cerr(c, w, "'enum' must be an array");
    if ((n->enum_vals = json_deep_copy(v)) == NULL)
      return cerr(c, NULL, "out of memory");
  }
  if ((v = json_object_get(o, "const")) &&
      (n->const_val = json_deep_copy(v)) == NULL)
    return cerr(c, NULL, "out of memory");
  if (get_num(c, o, "minimum", w, &n->min) ||
      get_num(c, o, "maximum", w, &n->max) ||
      compile_exclusive(c, o, "exclusiveMinimum", w, &n->min, &n->xmin) ||
      compile_exclusive(c, o, "exclusiveMaximum", w, &n->max, &n->xmax))
    return -1;
  if (get_count(c, o, "minLength", w, &n->min_len) ||
      get_count(c, o, "maxLength", w, &n->max_len) ||
      get_count(c, o, "minItems", w, &n->min_items) ||
      get_count(c, o, "maxItems", w, &n->max_items) ||
      get_count(c, o, "minProperties", w, &n->min_props) ||
      get_count(c, o, "maxProperties", w, &n->max_props))
    return -1;
  if ((v = json_object_get(o, "uniqueItems"))) {
    if (!json_is_boolean(v))
      return cerr(c, w, "'uniqueItems' must be a boolean");
    n->unique = json_is_true(v);
  }
  if ((v = json_object_get(o, "pattern")) && compile_pattern(c, n, v, w))
    return -1;
  if ((v = json_object_get(o, "properties")) &&
      compile_props(c, n, v, w, depth))
    return -1;
  if ((v = json_object_get(o, "required")) && compile_required(c, n, v, w))
    return -1;
  if ((v = json_object_get(o, "additionalProperties"))) {
    path_t kw = {w, "additionalProperties", 0, 0};
    if ((n->additional = compile_sub(c, v, &kw, depth + 1)) == NULL)
      return -1;
  }
  if ((v = json_object_get(o, "items"))) {
    path_t kw = {w, "items", 0, 0};
    if (json_is_array(v)) {
      if (compile_list(c, v, "items", 0, w, depth, &n->tuple, &n->ntuple))
        return -1;
    } else if ((n->items = compile_sub(c, v, &kw, depth + 1)) == NULL) {
      return -1;
    }
  }
  if ((v = json_object_get(o, "additionalItems"))) {
    path_t kw = {w, "additionalItems", 0, 0};
    if ((n->additional_items = compile_sub(c, v, &kw, depth + 1)) == NULL)
      return -1;
  }
  if ((v = json_object_get(o, "allOf")) &&
      compile_list(c, v, "allOf", 1, w, depth, &n->all_of.v, &n->all_of.n))
    return -1;
  if ((v = json_object_get(o, "anyOf")) &&
      compile_list(c, v, "anyOf", 1, w, depth, &n->any_of.v, &n->any_of.n))
    return -1;
  if ((v = json_object_get(o, "oneOf")) &&
      compile_list(c, v, "oneOf", 1, w, depth, &n->one_of.v, &n->one_of.n))
    return -1;
  if ((v = json_object_get(o, "not"))) {
    path_t kw = {w, "not", 0, 0};
    if ((n->not_ = compile_sub(c, v, &kw, depth + 1)) == NULL)
      return -1;
  }
  if ((v = json_object_get(o, "$ref")) && compile_ref(c, n, v, w, depth))
    return -1;
  return 0;
}

static node_t *compile_sub(cctx_t *c, json_t *js, const path_t *where,
                           int depth) {
  node_t *n;

  if (depth > MAX_DEPTH) {
    cerr(c, where, "schema is nested more than %d levels deep", MAX_DEPTH);
    return NULL;
  }
  if (!json_is_object(js) && !json_is_boolean(js)) {
    cerr(c, where, "a schema must be an object or a boolean");
    return NULL;
  }
  if ((n = new_node(c, js)) == NULL)
    return NULL;
  if (json_is_false(js))
    n->never = 1;
  if (json_is_object(js) && compile_keywords(c, n, js, where, depth))
    return NULL;
  return n;
}

/* ---- the simple form ---- */

static const struct {
  const char *word;
  unsigned types;
} simple_types[] = {
    {"str", T_STRING},   {"string", T_STRING},
    {"int", T_INTEGER},  {"integer", T_INTEGER},
    {"float", T_NUMBER}, {"number", T_NUMBER},
    {"bool", T_BOOLEAN}, {"boolean", T_BOOLEAN},
    {"dict", T_OBJECT},  {"object", T_OBJECT},
    {"list", T_ARRAY},   {"array", T_ARRAY},
    {"any", 0},
};

static node_t *compile_simple(cctx_t *c, json_t *o) {
  node_t *n = new_node(c, o);
  size_t nfields = json_object_size(o), i = 0;
  const char *key;
  json_t *word;

  if (n == NULL)
    return NULL;
  n->types = T_OBJECT;
  n->props = ice__calloc(nfields, sizeof(*n->props));
  n->required = ice__calloc(nfields, sizeof(*n->required));
  if (n->props == NULL || n->required == NULL ||
      (n->additional = new_node(c, NULL)) == NULL) {
    cerr(c, NULL, "out of memory");
    return NULL;
  }
  n->additional->never = 1;
  json_object_foreach(o, key, word) {
    size_t k;
    prop_t *p = &n->props[i];
    if (!json_is_string(word)) {
      cerr(c, NULL, "type of field '%s' must be a string", key);
      return NULL;
    }
    for (k = 0; k < ICE__ARRAY_SIZE(simple_types); k++) {
      if (strcmp(simple_types[k].word, json_string_value(word)) == 0)
        break;
    }
    if (k == ICE__ARRAY_SIZE(simple_types)) {
      cerr(c, NULL, "unknown type '%s' for field '%s'", json_string_value(word),
           key);
      return NULL;
    }
    /* Every field is required, in the order written. */
    p->name = ice__strdup(key);
    n->required[i] = ice__strdup(key);
    n->nprops = n->nrequired = ++i;
    if (p->name == NULL || n->required[i - 1] == NULL ||
        (p->schema = new_node(c, word)) == NULL) {
      cerr(c, NULL, "out of memory");
      return NULL;
    }
    p->schema->types = simple_types[k].types;
  }
  qsort(n->props, n->nprops, sizeof(*n->props), prop_cmp);
  return n;
}

/* ---- dialect detection and $ref loops ---- */

static int is_json_schema(json_t *o) {
  json_t *t = json_object_get(o, "type");

  if (json_object_get(o, "$schema") || json_object_get(o, "$ref") ||
      json_object_get(o, "allOf") || json_object_get(o, "anyOf") ||
      json_object_get(o, "oneOf") ||
      json_is_object(json_object_get(o, "properties")))
    return 1;
  if (json_is_string(t))
    return type_bit(json_string_value(t)) != 0;
  if (json_is_array(t) && json_array_size(t) > 0) {
    size_t i;
    json_t *e;
    json_array_foreach(t, i, e) {
      if (!json_is_string(e) || type_bit(json_string_value(e)) == 0)
        return 0;
    }
    return 1;
  }
  /* {} is the JSON Schema that accepts anything; as a simple form it would
   * accept only {}, which nobody means by an empty schema. */
  return json_object_size(o) == 0;
}

json_t *ice__schema_as_json_schema(json_t *schema) {
  static const char *const json_word[] = {
      "string",  "string", "integer", "integer", "number", "number", "boolean",
      "boolean", "object", "object",  "array",   "array",  NULL};
  json_t *props, *req, *out;
  const char *key;
  json_t *word;

  if (!json_is_object(schema) || is_json_schema(schema))
    return json_incref(schema);
  props = json_object();
  req = json_array();
  out = json_pack("{s:s,s:o,s:o,s:b}", "type", "object", "properties", props,
                  "required", req, "additionalProperties", 0);
  if (out == NULL)
    return NULL;
  json_object_foreach(schema, key, word) {
    json_t *p = json_object();
    int bad = p == NULL;
    for (size_t k = 0; k < ICE__ARRAY_SIZE(simple_types) && !bad; k++) {
      if (json_is_string(word) &&
          strcmp(simple_types[k].word, json_string_value(word)) == 0 &&
          json_word[k] != NULL)
        bad |= json_object_set_new(p, "type", json_string(json_word[k]));
    }
    bad |= json_object_set_new(props, key, p);
    bad |= json_array_append_new(req, json_string(key));
    if (bad) {
      json_decref(out);
      return NULL;
    }
  }
  return out;
}

/* A cycle through $ref (possibly via allOf/anyOf/oneOf/not) that never
 * descends into the value would make checking loop forever. Only $ref
 * edges can point back at an existing node, so the loop is named by one. */
static int find_loop(cctx_t *c, node_t *n, int len) {
  node_t *next[4];
  size_t nn = 0;
  const list_t *lists[3] = {&n->all_of, &n->any_of, &n->one_of};

  if (n->mark == 2)
    return 0;
  if (len > MAX_CHAIN)
    return cerr(c, NULL,
                "chain of $ref/allOf/anyOf/oneOf/not is longer "
                "than %d",
                MAX_CHAIN);
  n->mark = 1;
  if (n->ref != NULL) {
    if (n->ref->mark == 1)
      return cerr(c, NULL, "$ref loop through '%s'", n->ref_str);
    next[nn++] = n->ref;
  }
  if (n->not_ != NULL)
    next[nn++] = n->not_;
  for (size_t i = 0; i < nn; i++) {
    if (find_loop(c, next[i], len + 1))
      return -1;
  }
  for (size_t l = 0; l < 3; l++) {
    for (size_t i = 0; i < lists[l]->n; i++) {
      if (find_loop(c, lists[l]->v[i], len + 1))
        return -1;
    }
  }
  n->mark = 2;
  return 0;
}

int ice__schema_compile(json_t *schema, ice__schema_t **out, ice__err_t *err) {
  cctx_t c = {NULL, schema, err};

  if (out == NULL)
    return ice__err_set(err, ICE__KIND_NONE, 0, "no place for the schema");
  *out = NULL;
  if (!json_is_object(schema))
    return ice__err_set(err, ICE__KIND_NONE, 0, "schema must be an object");
  c.s = ice__calloc(1, sizeof(*c.s));
  if (c.s == NULL)
    return ice__err_set(err, ICE__KIND_NONE, 0, "out of memory");
  if (is_json_schema(schema))
    c.s->root = compile_sub(&c, schema, NULL, 0);
  else
    c.s->root = compile_simple(&c, schema);
  for (size_t i = 0; c.s->root != NULL && i < c.s->n; i++) {
    if (find_loop(&c, c.s->nodes[i], 0))
      c.s->root = NULL;
  }
  if (c.s->root == NULL) {
    ice__schema_free(c.s);
    return -1;
  }
  *out = c.s;
  return 0;
}

/* ---- checking ---- */

static const char *value_type(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT:
    return "object";
  case JSON_ARRAY:
    return "array";
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

static int type_ok(unsigned types, const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT:
    return (types & T_OBJECT) != 0;
  case JSON_ARRAY:
    return (types & T_ARRAY) != 0;
  case JSON_STRING:
    return (types & T_STRING) != 0;
  case JSON_INTEGER:
    return (types & (T_INTEGER | T_NUMBER)) != 0;
  case JSON_REAL:
    /* JSON Schema: 2.0 is an integer. */
    return (types & T_NUMBER) != 0 ||
           ((types & T_INTEGER) != 0 &&
            json_real_value(v) == floor(json_real_value(v)));
  case JSON_TRUE:
  case JSON_FALSE:
    return (types & T_BOOLEAN) != 0;
  default:
    return (types & T_NULL) != 0;
  }
}

static void fmt_types(char *buf, size_t cap, unsigned types) {
  sbuf_t b = {buf, cap, 0};
  size_t count = 0, seen = 0;

  buf[0] = '\0';
  /* "integer or number" says no more than "number". */
  if (types & T_NUMBER)
    types &= ~(unsigned)T_INTEGER;
  for (size_t i = 0; i < ICE__ARRAY_SIZE(type_names); i++)
    count += (types & type_names[i].bit) != 0;
  for (size_t i = 0; i < ICE__ARRAY_SIZE(type_names); i++) {
    if (!(types & type_names[i].bit))
      continue;
    if (seen > 0)
      sb_puts(&b, seen + 1 == count ? " or " : ", ");
    sb_puts(&b, type_names[i].name);
    seen++;
  }
}

/* Numbers compare by value whatever their JSON type, so 1 equals 1.0. */
static int values_equal(const json_t *a, const json_t *b) {
  if (json_is_number(a) && json_is_number(b)) {
    if (json_is_integer(a) && json_is_integer(b))
      return json_integer_value(a) == json_integer_value(b);
    return json_number_value(a) == json_number_value(b);
  }
  return json_equal(a, b);
}

static int num_cmp(const json_t *v, const num_t *l) {
  double a, b;

  if (json_is_integer(v) && l->is_int) {
    json_int_t x = json_integer_value(v);
    return (x > l->i) - (x < l->i);
  }
  a = json_number_value(v);
  b = l->is_int ? (double)l->i : l->d;
  return (a > b) - (a < b);
}

static int check(const node_t *n, const json_t *v, const path_t *p, int depth,
                 ice__err_t *err);

static int check_number(const node_t *n, const json_t *v, const path_t *p,
                        ice__err_t *err) {
  char a[40], b[40];

  if (n->min.set && num_cmp(v, &n->min) < 0) {
    fmt_num_value(a, sizeof(a), v);
    fmt_limit(b, sizeof(b), &n->min);
    return fail(err, p, "%s is less than the minimum %s", a, b);
  }
  if (n->max.set && num_cmp(v, &n->max) > 0) {
    fmt_num_value(a, sizeof(a), v);
    fmt_limit(b, sizeof(b), &n->max);
    return fail(err, p, "%s is greater than the maximum %s", a, b);
  }
  if (n->xmin.set && num_cmp(v, &n->xmin) <= 0) {
    fmt_num_value(a, sizeof(a), v);
    fmt_limit(b, sizeof(b), &n->xmin);
    return fail(err, p, "%s is not greater than the exclusive minimum %s", a,
                b);
  }
  if (n->xmax.set && num_cmp(v, &n->xmax) >= 0) {
    fmt_num_value(a, sizeof(a), v);
    fmt_limit(b, sizeof(b), &n->xmax);
    return fail(err, p, "%s is not less than the exclusive maximum %s", a, b);
  }
  return 0;
}

static int check_string(const node_t *n, const json_t *v, const path_t *p,
                        ice__err_t *err) {
  const char *s = json_string_value(v);

  if (n->min_len > 0 || n->max_len != SIZE_MAX) {
    /* Lengths count code points: skip UTF-8 continuation bytes. */
    size_t bytes = json_string_length(v), len = 0;
    for (size_t i = 0; i < bytes; i++)
      len += ((unsigned char)s[i] & 0xC0) != 0x80;
    if (len < n->min_len)
      return fail(err, p, "string is shorter than the minimum length %zu",
                  n->min_len);
    if (len > n->max_len)
      return fail(err, p, "string is longer than the maximum length %zu",
                  n->max_len);
  }
  if (n->has_re && regexec(&n->re, s, 0, NULL, 0) != 0)
    return fail(err, p, "does not match pattern '%s'", n->pattern);
  return 0;
}

static int check_array(const node_t *n, const json_t *v, const path_t *p,
                       int depth, ice__err_t *err) {
  size_t size = json_array_size(v);

  if (size < n->min_items)
    return fail(err, p, "array has fewer than %zu items", n->min_items);
  if (size > n->max_items)
    return fail(err, p, "array has more than %zu items", n->max_items);
  for (size_t i = 0; i < size; i++) {
    path_t ip = {p, NULL, i, 0};
    const node_t *sub = n->items;
    if (n->tuple != NULL || n->ntuple > 0)
      sub = i < n->ntuple ? n->tuple[i] : n->additional_items;
    if (sub != NULL &&
        check(sub, json_array_get(v, i), &ip, depth + 1, err) != 0)
      return -1;
  }
  if (n->unique) {
    for (size_t i = 0; i < size; i++) {
      for (size_t j = i + 1; j < size; j++) {
        if (values_equal(json_array_get(v, i), json_array_get(v, j)))
          return fail(err, p, "items %zu and %zu are equal", i, j);
      }
    }
  }
  return 0;
}

static const prop_t *find_prop(const node_t *n, const char *key) {
  prop_t probe = {(char *)key, NULL};

  if (n->nprops == 0)
    return NULL;
  return bsearch(&probe, n->props, n->nprops, sizeof(*n->props), prop_cmp);
}

static int check_object(const node_t *n, const json_t *v, const path_t *p,
                        int depth, ice__err_t *err) {
  size_t size = json_object_size(v);
  const char *key;
  json_t *child;

  for (size_t i = 0; i < n->nrequired; i++) {
    if (json_object_get(v, n->required[i]) == NULL)
      return fail(err, p, "missing required field '%s'", n->required[i]);
  }
  /* Iteration is read-only; jansson's macro just lacks a const form. */
  json_object_foreach((json_t *)v, key, child) {
    path_t kp = {p, key, 0, 0};
    const prop_t *prop = find_prop(n, key);
    const node_t *sub = prop != NULL ? prop->schema : n->additional;
    if (sub == NULL)
      continue;
    if (prop == NULL && sub->never)
      return fail(err, p, "unexpected field '%s'", key);
    if (check(sub, child, &kp, depth + 1, err) != 0)
      return -1;
  }
  if (size < n->min_props)
    return fail(err, p, "object has fewer than %zu fields", n->min_props);
  if (size > n->max_props)
    return fail(err, p, "object has more than %zu fields", n->max_props);
  return 0;
}

static int check_combinators(const node_t *n, const json_t *v, const path_t *p,
                             int depth, ice__err_t *err) {
  size_t i, matches = 0, first = 0;

  for (i = 0; i < n->all_of.n; i++) {
    if (check(n->all_of.v[i], v, p, depth + 1, err) != 0)
      return -1;
  }
  if (n->any_of.n > 0) {
    for (i = 0; i < n->any_of.n; i++) {
      if (check(n->any_of.v[i], v, p, depth + 1, NULL) == 0)
        break;
    }
    if (i == n->any_of.n)
      return fail(err, p, "value does not match any schema in anyOf");
  }
  for (i = 0; i < n->one_of.n; i++) {
    if (check(n->one_of.v[i], v, p, depth + 1, NULL) != 0)
      continue;
    if (matches++ == 0) {
      first = i;
      continue;
    }
    return fail(err, p,
                "value matches schemas %zu and %zu in oneOf, expected "
                "exactly one",
                first, i);
  }
  if (n->one_of.n > 0 && matches == 0)
    return fail(err, p, "value does not match any schema in oneOf");
  if (n->not_ != NULL && check(n->not_, v, p, depth + 1, NULL) == 0)
    return fail(err, p, "value matches the schema in 'not'");
  return 0;
}

static int check(const node_t *n, const json_t *v, const path_t *p, int depth,
                 ice__err_t *err) {
  if (depth > MAX_CHECK_DEPTH)
    return fail(err, p, "value is nested too deeply for the schema");
  if (n->never)
    return fail(err, p, "value is not allowed here");
  if (n->types != 0 && !type_ok(n->types, v)) {
    char want[96];
    fmt_types(want, sizeof(want), n->types);
    return fail(err, p, "expected %s, got %s", want, value_type(v));
  }
  if (n->const_val != NULL && !values_equal(v, n->const_val))
    return fail(err, p, "value is not equal to the required constant");
  if (n->enum_vals != NULL) {
    size_t i, size = json_array_size(n->enum_vals);
    for (i = 0; i < size; i++) {
      if (values_equal(v, json_array_get(n->enum_vals, i)))
        break;
    }
    if (i == size)
      return fail(err, p, "value is not one of the allowed values");
  }
  switch (json_typeof(v)) {
  case JSON_INTEGER:
  case JSON_REAL:
    if (check_number(n, v, p, err) != 0)
      return -1;
    break;
  case JSON_STRING:
    if (check_string(n, v, p, err) != 0)
      return -1;
    break;
  case JSON_ARRAY:
    if (check_array(n, v, p, depth, err) != 0)
      return -1;
    break;
  case JSON_OBJECT:
    if (check_object(n, v, p, depth, err) != 0)
      return -1;
    break;
  default:
    break;
  }
  if (check_combinators(n, v, p, depth, err) != 0)
    return -1;
  if (n->ref != NULL)
    return check(n->ref, v, p, depth + 1, err);
  return 0;
}

int ice__schema_check(const ice__schema_t *s, const json_t *value,
                      ice__err_t *err) {
  /* No schema constrains nothing. */
  if (s == NULL)
    return 0;
  if (value == NULL)
    return ice__err_set(err, ICE__KIND_NONE, 0, "$: no value");
  return check(s->root, value, NULL, 0, err);
}
