/* A small HTTP POST client on libcurl, for monitor webhooks (and the LLM
 * client to come). A request runs a blocking curl_easy_perform on libuv's
 * thread pool, so the loop never waits on DNS, connect or the transfer;
 * its callback fires once, on the loop thread. */
#ifndef ICE_HTTP_H
#define ICE_HTTP_H

#include <stddef.h>
#include <uv.h>

typedef struct ice__http_s ice__http_t;

/* The outcome of one request: status is the HTTP status (0 when no
 * response came); err is NULL for a 2xx answer, else a message ("HTTP
 * 500", "Couldn't connect to server", "aborted"), valid for the call. */
typedef void (*ice__http_cb)(void *data, long status, const char *err);

/* 1 when url is an http:// or https:// URL with a host. */
int ice__http_url_ok(const char *url);

/* POSTs len bytes of body (copied) to url with the given Content-Type,
 * giving up after timeout_ms. cb fires exactly once, later, on the loop
 * thread (never from inside this call). 0, or a negative libuv error
 * (cb then never fires). *out (may be NULL) is the request, valid until
 * cb fires. */
int ice__http_post(uv_loop_t *loop, const char *url, const char *ctype,
                   const char *body, size_t len, long timeout_ms,
                   ice__http_cb cb, void *data, ice__http_t **out);

/* Asks a request to stop as soon as it can: its cb still fires once, with
 * err "aborted" unless it had finished. */
void ice__http_abort(ice__http_t *h);

#endif
