/* Diagnostics of loading and validation: a problem reported at the
 * position of the key or value it is about (`FILE:LINE:COL: error: node
 * 'ID': MESSAGE`), warnings in the same form, the typo hints, and the list
 * type of <ice.h>. Every check reports here; none stops the others. */
#include "engine.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reports at the position of member h of container (an object key's hash
 * or an array index's), else of the container itself. */
void ice__vreport(ice__vctx_t *v, int severity, const ice__node_t *n,
                  json_t *container, uint64_t h, const char *fmt, va_list ap) {
  char msg[768], full[1024];
  int line = 0, col = 0;

  vsnprintf(msg, sizeof(msg), fmt, ap);
  if (container != NULL) {
    if (h == ICE__POS_SELF ||
        !ice__pos_get(&v->wf->pos, container, h, &line, &col))
      ice__pos_get(&v->wf->pos, container, ICE__POS_SELF, &line, &col);
  }
  if (n != NULL && n->id != NULL)
    snprintf(full, sizeof(full), "node '%s': %s", n->id, msg);
  else if (n != NULL)
    snprintf(full, sizeof(full), "node #%u: %s", n->idx + 1, msg);
  else
    snprintf(full, sizeof(full), "%s", msg);
  ice__diags_add_sev(v->diags, severity, v->wf->file, line, col, full);
  if (severity == ICE_DIAG_ERROR)
    v->errors++;
}

void ice__verr(ice__vctx_t *v, const ice__node_t *n, json_t *container,
               const char *key, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  ice__vreport(v, ICE_DIAG_ERROR, n, container,
               key != NULL ? ice__pos_key(key) : ICE__POS_SELF, fmt, ap);
  va_end(ap);
}

void ice__vwarn(ice__vctx_t *v, const ice__node_t *n, json_t *container,
                const char *key, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  ice__vreport(v, ICE_DIAG_WARNING, n, container,
               key != NULL ? ice__pos_key(key) : ICE__POS_SELF, fmt, ap);
  va_end(ap);
}

void ice__verr_item(ice__vctx_t *v, const ice__node_t *n, json_t *list,
                    size_t i, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  ice__vreport(v, ICE_DIAG_ERROR, n, list, ice__pos_index(i), fmt, ap);
  va_end(ap);
}

void ice__verr_value(ice__vctx_t *v, const ice__node_t *n, json_t *obj,
                     const char *key, const char *fmt, ...) {
  json_t *x = json_object_get(obj, key);
  int line, col;
  va_list ap;

  va_start(ap, fmt);
  if (x != NULL && ice__pos_get(&v->wf->pos, x, ICE__POS_SELF, &line, &col))
    ice__vreport(v, ICE_DIAG_ERROR, n, x, ICE__POS_SELF, fmt, ap);
  else
    ice__vreport(v, ICE_DIAG_ERROR, n, obj, ice__pos_key(key), fmt, ap);
  va_end(ap);
}

void ice__verr_tmpl(ice__vctx_t *v, const ice__node_t *n, json_t *container,
                    const char *key, const ice__err_t *err) {
  if (err->col > 0)
    ice__verr(v, n, container, key, "%s: %s (column %d)", key, err->msg,
              err->col);
  else
    ice__verr(v, n, container, key, "%s: %s", key, err->msg);
}

const char *ice__hint(char *buf, size_t len, const char *word,
                      const char *const *cands, size_t n) {
  const char *best = ice__closest(word, cands, n);

  if (best == NULL)
    buf[0] = '\0';
  else
    snprintf(buf, len, " (did you mean '%s'?)", best);
  return buf;
}

size_t ice__list_len(const char *const *list) {
  size_t n = 0;

  while (list[n] != NULL)
    n++;
  return n;
}

/* ---- the list of <ice.h> ------------------------------------------------ */

int ice__diags_add(ice_diags_t *d, const char *file, int line, int col,
                   const char *msg) {
  ice_diag_t *it;

  if (d == NULL)
    return 0;
  if (d->count == d->cap) {
    size_t ncap = d->cap == 0 ? 8 : d->cap * 2;
    ice_diag_t *n = ice__realloc(d->items, ncap * sizeof(*n));
    if (n == NULL)
      return ICE_ENOMEM;
    d->items = n;
    d->cap = ncap;
  }
  it = &d->items[d->count];
  it->file = ice__strdup(file != NULL ? file : "<workflow>");
  it->message = ice__strdup(msg);
  it->line = line;
  it->col = col;
  it->severity = ICE_DIAG_ERROR;
  if (it->file == NULL || it->message == NULL) {
    ice__free(it->file);
    ice__free(it->message);
    return ICE_ENOMEM;
  }
  d->count++;
  return 0;
}

char *ice_diag_format(const ice_diag_t *d) {
  const char *sev = d->severity == ICE_DIAG_WARNING ? "warning" : "error";
  char *s = NULL;
  int n;

  if (d->line > 0 && d->col > 0)
    n = asprintf(&s, "%s:%d:%d: %s: %s", d->file, d->line, d->col, sev,
                 d->message);
  else if (d->line > 0)
    n = asprintf(&s, "%s:%d: %s: %s", d->file, d->line, sev, d->message);
  else
    n = asprintf(&s, "%s: %s: %s", d->file, sev, d->message);
  return n < 0 ? NULL : s;
}

int ice__diags_insert(ice_diags_t *d, size_t at, const ice_diags_t *src) {
  size_t n = src != NULL ? src->count : 0;

  if (d == NULL || n == 0)
    return 0;
  if (at > d->count)
    at = d->count;
  if (d->count + n > d->cap) {
    size_t ncap = (d->count + n) * 2;
    ice_diag_t *items = ice__realloc(d->items, ncap * sizeof(*items));
    if (items == NULL)
      return ICE_ENOMEM;
    d->items = items;
    d->cap = ncap;
  }
  memmove(&d->items[at + n], &d->items[at],
          (d->count - at) * sizeof(ice_diag_t));
  for (size_t i = 0; i < n; i++) {
    ice_diag_t *it = &d->items[at + i];
    *it = src->items[i];
    it->file = ice__strdup(src->items[i].file);
    it->message = ice__strdup(src->items[i].message);
    if (it->file == NULL || it->message == NULL) {
      /* Keep the list well formed: drop what could not be copied. */
      ice__free(it->file);
      ice__free(it->message);
      memmove(&d->items[at + i], &d->items[at + n],
              (d->count - at) * sizeof(ice_diag_t));
      d->count += i;
      return ICE_ENOMEM;
    }
  }
  d->count += n;
  return 0;
}

void ice_diags_free(ice_diags_t *diags) {
  if (diags == NULL)
    return;
  for (size_t i = 0; i < diags->count; i++) {
    ice__free(diags->items[i].file);
    ice__free(diags->items[i].message);
  }
  ice__free(diags->items);
  diags->items = NULL;
  diags->count = diags->cap = 0;
}

int ice__diags_add_sev(ice_diags_t *d, int severity, const char *file, int line,
                       int col, const char *msg) {
  size_t before = d != NULL ? d->count : 0;
  int rc = ice__diags_add(d, file, line, col, msg);

  /* ice__diags_add makes an error; set the severity either way, so that it
   * is never left uninitialised. */
  if (rc == 0 && d != NULL && d->count > before)
    d->items[d->count - 1].severity = severity;
  return rc;
}
