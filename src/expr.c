/* The expression language of SPEC §3.2. A lazy tokenizer feeds a
 * recursive-descent parser (one function per precedence level) that builds
 * an AST once; ice__expr_eval walks that AST over borrowed JSON values, so
 * resolving a path allocates nothing and only results are new values. */
#include "expr.h"
#include "template.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Nesting of parentheses, brackets, `not` and unary signs while parsing. */
#define MAX_DEPTH 200
/* Height of the AST: long left-assoc chains (`1+1+1...`) do not recurse
 * while parsing but do while evaluating, so they are bounded as well. */
#define MAX_HEIGHT 1000

/* ---- Tokens ---- */

typedef enum {
  T_END,
  T_ERR, /* a lexical error, reported when the parser reaches it */
  T_INT,
  T_REAL,
  T_STR,
  T_NAME,
  T_AND,
  T_OR,
  T_NOT,
  T_IN,
  T_IF,
  T_ELSE,
  T_TRUE,
  T_FALSE,
  T_NULL,
  T_LP,
  T_RP,
  T_LB,
  T_RB,
  T_LC,
  T_RC,
  T_COMMA,
  T_COLON,
  T_DOT,
  T_PLUS,
  T_MINUS,
  T_STAR,
  T_SLASH,
  T_DSLASH,
  T_PCT,
  T_EQ,
  T_NE,
  T_LT,
  T_LE,
  T_GT,
  T_GE,
} tok_kind;

typedef struct {
  tok_kind kind;
  size_t off, len;
  json_int_t i;
  bool big; /* integer literal 2^63: only valid right after unary '-' */
  double d;
  json_t *s; /* decoded string literal (owned until the parser takes it) */
} tok_t;

/* ---- AST ---- */

typedef enum {
  N_LIT,
  N_LIST,
  N_OBJECT,
  N_PATH,
  N_NEG,
  N_POS,
  N_NOT,
  N_AND,
  N_OR,
  N_COND,
  N_BIN,
  N_CMP,
  N_CALL,
} node_kind;

typedef enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FDIV, OP_MOD } bin_op;

typedef enum { C_EQ, C_NE, C_LT, C_LE, C_GT, C_GE, C_IN, C_NOTIN } cmp_op;

typedef enum {
  F_LEN,
  F_EXISTS,
  F_STR,
  F_INT,
  F_FLOAT,
  F_LOWER,
  F_UPPER,
  F_ABS,
  F_MIN,
  F_MAX,
  F_ROUND
} fn_id;

typedef enum { SEG_KEY, SEG_INDEX, SEG_EXPR } seg_kind;

typedef struct node node;

typedef struct {
  seg_kind kind;
  json_int_t index; /* SEG_INDEX: list index */
  json_t *key;      /* SEG_KEY, SEG_INDEX: key text for objects */
  node *expr;       /* SEG_EXPR */
} seg_t;

struct node {
  node_kind kind;
  int op; /* bin_op, fn_id */
  int height;
  size_t off;   /* source offset of the token that names the node */
  size_t start; /* N_PATH: the span of the path as written */
  size_t end;
  json_t *lit; /* N_LIT */
  node **kids; /* operands, elements, object values, arguments */
  size_t nkids;
  json_t **keys;      /* N_OBJECT: key strings */
  unsigned char *ops; /* N_CMP: nkids - 1 operators */
  /* N_PATH: either a top-level name or a base expression (kids[0]) */
  const char *name;
  size_t name_len;
  seg_t *segs;
  size_t nsegs;
};

struct ice__expr_s {
  char *src;
  size_t len;
  node *root;
};

static const struct {
  const char *name;
  fn_id id;
  int min_args, max_args; /* max -1: variadic */
} functions[] = {
    {"len", F_LEN, 1, 1},     {"exists", F_EXISTS, 1, 1},
    {"str", F_STR, 1, 1},     {"int", F_INT, 1, 1},
    {"float", F_FLOAT, 1, 1}, {"lower", F_LOWER, 1, 1},
    {"upper", F_UPPER, 1, 1}, {"abs", F_ABS, 1, 1},
    {"min", F_MIN, 1, -1},    {"max", F_MAX, 1, -1},
    {"round", F_ROUND, 1, 2},
};

/* 1-based column of byte offset `off`, counted in UTF-8 code points so
 * that it matches what an editor shows. */
static int col_of(const char *src, size_t off) {
  int col = 1;

  for (size_t i = 0; i < off; i++) {
    if (((unsigned char)src[i] & 0xC0) != 0x80)
      col++;
  }
  return col;
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

static void node_free(node *n) {
  if (n == NULL)
    return;
  json_decref(n->lit);
  for (size_t i = 0; i < n->nkids; i++)
    node_free(n->kids[i]);
  if (n->keys != NULL) {
    for (size_t i = 0; i < n->nkids; i++)
      json_decref(n->keys[i]);
  }
  for (size_t i = 0; i < n->nsegs; i++) {
    json_decref(n->segs[i].key);
    node_free(n->segs[i].expr);
  }
  ice__free(n->kids);
  ice__free(n->keys);
  ice__free(n->ops);
  ice__free(n->segs);
  ice__free(n);
}

/* ---- Lexer ---- */

typedef struct {
  const char *src;
  size_t len;
  size_t pos;
  tok_kind prev; /* kind of the last token lexed: after '.', digits are a
                    list index and words are keys, never keywords */
  tok_t cur, next;
  bool has_next;
  int depth;
  /* a lexical error waiting for the parser to reach its token */
  char lex_msg[128];
  ice__err_t *err;
  bool failed;
} parser_t;

static bool is_ident_start(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(int c) {
  return c >= '0' && c <= '9';
}

static int hex_value(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static tok_t lex_error(parser_t *p, tok_t t, const char *fmt, const char *a,
                       int alen) {
  t.kind = T_ERR;
  snprintf(p->lex_msg, sizeof(p->lex_msg), fmt, alen, a);
  json_decref(t.s);
  t.s = NULL;
  return t;
}

static bool read_hex4(const char *s, size_t n, size_t at, unsigned *out) {
  unsigned v = 0;

  if (at + 4 > n)
    return false;
  for (size_t i = at; i < at + 4; i++) {
    int h = hex_value((unsigned char)s[i]);
    if (h < 0)
      return false;
    v = v * 16 + (unsigned)h;
  }
  *out = v;
  return true;
}

static size_t put_utf8(char *dst, unsigned cp) {
  if (cp < 0x80) {
    dst[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    dst[0] = (char)(0xC0 | (cp >> 6));
    dst[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    dst[0] = (char)(0xE0 | (cp >> 12));
    dst[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    dst[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  dst[0] = (char)(0xF0 | (cp >> 18));
  dst[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  dst[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  dst[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* A quoted string. The decoded text is never longer than the source, so
 * one buffer of the source's size is enough. */
static tok_t lex_string(parser_t *p, tok_t t) {
  const char *s = p->src;
  char quote = s[p->pos];
  size_t i = p->pos + 1, o = 0;
  char *buf = ice__malloc(p->len - p->pos);

  if (buf == NULL)
    return lex_error(p, t, "out of memory%.*s", "", 0);
  while (i < p->len && s[i] != quote) {
    unsigned cp, lo;
    size_t esc = i;

    if (s[i] != '\\') {
      buf[o++] = s[i++];
      continue;
    }
    if (++i >= p->len)
      break;
    switch (s[i]) {
    case 'n':
      buf[o++] = '\n';
      break;
    case 't':
      buf[o++] = '\t';
      break;
    case 'r':
      buf[o++] = '\r';
      break;
    case 'b':
      buf[o++] = '\b';
      break;
    case 'f':
      buf[o++] = '\f';
      break;
    case '0':
      buf[o++] = '\0';
      break;
    case '\\':
    case '\'':
    case '"':
    case '/':
      buf[o++] = s[i];
      break;
    case 'u':
      if (!read_hex4(s, p->len, i + 1, &cp))
        goto bad_u;
      i += 4;
      if (cp >= 0xDC00 && cp <= 0xDFFF)
        goto bad_u;
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        /* A high surrogate must be followed by an escaped low one. */
        if (i + 2 >= p->len || s[i + 1] != '\\' || s[i + 2] != 'u' ||
            !read_hex4(s, p->len, i + 3, &lo) || lo < 0xDC00 || lo > 0xDFFF)
          goto bad_u;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        i += 6;
      }
      o += put_utf8(buf + o, cp);
      break;
    default:
      ice__free(buf);
      t.off = esc;
      return lex_error(p, t, "invalid escape '\\%.*s'", s + i, 1);
    }
    i++;
    continue;
  bad_u:
    ice__free(buf);
    t.off = esc;
    return lex_error(p, t, "invalid \\u escape%.*s", "", 0);
  }
  if (i >= p->len) {
    ice__free(buf);
    return lex_error(p, t, "unterminated string%.*s", "", 0);
  }
  t.kind = T_STR;
  t.len = i + 1 - t.off;
  p->pos = i + 1;
  t.s = json_stringn(buf, o);
  ice__free(buf);
  if (t.s == NULL)
    return lex_error(p, t, "invalid UTF-8 in string%.*s", "", 0);
  return t;
}

static tok_t lex_number(parser_t *p, tok_t t) {
  const char *s = p->src;
  size_t i = p->pos;
  bool real = false;
  char tmp[64];
  char *text = tmp;

  while (i < p->len && is_digit(s[i]))
    i++;
  /* After '.', `a.0.1` is two list indexes, not the decimal 0.1. */
  if (p->prev != T_DOT) {
    if (i + 1 < p->len && s[i] == '.' && is_digit(s[i + 1])) {
      real = true;
      i++;
      while (i < p->len && is_digit(s[i]))
        i++;
    }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
      size_t j = i + 1;
      if (j < p->len && (s[j] == '+' || s[j] == '-'))
        j++;
      if (j < p->len && is_digit(s[j])) {
        real = true;
        i = j;
        while (i < p->len && is_digit(s[i]))
          i++;
      }
    }
  }
  t.len = i - t.off;
  p->pos = i;
  if (t.len >= sizeof(tmp)) {
    text = ice__strndup(s + t.off, t.len);
    if (text == NULL)
      return lex_error(p, t, "out of memory%.*s", "", 0);
  } else {
    memcpy(tmp, s + t.off, t.len);
    tmp[t.len] = '\0';
  }
  if (real) {
    t.kind = T_REAL;
    t.d = strtod(text, NULL);
    if (!isfinite(t.d)) {
      if (text != tmp)
        ice__free(text);
      return lex_error(p, t, "number out of range%.*s", "", 0);
    }
  } else {
    unsigned long long u;

    errno = 0;
    u = strtoull(text, NULL, 10);
    t.kind = T_INT;
    if (errno == ERANGE || u > (unsigned long long)INT64_MAX + 1) {
      if (text != tmp)
        ice__free(text);
      return lex_error(p, t, "integer literal too large%.*s", "", 0);
    }
    t.big = u == (unsigned long long)INT64_MAX + 1;
    t.i = t.big ? 0 : (json_int_t)u;
  }
  if (text != tmp)
    ice__free(text);
  return t;
}

static const struct {
  const char *word;
  tok_kind kind;
} keywords[] = {
    {"and", T_AND},     {"or", T_OR},       {"not", T_NOT},   {"in", T_IN},
    {"if", T_IF},       {"else", T_ELSE},   {"true", T_TRUE}, {"True", T_TRUE},
    {"false", T_FALSE}, {"False", T_FALSE}, {"null", T_NULL}, {"None", T_NULL},
};

static tok_t lex(parser_t *p) {
  const char *s = p->src;
  tok_t t;
  int c, c2;

  memset(&t, 0, sizeof(t));
  while (p->pos < p->len && (s[p->pos] == ' ' || s[p->pos] == '\t' ||
                             s[p->pos] == '\n' || s[p->pos] == '\r'))
    p->pos++;
  t.off = p->pos;
  if (p->pos >= p->len) {
    t.kind = T_END;
    return t;
  }
  c = (unsigned char)s[p->pos];
  c2 = p->pos + 1 < p->len ? (unsigned char)s[p->pos + 1] : 0;
  if (is_digit(c)) {
    t = lex_number(p, t);
  } else if (is_ident_start(c)) {
    size_t i = p->pos;
    while (i < p->len && (is_ident_start(s[i]) || is_digit(s[i])))
      i++;
    t.kind = T_NAME;
    t.len = i - p->pos;
    p->pos = i;
    if (p->prev != T_DOT) {
      for (size_t k = 0; k < ICE__ARRAY_SIZE(keywords); k++) {
        if (strlen(keywords[k].word) == t.len &&
            memcmp(keywords[k].word, s + t.off, t.len) == 0)
          t.kind = keywords[k].kind;
      }
    }
  } else if (c == '"' || c == '\'') {
    t = lex_string(p, t);
  } else {
    static const char singles[] = "()[]{},:.+-*%<>";
    static const tok_kind single_kinds[] = {
        T_LP,  T_RP,   T_LB,    T_RB,   T_LC,  T_RC, T_COMMA, T_COLON,
        T_DOT, T_PLUS, T_MINUS, T_STAR, T_PCT, T_LT, T_GT};
    const char *hit = strchr(singles, c);

    t.len = 2;
    if (c == '/' && c2 == '/')
      t.kind = T_DSLASH;
    else if (c == '=' && c2 == '=')
      t.kind = T_EQ;
    else if (c == '!' && c2 == '=')
      t.kind = T_NE;
    else if (c == '<' && c2 == '=')
      t.kind = T_LE;
    else if (c == '>' && c2 == '=')
      t.kind = T_GE;
    else if (c == '/')
      t.kind = T_SLASH, t.len = 1;
    else if (c != 0 && hit != NULL)
      t.kind = single_kinds[hit - singles], t.len = 1;
    else if (c == '=')
      return lex_error(p, t, "unexpected '=' (use '==' to compare)%.*s", "", 0);
    else if (c >= 0x20 && c < 0x7F)
      return lex_error(p, t, "unexpected character '%.*s'", s + p->pos, 1);
    else
      return lex_error(p, t, "unexpected character%.*s", "", 0);
    p->pos += t.len;
  }
  p->prev = t.kind;
  return t;
}

/* ---- Parser ---- */

static void advance(parser_t *p) {
  json_decref(p->cur.s);
  if (p->has_next) {
    p->cur = p->next;
    p->has_next = false;
  } else {
    p->cur = lex(p);
  }
}

static const tok_t *peek(parser_t *p) {
  if (!p->has_next) {
    p->next = lex(p);
    p->has_next = true;
  }
  return &p->next;
}

/* Records a syntax error at token t (or the lexical error t stands for). */
static node *fail_tok(parser_t *p, const tok_t *t, const char *fmt,
                      const char *what) {
  if (p->failed)
    return NULL;
  p->failed = true;
  if (t->kind == T_ERR) {
    ice__err_set(p->err, ICE__KIND_EXPRESSION, col_of(p->src, t->off), "%s",
                 p->lex_msg);
  } else {
    char desc[64];

    if (t->kind == T_END)
      snprintf(desc, sizeof(desc), "end of expression");
    else if (t->kind == T_STR)
      snprintf(desc, sizeof(desc), "string literal");
    else
      snprintf(desc, sizeof(desc), "'%.*s'", (int)(t->len > 30 ? 30 : t->len),
               p->src + t->off);
    ice__err_set(p->err, ICE__KIND_EXPRESSION, col_of(p->src, t->off), fmt,
                 what != NULL ? what : desc, desc);
  }
  return NULL;
}

static node *fail_at(parser_t *p, size_t off, const char *msg) {
  if (!p->failed) {
    p->failed = true;
    ice__err_set(p->err, ICE__KIND_EXPRESSION, col_of(p->src, off), "%s", msg);
  }
  return NULL;
}

static node *oom(parser_t *p) {
  return fail_at(p, p->cur.off, "out of memory");
}

static node *new_node(parser_t *p, node_kind kind, size_t off) {
  node *n = ice__calloc(1, sizeof(*n));

  if (n == NULL)
    return oom(p);
  n->kind = kind;
  n->off = off;
  n->height = 1;
  return n;
}

/* Appends kid to n->kids (taking it); frees kid on failure. */
static bool add_kid(parser_t *p, node *n, node *kid) {
  node **kids = ice__realloc(n->kids, (n->nkids + 1) * sizeof(*kids));

  if (kids == NULL) {
    node_free(kid);
    oom(p);
    return false;
  }
  n->kids = kids;
  n->kids[n->nkids++] = kid;
  if (kid->height + 1 > n->height)
    n->height = kid->height + 1;
  return true;
}

/* Checks the AST height (see MAX_HEIGHT); frees n when it is too tall. */
static node *check_height(parser_t *p, node *n) {
  if (n != NULL && n->height > MAX_HEIGHT) {
    fail_at(p, n->off, "expression nested too deeply");
    node_free(n);
    return NULL;
  }
  return n;
}

static node *unary_node(parser_t *p, node_kind kind, size_t off, node *a) {
  node *n;

  if (a == NULL)
    return NULL;
  n = new_node(p, kind, off);
  if (n == NULL) {
    node_free(a);
    return NULL;
  }
  if (!add_kid(p, n, a)) {
    node_free(n);
    return NULL;
  }
  return check_height(p, n);
}

static node *binary_node(parser_t *p, node_kind kind, int op, size_t off,
                         node *a, node *b) {
  node *n;

  if (a == NULL || b == NULL) {
    node_free(a);
    node_free(b);
    return NULL;
  }
  n = new_node(p, kind, off);
  if (n == NULL) {
    node_free(a);
    node_free(b);
    return NULL;
  }
  n->op = op;
  if (!add_kid(p, n, a)) {
    node_free(b);
    node_free(n);
    return NULL;
  }
  if (!add_kid(p, n, b)) {
    node_free(n);
    return NULL;
  }
  return check_height(p, n);
}

static bool enter(parser_t *p) {
  if (++p->depth > MAX_DEPTH) {
    fail_at(p, p->cur.off, "expression nested too deeply");
    return false;
  }
  return true;
}

static bool expect(parser_t *p, tok_kind kind, const char *what) {
  if (p->cur.kind != kind) {
    fail_tok(p, &p->cur, "expected %s but found %s", what);
    return false;
  }
  advance(p);
  return true;
}

static node *parse_cond(parser_t *p);

static node *literal(parser_t *p, json_t *v, size_t off) {
  node *n;

  if (v == NULL)
    return oom(p);
  n = new_node(p, N_LIT, off);
  if (n == NULL) {
    json_decref(v);
    return NULL;
  }
  n->lit = v;
  return n;
}

/* Comma-separated items up to `close`, trailing comma allowed; objects
 * read `"key": value` items. */
static node *parse_items(parser_t *p, node *n, tok_kind close,
                         const char *close_text, bool object) {
  while (p->cur.kind != close) {
    node *v;

    if (object) {
      json_t **keys;

      if (p->cur.kind != T_STR)
        return fail_tok(p, &p->cur, "expected %s but found %s", "a string key");
      keys = ice__realloc(n->keys, (n->nkids + 1) * sizeof(*keys));
      if (keys == NULL)
        return oom(p);
      n->keys = keys;
      /* Owned by the node from now on; the matching value follows. */
      n->keys[n->nkids] = p->cur.s;
      p->cur.s = NULL;
      advance(p);
      if (!expect(p, T_COLON, "':'")) {
        json_decref(n->keys[n->nkids]);
        n->keys[n->nkids] = NULL;
        return NULL;
      }
      v = parse_cond(p);
      if (v == NULL) {
        json_decref(n->keys[n->nkids]);
        n->keys[n->nkids] = NULL;
        return NULL;
      }
      if (!add_kid(p, n, v)) {
        json_decref(n->keys[n->nkids]);
        n->keys[n->nkids] = NULL;
        return NULL;
      }
    } else {
      v = parse_cond(p);
      if (v == NULL || !add_kid(p, n, v))
        return NULL;
    }
    if (p->cur.kind != T_COMMA)
      break;
    advance(p);
  }
  if (!expect(p, close, close_text))
    return NULL;
  return n;
}

static node *parse_call(parser_t *p) {
  tok_t name = p->cur;
  size_t i;
  node *n;

  for (i = 0; i < ICE__ARRAY_SIZE(functions); i++) {
    if (strlen(functions[i].name) == name.len &&
        memcmp(functions[i].name, p->src + name.off, name.len) == 0)
      break;
  }
  if (i == ICE__ARRAY_SIZE(functions))
    return fail_tok(p, &name, "unknown function %s%.0s", NULL);
  n = new_node(p, N_CALL, name.off);
  if (n == NULL)
    return NULL;
  n->op = functions[i].id;
  advance(p); /* name */
  advance(p); /* ( */
  if (parse_items(p, n, T_RP, "')'", false) == NULL)
    goto fail;
  if ((int)n->nkids < functions[i].min_args ||
      (functions[i].max_args >= 0 && (int)n->nkids > functions[i].max_args)) {
    char msg[96];

    if (functions[i].max_args < 0)
      snprintf(msg, sizeof(msg), "%s() takes at least %d argument%s",
               functions[i].name, functions[i].min_args,
               functions[i].min_args == 1 ? "" : "s");
    else if (functions[i].min_args == functions[i].max_args)
      snprintf(msg, sizeof(msg), "%s() takes %d argument but %zu given",
               functions[i].name, functions[i].min_args, n->nkids);
    else
      snprintf(msg, sizeof(msg), "%s() takes %d or %d arguments but %zu given",
               functions[i].name, functions[i].min_args, functions[i].max_args,
               n->nkids);
    fail_at(p, name.off, msg);
    goto fail;
  }
  if (n->op == F_EXISTS && n->kids[0]->kind != N_PATH) {
    fail_at(p, n->kids[0]->off, "exists() requires a path");
    goto fail;
  }
  return check_height(p, n);
fail:
  node_free(n);
  return NULL;
}

static node *parse_primary(parser_t *p) {
  tok_t t = p->cur;
  node *n;

  switch (t.kind) {
  case T_INT:
    if (t.big)
      return fail_at(p, t.off, "integer literal too large");
    advance(p);
    return literal(p, json_integer(t.i), t.off);
  case T_REAL:
    advance(p);
    return literal(p, json_real(t.d), t.off);
  case T_STR:
    p->cur.s = NULL; /* the literal takes the string */
    advance(p);
    return literal(p, t.s, t.off);
  case T_TRUE:
    advance(p);
    return literal(p, json_true(), t.off);
  case T_FALSE:
    advance(p);
    return literal(p, json_false(), t.off);
  case T_NULL:
    advance(p);
    return literal(p, json_null(), t.off);
  case T_NAME:
    if (peek(p)->kind == T_LP)
      return parse_call(p);
    n = new_node(p, N_PATH, t.off);
    if (n == NULL)
      return NULL;
    n->name = p->src + t.off;
    n->name_len = t.len;
    n->start = t.off;
    n->end = t.off + t.len;
    advance(p);
    return n;
  case T_LP:
    advance(p);
    n = parse_cond(p);
    if (n != NULL && !expect(p, T_RP, "')'")) {
      node_free(n);
      return NULL;
    }
    return n;
  case T_LB:
  case T_LC:
    n = new_node(p, t.kind == T_LB ? N_LIST : N_OBJECT, t.off);
    if (n == NULL)
      return NULL;
    advance(p);
    if (parse_items(p, n, t.kind == T_LB ? T_RB : T_RC,
                    t.kind == T_LB ? "']'" : "'}'", t.kind == T_LC) == NULL) {
      node_free(n);
      return NULL;
    }
    return check_height(p, n);
  default:
    return fail_tok(p, &t, "unexpected %s%.0s", NULL);
  }
}

static bool add_seg(parser_t *p, node *n, seg_t s) {
  seg_t *segs = ice__realloc(n->segs, (n->nsegs + 1) * sizeof(*segs));

  if (segs == NULL) {
    json_decref(s.key);
    node_free(s.expr);
    oom(p);
    return false;
  }
  n->segs = segs;
  n->segs[n->nsegs++] = s;
  if (s.expr != NULL && s.expr->height + 1 > n->height)
    n->height = s.expr->height + 1;
  return true;
}

/* `.key`, `.0`, `[expr]` after a primary. A name starts a path; any
 * other primary followed by a segment becomes the base of a path. */
static node *parse_postfix(parser_t *p) {
  size_t start = p->cur.off;
  /* Only a bare name is extended in place; `(a.b).c` wraps `a.b` so that
   * each path reports its own text when it is undefined. */
  bool bare = p->cur.kind == T_NAME && peek(p)->kind != T_LP;
  node *n = parse_primary(p);

  while (n != NULL && (p->cur.kind == T_DOT || p->cur.kind == T_LB)) {
    seg_t s;

    memset(&s, 0, sizeof(s));
    if (!bare) {
      node *base = new_node(p, N_PATH, n->off);

      bare = true;
      if (base == NULL || !add_kid(p, base, n)) {
        if (base == NULL)
          node_free(n);
        else
          node_free(base);
        return NULL;
      }
      n = base;
      n->start = start;
    }
    if (p->cur.kind == T_DOT) {
      advance(p);
      if (p->cur.kind == T_NAME) {
        s.kind = SEG_KEY;
      } else if (p->cur.kind == T_INT && !p->cur.big) {
        s.kind = SEG_INDEX;
        s.index = p->cur.i;
      } else {
        fail_tok(p, &p->cur, "expected %s but found %s",
                 "a key or index after '.'");
        node_free(n);
        return NULL;
      }
      s.key = json_stringn(p->src + p->cur.off, p->cur.len);
      n->end = p->cur.off + p->cur.len;
      if (s.key == NULL) {
        node_free(n);
        return oom(p);
      }
      advance(p);
    } else {
      advance(p);
      s.expr = parse_cond(p);
      if (s.expr == NULL) {
        node_free(n);
        return NULL;
      }
      n->end = p->cur.off + p->cur.len;
      if (!expect(p, T_RB, "']'")) {
        node_free(s.expr);
        node_free(n);
        return NULL;
      }
      s.kind = SEG_EXPR;
      /* Constant keys and indexes are resolved at parse time. */
      if (s.expr->kind == N_LIT && json_is_string(s.expr->lit)) {
        s.kind = SEG_KEY;
        s.key = json_incref(s.expr->lit);
      } else if (s.expr->kind == N_LIT && json_is_integer(s.expr->lit)) {
        char buf[32];

        s.kind = SEG_INDEX;
        s.index = json_integer_value(s.expr->lit);
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, s.index);
        s.key = json_string(buf);
        if (s.key == NULL) {
          node_free(s.expr);
          node_free(n);
          return oom(p);
        }
      }
      if (s.kind != SEG_EXPR) {
        node_free(s.expr);
        s.expr = NULL;
      }
    }
    if (!add_seg(p, n, s)) {
      node_free(n);
      return NULL;
    }
    n = check_height(p, n);
  }
  return n;
}

static node *parse_unary(parser_t *p) {
  tok_t t = p->cur;
  node *a;

  if (t.kind != T_MINUS && t.kind != T_PLUS)
    return parse_postfix(p);
  if (!enter(p))
    return NULL;
  advance(p);
  /* -9223372036854775808 is the one literal that only fits negated. */
  if (t.kind == T_MINUS && p->cur.kind == T_INT && p->cur.big) {
    size_t off = p->cur.off;
    advance(p);
    p->depth--;
    return literal(p, json_integer(INT64_MIN), off);
  }
  a = parse_unary(p);
  p->depth--;
  if (a == NULL)
    return NULL;
  /* Fold signs of number literals so `x[-1]` stays a constant index. */
  if (a->kind == N_LIT && json_is_number(a->lit) &&
      !(json_is_integer(a->lit) && json_integer_value(a->lit) == INT64_MIN)) {
    if (t.kind == T_MINUS) {
      json_t *v = json_is_integer(a->lit)
                      ? json_integer(-json_integer_value(a->lit))
                      : json_real(-json_real_value(a->lit));
      if (v == NULL) {
        node_free(a);
        return oom(p);
      }
      json_decref(a->lit);
      a->lit = v;
    }
    a->off = t.off;
    return a;
  }
  return unary_node(p, t.kind == T_MINUS ? N_NEG : N_POS, t.off, a);
}

static node *parse_mul(parser_t *p) {
  node *a = parse_unary(p);

  while (a != NULL) {
    tok_t t = p->cur;
    int op;

    if (t.kind == T_STAR)
      op = OP_MUL;
    else if (t.kind == T_SLASH)
      op = OP_DIV;
    else if (t.kind == T_DSLASH)
      op = OP_FDIV;
    else if (t.kind == T_PCT)
      op = OP_MOD;
    else
      break;
    advance(p);
    a = binary_node(p, N_BIN, op, t.off, a, parse_unary(p));
  }
  return a;
}

static node *parse_add(parser_t *p) {
  node *a = parse_mul(p);

  while (a != NULL && (p->cur.kind == T_PLUS || p->cur.kind == T_MINUS)) {
    tok_t t = p->cur;

    advance(p);
    a = binary_node(p, N_BIN, t.kind == T_PLUS ? OP_ADD : OP_SUB, t.off, a,
                    parse_mul(p));
  }
  return a;
}

static int cmp_op_of(parser_t *p) {
  switch (p->cur.kind) {
  case T_EQ:
    return C_EQ;
  case T_NE:
    return C_NE;
  case T_LT:
    return C_LT;
  case T_LE:
    return C_LE;
  case T_GT:
    return C_GT;
  case T_GE:
    return C_GE;
  case T_IN:
    return C_IN;
  case T_NOT:
    return peek(p)->kind == T_IN ? C_NOTIN : -1;
  default:
    return -1;
  }
}

/* `a < b <= c` is one node holding every operand, so the middle operands
 * are evaluated once and the chain stops at the first false link. */
static node *parse_cmp(parser_t *p) {
  node *a = parse_add(p), *n = NULL;
  int op;

  if (a == NULL || (op = cmp_op_of(p)) < 0)
    return a;
  n = new_node(p, N_CMP, p->cur.off);
  if (n == NULL) {
    node_free(a);
    return NULL;
  }
  if (!add_kid(p, n, a))
    goto fail;
  while ((op = cmp_op_of(p)) >= 0) {
    unsigned char *ops = ice__realloc(n->ops, n->nkids * sizeof(*ops));
    node *b;

    if (ops == NULL) {
      oom(p);
      goto fail;
    }
    n->ops = ops;
    n->ops[n->nkids - 1] = (unsigned char)op;
    if (op == C_NOTIN)
      advance(p);
    advance(p);
    b = parse_add(p);
    if (b == NULL || !add_kid(p, n, b))
      goto fail;
  }
  return check_height(p, n);
fail:
  node_free(n);
  return NULL;
}

static node *parse_not(parser_t *p) {
  tok_t t = p->cur;
  node *a;

  if (t.kind != T_NOT)
    return parse_cmp(p);
  if (!enter(p))
    return NULL;
  advance(p);
  a = parse_not(p);
  p->depth--;
  return unary_node(p, N_NOT, t.off, a);
}

static node *parse_and(parser_t *p) {
  node *a = parse_not(p);

  while (a != NULL && p->cur.kind == T_AND) {
    size_t off = p->cur.off;
    advance(p);
    a = binary_node(p, N_AND, 0, off, a, parse_not(p));
  }
  return a;
}

static node *parse_or(parser_t *p) {
  node *a = parse_and(p);

  while (a != NULL && p->cur.kind == T_OR) {
    size_t off = p->cur.off;
    advance(p);
    a = binary_node(p, N_OR, 0, off, a, parse_and(p));
  }
  return a;
}

/* `x if c else y`: the lowest level, and the entry point of every nested
 * expression, so it is where nesting depth is counted. */
static node *parse_cond(parser_t *p) {
  node *a, *c, *b, *n;
  size_t off;

  if (!enter(p))
    return NULL;
  a = parse_or(p);
  if (a == NULL || p->cur.kind != T_IF) {
    p->depth--;
    return a;
  }
  off = p->cur.off;
  advance(p);
  c = parse_or(p);
  if (c == NULL || !expect(p, T_ELSE, "'else'")) {
    node_free(a);
    node_free(c);
    return NULL;
  }
  b = parse_cond(p);
  p->depth--;
  n = binary_node(p, N_COND, 0, off, a, b);
  if (n == NULL) {
    node_free(c);
    return NULL;
  }
  if (!add_kid(p, n, c)) {
    node_free(n);
    return NULL;
  }
  return check_height(p, n);
}

int ice__expr_parse(const char *src, size_t len, ice__expr_t **out,
                    ice__err_t *err) {
  parser_t p;
  ice__expr_t *e;

  *out = NULL;
  e = ice__calloc(1, sizeof(*e));
  if (e == NULL)
    return ice__err_set(err, ICE__KIND_EXPRESSION, 0, "out of memory");
  e->src = ice__malloc(len + 1);
  if (e->src == NULL) {
    ice__free(e);
    return ice__err_set(err, ICE__KIND_EXPRESSION, 0, "out of memory");
  }
  memcpy(e->src, src, len);
  e->src[len] = '\0';
  e->len = len;

  memset(&p, 0, sizeof(p));
  p.src = e->src;
  p.len = len;
  p.prev = T_END;
  p.err = err;
  advance(&p);
  if (p.cur.kind == T_END) {
    fail_at(&p, 0, "empty expression");
  } else {
    e->root = parse_cond(&p);
    if (e->root != NULL && p.cur.kind != T_END)
      fail_tok(&p, &p.cur, "unexpected %s%.0s", NULL);
  }
  json_decref(p.cur.s);
  if (p.has_next)
    json_decref(p.next.s);
  if (p.failed) {
    ice__expr_free(e);
    return -1;
  }
  *out = e;
  return 0;
}

const char *ice__expr_source(const ice__expr_t *e) {
  return e->src;
}

void ice__expr_free(ice__expr_t *e) {
  if (e == NULL)
    return;
  node_free(e->root);
  ice__free(e->src);
  ice__free(e);
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
  ice__err_set(c->err, ICE__KIND_EXPRESSION, col_of(c->src, n->off), "%s", msg);
  return ERR;
}

static int undef_error(ctx_t *c) {
  const node *p = c->undef;

  ice__err_set(c->err, ICE__KIND_EXPRESSION, col_of(c->src, p->start),
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

static int fn_case(ctx_t *c, const node *n, const json_t *v, json_t **out) {
  size_t len;
  char *buf;
  json_t *s;

  if (!json_is_string(v))
    return rt_error(c, n, "%s() of %s", n->op == F_LOWER ? "lower" : "upper",
                    type_name(v));
  /* ASCII letters only: the other bytes of UTF-8 text are left as is. */
  len = json_string_length(v);
  buf = ice__malloc(len);
  if (buf == NULL)
    return oom_error(c, n);
  memcpy(buf, json_string_value(v), len);
  for (size_t i = 0; i < len; i++) {
    if (n->op == F_LOWER && buf[i] >= 'A' && buf[i] <= 'Z')
      buf[i] = (char)(buf[i] + 32);
    else if (n->op == F_UPPER && buf[i] >= 'a' && buf[i] <= 'z')
      buf[i] = (char)(buf[i] - 32);
  }
  s = json_stringn_nocheck(buf, len);
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
