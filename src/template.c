/* Templates of SPEC §3.3. Compiling mirrors the JSON value with a tree that
 * holds only the strings containing `{{` and the containers above them;
 * rendering rebuilds just that spine and shares every other subtree. Also
 * the compact text form of values used in string interpolation and str(). */
#include "template.h"

#include <ice.h>
#include "expr.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Text form of values ---- */

typedef struct {
  char *p;
  size_t len, cap;
  bool oom;
} buf_t;

static void buf_add(buf_t *b, const char *s, size_t n) {
  if (b->oom)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap == 0 ? 64 : b->cap;
    char *p;

    while (cap < b->len + n + 1)
      cap *= 2;
    p = ice__realloc(b->p, cap);
    if (p == NULL) {
      b->oom = true;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void buf_str(buf_t *b, const char *s) {
  buf_add(b, s, strlen(s));
}

/* Compact JSON with no whitespace, keys in insertion order: the one
 * serialiser of jsonfmt.c, so that templates and printed results agree. */
static void add_json(buf_t *b, const json_t *v) {
  char *s = ice_json_format(v, 0);

  if (s == NULL) {
    b->oom = true;
    return;
  }
  buf_str(b, s);
  ice__free(s);
}

/* A value inside a larger string: strings as they are, the rest as JSON. */
static void add_text(buf_t *b, const json_t *v) {
  if (json_is_string(v))
    buf_add(b, json_string_value(v), json_string_length(v));
  else
    add_json(b, v);
}

/* ---- Compiled templates ---- */

typedef struct {
  char *text; /* literal text (NULL for an expression part) */
  size_t len;
  ice__expr_t *expr;
} part_t;

typedef struct tnode tnode;

typedef struct {
  size_t pos; /* index of the child in its array, or in the object order */
  tnode *t;
} kid_t;

struct tnode {
  bool whole;    /* a string that is exactly one template */
  int in_arena;  /* a workflow's (arena.c): not freed on its own */
  part_t *parts; /* &first while it has one (most have) */
  size_t nparts;
  part_t first;
  kid_t *kids;
  size_t nkids;
};

struct ice__tmpl_s {
  json_t *value;
  tnode *root;
};

static void tnode_free(tnode *t) {
  if (t == NULL)
    return;
  for (size_t i = 0; i < t->nparts; i++) {
    ice__free(t->parts[i].text);
    ice__expr_free(t->parts[i].expr);
  }
  for (size_t i = 0; i < t->nkids; i++)
    tnode_free(t->kids[i].t);
  if (t->parts != &t->first)
    ice__free(t->parts);
  ice__free(t->kids);
  if (!t->in_arena)
    ice__free(t);
}

typedef struct {
  ice__err_t *err;
  char path[400]; /* JSON path of the value being compiled, "$.a[0]" */
  size_t plen;
  json_t *last_key; /* shared by the expressions (ice__expr_parse_keys) */
} compiler_t;

/* Accounts for the n bytes a push just wrote at `old` (room bytes were
 * free). A path too long for the buffer ends in "..." instead of growing,
 * since it only decorates error messages. Returns old, for path_pop. */
static size_t path_advance(compiler_t *c, size_t old, int n, size_t room) {
  if (n < 0 || (size_t)n >= room) {
    snprintf(c->path + sizeof(c->path) - 4, 4, "...");
    c->plen = sizeof(c->path) - 1;
  } else {
    c->plen += (size_t)n;
  }
  return old;
}

/* Appends one step to the path: .key, ["odd key"] or [index]. */
static size_t path_push_key(compiler_t *c, const char *key, size_t klen) {
  size_t old = c->plen, room = sizeof(c->path) - c->plen;
  bool ident = klen > 0 && !(key[0] >= '0' && key[0] <= '9');
  int n;

  for (size_t i = 0; i < klen && ident; i++) {
    char ch = key[i];
    ident = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
            (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
  }
  if (ident && klen + 1 < room) {
    /* The common case, without snprintf: every key of every tool_args
     * passes here at validation. */
    c->path[old] = '.';
    memcpy(c->path + old + 1, key, klen);
    c->path[old + 1 + klen] = '\0';
    n = (int)klen + 1;
  } else if (ident)
    n = snprintf(c->path + old, room, ".%.*s", (int)klen, key);
  else
    n = snprintf(c->path + old, room, "[\"%.*s\"]", (int)klen, key);
  return path_advance(c, old, n, room);
}

static size_t path_push_index(compiler_t *c, size_t i) {
  size_t old = c->plen, room = sizeof(c->path) - c->plen;
  char d[24], *p = d + sizeof(d);
  int n;

  /* "[i]" by hand: every element of every templated array passes here. */
  do {
    *--p = (char)('0' + i % 10);
    i /= 10;
  } while (i != 0);
  n = (int)(d + sizeof(d) - p) + 2;
  if ((size_t)n < room) {
    c->path[old] = '[';
    memcpy(c->path + old + 1, p, (size_t)n - 2);
    c->path[old + n - 1] = ']';
    c->path[old + n] = '\0';
  } else {
    n = snprintf(c->path + old, room, "[%.*s]", n - 2, p);
  }

  return path_advance(c, old, n, room);
}

static void path_pop(compiler_t *c, size_t old) {
  c->plen = old;
  c->path[old] = '\0';
}

static int compile_oom(compiler_t *c) {
  return ice__err_set(c->err, ICE__KIND_TEMPLATE, 0, "%s: out of memory",
                      c->path);
}

/* Number of code points in the first `off` bytes of s. */
static int cp_count(const char *s, size_t off) {
  int n = 0;

  for (size_t i = 0; i < off; i++)
    n += ((unsigned char)s[i] & 0xC0) != 0x80;
  return n;
}

/* Where the template opened at `open` (just after "{{") ends: the offset
 * of its "}}", the first one outside a string literal. When a quote is
 * never closed, the first "}}" at all ends it, so that the expression
 * parser can report the unterminated string. Returns -1 when none. */
static long find_close(const char *s, size_t len, size_t open) {
  char quote = 0;

  for (size_t i = open; i < len; i++) {
    if (quote != 0) {
      if (s[i] == '\\')
        i++;
      else if (s[i] == quote)
        quote = 0;
    } else if (s[i] == '\'' || s[i] == '"') {
      quote = s[i];
    } else if (s[i] == '}' && i + 1 < len && s[i + 1] == '}') {
      return (long)i;
    }
  }
  if (quote != 0) {
    for (size_t i = open; i + 1 < len; i++) {
      if (s[i] == '}' && s[i + 1] == '}')
        return (long)i;
    }
  }
  return -1;
}

static bool add_part(tnode *t, char *text, size_t len, ice__expr_t *e) {
  part_t *parts = &t->first;

  if (t->nparts == 1) {
    parts = ice__malloc(2 * sizeof(*parts));
    if (parts != NULL)
      parts[0] = t->first;
  } else if (t->nparts > 1) {
    parts = ice__realloc(t->parts, (t->nparts + 1) * sizeof(*parts));
  }
  if (parts == NULL)
    return false;
  t->parts = parts;
  t->parts[t->nparts].text = text;
  t->parts[t->nparts].len = len;
  t->parts[t->nparts].expr = e;
  t->nparts++;
  return true;
}

static bool add_text_part(tnode *t, const char *s, size_t len) {
  char *text;

  if (len == 0)
    return true;
  /* Copied, since the string may hold NUL bytes and must not be needed
   * later: the compiled form stays valid on its own. */
  text = ice__malloc(len);
  if (text == NULL)
    return false;
  memcpy(text, s, len);
  if (!add_part(t, text, len, NULL)) {
    ice__free(text);
    return false;
  }
  return true;
}

static int compile_string(compiler_t *c, const json_t *v, tnode **out) {
  const char *s = json_string_value(v);
  size_t len = json_string_length(v), at = 0;
  tnode *t;
  int in_arena;

  *out = NULL;
  if (len < 2 || memmem(s, len, "{{", 2) == NULL)
    return 0;
  /* In the workflow's arena while a streamed load compiles a plain node. */
  t = ice__arena_calloc(sizeof(*t), &in_arena);
  if (t == NULL)
    return compile_oom(c);
  t->in_arena = in_arena;
  while (at < len) {
    const char *open = memmem(s + at, len - at, "{{", 2);
    size_t o, e_start;
    long close;
    ice__expr_t *e;
    ice__err_t perr;

    if (open == NULL) {
      if (!add_text_part(t, s + at, len - at))
        goto oom;
      break;
    }
    o = (size_t)(open - s);
    if (!add_text_part(t, s + at, o - at))
      goto oom;
    e_start = o + 2;
    close = find_close(s, len, e_start);
    if (close < 0) {
      ice__err_set(c->err, ICE__KIND_TEMPLATE, cp_count(s, o) + 1,
                   "%s: unterminated '{{'", c->path);
      goto fail;
    }
    if (ice__expr_parse_keys(s + e_start, (size_t)close - e_start, &e, &perr,
                             &c->last_key) != 0) {
      ice__err_set(c->err, perr.kind,
                   cp_count(s, e_start) + (perr.col > 0 ? perr.col : 1),
                   "%s: %s", c->path, perr.msg);
      goto fail;
    }
    if (!add_part(t, NULL, 0, e)) {
      ice__expr_free(e);
      goto oom;
    }
    at = (size_t)close + 2;
  }
  t->whole = t->nparts == 1 && t->parts[0].expr != NULL;
  *out = t;
  return 0;
oom:
  compile_oom(c);
fail:
  tnode_free(t);
  return -1;
}

static int compile_value(compiler_t *c, const json_t *v, tnode **out);

static int add_kid(compiler_t *c, tnode **parent, size_t pos, tnode *kid) {
  kid_t *kids;

  if (*parent == NULL) {
    *parent = ice__calloc(1, sizeof(**parent));
    if (*parent == NULL) {
      tnode_free(kid);
      return compile_oom(c);
    }
  }
  /* Room doubles at each power of two (a template array of 10,000
   * strings must not be reallocated 10,000 times). */
  if (((*parent)->nkids & ((*parent)->nkids - 1)) == 0) {
    size_t room = (*parent)->nkids < 2 ? 4 : (*parent)->nkids * 2;
    kids = ice__realloc((*parent)->kids, room * sizeof(*kids));
    if (kids == NULL) {
      tnode_free(kid);
      return compile_oom(c);
    }
    (*parent)->kids = kids;
  }
  kids = (*parent)->kids;
  kids[(*parent)->nkids].pos = pos;
  kids[(*parent)->nkids].t = kid;
  (*parent)->nkids++;
  return 0;
}

static int compile_value(compiler_t *c, const json_t *v, tnode **out) {
  tnode *t = NULL, *kid;
  size_t pos = 0, old;
  const char *key;
  size_t klen;
  json_t *item;

  *out = NULL;
  if (json_is_string(v))
    return compile_string(c, v, out);
  if (json_is_array(v)) {
    for (pos = 0; pos < json_array_size(v); pos++) {
      old = path_push_index(c, pos);
      if (compile_value(c, json_array_get(v, pos), &kid) != 0)
        goto fail;
      path_pop(c, old);
      if (kid != NULL && add_kid(c, &t, pos, kid) != 0)
        goto fail;
    }
  } else if (json_is_object(v)) {
    json_object_keylen_foreach((json_t *)v, key, klen, item) {
      old = path_push_key(c, key, klen);
      if (compile_value(c, item, &kid) != 0)
        goto fail;
      path_pop(c, old);
      if (kid != NULL && add_kid(c, &t, pos, kid) != 0)
        goto fail;
      pos++;
    }
  }
  *out = t;
  return 0;
fail:
  tnode_free(t);
  return -1;
}

int ice__tmpl_compile(json_t *value, ice__tmpl_t **out, ice__err_t *err) {
  compiler_t c;
  tnode *root;
  int rc;

  *out = NULL;
  c.err = err;
  strcpy(c.path, "$");
  c.plen = 1;
  c.last_key = NULL;
  rc = compile_value(&c, value, &root);
  json_decref(c.last_key);
  if (rc != 0)
    return -1;
  if (root == NULL)
    return 0;
  *out = ice__calloc(1, sizeof(**out));
  if (*out == NULL) {
    tnode_free(root);
    return ice__err_set(err, ICE__KIND_TEMPLATE, 0, "out of memory");
  }
  (*out)->value = json_incref(value);
  (*out)->root = root;
  return 0;
}

/* ---- Rendering ---- */

static int render_oom(ice__err_t *err) {
  return ice__err_set(err, ICE__KIND_INTERNAL, 0, "out of memory");
}

typedef struct {
  ice__lookup_fn lookup;
  void *data;
  ice__err_t *err;
} render_t;

static int render_string(const render_t *r, const tnode *t, json_t **out) {
  buf_t b = {NULL, 0, 0, false};

  if (t->whole)
    return ice__expr_eval(t->parts[0].expr, r->lookup, r->data, out, r->err);
  for (size_t i = 0; i < t->nparts; i++) {
    json_t *v;

    if (t->parts[i].expr == NULL) {
      buf_add(&b, t->parts[i].text, t->parts[i].len);
      continue;
    }
    if (ice__expr_eval(t->parts[i].expr, r->lookup, r->data, &v, r->err) != 0) {
      ice__free(b.p);
      return -1;
    }
    add_text(&b, v);
    json_decref(v);
  }
  buf_add(&b, "", 0);
  /* Literal text and inserted values are whole UTF-8 strings each. */
  *out = b.oom ? NULL : json_stringn_nocheck(b.p, b.len);
  ice__free(b.p);
  return *out == NULL ? render_oom(r->err) : 0;
}

static int render_value(const render_t *r, const tnode *t, json_t *v,
                        json_t **out);

/* Rebuilds a container: templated children are rendered, the others are
 * the very same values (a new reference each, no copy). */
static int render_container(const render_t *r, const tnode *t, json_t *v,
                            json_t **out) {
  size_t k = 0, pos = 0;
  json_t *res, *item, *nv;
  const char *key;
  size_t klen;
  int fail = 0;

  res = json_is_array(v) ? json_array() : json_object();
  if (res == NULL)
    return render_oom(r->err);
  if (json_is_array(v)) {
    for (pos = 0; pos < json_array_size(v) && !fail; pos++) {
      item = json_array_get(v, pos);
      if (k < t->nkids && t->kids[k].pos == pos) {
        if (render_value(r, t->kids[k++].t, item, &nv) != 0) {
          json_decref(res);
          return -1;
        }
      } else {
        nv = json_incref(item);
      }
      fail = json_array_append_new(res, nv);
    }
  } else {
    json_object_keylen_foreach(v, key, klen, item) {
      if (k < t->nkids && t->kids[k].pos == pos) {
        if (render_value(r, t->kids[k++].t, item, &nv) != 0) {
          json_decref(res);
          return -1;
        }
      } else {
        nv = json_incref(item);
      }
      pos++;
      if ((fail = json_object_setn_new(res, key, klen, nv)) != 0)
        break;
    }
  }
  if (fail) {
    json_decref(res);
    return render_oom(r->err);
  }
  *out = res;
  return 0;
}

static int render_value(const render_t *r, const tnode *t, json_t *v,
                        json_t **out) {
  *out = NULL;
  if (t->nparts > 0)
    return render_string(r, t, out);
  return render_container(r, t, v, out);
}

int ice__tmpl_render(const ice__tmpl_t *t, ice__lookup_fn lookup, void *data,
                     json_t **out, ice__err_t *err) {
  render_t r = {lookup, data, err};

  return render_value(&r, t->root, t->value, out);
}

int ice__tmpl_render_or_share(const ice__tmpl_t *t, json_t *value,
                              ice__lookup_fn lookup, void *data, json_t **out,
                              ice__err_t *err) {
  if (t == NULL) {
    *out = json_incref(value);
    return 0;
  }
  return ice__tmpl_render(t, lookup, data, out, err);
}

void ice__tmpl_free(ice__tmpl_t *t) {
  if (t == NULL)
    return;
  tnode_free(t->root);
  json_decref(t->value);
  ice__free(t);
}
