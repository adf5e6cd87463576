/* The expression language of SPEC §3.2, first half: a lazy tokenizer
 * feeding a recursive-descent parser (one function per precedence level)
 * that builds the AST once, at validation. Evaluation is expr_eval.c. */
#include "expr_ast.h"
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
int ice__expr_col(const char *src, size_t off) {
  int col = 1;

  for (size_t i = 0; i < off; i++) {
    if (((unsigned char)src[i] & 0xC0) != 0x80)
      col++;
  }
  return col;
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

static bool is_space(int c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The end of the name that starts at s[i] (i itself when none does). */
static size_t ident_end(const char *s, size_t len, size_t i) {
  if (i >= len || !is_ident_start((unsigned char)s[i]))
    return i;
  while (i < len &&
         (is_ident_start((unsigned char)s[i]) || is_digit((unsigned char)s[i])))
    i++;
  return i;
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

/* ice__expr_is_keyword lists the same words by length: keep both
 * (test_expr checks that they agree). */
static const struct {
  const char *word;
  tok_kind kind;
} keywords[] = {
    {"and", T_AND},     {"or", T_OR},       {"not", T_NOT},   {"in", T_IN},
    {"if", T_IF},       {"else", T_ELSE},   {"true", T_TRUE}, {"True", T_TRUE},
    {"false", T_FALSE}, {"False", T_FALSE}, {"null", T_NULL}, {"None", T_NULL},
};

int ice__expr_is_keyword(const char *s, size_t len) {
  /* Every node id of a workflow and every expression's first name is
   * checked: the keywords of that length only (those of the table). */
  switch (len) {
  case 2:
    return memcmp(s, "or", 2) == 0 || memcmp(s, "in", 2) == 0 ||
           memcmp(s, "if", 2) == 0;
  case 3:
    return memcmp(s, "and", 3) == 0 || memcmp(s, "not", 3) == 0;
  case 4:
    return memcmp(s, "else", 4) == 0 || memcmp(s, "true", 4) == 0 ||
           memcmp(s, "True", 4) == 0 || memcmp(s, "null", 4) == 0 ||
           memcmp(s, "None", 4) == 0;
  case 5:
    return memcmp(s, "false", 5) == 0 || memcmp(s, "False", 5) == 0;
  default:
    return 0;
  }
}

static tok_t lex(parser_t *p) {
  const char *s = p->src;
  tok_t t;
  int c, c2;

  memset(&t, 0, sizeof(t));
  while (p->pos < p->len && is_space((unsigned char)s[p->pos]))
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
    size_t i = ident_end(s, p->len, p->pos);
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
    ice__err_set(p->err, ICE__KIND_EXPRESSION, ice__expr_col(p->src, t->off),
                 "%s", p->lex_msg);
  } else {
    char desc[64];

    if (t->kind == T_END)
      snprintf(desc, sizeof(desc), "end of expression");
    else if (t->kind == T_STR)
      snprintf(desc, sizeof(desc), "string literal");
    else
      snprintf(desc, sizeof(desc), "'%.*s'", (int)(t->len > 30 ? 30 : t->len),
               p->src + t->off);
    ice__err_set(p->err, ICE__KIND_EXPRESSION, ice__expr_col(p->src, t->off),
                 fmt, what != NULL ? what : desc, desc);
  }
  return NULL;
}

static node *fail_at(parser_t *p, size_t off, const char *msg) {
  if (!p->failed) {
    p->failed = true;
    ice__err_set(p->err, ICE__KIND_EXPRESSION, ice__expr_col(p->src, off), "%s",
                 msg);
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

/* The most common expression by far, a name and keys (`n5.x`, a template
 * reading a node's output): its number of keys, or -1 when src is
 * anything else (a key after a space, an index, a keyword...), which the
 * parser reads. */
static long simple_path_keys(const char *s, size_t len) {
  size_t i = 0, start, end;
  long nsegs = 0;

  while (i < len && is_space((unsigned char)s[i]))
    i++;
  start = i;
  end = ident_end(s, len, i);
  if (end == start || ice__expr_is_keyword(s + start, end - start))
    return -1;
  for (i = end; i < len && s[i] == '.'; i = end, nsegs++) {
    end = ident_end(s, len, i + 1);
    if (end == i + 1)
      return -1;
  }
  for (i = end; i < len && is_space((unsigned char)s[i]); i++)
    ;
  return i == len ? nsegs : -1;
}

/* The N_PATH the parser would build for such a src (e->src, len bytes),
 * in n, with room for its nsegs keys right after it (the expression's one
 * allocation; node_free knows). A key equal to *last is shared with it,
 * and *last is then the last key made: a template of many expressions
 * reads the same key from many nodes. 0, or -1 on ENOMEM. */
static int simple_path(node *n, const char *s, size_t len, size_t nsegs,
                       json_t **last) {
  size_t i = 0, start;

  while (is_space((unsigned char)s[i]))
    i++;
  start = i;
  n->kind = N_PATH;
  n->off = n->start = start;
  n->height = 1;
  n->name = s + start;
  n->name_len = ident_end(s, len, start) - start;
  n->end = start + n->name_len;
  n->segs = nsegs > 0 ? (seg_t *)(n + 1) : NULL;
  for (i = n->end; n->nsegs < nsegs; n->nsegs++) {
    size_t k = i + 1, ke = ident_end(s, len, k);
    json_t *key = last != NULL ? *last : NULL;
    n->segs[n->nsegs].kind = SEG_KEY;
    if (key != NULL && json_string_length(key) == ke - k &&
        memcmp(json_string_value(key), s + k, ke - k) == 0) {
      json_incref(key);
    } else {
      /* ASCII letters, digits and '_': nothing for jansson to check. */
      if ((key = json_stringn_nocheck(s + k, ke - k)) == NULL)
        return -1;
      if (last != NULL) {
        json_decref(*last);
        *last = json_incref(key);
      }
    }
    n->segs[n->nsegs].key = key;
    n->end = ke;
    i = ke;
  }
  return 0;
}

int ice__expr_parse(const char *src, size_t len, ice__expr_t **out,
                    ice__err_t *err) {
  return ice__expr_parse_keys(src, len, out, err, NULL);
}

int ice__expr_parse_keys(const char *src, size_t len, ice__expr_t **out,
                         ice__err_t *err, json_t **last_key) {
  parser_t p;
  ice__expr_t *e;
  long nsegs = simple_path_keys(src, len);
  size_t room = sizeof(*e) + len + 1, at = 0;
  int in_arena = 0;

  *out = NULL;
  /* The source right after the struct, and a simple path's node after
   * that: one allocation (a template of 10,000 expressions makes 10,000). */
  if (nsegs >= 0) {
    at = (room + 15) & ~(size_t)15;
    room = at + sizeof(node) + (size_t)nsegs * sizeof(seg_t);
  }
  /* A simple path is made in the workflow's arena while a streamed load
   * compiles a plain node (only there is one in use). */
  if (len >= SIZE_MAX / 2)
    e = NULL;
  else if (nsegs >= 0)
    e = ice__arena_calloc(room, &in_arena);
  else
    e = ice__calloc(1, room);
  if (e == NULL)
    return ice__err_set(err, ICE__KIND_EXPRESSION, 0, "out of memory");
  e->in_arena = in_arena;
  e->src = (char *)(e + 1);
  memcpy(e->src, src, len);
  e->src[len] = '\0';
  e->len = len;

  memset(&p, 0, sizeof(p));
  p.src = e->src;
  p.len = len;
  p.prev = T_END;
  p.err = err;
  if (nsegs >= 0) {
    e->root = (node *)((char *)e + at);
    e->root_inline = 1;
    if (simple_path(e->root, e->src, len, (size_t)nsegs, last_key) != 0) {
      ice__expr_free(e);
      return ice__err_set(err, ICE__KIND_EXPRESSION, 0, "out of memory");
    }
    goto parsed;
  }
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
parsed:
  /* A workflow being built learns which names its expressions read. */
  if (ice__expr_collected(e) != 0) {
    ice__expr_free(e);
    return ice__err_set(err, ICE__KIND_EXPRESSION, 0, "out of memory");
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
  if (e->root_inline) {
    /* A simple path, in e's allocation: its keys only. */
    for (size_t i = 0; i < e->root->nsegs; i++)
      json_decref(e->root->segs[i].key);
  } else {
    node_free(e->root);
  }
  if (!e->in_arena)
    ice__free(e);
}
