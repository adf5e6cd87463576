/* HTTP POST on libcurl (see http.h). A blocking easy transfer on the thread
 * pool rather than the multi interface on the loop: requests are rare (an
 * alert), curl's default resolver would block the loop under the multi
 * interface, and a worker thread needs no socket bookkeeping. An abort is
 * seen by the transfer's progress callback, which curl calls often. */
#include "http.h"

#include "curl_dl.h"
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct ice__http_s {
  uv_work_t work;
  char *url;
  char *ctype;
  char *body;
  size_t len;
  long timeout_ms;
  atomic_int abort;
  int rc; /* CURLcode, set by the worker */
  long status;
  char errbuf[CURL_ERROR_SIZE];
  ice__http_cb cb;
  void *data;
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_init_rc;

/* Loads libcurl and runs its global init (curl_dl.h). */
static void global_init(void) {
  g_init_rc = ice__curl_load();
}

int ice__http_url_ok(const char *url) {
  size_t skip;

  if (url == NULL)
    return 0;
  if (strncasecmp(url, "http://", 7) == 0)
    skip = 7;
  else if (strncasecmp(url, "https://", 8) == 0)
    skip = 8;
  else
    return 0;
  /* A host, and nothing curl would read as whitespace or a control. */
  if (url[skip] == '\0' || url[skip] == '/' || url[skip] == ':')
    return 0;
  for (const unsigned char *p = (const unsigned char *)url; *p != '\0'; p++) {
    if (*p <= ' ' || *p == 0x7f)
      return 0;
  }
  return 1;
}

static size_t discard(char *ptr, size_t size, size_t n, void *data) {
  (void)ptr;
  (void)data;
  return size * n;
}

static int progress(void *data, curl_off_t dlt, curl_off_t dln, curl_off_t ult,
                    curl_off_t uln) {
  ice__http_t *h = data;

  (void)dlt;
  (void)dln;
  (void)ult;
  (void)uln;
  return atomic_load(&h->abort) ? 1 : 0;
}

/* On a worker thread: touches only h. */
static void perform(uv_work_t *w) {
  ice__http_t *h = w->data;
  struct curl_slist *hdrs = NULL;
  char ct[160];
  CURL *c;

  if (atomic_load(&h->abort)) {
    h->rc = CURLE_ABORTED_BY_CALLBACK;
    return;
  }
  c = curl_easy_init();
  snprintf(ct, sizeof(ct), "Content-Type: %s", h->ctype);
  hdrs = curl_slist_append(NULL, ct);
  if (c == NULL || hdrs == NULL) {
    h->rc = CURLE_OUT_OF_MEMORY;
    curl_slist_free_all(hdrs);
    if (c != NULL)
      curl_easy_cleanup(c);
    return;
  }
  curl_easy_setopt(c, CURLOPT_URL, h->url);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(c, CURLOPT_PROTOCOLS,
                   (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM */
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, h->body);
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)h->len);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "ice");
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, h->timeout_ms);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
  h->rc = (int)curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &h->status);
  curl_easy_cleanup(c);
  curl_slist_free_all(hdrs);
}

static void request_free(ice__http_t *h) {
  ice__free(h->url);
  ice__free(h->ctype);
  ice__free(h->body);
  ice__free(h);
}

/* Back on the loop thread. */
static void after(uv_work_t *w, int status) {
  ice__http_t *h = w->data;
  char msg[CURL_ERROR_SIZE + 32];
  const char *err = NULL;

  if (status == UV_ECANCELED || h->rc == CURLE_ABORTED_BY_CALLBACK) {
    err = "aborted";
  } else if (h->rc != CURLE_OK) {
    snprintf(msg, sizeof(msg), "%s",
             h->errbuf[0] != '\0' ? h->errbuf
                                  : curl_easy_strerror((CURLcode)h->rc));
    err = msg;
  } else if (h->status < 200 || h->status > 299) {
    snprintf(msg, sizeof(msg), "HTTP %ld", h->status);
    err = msg;
  }
  h->cb(h->data, h->rc == CURLE_OK ? h->status : 0, err);
  request_free(h);
}

int ice__http_post(uv_loop_t *loop, const char *url, const char *ctype,
                   const char *body, size_t len, long timeout_ms,
                   ice__http_cb cb, void *data, ice__http_t **out) {
  ice__http_t *h;
  int rc;

  if (out != NULL)
    *out = NULL;
  if (!ice__http_url_ok(url) || cb == NULL)
    return UV_EINVAL;
  pthread_once(&g_once, global_init);
  if (g_init_rc != 0)
    return UV_EIO;
  h = ice__calloc(1, sizeof(*h));
  if (h == NULL)
    return UV_ENOMEM;
  h->url = ice__strdup(url);
  h->ctype = ice__strdup(ctype != NULL ? ctype : "application/json");
  h->body = ice__malloc(len + 1);
  if (h->url == NULL || h->ctype == NULL || h->body == NULL) {
    request_free(h);
    return UV_ENOMEM;
  }
  if (len > 0)
    memcpy(h->body, body, len);
  h->body[len] = '\0';
  h->len = len;
  h->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
  atomic_init(&h->abort, 0);
  h->cb = cb;
  h->data = data;
  h->work.data = h;
  rc = uv_queue_work(loop, &h->work, perform, after);
  if (rc != 0) {
    request_free(h);
    return rc;
  }
  if (out != NULL)
    *out = h;
  return 0;
}

void ice__http_abort(ice__http_t *h) {
  if (h == NULL)
    return;
  atomic_store(&h->abort, 1);
  /* Not started yet: it never will; after() reports the abort. */
  uv_cancel((uv_req_t *)&h->work);
}
