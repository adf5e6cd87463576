/* A quick reader for the common workflow file: the JSON text of a valid
 * document turned into the same jansson values that json_loadb(text, len,
 * JSON_REJECT_DUPLICATES) gives, at a fraction of its cost (jansson reads a
 * character at a time through a stream). It only knows the plain case and
 * gives up on anything else (an escape \u, a number that does not fit, a
 * duplicate key, any syntax error, nesting deeper than the file limit): the
 * caller then reads the text the old way, which reports what it must. So it
 * never decides what a file means, only reads faster what jansson would
 * read the same. */
#include "jsonrd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *p, *end;
} rd_t;

static void skip_ws(rd_t *r) {
  r->p = ice__json_ws(r->p, r->end);
}

/* A string after its opening quote: its length, or -1 when it is not a
 * plain one. Its bytes are at *out: in the text itself when it holds no
 * escape (most strings), else in buf (malloc'd, grown as needed). *ascii
 * is cleared when it holds a byte >= 0x80 (jansson checks that UTF-8
 * then). */
static long read_string(rd_t *r, char **buf, size_t *cap, int *ascii,
                        const char **out) {
  size_t n = 0;
  const char *start = r->p;

  *ascii = 1;
  /* No escape up to the closing quote: the text is the string. */
  while (r->p < r->end) {
    unsigned char c = (unsigned char)*r->p;
    if (c == '"') {
      *out = start;
      r->p++;
      return (long)(r->p - 1 - start);
    }
    if (c == '\\' || c < 0x20)
      break;
    if (c >= 0x80)
      *ascii = 0;
    r->p++;
  }
  r->p = start;
  *out = NULL;
  for (;;) {
    const char *s = r->p;
    size_t run;
    /* The bytes up to the next quote, backslash or control character. */
    while (r->p < r->end) {
      unsigned char c = (unsigned char)*r->p;
      if (c == '"' || c == '\\' || c < 0x20)
        break;
      if (c >= 0x80)
        *ascii = 0;
      r->p++;
    }
    if (r->p >= r->end || (unsigned char)*r->p < 0x20)
      return -1;
    run = (size_t)(r->p - s);
    if (n + run + 2 > *cap) {
      size_t ncap = (n + run + 2) * 2;
      char *nb = ice__realloc(*buf, ncap);
      if (nb == NULL)
        return -1;
      *buf = nb;
      *cap = ncap;
    }
    memcpy(*buf + n, s, run);
    n += run;
    if (*r->p == '"') {
      r->p++;
      (*buf)[n] = '\0';
      *out = *buf;
      return (long)n;
    }
    /* A backslash: the short escapes; \u goes the old way. */
    if (r->p + 1 >= r->end)
      return -1;
    switch (r->p[1]) {
    case '"':
    case '\\':
    case '/':
      (*buf)[n++] = r->p[1];
      break;
    case 'b':
      (*buf)[n++] = '\b';
      break;
    case 'f':
      (*buf)[n++] = '\f';
      break;
    case 'n':
      (*buf)[n++] = '\n';
      break;
    case 'r':
      (*buf)[n++] = '\r';
      break;
    case 't':
      (*buf)[n++] = '\t';
      break;
    default:
      return -1;
    }
    r->p += 2;
  }
}

/* Short ASCII strings that recur in a workflow (node types, tool names,
 * an id named again in a dependency) are made once and shared: the
 * document is never changed in place, and a shared string saves two
 * allocations and 80 bytes. The table holds one reference to each. */
#define INTERN_MAX_LEN 24

typedef struct {
  json_t **slots;
  size_t cap, used;
} intern_t;

static int intern_grow(intern_t *t) {
  size_t ncap = t->cap == 0 ? 1024 : t->cap * 2;
  json_t **ns = ice__calloc(ncap, sizeof(*ns));

  if (ns == NULL)
    return -1;
  for (size_t i = 0; i < t->cap; i++) {
    json_t *v = t->slots[i];
    size_t k;
    if (v == NULL)
      continue;
    k = ice__fnv1a32(json_string_value(v), json_string_length(v)) & (ncap - 1);
    while (ns[k] != NULL)
      k = (k + 1) & (ncap - 1);
    ns[k] = v;
  }
  ice__free(t->slots);
  t->slots = ns;
  t->cap = ncap;
  return 0;
}

static void intern_free(intern_t *t) {
  for (size_t i = 0; i < t->cap; i++)
    json_decref(t->slots[i]);
  ice__free(t->slots);
}

static json_t *new_string(intern_t *t, const char *s, size_t n, int ascii) {
  json_t *v;
  size_t k;

  /* jansson checks the UTF-8 of a string it did not read itself. */
  if (!ascii)
    return json_stringn(s, n);
  /* A template ("{{ n5.x }}") is seldom written twice: not worth a slot. */
  if (n > INTERN_MAX_LEN || memchr(s, '{', n) != NULL)
    return json_stringn_nocheck(s, n);
  if ((t->used + 1) * 2 > t->cap && intern_grow(t) != 0)
    return json_stringn_nocheck(s, n);
  for (k = ice__fnv1a32(s, n) & (t->cap - 1); (v = t->slots[k]) != NULL;
       k = (k + 1) & (t->cap - 1)) {
    if (json_string_length(v) == n && memcmp(json_string_value(v), s, n) == 0)
      return json_incref(v);
  }
  v = json_stringn_nocheck(s, n);
  if (v != NULL) {
    t->slots[k] = json_incref(v);
    t->used++;
  }
  return v;
}

/* A number as jansson reads one: an integer when it has no fraction and
 * no exponent (out of range: given up), else a real. */
static json_t *read_number(rd_t *r) {
  const char *s = r->p;
  int real = 0;
  char tmp[64];
  size_t n;

  if (r->p < r->end && *r->p == '-')
    r->p++;
  if (r->p >= r->end || *r->p < '0' || *r->p > '9')
    return NULL;
  if (*r->p == '0' && r->p + 1 < r->end && r->p[1] >= '0' && r->p[1] <= '9')
    return NULL; /* a leading zero */
  while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
    r->p++;
  if (r->p < r->end && *r->p == '.') {
    real = 1;
    r->p++;
    if (r->p >= r->end || *r->p < '0' || *r->p > '9')
      return NULL;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
      r->p++;
  }
  if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
    real = 1;
    r->p++;
    if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
      r->p++;
    if (r->p >= r->end || *r->p < '0' || *r->p > '9')
      return NULL;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
      r->p++;
  }
  n = (size_t)(r->p - s);
  if (!real) {
    /* 18 digits always fit in 64 bits; longer ones go the old way. */
    long long v = 0;
    const char *d = s + (*s == '-');
    if (n - (size_t)(d - s) > 18)
      return NULL;
    for (; d < r->p; d++)
      v = v * 10 + (*d - '0');
    return json_integer(*s == '-' ? -v : v);
  }
  if (n >= sizeof(tmp))
    return NULL;
  memcpy(tmp, s, n);
  tmp[n] = '\0';
  {
    char *end;
    double d = strtod(tmp, &end);
    /* jansson refuses a real that overflows (an underflow is fine). */
    if (end != tmp + n || !isfinite(d))
      return NULL;
    return json_real(d);
  }
}

/* One container being read; an object's pending key is in the text at
 * kptr, or (when it had escapes) in the key stack at koff; klen bytes. */
typedef struct {
  json_t *v;
  const char *kptr;
  size_t koff, klen;
} lvl_t;

typedef struct {
  char *s;
  size_t len, cap;
} keys_t;

static int push_key(keys_t *k, const char *s, size_t n) {
  if (k->len + n + 1 > k->cap) {
    size_t ncap = (k->len + n + 1) * 2;
    char *ns = ice__realloc(k->s, ncap);
    if (ns == NULL)
      return -1;
    k->s = ns;
    k->cap = ncap;
  }
  memcpy(k->s + k->len, s, n);
  k->s[k->len + n] = '\0';
  k->len += n + 1;
  return 0;
}

/* What a read does besides building the value: with each set, the
 * elements of the root object's "nodes" array are offered to take() as
 * they start, which may read one itself (0) or leave it (1), and those it
 * leaves are handed to each() once read, instead of being appended (see
 * ice__json_fast_stream). */
typedef struct {
  int (*take)(void *ud, json_t *root, ice__jrd_t *j);
  int (*each)(void *ud, json_t *root, json_t *item);
  void *ud;
  int in_nodes;   /* st[1] is the root's "nodes" array */
  int nodes_seen; /* it has been opened */
} read_opts_t;

/* What reads of one document share: the buffer of a string with escapes,
 * the stack of pending keys that had escapes, the shared short strings. */
typedef struct {
  char *buf;
  size_t cap;
  keys_t keys;
  intern_t strs;
} scratch_t;

/* One value at r->p (r->p then after it), nested under `above` levels
 * already open. */
static json_t *read_value(rd_t *r, scratch_t *sc, read_opts_t *o, int above) {
  lvl_t st[ICE__DOC_MAX_DEPTH];
  int depth = 0;
  json_t *root = NULL, *v = NULL;

  for (;;) {
    lvl_t *top;
    /* A value starts here. */
    skip_ws(r);
    if (r->p >= r->end)
      goto fail;
    if (depth == 2 && o->in_nodes && o->take != NULL && *r->p == '{') {
      /* A node: take() may read it itself, else it is read here. */
      const char *at = r->p;
      ice__jrd_t j = {r->p, r->end, sc};
      int t = o->take(o->ud, st[0].v, &j);
      if (t < 0)
        goto fail;
      if (t == 0) {
        r->p = j.p;
        goto attach; /* v is NULL: nothing to attach */
      }
      r->p = at;
    }
    switch (*r->p) {
    case '{':
    case '[': {
      int obj = *r->p == '{';
      json_t *c;
      if (depth + above == ICE__DOC_MAX_DEPTH)
        goto fail;
      if ((c = obj ? json_object() : json_array()) == NULL)
        goto fail;
      if (o->each != NULL && depth == 1 && !obj && st[0].klen == 5 &&
          memcmp(st[0].kptr != NULL ? st[0].kptr : sc->keys.s + st[0].koff,
                 "nodes", 5) == 0) {
        o->in_nodes = o->nodes_seen = 1;
      }
      st[depth++] = (lvl_t){c, NULL, sc->keys.len, 0};
      r->p++;
      skip_ws(r);
      if (r->p < r->end && *r->p == (obj ? '}' : ']')) {
        r->p++;
        v = c; /* empty: finished at once */
        depth--;
        break;
      }
      if (obj)
        goto key;
      continue;
    }
    case '"': {
      int ascii;
      const char *str;
      long n;
      r->p++;
      n = read_string(r, &sc->buf, &sc->cap, &ascii, &str);
      if (n < 0 || (v = new_string(&sc->strs, str, (size_t)n, ascii)) == NULL)
        goto fail;
      break;
    }
    case 't':
    case 'f':
    case 'n': {
      static const char *const words[] = {"true", "false", "null"};
      int w = *r->p == 't' ? 0 : *r->p == 'f' ? 1 : 2;
      size_t wl = strlen(words[w]);
      if ((size_t)(r->end - r->p) < wl || memcmp(r->p, words[w], wl) != 0)
        goto fail;
      r->p += wl;
      v = w == 0 ? json_true() : w == 1 ? json_false() : json_null();
      break;
    }
    default:
      if ((v = read_number(r)) == NULL)
        goto fail;
    }
    /* v is finished and owned here: attach it to the container it is in,
     * then close every container that ends after it. */
  attach:
    for (;;) {
      int obj;
      if (depth == 0) {
        root = v;
        v = NULL;
        goto done;
      }
      top = &st[depth - 1];
      obj = json_is_object(top->v);
      if (obj) {
        size_t before = json_object_size(top->v);
        /* The key is on top of the key stack: it goes with the member. */
        int rc = json_object_setn_new_nocheck(
            top->v, top->kptr != NULL ? top->kptr : sc->keys.s + top->koff,
            top->klen, v);
        v = NULL;
        sc->keys.len = top->koff;
        /* A duplicate replaced the first value: jansson refuses it. */
        if (rc != 0 || json_object_size(top->v) == before)
          goto fail;
      } else {
        int rc = v == NULL                   ? 0 /* taken */
                 : depth == 2 && o->in_nodes ? o->each(o->ud, st[0].v, v)
                                             : json_array_append_new(top->v, v);
        v = NULL;
        if (rc != 0)
          goto fail;
      }
      skip_ws(r);
      if (r->p >= r->end)
        goto fail;
      if (*r->p == ',') {
        r->p++;
        if (obj)
          goto key;
        break; /* the next element */
      }
      if (*r->p != (obj ? '}' : ']'))
        goto fail;
      r->p++;
      v = top->v;
      depth--;
      if (depth == 1)
        o->in_nodes = 0;
    }
    continue;
  key:
    /* An object's member: "key" : */
    top = &st[depth - 1];
    skip_ws(r);
    if (r->p >= r->end || *r->p != '"')
      goto fail;
    r->p++;
    {
      int ascii;
      const char *str;
      long n = read_string(r, &sc->buf, &sc->cap, &ascii, &str);
      /* A key holding NUL or any byte >= 0x80 goes the old way (jansson
       * checks its UTF-8; such keys are rare). */
      if (n < 0 || !ascii || memchr(str, '\0', (size_t)n) != NULL)
        goto fail;
      top->koff = sc->keys.len;
      top->klen = (size_t)n;
      top->kptr = str != sc->buf ? str : NULL;
      if (top->kptr == NULL && push_key(&sc->keys, sc->buf, (size_t)n) != 0)
        goto fail;
    }
    skip_ws(r);
    if (r->p >= r->end || *r->p != ':')
      goto fail;
    r->p++;
    /* A member after the streamed nodes: they were checked without it. */
    if (depth == 1 && o->nodes_seen)
      goto fail;
  }
done:
  return root;
fail:
  /* Open containers are not attached to their parents until they close. */
  json_decref(v);
  for (int i = 0; i < depth; i++)
    json_decref(st[i].v);
  return NULL;
}

static void scratch_free(scratch_t *sc) {
  ice__free(sc->buf);
  ice__free(sc->keys.s);
  intern_free(&sc->strs);
}

static json_t *read_doc(const char *text, size_t len, read_opts_t *o) {
  rd_t r = {text, text + len};
  scratch_t sc;
  json_t *root = NULL;

  memset(&sc, 0, sizeof(sc));
  skip_ws(&r);
  if (r.p < r.end && (*r.p == '{' || *r.p == '['))
    root = read_value(&r, &sc, o, 0);
  skip_ws(&r);
  scratch_free(&sc);
  if (root != NULL && r.p != r.end) {
    json_decref(root);
    return NULL;
  }
  return root;
}

json_t *ice__json_fast_parse(const char *text, size_t len) {
  read_opts_t o = {0};

  return read_doc(text, len, &o);
}

json_t *ice__json_fast_stream(const char *text, size_t len,
                              int (*take)(void *ud, json_t *root,
                                          ice__jrd_t *j),
                              int (*each)(void *ud, json_t *root, json_t *item),
                              void *ud) {
  read_opts_t o = {.take = take, .each = each, .ud = ud};

  return read_doc(text, len, &o);
}

json_t *ice__jrd_value(ice__jrd_t *j) {
  read_opts_t o = {0};
  rd_t r = {j->p, j->end};
  json_t *v;

  skip_ws(&r);
  /* Inside the root object, "nodes" and a node. */
  v = read_value(&r, j->scratch, &o, 3);
  j->p = r.p;
  return v;
}
