/* JSON text for people and for JSON lines: keys in their original order,
 * reals in the shortest form that reads back to the same double (jansson's
 * own dump prints 17 digits, so 0.1 would come out as 0.10000000000000001).
 * Iterative over an explicit stack: no recursion on deep values. */
#include "internal.h"

#include <float.h>
#include <ice.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Shortest text that reads back as the same double, in Python's repr
 * layout: fixed notation for exponents -4..15 ("2.0", "0.001"), else
 * "1e+16" / "1.5e-05". The reference: ice__format_real takes a shortcut
 * for most values and gives the same text. */
void ice__format_real_slow(double d, char *dst, size_t dstlen) {
  char tmp[40], digits[24], out[48];
  int prec, exp, nd = 0, o = 0;
  char *e;

  /* 15 significant digits are always enough to reach the shortest form
   * of a normal double (trailing zeros are stripped below); subnormals
   * hold fewer digits, so they start from one. */
  for (prec = fabs(d) < DBL_MIN ? 0 : 14; prec < 16; prec++) {
    snprintf(tmp, sizeof(tmp), "%.*e", prec, d);
    if (strtod(tmp, NULL) == d)
      break;
  }
  /* 17 significant digits always read back as the same double. */
  if (prec == 16)
    snprintf(tmp, sizeof(tmp), "%.16e", d);
  /* tmp is "[-]d.ddde[+-]xx": collect the digits and the exponent. */
  for (char *s = tmp; *s != 'e'; s++) {
    if (*s >= '0' && *s <= '9')
      digits[nd++] = *s;
  }
  while (nd > 1 && digits[nd - 1] == '0')
    nd--;
  e = strchr(tmp, 'e');
  exp = atoi(e + 1);
  if (tmp[0] == '-')
    out[o++] = '-';
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out[o++] = '0';
      out[o++] = '.';
      for (int i = 0; i < -exp - 1; i++)
        out[o++] = '0';
      for (int i = 0; i < nd; i++)
        out[o++] = digits[i];
    } else {
      for (int i = 0; i <= exp; i++)
        out[o++] = i < nd ? digits[i] : '0';
      out[o++] = '.';
      if (nd > exp + 1) {
        for (int i = exp + 1; i < nd; i++)
          out[o++] = digits[i];
      } else {
        out[o++] = '0';
      }
    }
    out[o] = '\0';
  } else {
    out[o++] = digits[0];
    if (nd > 1) {
      out[o++] = '.';
      for (int i = 1; i < nd; i++)
        out[o++] = digits[i];
    }
    snprintf(out + o, sizeof(out) - (size_t)o, "e%c%02d", exp < 0 ? '-' : '+',
             exp < 0 ? -exp : exp);
  }
  snprintf(dst, dstlen, "%s", out);
}

/* The common reals, a duration_ms rounded to microseconds for one, hold
 * a decimal m / 10^p with few digits. When one reads back as d, it is the
 * text ice__format_real_slow finds (any decimal of at most 15 significant
 * digits survives the trip to a double and back, DBL_DIG), and it is
 * written without snprintf and strtod. 0 when d is not one. */
static size_t format_real_fast(double d, char *dst) {
  static const double p10[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6};
  static const long long i10[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
  double a = fabs(d);
  char buf[40], *q = buf + sizeof(buf);
  size_t n;

  if (d == 0 && !signbit(d)) {
    memcpy(dst, "0.0", 4);
    return 3;
  }
  /* Fixed notation is used down to 1e-4 (exponent -4); 10^15 keeps m at
   * 15 digits or fewer. */
  if (!(a >= 1e-4 && a < 1e15))
    return 0;
  for (int p = 0; p < 7; p++) {
    double sc = a * p10[p];
    long long m, ip, fp;
    if (sc >= 1e15)
      return 0;
    m = llround(sc);
    /* An exact division: the double nearest to m / 10^p, as strtod would
     * read the decimal. */
    if ((double)m / p10[p] != a)
      continue;
    ip = m / i10[p];
    fp = m % i10[p];
    if (p == 0) {
      *--q = '0';
    } else {
      for (int k = 0; k < p; k++) {
        *--q = (char)('0' + fp % 10);
        fp /= 10;
      }
    }
    *--q = '.';
    do {
      *--q = (char)('0' + ip % 10);
      ip /= 10;
    } while (ip != 0);
    if (d < 0)
      *--q = '-';
    n = (size_t)(buf + sizeof(buf) - q);
    memcpy(dst, q, n);
    dst[n] = '\0';
    return n;
  }
  return 0;
}

void ice__format_real(double d, char *dst, size_t dstlen) {
  char tmp[48];

  if (dstlen >= sizeof(tmp) && format_real_fast(d, dst) > 0)
    return;
  if (dstlen < sizeof(tmp) && format_real_fast(d, tmp) > 0) {
    snprintf(dst, dstlen, "%s", tmp);
    return;
  }
  ice__format_real_slow(d, dst, dstlen);
}

/* A value as text inside a larger string (SPEC §3.3): a string as it is,
 * anything else as compact JSON. malloc'd, NULL on ENOMEM. */
char *ice__json_text(const json_t *v) {
  if (json_is_string(v)) {
    size_t n = json_string_length(v);
    char *s = ice__malloc(n + 1);
    if (s != NULL) {
      memcpy(s, json_string_value(v), n);
      s[n] = '\0';
    }
    return s;
  }
  return ice_json_format(v, 0);
}

typedef struct {
  char *s;
  size_t len, cap;
  int oom; /* out of memory, or the sink failed: the text is lost */
  /* ice_json_write: the text goes to sink a buffer at a time */
  int (*sink)(const char *buf, size_t len, void *data);
  void *data;
} out_t;

/* Hands what is buffered to the sink; 0, or -1 (o->oom). */
static int flush(out_t *o) {
  if (o->oom)
    return -1;
  if (o->len > 0 && o->sink(o->s, o->len, o->data) != 0) {
    o->oom = 1;
    return -1;
  }
  o->len = 0;
  return 0;
}

/* Room for n more bytes and the final NUL; 0, or -1 (o->oom). */
static int reserve(out_t *o, size_t n) {
  if (o->oom)
    return -1;
  if (o->len + n + 1 > o->cap && o->sink != NULL && flush(o) != 0)
    return -1;
  if (o->len + n + 1 > o->cap) {
    size_t ncap = (o->len + n + 1) * 2;
    char *ns = ice__realloc(o->s, ncap);
    if (ns == NULL) {
      o->oom = 1;
      return -1;
    }
    o->s = ns;
    o->cap = ncap;
  }
  return 0;
}

/* The text is NUL-terminated once, at the end (ice_json_format). With a
 * sink, what does not fit is handed out a full buffer at a time. */
static void put_slow(out_t *o, const char *p, size_t n) {
  while (o->sink != NULL && !o->oom && o->len + n + 1 > o->cap) {
    size_t room = o->cap - 1 - o->len;
    memcpy(o->s + o->len, p, room);
    o->len += room;
    p += room;
    n -= room;
    flush(o);
  }
  if (reserve(o, n) != 0)
    return;
  memcpy(o->s + o->len, p, n);
  o->len += n;
}

static inline void put(out_t *o, const char *p, size_t n) {
  /* Writing into the buffer after a failure is harmless: the text is
   * dropped (o->oom) and the buffer is still the one allocated. */
  if (o->len + n + 1 <= o->cap) {
    memcpy(o->s + o->len, p, n);
    o->len += n;
    return;
  }
  put_slow(o, p, n);
}

static void puts_(out_t *o, const char *p) {
  put(o, p, strlen(p));
}

/* A JSON string literal: quotes, backslashes and control characters
 * escaped, everything else (UTF-8 included) as it is. */
static void put_quoted(out_t *o, const char *s, size_t len) {
  size_t run = 0, plain = 0;

  /* Most strings (keys, ids, states) need no escape: one copy. */
  while (plain < len) {
    unsigned char ch = (unsigned char)s[plain];
    if (ch < 0x20 || ch == '"' || ch == '\\')
      break;
    plain++;
  }
  if (plain == len && (o->sink == NULL || len + 3 <= o->cap)) {
    if (reserve(o, len + 2) != 0)
      return;
    o->s[o->len] = '"';
    memcpy(o->s + o->len + 1, s, len);
    o->s[o->len + 1 + len] = '"';
    o->len += len + 2;
    return;
  }
  put(o, "\"", 1);
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    char esc[8];
    const char *rep = NULL;

    if (ch >= 0x20 && ch != '"' && ch != '\\')
      continue;
    put(o, s + run, i - run);
    run = i + 1;
    switch (ch) {
    case '"':
      rep = "\\\"";
      break;
    case '\\':
      rep = "\\\\";
      break;
    case '\n':
      rep = "\\n";
      break;
    case '\t':
      rep = "\\t";
      break;
    case '\r':
      rep = "\\r";
      break;
    case '\b':
      rep = "\\b";
      break;
    case '\f':
      rep = "\\f";
      break;
    default:
      snprintf(esc, sizeof(esc), "\\u%04x", ch);
      rep = esc;
    }
    puts_(o, rep);
  }
  put(o, s + run, len - run);
  put(o, "\"", 1);
}

static void scalar(out_t *o, const json_t *v) {
  char buf[64];

  switch (json_typeof(v)) {
  case JSON_INTEGER: {
    /* Every record and event carries a few integers (seq, times,
     * attempts): written by hand, not by snprintf's format machinery. */
    json_int_t i = json_integer_value(v);
    unsigned long long u =
        i < 0 ? 0ULL - (unsigned long long)i : (unsigned long long)i;
    char *p = buf + sizeof(buf);
    do {
      *--p = (char)('0' + u % 10);
      u /= 10;
    } while (u != 0);
    if (i < 0)
      *--p = '-';
    put(o, p, (size_t)(buf + sizeof(buf) - p));
    break;
  }
  case JSON_REAL:
    ice__format_real(json_real_value(v), buf, sizeof(buf));
    puts_(o, buf);
    break;
  case JSON_TRUE:
    puts_(o, "true");
    break;
  case JSON_FALSE:
    puts_(o, "false");
    break;
  case JSON_NULL:
    puts_(o, "null");
    break;
  default:
    put_quoted(o, json_string_value(v), json_string_length(v));
  }
}

static void newline(out_t *o, int indent, size_t level) {
  if (indent <= 0)
    return;
  puts_(o, "\n");
  for (size_t i = 0; i < level * (size_t)indent; i++)
    put(o, " ", 1);
}

typedef struct {
  const json_t *v;
  void *iter; /* objects */
  size_t i;   /* arrays */
} level_t;

/* Writes v's text into o (whose buffer is allocated), as a value nested
 * base levels deep (its lines are indented from there). */
static void format_into(out_t *o_, const json_t *v, int indent, size_t base) {
  out_t o = *o_;
  /* No allocation for the first 16 levels (ice run writes each node's
   * output apart). */
  level_t local[16], *st = local;
  size_t depth = 0, cap = 16;
  const char *colon = indent > 0 ? ": " : ":";

  for (;;) {
    /* Emit v (a scalar, or the opening of a container). */
    if (json_is_object(v) || json_is_array(v)) {
      int obj = json_is_object(v);
      if ((obj ? json_object_size(v) : json_array_size(v)) == 0) {
        puts_(&o, obj ? "{}" : "[]");
      } else {
        if (depth == cap) {
          size_t ncap = cap * 2;
          level_t *ns = st == local ? ice__malloc(ncap * sizeof(*ns))
                                    : ice__realloc(st, ncap * sizeof(*ns));
          if (ns == NULL) {
            o.oom = 1;
            break;
          }
          if (st == local)
            memcpy(ns, local, sizeof(local));
          st = ns;
          cap = ncap;
        }
        st[depth++] =
            (level_t){v, obj ? json_object_iter((json_t *)v) : NULL, 0};
        puts_(&o, obj ? "{" : "[");
        v = NULL;
      }
    } else if (v != NULL) {
      scalar(&o, v);
    }
    /* Find the next value to emit, closing finished containers. */
    v = NULL;
    while (depth > 0 && v == NULL) {
      level_t *l = &st[depth - 1];
      int first;
      if (json_is_object(l->v)) {
        /* l->i counts an object's members written so far. */
        first = l->i == 0;
        if (l->iter == NULL) {
          depth--;
          newline(&o, indent, base + depth);
          puts_(&o, "}");
          continue;
        }
        if (!first)
          puts_(&o, ",");
        newline(&o, indent, base + depth);
        put_quoted(&o, json_object_iter_key(l->iter),
                   json_object_iter_key_len(l->iter));
        puts_(&o, colon);
        v = json_object_iter_value(l->iter);
        l->iter = json_object_iter_next((json_t *)l->v, l->iter);
        l->i++;
      } else {
        if (l->i == json_array_size(l->v)) {
          depth--;
          newline(&o, indent, base + depth);
          puts_(&o, "]");
          continue;
        }
        if (l->i > 0)
          puts_(&o, ",");
        newline(&o, indent, base + depth);
        v = json_array_get(l->v, l->i++);
      }
    }
    if (v == NULL || o.oom)
      break;
  }
  if (st != local)
    ice__free(st);
  *o_ = o;
}

char *ice_json_format(const json_t *v, int indent) {
  out_t o = {NULL, 0, 0, 0, NULL, NULL};

  /* Most texts (store records, events) are a few hundred bytes: one
   * allocation instead of a doubling series from 1. */
  o.s = ice__malloc(256);
  o.cap = o.s != NULL ? 256 : 0;
  puts_(&o, "");
  format_into(&o, v, indent, 0);
  if (o.oom) {
    ice__free(o.s);
    return NULL;
  }
  o.s[o.len] = '\0';
  return o.s;
}

int ice_json_write(const json_t *v, int indent,
                   int (*write)(const char *buf, size_t len, void *data),
                   void *data) {
  /* 64 KiB at a time: a large result is never held as one text. */
  out_t o = {NULL, 0, 65536, 0, write, data};

  if (v == NULL || write == NULL)
    return -1;
  o.s = ice__malloc(o.cap);
  if (o.s == NULL)
    return -1;
  format_into(&o, v, indent, 0);
  flush(&o);
  ice__free(o.s);
  return o.oom ? -1 : 0;
}

/* ---- a text written piece by piece (ice__jw_*, internal.h) -------------- */

struct ice__jw_s {
  out_t o;
  int indent;
};

ice__jw_t *ice__jw_new(int indent,
                       int (*write)(const char *buf, size_t len, void *data),
                       void *data) {
  ice__jw_t *w = ice__malloc(sizeof(*w));

  if (w == NULL)
    return NULL;
  /* The buffer of ice_json_write: the same pieces reach the sink. */
  w->o = (out_t){ice__malloc(65536), 0, 65536, 0, write, data};
  w->indent = indent;
  if (w->o.s == NULL) {
    ice__free(w);
    return NULL;
  }
  return w;
}

void ice__jw_raw(ice__jw_t *w, const char *s, size_t len) {
  put(&w->o, s, len);
}

void ice__jw_member(ice__jw_t *w, size_t level, int first, const char *key) {
  if (!first)
    put(&w->o, ",", 1);
  newline(&w->o, w->indent, level);
  put_quoted(&w->o, key, strlen(key));
  if (w->indent > 0)
    put(&w->o, ": ", 2);
  else
    put(&w->o, ":", 1);
}

void ice__jw_close(ice__jw_t *w, size_t level, char bracket) {
  newline(&w->o, w->indent, level);
  put(&w->o, &bracket, 1);
}

void ice__jw_string(ice__jw_t *w, const char *s) {
  put_quoted(&w->o, s, strlen(s));
}

void ice__jw_value(ice__jw_t *w, const json_t *v, size_t level) {
  format_into(&w->o, v, w->indent, level);
}

void ice__jw_int(ice__jw_t *w, long long i) {
  char buf[24], *p = buf + sizeof(buf);
  unsigned long long u =
      i < 0 ? 0ULL - (unsigned long long)i : (unsigned long long)i;

  do {
    *--p = (char)('0' + u % 10);
    u /= 10;
  } while (u != 0);
  if (i < 0)
    *--p = '-';
  put(&w->o, p, (size_t)(buf + sizeof(buf) - p));
}

void ice__jw_real(ice__jw_t *w, double d) {
  char buf[64];

  ice__format_real(d, buf, sizeof(buf));
  puts_(&w->o, buf);
}

int ice__jw_end(ice__jw_t *w) {
  int rc;

  if (w == NULL)
    return -1;
  flush(&w->o);
  rc = w->o.oom ? -1 : 0;
  ice__free(w->o.s);
  ice__free(w);
  return rc;
}
