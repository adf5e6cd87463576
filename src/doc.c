/* JSON and YAML text -> jansson values, keeping source positions.
 *
 * Both syntaxes go through libfyaml's event parser (JSON in its JSON mode),
 * so there is one converter, with an explicit stack (no recursion) and a
 * depth limit, and every container and member gets a line and column.
 * Workflow semantics live in load.c; this file only knows syntax. The
 * position table is pos.c. */
#include "doc.h"

#include <errno.h>
#include <libfyaml.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_word(const char *s, size_t n, const char *const *words) {
  for (; *words != NULL; words++) {
    if (strlen(*words) == n && memcmp(s, *words, n) == 0)
      return 1;
  }
  return 0;
}

static int all_digits(const char *s, size_t n, int base) {
  if (n == 0)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    int ok = base == 16  ? ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                           (c >= 'A' && c <= 'F'))
             : base == 8 ? (c >= '0' && c <= '7')
                         : (c >= '0' && c <= '9');
    if (!ok)
      return 0;
  }
  return 1;
}

/* A decimal float as YAML 1.2 core / JSON write it: digits with at most one
 * point and an optional exponent. */
static int looks_float(const char *s, size_t n) {
  size_t i = 0, digits = 0;

  if (i < n && (s[i] == '-' || s[i] == '+'))
    i++;
  while (i < n && s[i] >= '0' && s[i] <= '9') {
    i++;
    digits++;
  }
  if (i < n && s[i] == '.') {
    i++;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
      i++;
      digits++;
    }
  }
  if (digits == 0)
    return 0;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < n && (s[i] == '-' || s[i] == '+'))
      i++;
    if (i >= n || s[i] < '0' || s[i] > '9')
      return 0;
    while (i < n && s[i] >= '0' && s[i] <= '9')
      i++;
  }
  return i == n;
}

/* Resolves a plain scalar (YAML core schema; JSON literals and numbers).
 * Returns a new value, or NULL with a message in msg; *soft is set when
 * the problem is a number out of range (the rest of the file is fine). */
static json_t *plain_scalar(const char *s, size_t n, int is_json, char *msg,
                            size_t msglen, int *soft) {
  static const char *const nulls[] = {"null", "Null", "NULL", "~", NULL};
  static const char *const trues[] = {"true", "True", "TRUE", NULL};
  static const char *const falses[] = {"false", "False", "FALSE", NULL};
  const char *what = NULL; /* the message, when the scalar is refused */
  json_t *v = NULL;
  char *buf;

  *soft = 0;

  if (is_json) {
    if (n == 4 && memcmp(s, "null", 4) == 0)
      return json_null();
    if (n == 4 && memcmp(s, "true", 4) == 0)
      return json_true();
    if (n == 5 && memcmp(s, "false", 5) == 0)
      return json_false();
  } else {
    if (n == 0 || is_word(s, n, nulls))
      return json_null();
    if (is_word(s, n, trues))
      return json_true();
    if (is_word(s, n, falses))
      return json_false();
  }
  buf = ice__strndup(s, n);
  if (buf == NULL) {
    snprintf(msg, msglen, "out of memory");
    return NULL;
  }
  {
    size_t sign = (buf[0] == '-' || buf[0] == '+') ? 1 : 0;
    int base = 10;
    const char *digits = buf + sign;
    if (!is_json && sign == 0 && n > 2 && buf[0] == '0' &&
        (buf[1] == 'x' || buf[1] == 'o')) {
      base = buf[1] == 'x' ? 16 : 8;
      digits = buf + 2;
    }
    if (all_digits(digits, strlen(digits), base)) {
      char *end;
      long long x;
      errno = 0;
      /* Base 10 parses the sign too, so INT64_MIN fits. */
      x = strtoll(base == 10 ? buf : digits, &end, base);
      if (errno == ERANGE || *end != '\0') {
        what = "integer %.40s%s is out of range (64-bit)";
        *soft = 1;
      } else
        v = json_integer(x);
    } else if (looks_float(buf, n)) {
      double d = strtod(buf, NULL);
      if (!isfinite(d)) {
        what = "number %.40s%s is out of range";
        *soft = 1;
      } else
        v = json_real(d);
    } else if (!is_json) {
      v = json_stringn(s, n);
    } else {
      what = "invalid JSON value '%.40s%s'";
    }
  }
  if (what != NULL)
    snprintf(msg, msglen, what, buf, n > 40 ? "..." : "");
  else if (v == NULL)
    snprintf(msg, msglen, "out of memory");
  ice__free(buf);
  return v;
}

/* Workflow files are UTF-8 text; say so plainly instead of letting the
 * parser report a confusing syntax error. NUL bytes count as invalid. */
static int valid_utf8(const char *text, size_t len, int *line, int *col) {
  const unsigned char *p = (const unsigned char *)text;
  int l = 1, c = 1;

  for (size_t i = 0; i < len;) {
    unsigned char b = p[i];
    size_t need = b < 0x80         ? 0
                  : (b >> 5) == 6  ? 1
                  : (b >> 4) == 14 ? 2
                  : (b >> 3) == 30 ? 3
                                   : 9;
    if (b == 0 || need == 9 || i + need >= len + (need == 0))
      goto bad;
    for (size_t k = 1; k <= need; k++) {
      if ((p[i + k] & 0xc0) != 0x80)
        goto bad;
    }
    /* CR, LF and CRLF each end a line, as for the parser. */
    if (b == '\n' || (b == '\r' && (i + 1 >= len || p[i + 1] != '\n'))) {
      l++;
      c = 1;
    } else if (b == '\r') {
      /* the CR of a CRLF: the LF ends the line */
    } else {
      c++;
    }
    i += need + 1;
  }
  return 1;
bad:
  *line = l;
  *col = c;
  return 0;
}

int ice__json_too_deep(json_t *root, int max) {
  /* Iterative: the value may be nested deeper than the C stack allows. */
  struct {
    json_t *v;
    void *it;
    size_t i;
  } * st;
  int depth = 0, deep = 0;

  if (!json_is_object(root) && !json_is_array(root))
    return 0;
  st = ice__malloc(sizeof(*st) * ((size_t)max + 2));
  if (st == NULL)
    return 1;
  st[0].v = root;
  st[0].it = json_object_iter(root);
  st[0].i = 0;
  while (depth >= 0 && !deep) {
    json_t *c = st[depth].v, *next = NULL;
    if (json_is_object(c)) {
      if (st[depth].it != NULL) {
        next = json_object_iter_value(st[depth].it);
        st[depth].it = json_object_iter_next(c, st[depth].it);
      }
    } else if (st[depth].i < json_array_size(c)) {
      next = json_array_get(c, st[depth].i++);
    }
    if (next == NULL) {
      depth--;
    } else if (json_is_object(next) || json_is_array(next)) {
      if (depth + 1 >= max) {
        deep = 1;
      } else {
        depth++;
        st[depth].v = next;
        st[depth].it = json_object_iter(next);
        st[depth].i = 0;
      }
    }
  }
  ice__free(st);
  return deep;
}

/* ---- the converter ------------------------------------------------------ */

typedef struct {
  json_t *v;
  char *key; /* pending mapping key; NULL when a key is expected */
  int key_line, key_col;
  size_t index;
  int dup; /* the pending key is a duplicate: its value is skipped */
} frame_t;

typedef struct {
  frame_t stack[ICE__DOC_MAX_DEPTH + 1];
  int depth;
  json_t *root;
  int ndocs;
  ice__posmap_t *pm;
  int is_json;
  char *msg;
  size_t msglen;
  int line, col;
  int diag_seen, diag_line, diag_col;
  char diag_msg[256];
  ice_diags_t *soft; /* NULL: every problem stops the parse */
  const char *file;
  int nsoft;
  int skip; /* > 0 while inside the value of a duplicate key */
} conv_t;

static int fail_at(conv_t *cv, const struct fy_mark *m, const char *fmt,
                   const char *arg) {
  if (m != NULL) {
    cv->line = m->line + 1;
    cv->col = m->column + 1;
  }
  snprintf(cv->msg, cv->msglen, fmt, arg);
  return -1;
}

/* A problem after which parsing can go on: recorded in cv->soft and 0
 * returned, or, without cv->soft, a failure like fail_at. */
static int soft_at(conv_t *cv, const struct fy_mark *m, const char *msg) {
  if (cv->soft == NULL)
    return fail_at(cv, m, "%s", msg);
  cv->nsoft++;
  if (ice__diags_add_sev(cv->soft, ICE_DIAG_ERROR, cv->file, m->line + 1,
                         m->column + 1, msg) != 0)
    return fail_at(cv, NULL, "%s", "out of memory");
  return 0;
}

/* Attaches a finished value v (reference taken) to the current container or
 * makes it the root. */
static int attach(conv_t *cv, json_t *v, const struct fy_mark *m) {
  int line = m->line + 1, col = m->column + 1;

  if (cv->depth == 0) {
    if (cv->root != NULL) {
      json_decref(v);
      return fail_at(cv, m, "%s", "more than one document in the file");
    }
    cv->root = v;
    return 0;
  }
  frame_t *f = &cv->stack[cv->depth - 1];
  if (json_is_array(f->v)) {
    ice__pos_put(cv->pm, f->v, ice__pos_index(f->index), line, col);
    f->index++;
    return json_array_append_new(f->v, v) == 0 ? 0 : -1;
  }
  if (f->key == NULL) {
    /* v is a key: only scalars (strings) can be keys. */
    if (!json_is_string(v)) {
      const char *what = json_is_object(v) || json_is_array(v)
                             ? "a mapping key must be a string, not a "
                               "collection"
                             : NULL;
      if (what != NULL) {
        json_decref(v);
        return fail_at(cv, m, "%s", what);
      }
      /* YAML plain keys like `1:` or `true:` become their text. */
      char *txt = json_dumps(v, JSON_ENCODE_ANY);
      json_decref(v);
      if (txt == NULL)
        return -1;
      f->key = txt;
    } else {
      f->key = ice__strdup(json_string_value(v));
      json_decref(v);
      if (f->key == NULL)
        return -1;
    }
    if (json_object_get(f->v, f->key) != NULL) {
      char msg[320];
      snprintf(msg, sizeof(msg), "duplicate key '%.200s'", f->key);
      /* The first value is kept; this one is skipped (SPEC §4.1: go on). */
      f->dup = 1;
      return soft_at(cv, m, msg);
    }
    f->key_line = line;
    f->key_col = col;
    return 0;
  }
  ice__pos_put(cv->pm, f->v, ice__pos_key(f->key), f->key_line, f->key_col);
  int rc = json_object_set_new(f->v, f->key, v);
  ice__free(f->key);
  f->key = NULL;
  return rc == 0 ? 0 : -1;
}

/* ---- YAML tags: the YAML 1.2 core schema's ------------------------------ */

typedef enum {
  TAG_NONE,
  TAG_STR,
  TAG_INT,
  TAG_FLOAT,
  TAG_BOOL,
  TAG_NULL,
  TAG_MAP,
  TAG_SEQ,
  TAG_OTHER
} tag_t;

static const char *const tag_names[] = {
    "", "!!str", "!!int", "!!float", "!!bool", "!!null", "!!map", "!!seq", ""};

static tag_t tag_kind(struct fy_token *tok, char *text, size_t textlen) {
  static const char core[] = "tag:yaml.org,2002:";
  size_t n = 0;
  const char *t;

  text[0] = '\0';
  if (tok == NULL)
    return TAG_NONE;
  t = fy_token_get_text(tok, &n);
  if (t == NULL)
    return TAG_NONE;
  snprintf(text, textlen, "%.*s", (int)(n > 100 ? 100 : n), t);
  /* The non-specific tag `!` makes a scalar a string (YAML 1.2 §6.9). */
  if (n == 1 && t[0] == '!')
    return TAG_STR;
  if (n > sizeof(core) - 1 && memcmp(t, core, sizeof(core) - 1) == 0) {
    t += sizeof(core) - 1;
    n -= sizeof(core) - 1;
  } else if (n > 2 && t[0] == '!' && t[1] == '!') {
    t += 2;
    n -= 2;
  } else {
    return TAG_OTHER;
  }
  for (int k = TAG_STR; k < TAG_OTHER; k++) {
    if (strlen(tag_names[k]) - 2 == n && memcmp(tag_names[k] + 2, t, n) == 0)
      return (tag_t)k;
  }
  return TAG_OTHER;
}

/* A collection's tag must be absent, `!`, or the core tag of its kind. */
static int check_collection_tag(conv_t *cv, struct fy_token *tok, int is_map,
                                const struct fy_mark *m) {
  char text[128], msg[256];
  tag_t k = tag_kind(tok, text, sizeof(text));

  if (k == TAG_NONE || (k == TAG_STR && strcmp(text, "!") == 0) ||
      k == (is_map ? TAG_MAP : TAG_SEQ))
    return 0;
  if (k == TAG_OTHER)
    snprintf(msg, sizeof(msg), "unsupported YAML tag '%s'", text);
  else
    snprintf(msg, sizeof(msg), "a %s tag cannot be put on a %s", tag_names[k],
             is_map ? "mapping" : "sequence");
  return soft_at(cv, m, msg);
}

/* The value of a scalar of text s under tag k (YAML), or as the plain /
 * quoted rules give it. Returns a new value or NULL; on NULL, a problem
 * was reported (-1 in *rc when it stops the parse). */
static json_t *scalar_value(conv_t *cv, const char *s, size_t n,
                            enum fy_scalar_style st, tag_t k,
                            const char *tagtext, const struct fy_mark *m,
                            int *rc) {
  char msg[256];
  int soft = 0;
  json_t *v;

  *rc = 0;
  if (k == TAG_OTHER || k == TAG_MAP || k == TAG_SEQ) {
    if (k == TAG_OTHER)
      snprintf(msg, sizeof(msg), "unsupported YAML tag '%s'", tagtext);
    else
      snprintf(msg, sizeof(msg), "a %s tag cannot be put on a scalar",
               tag_names[k]);
    if ((*rc = soft_at(cv, m, msg)) != 0)
      return NULL;
    k = TAG_NONE; /* the scalar keeps its untagged meaning */
  }
  if (k == TAG_STR || (k == TAG_NONE && st != FYSS_PLAIN)) {
    v = json_stringn(s, n);
    if (v == NULL)
      *rc = fail_at(cv, m, "%s", "string is not valid UTF-8");
    return v;
  }
  v = plain_scalar(s, n, cv->is_json, msg, sizeof(msg), &soft);
  if (v == NULL) {
    *rc = soft ? soft_at(cv, m, msg) : fail_at(cv, m, "%s", msg);
    return *rc == 0 ? json_null() : NULL;
  }
  if (k == TAG_NONE)
    return v;
  /* A tagged scalar must resolve to its tag's type (`!!int "5"` is 5); an
   * integer is also a valid !!float. */
  if (k == TAG_FLOAT && json_is_integer(v)) {
    json_t *r = json_real((double)json_integer_value(v));
    json_decref(v);
    return r;
  }
  if ((k == TAG_INT && json_is_integer(v)) ||
      (k == TAG_FLOAT && json_is_real(v)) ||
      (k == TAG_BOOL && json_is_boolean(v)) ||
      (k == TAG_NULL && json_is_null(v)))
    return v;
  json_decref(v);
  snprintf(msg, sizeof(msg), "'%.*s%s' is not a valid %s",
           (int)(n > 40 ? 40 : n), s, n > 40 ? "..." : "", tag_names[k]);
  if ((*rc = soft_at(cv, m, msg)) != 0)
    return NULL;
  return json_null();
}

/* Skips the value of a duplicate key; 1 when ev belonged to it. */
static int skip_dup_value(conv_t *cv, const struct fy_event *ev) {
  frame_t *f;

  if (cv->skip > 0) {
    if (ev->type == FYET_MAPPING_START || ev->type == FYET_SEQUENCE_START) {
      cv->skip++;
    } else if (ev->type == FYET_MAPPING_END || ev->type == FYET_SEQUENCE_END) {
      if (--cv->skip == 0)
        goto done;
    }
    return 1;
  }
  if (cv->depth == 0)
    return 0;
  f = &cv->stack[cv->depth - 1];
  if (!f->dup || f->key == NULL)
    return 0;
  if (ev->type == FYET_MAPPING_START || ev->type == FYET_SEQUENCE_START) {
    cv->skip = 1;
    return 1;
  }
  if (ev->type != FYET_SCALAR && ev->type != FYET_ALIAS)
    return 0;
done:
  f = &cv->stack[cv->depth - 1];
  ice__free(f->key);
  f->key = NULL;
  f->dup = 0;
  return 1;
}

static int on_event(conv_t *cv, struct fy_event *ev) {
  const struct fy_mark *m = fy_event_start_mark(ev);
  struct fy_mark none = {0, -1, -1};
  json_t *v;

  /* An empty scalar (`key:` with no value) has no mark. */
  if (m == NULL)
    m = &none;
  if (skip_dup_value(cv, ev))
    return 0;
  switch (ev->type) {
  case FYET_DOCUMENT_START:
    if (++cv->ndocs > 1)
      return fail_at(cv, m, "%s", "more than one document in the file");
    return 0;
  case FYET_MAPPING_START:
  case FYET_SEQUENCE_START: {
    int is_map = ev->type == FYET_MAPPING_START;
    if (cv->depth >= ICE__DOC_MAX_DEPTH)
      return fail_at(cv, m, "nesting deeper than %s levels", "256");
    if (check_collection_tag(
            cv, is_map ? ev->mapping_start.tag : ev->sequence_start.tag, is_map,
            m) != 0)
      return -1;
    v = is_map ? json_object() : json_array();
    if (v == NULL)
      return -1;
    ice__pos_put(cv->pm, v, ICE__POS_SELF, m->line + 1, m->column + 1);
    cv->stack[cv->depth] = (frame_t){v, NULL, 0, 0, 0, 0};
    cv->depth++;
    return 0;
  }
  case FYET_MAPPING_END:
  case FYET_SEQUENCE_END: {
    frame_t *f = &cv->stack[--cv->depth];
    const struct fy_mark *sm = NULL;
    struct fy_mark start;
    int l = 0, c = 0;
    ice__pos_get(cv->pm, f->v, ICE__POS_SELF, &l, &c);
    start = (struct fy_mark){0, l - 1, c - 1};
    sm = &start;
    return attach(cv, f->v, sm);
  }
  case FYET_SCALAR: {
    struct fy_token *t = ev->scalar.value;
    size_t n = 0;
    char tagtext[128];
    /* libfyaml 0.7.12 leaks inside this call on a single-quoted scalar of
     * five or more '' escapes (its fy_atom_format_text; the text is right):
     * see tests/lsan.supp. */
    const char *s = fy_token_get_text(t, &n);
    tag_t k = tag_kind(ev->scalar.tag, tagtext, sizeof(tagtext));
    int rc;
    if (s == NULL) {
      s = "";
      n = 0;
    }
    v = scalar_value(cv, s, n, fy_token_scalar_style(t), k, tagtext, m, &rc);
    if (v == NULL)
      return rc != 0 ? rc : -1;
    return attach(cv, v, m);
  }
  case FYET_ALIAS:
    return fail_at(cv, m, "%s", "YAML aliases (*name) are not supported");
  default:
    return 0;
  }
}

/* libfyaml reports through a diag object as formatted text
 * "<input>:LINE:COL: error: MESSAGE"; keep the first error's parts. */
static void diag_out(struct fy_diag *d, void *user, const char *buf,
                     size_t len) {
  conv_t *cv = user;
  const char *mark = "error: ";
  const char *e, *p;
  int line = 0, col = 0;

  (void)d;
  if (cv->diag_seen || len == 0)
    return;
  e = memmem(buf, len, mark, strlen(mark));
  if (e == NULL)
    return;
  /* Walk back over ": " then COL, ':' and LINE. */
  p = e;
  if (p - buf >= 2 && p[-1] == ' ' && p[-2] == ':') {
    const char *q = p - 2;
    const char *c_end = q;
    while (q > buf && q[-1] >= '0' && q[-1] <= '9')
      q--;
    col = atoi(q);
    if (q > buf && q[-1] == ':' && q != c_end) {
      q--;
      while (q > buf && q[-1] >= '0' && q[-1] <= '9')
        q--;
      line = atoi(q);
    }
  }
  e += strlen(mark);
  len -= (size_t)(e - buf);
  while (len > 0 && (e[len - 1] == '\n' || e[len - 1] == '\r'))
    len--;
  snprintf(cv->diag_msg, sizeof(cv->diag_msg), "%.*s", (int)len, e);
  cv->diag_line = line;
  cv->diag_col = col;
  cv->diag_seen = 1;
}

/* libfyaml's JSON mode counts both bytes of a CRLF as line breaks (YAML
 * mode and a bare CR are right). JSON allows a CR only as whitespace (a raw
 * one in a string is an error either way), so a copy with each CRLF's CR
 * turned into a space keeps every line and column. NULL when there is no
 * CRLF (*out_of_memory tells the other NULL apart). */
static char *json_crlf_copy(const char *text, size_t len, int *oom) {
  char *copy;

  *oom = 0;
  if (len < 2 || memmem(text, len, "\r\n", 2) == NULL)
    return NULL;
  copy = ice__malloc(len);
  if (copy == NULL) {
    *oom = 1;
    return NULL;
  }
  memcpy(copy, text, len);
  for (size_t i = 0; i + 1 < len; i++) {
    if (copy[i] == '\r' && copy[i + 1] == '\n')
      copy[i] = ' ';
  }
  return copy;
}

int ice__doc_parse_all(const char *text, size_t len, int is_yaml, json_t **root,
                       ice__posmap_t *pm, ice_diags_t *soft, const char *file,
                       int *nsoft, int *err_line, int *err_col, char *err_msg,
                       size_t err_len) {
  struct fy_diag_cfg dcfg;
  struct fy_diag *diag = NULL;
  struct fy_parse_cfg cfg;
  struct fy_parser *fyp = NULL;
  struct fy_event *ev;
  conv_t *cv;
  char *crlf = NULL;
  int rc = -1, oom = 0;

  *root = NULL;
  *err_line = *err_col = 0;
  if (nsoft != NULL)
    *nsoft = 0;
  if (!valid_utf8(text, len, err_line, err_col)) {
    snprintf(err_msg, err_len,
             "the file is not UTF-8 text (a binary file, or another "
             "encoding)");
    return -1;
  }
  snprintf(err_msg, err_len, "out of memory");
  if (!is_yaml) {
    crlf = json_crlf_copy(text, len, &oom);
    if (oom)
      return -1;
    if (crlf != NULL)
      text = crlf;
  }
  cv = ice__calloc(1, sizeof(*cv));
  if (cv == NULL) {
    ice__free(crlf);
    return -1;
  }
  cv->pm = pm;
  cv->is_json = !is_yaml;
  cv->msg = err_msg;
  cv->msglen = err_len;
  cv->soft = soft;
  cv->file = file;

  fy_diag_cfg_default(&dcfg);
  dcfg.fp = NULL;
  dcfg.output_fn = diag_out;
  dcfg.user = cv;
  dcfg.show_source = false;
  dcfg.level = FYET_ERROR;
  diag = fy_diag_create(&dcfg);
  if (diag == NULL)
    goto out;
  memset(&cfg, 0, sizeof(cfg));
  cfg.flags = FYPCF_QUIET | (is_yaml ? FYPCF_JSON_NONE : FYPCF_JSON_FORCE);
  cfg.diag = diag;
  fyp = fy_parser_create(&cfg);
  if (fyp == NULL || fy_parser_set_string(fyp, text, len) != 0)
    goto out;

  rc = 0;
  while ((ev = fy_parser_parse(fyp)) != NULL) {
    if (rc == 0 && on_event(cv, ev) != 0)
      rc = -1;
    fy_parser_event_free(fyp, ev);
    if (rc != 0)
      break;
  }
  if (rc == 0 && fy_parser_get_stream_error(fyp)) {
    rc = -1;
    if (cv->diag_seen) {
      cv->line = cv->diag_line;
      cv->col = cv->diag_col;
      snprintf(err_msg, err_len, "%s syntax error: %s",
               is_yaml ? "YAML" : "JSON", cv->diag_msg);
    } else {
      snprintf(err_msg, err_len, "%s syntax error", is_yaml ? "YAML" : "JSON");
    }
  }
  if (rc == 0 && cv->root == NULL) {
    rc = -1;
    snprintf(err_msg, err_len, "the file is empty");
  }
out:
  for (int i = 0; i < cv->depth; i++) {
    json_decref(cv->stack[i].v);
    ice__free(cv->stack[i].key);
  }
  if (rc == 0) {
    *root = cv->root;
  } else {
    json_decref(cv->root);
    *err_line = cv->line;
    *err_col = cv->col;
  }
  if (nsoft != NULL)
    *nsoft = cv->nsoft;
  if (fyp != NULL)
    fy_parser_destroy(fyp);
  if (diag != NULL)
    fy_diag_destroy(diag);
  ice__free(cv);
  ice__free(crlf);
  return rc;
}

int ice__doc_parse(const char *text, size_t len, int is_yaml, json_t **root,
                   ice__posmap_t *pm, int *err_line, int *err_col,
                   char *err_msg, size_t err_len) {
  return ice__doc_parse_all(text, len, is_yaml, root, pm, NULL, NULL, NULL,
                            err_line, err_col, err_msg, err_len);
}
