/* An asynchronous HTTP POST client for the LLM executors: libcurl's multi
 * interface driven by the engine's libuv loop, so hundreds of requests can
 * be in flight at once without a thread each (http.c, on the thread pool,
 * is for the odd webhook). Everything here runs on the loop thread. */
#ifndef ICE_HTTPC_H
#define ICE_HTTPC_H

#include <ice.h>
#include <stddef.h>

typedef struct ice__hreq_s ice__hreq_t;

/* The outcome of one request, valid during the callback only. Check err
 * first: a response cut short still carries the status that arrived. */
typedef struct {
  long status;        /* HTTP status; 0 when no response came */
  const char *body;   /* response body, NUL-terminated, valid during the
                         callback only (never NULL: "" when empty) */
  size_t len;         /* bytes in body */
  double retry_after; /* seconds from a Retry-After header (delta-seconds or
                         an HTTP date), -1 when absent/unparsable */
  const char *err;    /* NULL when a complete response arrived (whatever its
                         status); else a short message: "timed out after N
                         ms", "connection refused", "aborted", "connection
                         closed before the response was complete", "response
                         larger than N bytes", curl's message otherwise.
                         Never contains request headers or body (an
                         Authorization header carries an API key). */
  int timed_out;      /* 1 when err is a timeout */
} ice__hresp_t;

typedef void (*ice__hreq_cb)(void *data, const ice__hresp_t *r);

/* POSTs len bytes of body (copied) to url with the extra headers
 * (NULL-terminated array of "Name: value", copied; may be NULL), giving up
 * after timeout_ms (0 = none). Content-Type defaults to application/json
 * when headers name none. At most max_body bytes of response are kept
 * (0 = 64 MiB default; more fails with err). cb fires exactly once, later,
 * on the loop thread, never from inside this call. Returns 0 or a negative
 * ICE_E* / libuv code (cb then never fires). *out (may be NULL) is valid
 * until cb fires. */
int ice__hreq_post(ice_engine_t *e, const char *url, const char *const *headers,
                   const char *body, size_t len, long timeout_ms,
                   size_t max_body, ice__hreq_cb cb, void *data,
                   ice__hreq_t **out);

/* Stops a request as soon as possible: its cb still fires exactly once
 * (err "aborted") unless it already fired. Safe to call from inside any
 * other request's callback (and a no-op from inside its own). The cb fires
 * on a later loop turn, never from inside this call. */
void ice__hreq_abort(ice__hreq_t *h);

/* Why HTTP cannot work on this machine (libcurl is loaded when the first
 * request is made, and may be missing: curl_dl.h), or NULL when it can or
 * was not tried yet. */
const char *ice__httpc_missing(void);

/* Requests in flight on the engine right now (tests and benchmarks count
 * them): posted, and their cb not yet fired. */
size_t ice__hreq_in_flight(const ice_engine_t *e);

/* Frees the engine's client (called by ice_engine_free once no request is
 * in flight; does nothing while one is). Its libuv handles close
 * asynchronously: the client frees its own memory in the last close
 * callback, so an owned loop needs one more turn (ice_engine_free runs it)
 * and a borrowed one its next uv_run. The next request makes a new client. */
void ice__httpc_free(ice_engine_t *e);

/* Test hook: when non-zero, behave as if libcurl had no asynchronous
 * resolver (see httpc.c). */
extern int ice__httpc_no_async_dns;

#endif
