/* HTTP POST on libcurl's multi interface, driven by the engine's libuv loop
 * (see httpc.h): curl tells us which sockets to watch (one uv_poll_t each)
 * and when to wake it (one uv_timer_t); we hand readiness back through
 * curl_multi_socket_action and collect finished transfers. Parsing the
 * answer (JSON, provider errors, retries) is the LLM executor's job.
 *
 * Name lookups: curl's default resolver would block the loop. Debian's
 * libcurl is built with the threaded resolver (CURL_VERSION_ASYNCHDNS), so
 * a lookup runs on curl's own thread and the loop hears about it through a
 * socket like any other. A libcurl without it would block inside
 * curl_multi_socket_action, so we then accept only numeric hosts. */
#include "httpc.h"

#include "curl_dl.h"
#include "engine.h"
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DEFAULT_MAX_BODY ((size_t)64 << 20)

int ice__httpc_no_async_dns;

/* One watched socket. */
typedef struct sock_s {
  uv_poll_t poll;
  struct sock_s *prev, *next;
  struct ice__httpc_s *c;
  curl_socket_t fd;
} sock_t;

/* The engine's client. It owns every handle below and frees itself when
 * the last one has closed after ice__httpc_free (open counts them). */
typedef struct ice__httpc_s {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;         /* curl's timeout (CURLMOPT_TIMERFUNCTION) */
  uv_timer_t kick;          /* fires the callbacks of aborted requests */
  sock_t *socks;            /* sockets curl asked us to watch */
  ice__hreq_t *done, *last; /* aborted requests waiting for their cb */
  size_t in_flight;         /* posted, cb not yet fired */
  int busy;                 /* callbacks running right now */
  int open;                 /* handles not closed yet */
  int freeing;              /* ice__httpc_free ran */
} ice__httpc_t;

enum { ATTACHED, ABORTED, FIRED };

struct ice__hreq_s {
  ice__httpc_t *c;
  CURL *easy;
  struct curl_slist *hdrs;
  ice__hreq_t *next; /* in c->done */
  int state;
  int too_big;
  int nomem;
  long timeout_ms;
  char *buf; /* the response body so far, room for a NUL */
  size_t len, cap, max;
  double retry_after;
  ice__hreq_cb cb;
  void *data;
  char msg[80]; /* err, when we compose it */
  char errbuf[CURL_ERROR_SIZE];
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_init_rc;
static int g_async_dns;

/* Loads libcurl (curl_dl.h), whose global init is done once for both
 * clients, then what it can do. */
static void global_init(void) {
  const curl_version_info_data *v;

  g_init_rc = ice__curl_load(); /* and curl_global_init */
  if (g_init_rc != 0)
    return;
  v = curl_version_info(CURLVERSION_NOW);
  g_async_dns = v != NULL && (v->features & CURL_VERSION_ASYNCHDNS) != 0;
}

/* ---- handles ------------------------------------------------------------- */

static void handle_closed(ice__httpc_t *c) {
  c->open--;
  if (c->freeing && c->open == 0)
    ice__free(c);
}

static void on_timer_closed(uv_handle_t *h) {
  handle_closed(h->data);
}

static void on_sock_closed(uv_handle_t *h) {
  sock_t *k = ICE__CONTAINER_OF(h, sock_t, poll);
  ice__httpc_t *c = k->c;

  ice__free(k);
  handle_closed(c);
}

static void sock_close(sock_t *k) {
  ice__httpc_t *c = k->c;

  if (k->prev != NULL)
    k->prev->next = k->next;
  else
    c->socks = k->next;
  if (k->next != NULL)
    k->next->prev = k->prev;
  uv_close((uv_handle_t *)&k->poll, on_sock_closed);
}

/* Our handles keep the loop alive only while a request is in flight: curl
 * may keep idle connections (and, in newer versions, their sockets and a
 * timer) around for reuse, and those must not stop uv_run from returning. */
static void set_ref(ice__httpc_t *c, int on) {
  void (*f)(uv_handle_t *) = on ? uv_ref : uv_unref;

  f((uv_handle_t *)&c->timer);
  f((uv_handle_t *)&c->kick);
  for (sock_t *k = c->socks; k != NULL; k = k->next)
    f((uv_handle_t *)&k->poll);
}

/* ---- completion ---------------------------------------------------------- */

static void request_free(ice__hreq_t *h) {
  if (h->easy != NULL)
    curl_easy_cleanup(h->easy);
  curl_slist_free_all(h->hdrs);
  ice__free(h->buf);
  ice__free(h);
}

/* The message for a failed transfer. Only curl's own text and ours: the
 * request's headers and body never reach it. */
static const char *describe(ice__hreq_t *h, CURLcode rc, int *timed_out) {
  long os_err = 0;

  switch (rc) {
  case CURLE_OPERATION_TIMEDOUT:
    *timed_out = 1;
    if (h->timeout_ms > 0) {
      snprintf(h->msg, sizeof(h->msg), "timed out after %ld ms", h->timeout_ms);
      return h->msg;
    }
    break; /* a connect timeout with no overall one: curl says which */
  case CURLE_COULDNT_CONNECT:
    curl_easy_getinfo(h->easy, CURLINFO_OS_ERRNO, &os_err);
    if (os_err == ECONNREFUSED)
      return "connection refused";
    break;
  case CURLE_PARTIAL_FILE: /* less than Content-Length, then EOF */
  case CURLE_GOT_NOTHING:  /* closed before any byte of a response */
  case CURLE_RECV_ERROR:   /* reset while reading */
    return "connection closed before the response was complete";
  case CURLE_WRITE_ERROR: /* our write callback said stop */
    if (h->too_big) {
      snprintf(h->msg, sizeof(h->msg), "response larger than %zu bytes",
               h->max);
      return h->msg;
    }
    if (h->nomem)
      return "out of memory";
    break;
  default:
    break;
  }
  return h->errbuf[0] != '\0' ? h->errbuf : curl_easy_strerror(rc);
}

/* Fires h's callback (exactly once: h is off the multi and in no list) and
 * frees it. */
static void finish(ice__hreq_t *h, CURLcode rc) {
  ice__httpc_t *c = h->c;
  ice__hresp_t r;

  memset(&r, 0, sizeof(r));
  curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &r.status);
  r.body = h->buf != NULL ? h->buf : "";
  r.len = h->len;
  r.retry_after = h->retry_after;
  if (h->state == ABORTED)
    r.err = "aborted";
  else if (rc != CURLE_OK)
    r.err = describe(h, rc, &r.timed_out);
  h->state = FIRED;
  c->in_flight--;
  if (c->in_flight == 0)
    set_ref(c, 0);
  c->busy++;
  h->cb(h->data, &r);
  c->busy--;
  request_free(h);
}

/* Collects the transfers curl has finished. A callback may post or abort
 * other requests meanwhile: removing an easy handle also drops its pending
 * message, so an aborted request is never reported twice. */
static void check_done(ice__httpc_t *c) {
  CURLMsg *m;
  int left;

  while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
    CURL *easy = m->easy_handle;
    CURLcode rc = m->data.result;
    char *p = NULL;
    ice__hreq_t *h;

    if (m->msg != CURLMSG_DONE)
      continue;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &p);
    h = (ice__hreq_t *)p;
    curl_multi_remove_handle(c->multi, easy);
    finish(h, rc);
  }
}

static void on_kick(uv_timer_t *t) {
  ice__httpc_t *c = t->data;

  while (c->done != NULL) {
    ice__hreq_t *h = c->done;

    c->done = h->next;
    if (c->done == NULL)
      c->last = NULL;
    finish(h, CURLE_OK);
  }
}

/* ---- curl's callbacks ---------------------------------------------------- */

static void on_timeout(uv_timer_t *t) {
  ice__httpc_t *c = t->data;
  int running;

  curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(c);
}

/* CURLMOPT_TIMERFUNCTION: -1 stops the timer, 0 means "as soon as you
 * can" (a later loop turn: curl must not be called back from inside). */
static int on_curl_timer(CURLM *m, long ms, void *userp) {
  ice__httpc_t *c = userp;

  (void)m;
  if (ms < 0)
    uv_timer_stop(&c->timer);
  else
    uv_timer_start(&c->timer, on_timeout, (uint64_t)ms, 0);
  return 0;
}

static void on_poll(uv_poll_t *p, int status, int events) {
  sock_t *k = ICE__CONTAINER_OF(p, sock_t, poll);
  ice__httpc_t *c = k->c;
  int flags = 0;
  int running;

  if (status < 0) {
    flags = CURL_CSELECT_ERR;
  } else {
    if (events & UV_READABLE)
      flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
      flags |= CURL_CSELECT_OUT;
  }
  /* k may be closed inside; it is freed only on a later turn. */
  curl_multi_socket_action(c->multi, k->fd, flags, &running);
  check_done(c);
}

/* CURLMOPT_SOCKETFUNCTION: start, change or stop watching socket s. */
static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp,
                          void *socketp) {
  ice__httpc_t *c = userp;
  sock_t *k = socketp;
  int events = 0;

  (void)easy;
  if (what == CURL_POLL_REMOVE) {
    if (k != NULL)
      sock_close(k); /* curl forgets socketp itself */
    return 0;
  }
  if (k == NULL) {
    k = ice__calloc(1, sizeof(*k));
    if (k == NULL)
      return -1;
    if (uv_poll_init_socket(c->loop, &k->poll, s) != 0) {
      ice__free(k);
      return -1;
    }
    k->c = c;
    k->fd = s;
    k->next = c->socks;
    if (c->socks != NULL)
      c->socks->prev = k;
    c->socks = k;
    c->open++;
    if (c->in_flight == 0)
      uv_unref((uv_handle_t *)&k->poll);
    curl_multi_assign(c->multi, s, k);
  }
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
    events |= UV_READABLE;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
    events |= UV_WRITABLE;
  if (events == 0)
    uv_poll_stop(&k->poll);
  else if (uv_poll_start(&k->poll, events, on_poll) != 0)
    return -1;
  return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *data) {
  ice__hreq_t *h = data;
  size_t add = size * n;

  if (add > h->max - h->len) {
    h->too_big = 1;
    return 0;
  }
  if (h->len + add + 1 > h->cap) {
    size_t cap = h->cap == 0 ? 4096 : h->cap;
    char *b;

    while (cap < h->len + add + 1)
      cap *= 2;
    if (cap > h->max + 1)
      cap = h->max + 1;
    b = ice__realloc(h->buf, cap);
    if (b == NULL) {
      h->nomem = 1;
      return 0;
    }
    h->buf = b;
    h->cap = cap;
  }
  memcpy(h->buf + h->len, p, add);
  h->len += add;
  h->buf[h->len] = '\0';
  return add;
}

/* Retry-After is delta-seconds or an HTTP date (RFC 9110 §10.2.3). We also
 * take a decimal fraction: some servers send one. -1: unusable. */
static double parse_retry_after(const char *p, size_t n) {
  char buf[64];
  time_t t;
  size_t i;
  int dots = 0;

  while (n > 0 && (*p == ' ' || *p == '\t')) {
    p++;
    n--;
  }
  while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == '\n' || p[n - 1] == ' ' ||
                   p[n - 1] == '\t'))
    n--;
  if (n == 0 || n >= sizeof(buf))
    return -1;
  memcpy(buf, p, n);
  buf[n] = '\0';
  if (buf[0] >= '0' && buf[0] <= '9') {
    for (i = 0; i < n; i++) {
      if (buf[i] == '.' && dots++ == 0 && i + 1 < n)
        continue;
      if (buf[i] < '0' || buf[i] > '9')
        return -1;
    }
    return strtod(buf, NULL);
  }
  t = curl_getdate(buf, NULL);
  if (t == (time_t)-1)
    return -1;
  t -= time(NULL);
  return t > 0 ? (double)t : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *data) {
  ice__hreq_t *h = data;
  size_t len = size * n;

  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0)
    h->retry_after = -1; /* a new response (after a 1xx) */
  else if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0)
    h->retry_after = parse_retry_after(p + 12, len - 12);
  return len;
}

/* ---- the client ---------------------------------------------------------- */

static int client_get(ice_engine_t *e, ice__httpc_t **out) {
  ice__httpc_t *c = e->httpc;

  *out = c;
  if (c != NULL)
    return 0;
  pthread_once(&g_once, global_init);
  if (g_init_rc != 0)
    return ICE_EIO;
  c = ice__calloc(1, sizeof(*c));
  if (c == NULL)
    return ICE_ENOMEM;
  c->multi = curl_multi_init();
  if (c->multi == NULL) {
    ice__free(c);
    return ICE_ENOMEM;
  }
  c->loop = e->loop;
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  /* Hundreds of LLM calls to one provider at once: no queueing here (the
   * engine's pools limit concurrency), one connection each (HTTP/1.1). */
  curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
  curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, 0L);
  curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
  uv_timer_init(c->loop, &c->timer);
  uv_timer_init(c->loop, &c->kick);
  c->timer.data = c;
  c->kick.data = c;
  c->open = 2;
  set_ref(c, 0);
  e->httpc = c;
  *out = c;
  return 0;
}

/* Without an asynchronous resolver only a numeric host is safe: its
 * "lookup" is a parse. */
static int host_is_numeric(const char *url) {
  CURLU *u = curl_url();
  char *host = NULL;
  unsigned char a[16];
  char buf[64];
  int ok = 0;

  if (u == NULL)
    return 0;
  if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
    size_t n = strlen(host);

    if (inet_pton(AF_INET, host, a) == 1) {
      ok = 1;
    } else if (n > 2 && n < sizeof(buf) && host[0] == '[') {
      memcpy(buf, host + 1, n - 2);
      buf[n - 2] = '\0';
      ok = inet_pton(AF_INET6, buf, a) == 1;
    }
  }
  curl_free(host);
  curl_url_cleanup(u);
  return ok;
}

/* The request's header list: the caller's, plus a JSON Content-Type when
 * none is given and an empty Expect (curl would otherwise wait for a
 * "100 Continue" before sending a large body). */
static int build_headers(ice__hreq_t *h, const char *const *headers) {
  int ctype = 0, expect = 0;
  struct curl_slist *l;

  for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
    if (strncasecmp(headers[i], "Content-Type:", 13) == 0)
      ctype = 1;
    if (strncasecmp(headers[i], "Expect:", 7) == 0)
      expect = 1;
    l = curl_slist_append(h->hdrs, headers[i]);
    if (l == NULL)
      return ICE_ENOMEM;
    h->hdrs = l;
  }
  if (!ctype) {
    l = curl_slist_append(h->hdrs, "Content-Type: application/json");
    if (l == NULL)
      return ICE_ENOMEM;
    h->hdrs = l;
  }
  if (!expect) {
    l = curl_slist_append(h->hdrs, "Expect:");
    if (l == NULL)
      return ICE_ENOMEM;
    h->hdrs = l;
  }
  return 0;
}

#define SET(opt, val)                                                          \
  do {                                                                         \
    if (rc == CURLE_OK)                                                        \
      rc = curl_easy_setopt(h->easy, opt, val);                                \
  } while (0)

int ice__hreq_post(ice_engine_t *e, const char *url, const char *const *headers,
                   const char *body, size_t len, long timeout_ms,
                   size_t max_body, ice__hreq_cb cb, void *data,
                   ice__hreq_t **out) {
  ice__httpc_t *c;
  ice__hreq_t *h;
  CURLcode rc = CURLE_OK;
  CURLMcode mrc;
  int err;

  if (out != NULL)
    *out = NULL;
  if (e == NULL || url == NULL || cb == NULL || (body == NULL && len > 0) ||
      timeout_ms < 0)
    return ICE_EINVAL;
  err = client_get(e, &c);
  if (err != 0)
    return err;
  if ((!g_async_dns || ice__httpc_no_async_dns) && !host_is_numeric(url))
    return UV_ENOTSUP;
  h = ice__calloc(1, sizeof(*h));
  if (h == NULL)
    return ICE_ENOMEM;
  h->c = c;
  h->cb = cb;
  h->data = data;
  h->timeout_ms = timeout_ms;
  h->max = max_body != 0 ? max_body : DEFAULT_MAX_BODY;
  h->retry_after = -1;
  h->easy = curl_easy_init();
  err = h->easy == NULL ? ICE_ENOMEM : build_headers(h, headers);
  if (err != 0)
    goto fail;
  SET(CURLOPT_URL, url);
  SET(CURLOPT_HTTPHEADER, h->hdrs);
  SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  SET(CURLOPT_COPYPOSTFIELDS, body != NULL ? body : "");
  SET(CURLOPT_TIMEOUT_MS, timeout_ms);
  SET(CURLOPT_NOSIGNAL, 1L); /* no SIGALRM: we are not alone in here */
  SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
#if LIBCURL_VERSION_NUM >= 0x075500
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
  SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  SET(CURLOPT_USERAGENT, "ice/" ICE_VERSION_STRING);
  SET(CURLOPT_WRITEFUNCTION, on_body);
  SET(CURLOPT_WRITEDATA, h);
  SET(CURLOPT_HEADERFUNCTION, on_header);
  SET(CURLOPT_HEADERDATA, h);
  SET(CURLOPT_ERRORBUFFER, h->errbuf);
  SET(CURLOPT_PRIVATE, (char *)h);
  if (rc != CURLE_OK) {
    err = rc == CURLE_OUT_OF_MEMORY ? ICE_ENOMEM : ICE_EINVAL;
    goto fail;
  }
  /* Starts nothing yet: curl arms our timer with 0, and the transfer
   * begins on the next loop turn. */
  mrc = curl_multi_add_handle(c->multi, h->easy);
  if (mrc != CURLM_OK) {
    err = mrc == CURLM_OUT_OF_MEMORY ? ICE_ENOMEM : ICE_EIO;
    goto fail;
  }
  h->state = ATTACHED;
  if (c->in_flight++ == 0)
    set_ref(c, 1);
  if (out != NULL)
    *out = h;
  return 0;
fail:
  request_free(h);
  return err;
}

#undef SET

void ice__hreq_abort(ice__hreq_t *h) {
  ice__httpc_t *c;

  if (h == NULL || h->state != ATTACHED)
    return;
  c = h->c;
  /* Closes the connection if the transfer was under way. The callback is
   * deferred to the kick timer so that callers never re-enter. */
  curl_multi_remove_handle(c->multi, h->easy);
  h->state = ABORTED;
  h->next = NULL;
  if (c->last != NULL)
    c->last->next = h;
  else
    c->done = h;
  c->last = h;
  uv_timer_start(&c->kick, on_kick, 0, 0);
}

const char *ice__httpc_missing(void) {
  return g_init_rc != 0 ? ice__curl_error() : NULL;
}

size_t ice__hreq_in_flight(const ice_engine_t *e) {
  return e != NULL && e->httpc != NULL ? e->httpc->in_flight : 0;
}

void ice__httpc_free(ice_engine_t *e) {
  ice__httpc_t *c = e != NULL ? e->httpc : NULL;

  if (c == NULL || c->in_flight > 0 || c->busy > 0)
    return;
  e->httpc = NULL;
  c->freeing = 1;
  /* Closes the cached connections; curl tells on_curl_socket to stop
   * watching each before it closes it. */
  curl_multi_cleanup(c->multi);
  c->multi = NULL;
  while (c->socks != NULL)
    sock_close(c->socks);
  uv_close((uv_handle_t *)&c->timer, on_timer_closed);
  uv_close((uv_handle_t *)&c->kick, on_timer_closed);
}
