/* Tests of the libcurl-multi HTTP client against the fake Chat Completions
 * server (tests/support/chat_server.py), started once for the whole file.
 * Callbacks only record what they saw; the checks run after the loop. Every
 * test ends with ice_engine_free()==0 and nothing in flight; ASan checks
 * that the client's handles and memory are gone. */
#include "helpers.h"

#include "httpc.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define HOLD_N 200

static pid_t g_server = -1;
static char g_dir[64];
static char g_url[128];  /* .../v1/chat/completions */
static char g_base[128]; /* http://127.0.0.1:PORT */

typedef struct res_s {
  int calls;
  long status;
  char *body;
  size_t len;
  double retry_after;
  char *err;
  int timed_out;
  uint64_t at_ms; /* when the callback ran, since t0 */
  /* Optional actions, run from inside the callback. */
  ice__hreq_t **abort_list; /* aborted when this one completes */
  struct res_s **abort_res; /* ...unless their own callback already ran */
  size_t nabort;
  ice__hreq_t *self;     /* aborted from inside its own callback: a no-op */
  ice_engine_t *post_on; /* posts follow_up when set */
  struct res_s *follow_up;
} res_t;

static uint64_t g_t0;

static uint64_t now_ms(void) {
  return uv_hrtime() / 1000000;
}

static void res_clear(res_t *r) {
  free(r->body);
  free(r->err);
  memset(r, 0, sizeof(*r));
}

static void on_done(void *data, const ice__hresp_t *resp);

static const char *const k_headers[] = {"Authorization: Bearer test-key", NULL};

/* POSTs a chat request whose user message is `content`. */
static int post_chat(ice_engine_t *e, const char *content, long timeout_ms,
                     size_t max_body, res_t *r, ice__hreq_t **out) {
  json_t *b = json_pack("{s:s,s:[{s:s,s:s}]}", "model", "m", "messages", "role",
                        "user", "content", content);
  char *s = json_dumps(b, JSON_COMPACT);
  int err;

  assert_non_null(s);
  err = ice__hreq_post(e, g_url, k_headers, s, strlen(s), timeout_ms, max_body,
                       on_done, r, out);
  free(s);
  json_decref(b);
  return err;
}

static void on_done(void *data, const ice__hresp_t *resp) {
  res_t *r = data;

  r->calls++;
  if (r->calls > 1)
    return; /* counted; the test fails on it */
  r->at_ms = now_ms() - g_t0;
  r->status = resp->status;
  r->len = resp->len;
  r->body = resp->body != NULL ? strdup(resp->body) : NULL;
  r->err = resp->err != NULL ? strdup(resp->err) : NULL;
  r->retry_after = resp->retry_after;
  r->timed_out = resp->timed_out;
  for (size_t i = 0; i < r->nabort; i++) {
    if (r->abort_res[i]->calls == 0)
      ice__hreq_abort(r->abort_list[i]);
  }
  if (r->self != NULL)
    ice__hreq_abort(r->self);
  if (r->post_on != NULL) {
    r->follow_up->calls = -100; /* marks a failed post */
    if (post_chat(r->post_on, "follow up", 5000, 0, r->follow_up, NULL) == 0)
      r->follow_up->calls = 0;
  }
}

static ice_engine_t *engine(void) {
  ice_engine_t *e = NULL;

  assert_int_equal(ice_engine_new(&e, NULL, NULL), 0);
  g_t0 = now_ms();
  return e;
}

static void run(ice_engine_t *e) {
  uv_run(ice_engine_loop(e), UV_RUN_DEFAULT);
}

static void engine_done(ice_engine_t *e) {
  assert_int_equal(ice__hreq_in_flight(e), 0);
  assert_int_equal(ice_engine_free(e), 0);
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *ent;
  int n = 0;

  assert_non_null(d);
  while ((ent = readdir(d)) != NULL) {
    if (ent->d_name[0] != '.')
      n++;
  }
  closedir(d);
  return n;
}

/* POSTs {} to g_base + path and returns the parsed answer. */
static json_t *server_call(const char *path) {
  ice_engine_t *e = engine();
  res_t r = {0};
  char url[192];
  json_t *v;

  snprintf(url, sizeof(url), "%s%s", g_base, path);
  assert_int_equal(
      ice__hreq_post(e, url, NULL, "{}", 2, 5000, 0, on_done, &r, NULL), 0);
  run(e);
  engine_done(e);
  assert_int_equal(r.calls, 1);
  assert_null(r.err);
  assert_int_equal(r.status, 200);
  v = th_json(r.body);
  res_clear(&r);
  return v;
}

static void want_ok(const res_t *r, const char *content) {
  json_t *v, *c;

  assert_int_equal(r->calls, 1);
  assert_null(r->err);
  assert_int_equal(r->status, 200);
  assert_int_equal(r->len, strlen(r->body));
  v = th_json(r->body);
  c = json_object_get(
      json_object_get(json_array_get(json_object_get(v, "choices"), 0),
                      "message"),
      "content");
  assert_string_equal(json_string_value(c), content);
  json_decref(v);
}

/* ---- server ------------------------------------------------------------- */

static int start_server(void **state) {
  char port_file[128], script[192];
  FILE *f;
  int port = 0;

  (void)state;
  snprintf(g_dir, sizeof(g_dir), "/tmp/ice-httpc-XXXXXX");
  if (mkdtemp(g_dir) == NULL)
    return -1;
  snprintf(port_file, sizeof(port_file), "%s/port", g_dir);
  snprintf(script, sizeof(script), "%s/plan.json", g_dir);
  f = fopen(script, "w");
  if (f == NULL)
    return -1;
  fputs("[\"decide\", \"act\"]\n", f);
  fclose(f);
  g_server = fork();
  if (g_server < 0)
    return -1;
  if (g_server == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    setenv("CHAT_SERVER_EXPECT_KEY", "test-key", 1);
    execlp("python3", "python3", ICE_SOURCE_DIR "/tests/support/chat_server.py",
           "--port-file", port_file, "--script-dir", g_dir, "--hold-until",
           "200", (char *)NULL);
    _exit(127);
  }
  port = wait_port_file(port_file);
  if (port == 0)
    return -1;
  snprintf(g_base, sizeof(g_base), "http://127.0.0.1:%d", port);
  snprintf(g_url, sizeof(g_url), "%s/v1/chat/completions", g_base);
  return 0;
}

static int stop_server(void **state) {
  char path[128];

  (void)state;
  if (g_server > 0) {
    kill(g_server, SIGTERM);
    waitpid(g_server, NULL, 0);
  }
  snprintf(path, sizeof(path), "%s/port", g_dir);
  unlink(path);
  snprintf(path, sizeof(path), "%s/plan.json", g_dir);
  unlink(path);
  rmdir(g_dir);
  return 0;
}

/* ---- tests -------------------------------------------------------------- */

static void test_ok(void **state) {
  ice_engine_t *e = engine();
  res_t r = {0}, r2 = {0};
  json_t *st;

  (void)state;
  assert_int_equal(post_chat(e, "hello there", 5000, 0, &r, NULL), 0);
  assert_int_equal(ice__hreq_in_flight(e), 1);
  assert_int_equal(r.calls, 0); /* never from inside the post */
  run(e);
  want_ok(&r, "echo: hello there");
  assert_true(r.retry_after < 0);
  assert_int_equal(r.timed_out, 0);
  assert_int_equal(ice__hreq_in_flight(e), 0);
  /* A second request on the same client (and kept-alive connection). */
  assert_int_equal(post_chat(e, "again", 5000, 0, &r2, NULL), 0);
  run(e);
  want_ok(&r2, "echo: again");
  engine_done(e);
  res_clear(&r);
  res_clear(&r2);

  /* The server saw the key (it says whether it matched, never what it
   * was) and our JSON body. */
  st = server_call("/stats");
  assert_true(json_is_true(json_array_get(json_object_get(st, "auth"), 0)));
  assert_string_equal(
      json_string_value(json_object_get(
          json_array_get(json_object_get(st, "bodies"), 0), "model")),
      "m");
  json_decref(st);
}

static void test_status_and_retry_after(void **state) {
  ice_engine_t *e = engine();
  enum { N = 8 };
  res_t r[N] = {{0}};
  const char *msgs[N] = {
      "[[status:429 retry_after:2]]",      "[[status:429 retry_after:0.5]]",
      "[[status:503 retry_after_date:5]]", "[[status:500]]",
      "[[status:429 retry_after:soon]]",   "[[status:429 retry_after:1.2.3]]",
      "[[status:429 retry_after:2.]]",     "[[status:429 retry_after:]]"};

  (void)state;
  for (int i = 0; i < N; i++)
    assert_int_equal(post_chat(e, msgs[i], 5000, 0, &r[i], NULL), 0);
  run(e);
  for (int i = 0; i < N; i++) {
    assert_int_equal(r[i].calls, 1);
    assert_null(r[i].err); /* a complete answer, whatever its status */
    assert_non_null(strstr(r[i].body, "\"error\""));
  }
  assert_int_equal(r[0].status, 429);
  assert_true(r[0].retry_after == 2.0);
  assert_non_null(strstr(r[0].body, "rate_limit_exceeded"));
  assert_true(r[1].retry_after == 0.5);
  assert_int_equal(r[2].status, 503); /* an HTTP date 5 s ahead */
  assert_true(r[2].retry_after >= 3.0 && r[2].retry_after <= 6.0);
  assert_int_equal(r[3].status, 500);
  assert_true(r[3].retry_after == -1);
  for (int i = 4; i < N; i++)
    assert_true(r[i].retry_after == -1); /* unparsable or empty */
  engine_done(e);
  for (int i = 0; i < N; i++)
    res_clear(&r[i]);
}

static void test_timeout(void **state) {
  ice_engine_t *e = engine();
  res_t r = {0};

  (void)state;
  assert_int_equal(post_chat(e, "[[sleep:2]]", 200, 0, &r, NULL), 0);
  run(e);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.timed_out, 1);
  assert_string_equal(r.err, "timed out after 200 ms");
  assert_int_equal(r.status, 0);
  assert_string_equal(r.body, "");
  assert_true(r.at_ms >= 150 && r.at_ms < 1000);
  engine_done(e);
  res_clear(&r);
}

static void test_malformed_drop_truncate(void **state) {
  ice_engine_t *e = engine();
  res_t m = {0}, d = {0}, t = {0};

  (void)state;
  assert_int_equal(post_chat(e, "[[malformed]]", 5000, 0, &m, NULL), 0);
  assert_int_equal(post_chat(e, "[[drop]]", 5000, 0, &d, NULL), 0);
  assert_int_equal(post_chat(e, "[[truncate]]", 5000, 0, &t, NULL), 0);
  run(e);
  /* Not JSON: the caller's problem; we hand over status and raw body. */
  assert_int_equal(m.calls, 1);
  assert_null(m.err);
  assert_int_equal(m.status, 200);
  assert_string_equal(m.body, "this is not JSON {");
  assert_int_equal(d.calls, 1);
  assert_string_equal(d.err,
                      "connection closed before the response was complete");
  assert_int_equal(d.status, 0);
  assert_int_equal(d.timed_out, 0);
  assert_int_equal(t.calls, 1);
  assert_string_equal(t.err,
                      "connection closed before the response was complete");
  assert_int_equal(t.status, 200); /* what had arrived */
  assert_non_null(strstr(t.body, "chatcmpl-truncated"));
  engine_done(e);
  res_clear(&m);
  res_clear(&d);
  res_clear(&t);
}

static void on_abort_timer(uv_timer_t *t) {
  ice__hreq_abort(t->data);
  uv_close((uv_handle_t *)t, NULL);
}

static void test_abort(void **state) {
  ice_engine_t *e = engine();
  res_t now = {0}, later = {0};
  ice__hreq_t *h1, *h2;
  uv_timer_t t;

  (void)state;
  /* Before the transfer even started. */
  assert_int_equal(post_chat(e, "[[sleep:2]]", 0, 0, &now, &h1), 0);
  ice__hreq_abort(h1);
  ice__hreq_abort(h1); /* twice: still one callback */
  assert_int_equal(now.calls, 0);
  assert_int_equal(ice__hreq_in_flight(e), 1);
  /* While the server sleeps on it. */
  assert_int_equal(post_chat(e, "[[sleep:2]]", 0, 0, &later, &h2), 0);
  uv_timer_init(ice_engine_loop(e), &t);
  t.data = h2;
  uv_timer_start(&t, on_abort_timer, 100, 0);
  run(e);
  assert_int_equal(now.calls, 1);
  assert_string_equal(now.err, "aborted");
  assert_int_equal(now.status, 0);
  assert_int_equal(now.timed_out, 0);
  assert_int_equal(later.calls, 1);
  assert_string_equal(later.err, "aborted");
  assert_true(later.at_ms >= 90 && later.at_ms < 1000);
  engine_done(e);
  res_clear(&now);
  res_clear(&later);
}

static void test_abort_from_callback(void **state) {
  ice_engine_t *e = engine();
  res_t a = {0}, b = {0}, c = {0};
  ice__hreq_t *ha, *hb;
  ice__hreq_t *list[1];
  res_t *lres[1];

  (void)state;
  assert_int_equal(post_chat(e, "fast", 5000, 0, &a, &ha), 0);
  assert_int_equal(post_chat(e, "[[sleep:2]]", 5000, 0, &b, &hb), 0);
  list[0] = hb;
  lres[0] = &b;
  a.abort_list = list;
  a.abort_res = lres;
  a.nabort = 1;
  a.self = ha;   /* its own abort, inside its callback: nothing */
  a.post_on = e; /* and a new request from inside the callback */
  a.follow_up = &c;
  run(e);
  want_ok(&a, "echo: fast");
  assert_int_equal(b.calls, 1);
  assert_string_equal(b.err, "aborted");
  assert_true(b.at_ms < 1000);
  want_ok(&c, "echo: follow up");
  engine_done(e);
  res_clear(&a);
  res_clear(&b);
  res_clear(&c);
}

/* Many answers arriving together, each callback aborting every request
 * whose callback has not run yet (some of them already finished inside
 * curl): still exactly one callback each. */
static void test_abort_storm(void **state) {
  enum { N = 40 };
  ice_engine_t *e = engine();
  res_t r[N];
  res_t *rp[N];
  ice__hreq_t *h[N];
  int ok = 0, aborted = 0;

  (void)state;
  memset(r, 0, sizeof(r));
  for (int i = 0; i < N; i++) {
    rp[i] = &r[i];
    assert_int_equal(post_chat(e, "storm", 5000, 0, &r[i], &h[i]), 0);
  }
  for (int i = 0; i < N; i++) {
    r[i].abort_list = h;
    r[i].abort_res = rp;
    r[i].nabort = N;
  }
  run(e);
  for (int i = 0; i < N; i++) {
    assert_int_equal(r[i].calls, 1);
    if (r[i].err == NULL)
      ok++;
    else if (strcmp(r[i].err, "aborted") == 0)
      aborted++;
  }
  assert_true(ok >= 1);
  assert_int_equal(ok + aborted, N);
  engine_done(e);
  for (int i = 0; i < N; i++)
    res_clear(&r[i]);
}

static void test_connection_refused(void **state) {
  ice_engine_t *e = engine();
  struct sockaddr_in sa;
  socklen_t sl = sizeof(sa);
  char url[64];
  res_t r = {0};
  int fd = socket(AF_INET, SOCK_STREAM, 0);

  (void)state;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
  close(fd); /* a port nobody listens on */
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions",
           ntohs(sa.sin_port));
  assert_int_equal(
      ice__hreq_post(e, url, NULL, "{}", 2, 5000, 0, on_done, &r, NULL), 0);
  run(e);
  assert_int_equal(r.calls, 1);
  assert_string_equal(r.err, "connection refused");
  assert_int_equal(r.status, 0);
  engine_done(e);
  res_clear(&r);
}

static void test_hold_200(void **state) {
  ice_engine_t *e;
  res_t *r = calloc(HOLD_N, sizeof(*r));
  json_t *st;
  int fds;

  (void)state;
  assert_non_null(r);
  /* Requests of earlier tests that we gave up on may still be on the
   * server's threads: wait for them, so that only ours count. */
  for (int i = 0; i < 500; i++) {
    st = server_call("/stats");
    if (json_integer_value(json_object_get(st, "in_flight")) == 0)
      i = 500;
    else
      usleep(10000);
    json_decref(st);
  }
  json_decref(server_call("/reset"));
  fds = count_fds();
  e = engine();
  for (int i = 0; i < HOLD_N; i++)
    assert_int_equal(post_chat(e, "[[hold]]", 30000, 0, &r[i], NULL), 0);
  assert_int_equal(ice__hreq_in_flight(e), HOLD_N);
  run(e);
  /* The server releases them only once all 200 are in at once (or after
   * 10 s, which this rules out). */
  assert_true(now_ms() - g_t0 < 8000);
  for (int i = 0; i < HOLD_N; i++) {
    want_ok(&r[i], "echo: [[hold]]");
    res_clear(&r[i]);
  }
  engine_done(e);
  assert_int_equal(count_fds(), fds);
  free(r);
  st = server_call("/stats");
  assert_int_equal(json_integer_value(json_object_get(st, "max_in_flight")),
                   HOLD_N);
  assert_int_equal(json_integer_value(json_object_get(st, "requests")), HOLD_N);
  json_decref(st);
}

static void test_max_body(void **state) {
  ice_engine_t *e = engine();
  res_t big = {0}, fits = {0};
  char msg[1100];

  (void)state;
  memcpy(msg, "[[reply:", 8);
  memset(msg + 8, 'x', 1000);
  memcpy(msg + 1008, "]]", 3);
  assert_int_equal(post_chat(e, msg, 5000, 1000, &big, NULL), 0);
  assert_int_equal(post_chat(e, msg, 5000, 2000, &fits, NULL), 0);
  run(e);
  assert_int_equal(big.calls, 1);
  assert_string_equal(big.err, "response larger than 1000 bytes");
  assert_true(big.len <= 1000);
  assert_int_equal(fits.calls, 1);
  assert_null(fits.err);
  assert_true(fits.len > 1000 && fits.len <= 2000);
  engine_done(e);
  res_clear(&big);
  res_clear(&fits);
}

/* The caller's own Content-Type and Expect replace ours; a large answer
 * grows the buffer. */
static void test_headers_and_large_body(void **state) {
  static const char *const hdrs[] = {
      "Authorization: Bearer test-key",
      "Content-Type: application/json; charset=utf-8", "Expect:", NULL};
  ice_engine_t *e = engine();
  res_t r = {0};
  size_t n = 100000;
  char *msg = malloc(n + 16), *want = malloc(n + 1);
  json_t *b, *st;
  char *s;

  (void)state;
  assert_non_null(msg);
  assert_non_null(want);
  memset(want, 'y', n);
  want[n] = '\0';
  snprintf(msg, n + 16, "[[reply:%s]]", want);
  b = json_pack("{s:[{s:s,s:s}]}", "messages", "role", "user", "content", msg);
  s = json_dumps(b, JSON_COMPACT);
  assert_int_equal(
      ice__hreq_post(e, g_url, hdrs, s, strlen(s), 5000, 0, on_done, &r, NULL),
      0);
  run(e);
  want_ok(&r, want);
  engine_done(e);
  st = server_call("/stats"); /* the one before this call is ours */
  assert_true(json_is_true(
      json_array_get(json_object_get(st, "auth"),
                     json_array_size(json_object_get(st, "auth")) - 1)));
  json_decref(st);
  res_clear(&r);
  free(s);
  json_decref(b);
  free(msg);
  free(want);
}

/* On a loop the engine borrows, the client's handles close on the caller's
 * next uv_run; then the loop closes cleanly and nothing leaks (ASan). An
 * engine with a request in flight is busy. */
static void test_borrowed_loop_and_busy(void **state) {
  uv_loop_t loop;
  ice_engine_t *e = NULL;
  res_t r = {0}, s = {0};
  ice__hreq_t *h;

  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(ice_engine_new(&e, &loop, NULL), 0);
  assert_int_equal(post_chat(e, "borrowed", 5000, 0, &r, NULL), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  want_ok(&r, "echo: borrowed");
  assert_int_equal(ice_engine_free(e), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  res_clear(&r);

  e = engine();
  assert_int_equal(post_chat(e, "[[sleep:2]]", 5000, 0, &s, &h), 0);
  assert_int_equal(ice_engine_free(e), ICE_EBUSY);
  ice__hreq_abort(h);
  run(e);
  assert_int_equal(s.calls, 1);
  assert_string_equal(s.err, "aborted");
  engine_done(e);
  res_clear(&s);
}

static void test_bad_args_and_urls(void **state) {
  ice_engine_t *e = engine();
  res_t bad = {0}, v6 = {0};
  ice__hreq_t *h = (ice__hreq_t *)&h;

  (void)state;
  assert_int_equal(
      ice__hreq_post(e, NULL, NULL, "{}", 2, 0, 0, on_done, &bad, &h),
      ICE_EINVAL);
  assert_null(h);
  assert_int_equal(
      ice__hreq_post(e, g_url, NULL, "{}", 2, 0, 0, NULL, &bad, NULL),
      ICE_EINVAL);
  assert_int_equal(
      ice__hreq_post(e, g_url, NULL, NULL, 2, 0, 0, on_done, &bad, NULL),
      ICE_EINVAL);
  assert_int_equal(
      ice__hreq_post(e, g_url, NULL, "{}", 2, -1, 0, on_done, &bad, NULL),
      ICE_EINVAL);
  assert_int_equal(ice__hreq_in_flight(e), 0);
  /* A name lookup needs curl's threaded resolver; without one only
   * numeric hosts go. */
  ice__httpc_no_async_dns = 1;
  assert_int_equal(ice__hreq_post(e, "http://example.invalid/", NULL, "{}", 2,
                                  0, 0, on_done, &bad, NULL),
                   UV_ENOTSUP);
  assert_int_equal(
      ice__hreq_post(e, "not a url", NULL, "{}", 2, 0, 0, on_done, &bad, NULL),
      UV_ENOTSUP);
  assert_int_equal(ice__hreq_post(e, "http://[::1]:1/", NULL, "{}", 2, 2000, 0,
                                  on_done, &v6, NULL),
                   0);
  assert_int_equal(post_chat(e, "numeric", 5000, 0, &bad, NULL), 0);
  ice__httpc_no_async_dns = 0;
  run(e);
  want_ok(&bad, "echo: numeric");
  assert_int_equal(v6.calls, 1);
  assert_non_null(v6.err); /* refused, or no IPv6 here: either way a message */
  res_clear(&bad);
  res_clear(&v6);
  /* A URL curl cannot use: its own message. */
  assert_int_equal(
      ice__hreq_post(e, "http://", NULL, "", 0, 0, 0, on_done, &bad, NULL), 0);
  run(e);
  assert_int_equal(bad.calls, 1);
  assert_non_null(bad.err);
  assert_int_equal(bad.status, 0);
  engine_done(e);
  res_clear(&bad);
}

/* The fake server's own directives, which other tests rely on. */
static void test_server_directives(void **state) {
  ice_engine_t *e = engine();
  res_t r[10];
  json_t *v;
  const char *bad_body = "not json";

  (void)state;
  memset(r, 0, sizeof(r));
  assert_int_equal(
      post_chat(e, "a [[reply:{\"x\": [1]}]] b", 5000, 0, &r[0], NULL), 0);
  assert_int_equal(post_chat(e, "[[reply_b64:aGkgXV0gdGhlcmU=]] [[cost:0.25]]",
                             5000, 0, &r[1], NULL),
                   0);
  assert_int_equal(ice__hreq_post(e, g_url, NULL, bad_body, strlen(bad_body),
                                  5000, 0, on_done, &r[2], NULL),
                   0);
  run(e);
  want_ok(&r[0], "{\"x\": [1]}");
  want_ok(&r[1], "hi ]] there");
  v = th_json(r[1].body);
  assert_true(json_real_value(json_object_get(json_object_get(v, "usage"),
                                              "cost")) == 0.25);
  json_decref(v);
  assert_int_equal(r[2].status, 400);
  for (int i = 0; i < 3; i++)
    res_clear(&r[i]);

  /* fail_first and script answer in order: one request at a time. */
  for (int i = 0; i < 3; i++) {
    assert_int_equal(post_chat(e, "[[fail_first:2 status:429 retry_after:0.2]]",
                               5000, 0, &r[i], NULL),
                     0);
    run(e);
  }
  assert_int_equal(r[0].status, 429);
  assert_true(r[0].retry_after == 0.2);
  assert_int_equal(r[1].status, 429);
  assert_int_equal(r[2].status, 200);
  for (int i = 0; i < 3; i++) {
    res_clear(&r[i]);
    assert_int_equal(post_chat(e, "[[script:plan]]", 5000, 0, &r[i], NULL), 0);
    run(e);
  }
  want_ok(&r[0], "decide");
  want_ok(&r[1], "act");
  want_ok(&r[2], "act");
  engine_done(e);
  for (int i = 0; i < 3; i++)
    res_clear(&r[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ok),
      cmocka_unit_test(test_hold_200), /* before requests we give up on */
      cmocka_unit_test(test_status_and_retry_after),
      cmocka_unit_test(test_timeout),
      cmocka_unit_test(test_malformed_drop_truncate),
      cmocka_unit_test(test_abort),
      cmocka_unit_test(test_abort_from_callback),
      cmocka_unit_test(test_abort_storm),
      cmocka_unit_test(test_connection_refused),
      cmocka_unit_test(test_max_body),
      cmocka_unit_test(test_headers_and_large_body),
      cmocka_unit_test(test_borrowed_loop_and_busy),
      cmocka_unit_test(test_bad_args_and_urls),
      cmocka_unit_test(test_server_directives),
  };

  signal(SIGPIPE, SIG_IGN);
  return cmocka_run_group_tests(tests, start_server, stop_server);
}
