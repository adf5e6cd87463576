/* The `monitor` node (SPEC §8.2), through the public API: alerts once per
 * channel, a webhook POST to a server on 127.0.0.1, pause then restore,
 * abort with a process running, a monitor that never triggers, the metrics
 * as bare names and as metrics.NAME, and validation. */
#include "helpers.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static ice_engine_t *mk(int virtual_clock) {
  ice_engine_t *e = NULL;
  ice_engine_opts_t o = ICE_ENGINE_OPTS_INIT;

  o.virtual_clock = virtual_clock;
  assert_int_equal(ice_engine_new(&e, NULL, &o), 0);
  return e;
}

static const char *status_of(json_t *res) {
  return json_string_value(json_object_get(res, "status"));
}

static json_t *out_of(json_t *res, const char *id) {
  return json_object_get(json_object_get(res, "output"), id);
}

static json_int_t int_of(json_t *obj, const char *key) {
  return json_integer_value(json_object_get(obj, key));
}

/* ---- a one-request HTTP server on 127.0.0.1 ------------------------------ */

typedef struct {
  int fd;
  int port;
  int answer; /* the status to answer */
  char head[4096];
  char *body;
  pthread_t th;
} srv_t;

static void *srv_main(void *p) {
  srv_t *s = p;
  struct pollfd pfd = {s->fd, POLLIN, 0};
  char buf[8192];
  size_t have = 0, want = 0;
  char *end = NULL;
  int c;

  /* Never hang the test: give up after 20 s without a request. */
  if (poll(&pfd, 1, 20000) != 1)
    return NULL;
  c = accept(s->fd, NULL, NULL);
  if (c < 0)
    return NULL;
  while (have < sizeof(buf) - 1) {
    ssize_t n = read(c, buf + have, sizeof(buf) - 1 - have);
    if (n <= 0)
      break;
    have += (size_t)n;
    buf[have] = '\0';
    if (end == NULL && (end = strstr(buf, "\r\n\r\n")) != NULL) {
      const char *cl = strcasestr(buf, "Content-Length:");
      want = (size_t)(end + 4 - buf) +
             (cl != NULL ? strtoul(cl + 15, NULL, 10) : 0);
    }
    if (end != NULL && have >= want)
      break;
  }
  if (end != NULL) {
    size_t hl = (size_t)(end - buf);
    memcpy(s->head, buf, hl < sizeof(s->head) - 1 ? hl : sizeof(s->head) - 1);
    s->body = strdup(end + 4);
  }
  if (s->answer == 0) {
    /* A server that never answers: wait until the client gives up. */
    while (read(c, buf, sizeof(buf)) > 0)
      ;
    close(c);
    return NULL;
  }
  snprintf(buf, sizeof(buf),
           "HTTP/1.1 %d X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
           s->answer);
  if (write(c, buf, strlen(buf)) < 0)
    perror("write");
  close(c);
  return NULL;
}

static void srv_start(srv_t *s, int answer) {
  struct sockaddr_in a;
  socklen_t len = sizeof(a);

  memset(s, 0, sizeof(*s));
  s->answer = answer;
  s->fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(s->fd >= 0);
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
  assert_int_equal(listen(s->fd, 4), 0);
  assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &len), 0);
  s->port = ntohs(a.sin_port);
  assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
}

/* Waits for the request; s->body stays the caller's to free. */
static void srv_stop(srv_t *s) {
  pthread_join(s->th, NULL);
  close(s->fd);
}

static int setup(void **state) {
  (void)state;
  /* The webhook goes to 127.0.0.1 directly, whatever the environment. */
  unsetenv("http_proxy");
  unsetenv("HTTP_PROXY");
  unsetenv("all_proxy");
  unsetenv("ALL_PROXY");
  return 0;
}

/* ---- tests --------------------------------------------------------------- */

static void test_alert_once_per_channel(void **state) {
  ice_engine_t *e = mk(0);
  json_t *evs = json_array(), *alerts, *res, *out, *ev;
  size_t i;

  (void)state;
  res = th_run_wf(
      e,
      th_wf(e, "nodes:\n"
               "  - {id: m, type: monitor, metric_expression: "
               "'nodes_completed >= 1', alert_channels: [log, email, log], "
               "check_interval_seconds: 0.01}\n"
               "  - {id: a, type: tool, tool_name: sleep, tool_args: "
               "{seconds: 0.1}}\n"
               "  - {id: b, type: tool, tool_name: sleep, tool_args: "
               "{seconds: 0.1}, dependencies: [a]}\n"
               "  - {id: c, type: tool, tool_name: sleep, tool_args: "
               "{seconds: 0.1}, dependencies: [b]}\n"),
      NULL, 0, evs);
  assert_string_equal(status_of(res), "completed");
  /* The condition stays true; each channel alerts once all the same. */
  alerts = th_events_of(evs, "monitor.alert", "m");
  assert_int_equal(json_array_size(alerts), 2);
  json_array_foreach(alerts, i, ev) {
    assert_string_equal(json_string_value(json_object_get(ev, "channel")),
                        i == 0 ? "log" : "email");
    assert_string_equal(
        json_string_value(json_object_get(ev, "metric_expression")),
        "nodes_completed >= 1");
    assert_true(int_of(json_object_get(ev, "metrics"), "nodes_completed") >= 1);
  }
  out = out_of(res, "m");
  assert_true(json_is_true(json_object_get(out, "triggered")));
  assert_int_equal(int_of(out, "triggers_fired"), 1);
  assert_int_equal(int_of(out, "alerts_sent"), 2);
  assert_true(int_of(out, "checks_performed") >= 2);
  assert_string_equal(json_string_value(json_object_get(out, "action_taken")),
                      "alert");
  assert_string_equal(
      json_string_value(json_object_get(out, "metric_evaluated")),
      "nodes_completed >= 1");
  th_want_node(res, "c", "completed", NULL);
  json_decref(alerts);
  json_decref(evs);
  json_decref(res);
  assert_int_equal(ice_engine_free(e), 0);
}

static void test_webhook_reaches_server(void **state) {
  ice_engine_t *e = mk(0);
  json_t *evs = json_array(), *res, *body, *out, *alerts;
  srv_t s;
  char wf[1024];

  (void)state;
  srv_start(&s, 200);
  snprintf(wf, sizeof(wf),
           "nodes:\n"
           "  - {id: m, type: monitor, metric_expression: 'true', "
           "alert_channels: [webhook, slack], "
           "webhook_url: 'http://127.0.0.1:%d/hook'}\n"
           "  - {id: a, type: tool, tool_name: echo}\n",
           s.port);
  res = th_run_wf(e, th_wf(e, wf), NULL, 0, evs);
  srv_stop(&s);
  assert_string_equal(status_of(res), "completed");
  out = out_of(res, "m");
  assert_int_equal(int_of(out, "alerts_sent"), 2);
  assert_null(json_object_get(out, "webhook_error"));
  /* A POST of the event itself, as subscribers saw it. */
  assert_non_null(strstr(s.head, "POST /hook HTTP/1.1"));
  assert_non_null(strcasestr(s.head, "Content-Type: application/json"));
  body = th_json(s.body);
  assert_string_equal(json_string_value(json_object_get(body, "type")),
                      "monitor.alert");
  assert_string_equal(json_string_value(json_object_get(body, "channel")),
                      "webhook");
  assert_string_equal(json_string_value(json_object_get(body, "node_id")), "m");
  assert_string_equal(json_string_value(json_object_get(body, "run_id")),
                      json_string_value(json_object_get(res, "run_id")));
  assert_true(json_is_object(json_object_get(body, "metrics")));
  alerts = th_events_of(evs, "monitor.alert", "m");
  assert_int_equal(json_array_size(alerts), 2);
  assert_true(json_equal(json_array_get(alerts, 0), body));
  json_decref(alerts);
  json_decref(body);
  free(s.body);
  json_decref(evs);
  json_decref(res);
  assert_int_equal(ice_engine_free(e), 0);
}

/* A webhook that fails (an error status, nothing listening) is reported in
 * the output; the run still succeeds. */
static void test_webhook_failure_reported(void **state) {
  ice_engine_t *e = mk(0);
  json_t *res, *out;
  srv_t s;
  char wf[1024];
  int port;

  (void)state;
  srv_start(&s, 500);
  snprintf(wf, sizeof(wf),
           "nodes:\n"
           "  - {id: m, type: monitor, metric_expression: 'true', "
           "alert_channels: [webhook, log], "
           "webhook_url: 'http://127.0.0.1:%d/'}\n",
           s.port);
  res = th_run_wf(e, th_wf(e, wf), NULL, 0, NULL);
  srv_stop(&s);
  free(s.body);
  assert_string_equal(status_of(res), "completed");
  out = out_of(res, "m");
  assert_int_equal(int_of(out, "alerts_sent"), 1);
  assert_string_equal(json_string_value(json_object_get(out, "webhook_error")),
                      "HTTP 500");
  json_decref(res);

  /* A port nobody listens on: bound, then closed. */
  {
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd);
  }
  snprintf(wf, sizeof(wf),
           "nodes:\n"
           "  - {id: m, type: monitor, metric_expression: 'true', "
           "alert_channels: [webhook], "
           "webhook_url: 'http://127.0.0.1:%d/'}\n",
           port);
  res = th_run_wf(e, th_wf(e, wf), NULL, 0, NULL);
  assert_string_equal(status_of(res), "completed");
  out = out_of(res, "m");
  assert_int_equal(int_of(out, "alerts_sent"), 0);
  assert_non_null(json_object_get(out, "webhook_error"));
  json_decref(res);
  assert_int_equal(ice_engine_free(e), 0);
}

static int commit_cb(const ice_commit_t *c, void *data, char *msg,
                     size_t msglen) {
  (void)msg;
  (void)msglen;
  json_array_append_new(data, ice_commit_to_json(c));
  return 0;
}

static json_t *run_logged(ice_engine_t *e, const char *text, json_t *log,
                          json_t *from) {
  ice_run_opts_t o = ICE_RUN_OPTS_INIT;
  ice_run_t *r = NULL;
  ice_workflow_t *wf = th_wf(e, text);
  json_t *res;

  o.commit = commit_cb;
  o.commit_data = log;
  o.restore = from;
  assert_int_equal(ice_run_new(e, wf, &o, &r, NULL), 0);
  ice_workflow_free(wf);
  assert_int_equal(ice_run_execute(r), 0);
  res = json_deep_copy(ice_run_result(r));
  ice_run_free(r);
  return res;
}

static void test_pause_then_restore(void **state) {
  ice_engine_t *e = mk(0);
  json_t *log = json_array(), *first, *second, *out;
  const char *text =
      "nodes:\n"
      "  - {id: m, type: monitor, metric_expression: 'nodes_completed >= 2', "
      "action_on_trigger: pause, check_interval_seconds: 0.01}\n"
      "  - {id: a, type: tool, tool_name: sleep, tool_args: {seconds: 0.2}}\n"
      "  - {id: b, type: tool, tool_name: sleep, tool_args: {seconds: 0.2}, "
      "dependencies: [a]}\n"
      "  - {id: c, type: tool, tool_name: sleep, tool_args: {seconds: 0.2}, "
      "dependencies: [b]}\n"
      "  - {id: d, type: tool, tool_name: sleep, tool_args: {seconds: 0.2}, "
      "dependencies: [c]}\n"
      "  - {id: f, type: tool, tool_name: sleep, tool_args: {seconds: 0.2}, "
      "dependencies: [d]}\n"
      "  - {id: g, type: tool, tool_name: sleep, tool_args: {seconds: 0.2}, "
      "dependencies: [f]}\n";

  (void)state;
  /* Real time: checks every 10 ms, each node of the chain takes 200 ms,
   * so the pause comes while c runs. */
  first = run_logged(e, text, log, NULL);
  assert_string_equal(status_of(first), "paused");
  out = out_of(first, "m");
  assert_true(json_is_true(json_object_get(out, "triggered")));
  assert_string_equal(json_string_value(json_object_get(out, "action_taken")),
                      "pause");
  th_want_node(first, "a", "completed", NULL);
  th_want_node(first, "b", "completed", NULL);
  th_want_node(first, "g", "pending", NULL);
  /* Rebuilt from its records: the monitor does not run again, the chain
   * goes on to the end. */
  second = run_logged(e, text, log, log);
  assert_string_equal(status_of(second), "completed");
  assert_true(json_equal(out_of(second, "m"), out));
  th_want_node(second, "g", "completed", NULL);
  json_decref(first);
  json_decref(second);
  json_decref(log);
  assert_int_equal(ice_engine_free(e), 0);
}

/* Is a `sleep S.MARK` still running (not a zombie)? Polls for up to 2 s:
 * the kernel finishes a SIGKILL asynchronously. */
static int sleep_running(int s, int mark) {
  char want[64];
  size_t wlen;

  wlen = (size_t)snprintf(want, sizeof(want), "sleep%c%d.%d", '\0', s, mark);
  for (int i = 0; i < 200; i++) {
    DIR *d = opendir("/proc");
    struct dirent *de;
    int found = 0;

    assert_non_null(d);
    while (!found && (de = readdir(d)) != NULL) {
      char path[300], buf[128];
      FILE *f;
      size_t n;

      if (de->d_name[0] < '0' || de->d_name[0] > '9')
        continue;
      snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
      if ((f = fopen(path, "r")) == NULL)
        continue;
      n = fread(buf, 1, sizeof(buf), f);
      fclose(f);
      found = n > wlen && memcmp(buf, want, wlen + 1) == 0;
    }
    closedir(d);
    if (!found)
      return 0;
    usleep(10000);
  }
  return 1;
}

static void test_abort_kills_processes(void **state) {
  ice_engine_t *e = mk(0);
  char pidfile[] = "/tmp/ice-mon-XXXXXX", wf[2048], buf[32] = "";
  json_t *res, *out;
  FILE *f;
  int fd = mkstemp(pidfile);
  uint64_t t0 = uv_hrtime();
  long pid;

  (void)state;
  assert_true(fd >= 0);
  close(fd);
  /* The tool runs in a sandbox (SPEC §5.2): its pid file is a writable
   * path, and its $$ is a pid of its own namespace, so the test looks for
   * its command line instead: `sleep 30.<our pid>`. */
  snprintf(wf, sizeof(wf),
           "tools:\n"
           "  hang: {command: [sh, -c, 'echo $$ > %s; exec sleep 30.%d'], "
           "sandbox: {writable: [%s]}}\n"
           "nodes:\n"
           "  - {id: m, type: monitor, metric_expression: "
           "'elapsed_seconds > 0.2', action_on_trigger: abort, "
           "check_interval_seconds: 0.05}\n"
           "  - {id: long, type: tool, tool_name: hang}\n"
           "  - {id: after, type: tool, tool_name: echo, dependencies: "
           "[long]}\n",
           pidfile, (int)getpid(), pidfile);
  res = th_run_wf(e, th_wf(e, wf), NULL, 0, NULL);
  assert_string_equal(status_of(res), "aborted");
  assert_false(json_is_true(json_object_get(res, "success")));
  th_want_node(res, "m", "completed", NULL);
  th_want_node(res, "long", "cancelled", NULL);
  th_want_node(res, "after", "cancelled", NULL);
  out = out_of(res, "m");
  assert_string_equal(json_string_value(json_object_get(out, "action_taken")),
                      "abort");
  /* Well before the 30 s sleep would end. */
  assert_true((uv_hrtime() - t0) / 1000000000u < 15);
  f = fopen(pidfile, "r");
  assert_non_null(f);
  assert_non_null(fgets(buf, sizeof(buf), f));
  fclose(f);
  unlink(pidfile);
  pid = strtol(buf, NULL, 10);
  assert_true(pid > 1);
  assert_false(sleep_running(30, (int)getpid()));
  json_decref(res);
  assert_int_equal(ice_engine_free(e), 0);
}

static void test_never_triggers(void **state) {
  ice_engine_t *e = mk(0);
  json_t *evs = json_array(), *res, *out, *alerts;

  (void)state;
  res = th_run_wf(
      e,
      th_wf(e, "nodes:\n"
               "  - {id: m, type: monitor, metric_expression: "
               "'nodes_failed > 0', check_interval_seconds: 3600}\n"
               "  - {id: a, type: tool, tool_name: sleep, tool_args: "
               "{seconds: 0.05}}\n"
               "  - {id: b, type: tool, tool_name: echo, dependencies: [a]}\n"),
      NULL, 0, evs);
  /* An hour-long interval does not hold the run open. */
  assert_string_equal(status_of(res), "completed");
  out = out_of(res, "m");
  assert_false(json_is_true(json_object_get(out, "triggered")));
  assert_int_equal(int_of(out, "triggers_fired"), 0);
  assert_true(int_of(out, "checks_performed") >= 1);
  assert_true(json_is_null(json_object_get(out, "action_taken")));
  assert_int_equal(int_of(out, "alerts_sent"), 0);
  alerts = th_events_of(evs, "monitor.alert", NULL);
  assert_int_equal(json_array_size(alerts), 0);
  json_decref(alerts);
  json_decref(evs);
  json_decref(res);
  /* Alone in the run: one check, then it finishes. */
  res = th_run_wf(e,
                  th_wf(e, "nodes:\n"
                           "  - {id: m, type: monitor, metric_expression: "
                           "'retries > 3'}\n"),
                  NULL, 0, NULL);
  assert_string_equal(status_of(res), "completed");
  assert_int_equal(int_of(out_of(res, "m"), "checks_performed"), 1);
  json_decref(res);
  assert_int_equal(ice_engine_free(e), 0);
}

static void test_metrics_names(void **state) {
  ice_engine_t *e = mk(0);
  json_t *res, *out;

  (void)state;
  /* Bare names equal metrics.NAME, and the context is there too. */
  res = th_run_wf(
      e,
      th_wf(e, "nodes:\n"
               "  - {id: a, type: tool, tool_name: echo, tool_args: {x: 7}}\n"
               "  - id: m\n    type: monitor\n    dependencies: [a]\n"
               "    metric_expression: >-\n"
               "      metrics.nodes_completed == nodes_completed and\n"
               "      metrics.retries == retries and retries >= 1 and\n"
               "      tokens == 0 and cost == 0 and nodes_failed == 0 and\n"
               "      nodes_running >= 1 and elapsed_seconds >= 0 and\n"
               "      a.x == 7 and metrics.tokens == 0\n"
               "    check_interval_seconds: 0.01\n"
               "  - {id: f, type: tool, tool_name: flaky, tool_args: "
               "{failures: 2}, retry_policy: {max_attempts: 3, "
               "backoff_seconds: 0.1}}\n"),
      NULL, 0, NULL);
  assert_string_equal(status_of(res), "completed");
  out = out_of(res, "m");
  assert_true(json_is_true(json_object_get(out, "triggered")));
  assert_int_equal(int_of(out, "alerts_sent"), 1);
  json_decref(res);
  assert_int_equal(ice_engine_free(e), 0);
}

static void test_expression_error_fails(void **state) {
  ice_engine_t *e = mk(1);
  json_t *res;

  (void)state;
  res = th_run_wf(e,
                  th_wf(e, "nodes:\n"
                           "  - {id: m, type: monitor, metric_expression: "
                           "'nodes_done > 1'}\n"
                           "  - {id: a, type: tool, tool_name: echo}\n"),
                  NULL, 0, NULL);
  assert_string_equal(status_of(res), "failed");
  th_want_node(res, "m", "failed", "expression");
  json_decref(res);
  assert_int_equal(ice_engine_free(e), 0);
}

static void cancel_soon(uv_timer_t *h) {
  ice_run_cancel(h->data);
}

static void test_cancel_stops_monitor(void **state) {
  ice_engine_t *e = mk(0);
  ice_run_opts_t o = ICE_RUN_OPTS_INIT;
  ice_run_t *r = NULL;
  uv_timer_t tm;
  ice_workflow_t *wf =
      th_wf(e, "nodes:\n"
               "  - {id: m, type: monitor, metric_expression: 'false', "
               "check_interval_seconds: 0.01}\n"
               "  - {id: a, type: tool, tool_name: sleep, tool_args: "
               "{seconds: 30}}\n");

  (void)state;
  assert_int_equal(ice_run_new(e, wf, &o, &r, NULL), 0);
  ice_workflow_free(wf);
  uv_timer_init(ice_engine_loop(e), &tm);
  tm.data = r;
  uv_timer_start(&tm, cancel_soon, 100, 0);
  assert_int_equal(ice_run_execute(r), 0);
  assert_string_equal(status_of(ice_run_result(r)), "cancelled");
  th_want_node(ice_run_result(r), "m", "cancelled", NULL);
  th_want_node(ice_run_result(r), "a", "cancelled", NULL);
  ice_run_free(r);
  uv_close((uv_handle_t *)&tm, NULL);
  assert_int_equal(ice_engine_free(e), 0);
}

/* A cancel while the webhook is in flight: the POST is aborted, the
 * monitor is cancelled at once, not when the request would time out. */
static void test_cancel_during_webhook(void **state) {
  ice_engine_t *e = mk(0);
  ice_run_opts_t o = ICE_RUN_OPTS_INIT;
  ice_run_t *r = NULL;
  uv_timer_t tm;
  srv_t s;
  char text[1024];
  ice_workflow_t *wf;
  uint64_t t0 = uv_hrtime();

  (void)state;
  srv_start(&s, 0);
  snprintf(text, sizeof(text),
           "nodes:\n"
           "  - {id: m, type: monitor, metric_expression: 'true', "
           "alert_channels: [webhook], "
           "webhook_url: 'http://127.0.0.1:%d/'}\n"
           "  - {id: a, type: tool, tool_name: sleep, tool_args: "
           "{seconds: 30}}\n",
           s.port);
  wf = th_wf(e, text);
  assert_int_equal(ice_run_new(e, wf, &o, &r, NULL), 0);
  ice_workflow_free(wf);
  uv_timer_init(ice_engine_loop(e), &tm);
  tm.data = r;
  uv_timer_start(&tm, cancel_soon, 300, 0);
  assert_int_equal(ice_run_execute(r), 0);
  assert_string_equal(status_of(ice_run_result(r)), "cancelled");
  th_want_node(ice_run_result(r), "m", "cancelled", NULL);
  ice_run_free(r);
  uv_close((uv_handle_t *)&tm, NULL);
  srv_stop(&s);
  free(s.body);
  /* Well before the webhook's own 10 s timeout. */
  assert_true((uv_hrtime() - t0) / 1000000u < 8000);
  assert_int_equal(ice_engine_free(e), 0);
}

static void pause_on_a(json_t *ev, void *data) {
  const char *id = json_string_value(json_object_get(ev, "node_id"));

  if (id != NULL && strcmp(id, "a") == 0)
    ice_run_pause(*(ice_run_t **)data);
}

/* Paused from outside before it triggered: the monitor does not hold the
 * pause, and a restored run starts it again. */
static void test_outside_pause_restarts_monitor(void **state) {
  ice_engine_t *e = mk(0);
  json_t *log = json_array(), *res;
  ice_run_opts_t o = ICE_RUN_OPTS_INIT;
  ice_run_t *r = NULL;
  ice_sub_t *sub;
  const char *text =
      "nodes:\n"
      "  - {id: m, type: monitor, metric_expression: 'nodes_failed > 0', "
      "check_interval_seconds: 0.01}\n"
      "  - {id: a, type: tool, tool_name: sleep, tool_args: {seconds: 0.1}}\n"
      "  - {id: b, type: tool, tool_name: echo, dependencies: [a]}\n";
  ice_workflow_t *wf = th_wf(e, text);

  (void)state;
  o.commit = commit_cb;
  o.commit_data = log;
  assert_int_equal(ice_run_new(e, wf, &o, &r, NULL), 0);
  ice_workflow_free(wf);
  assert_int_equal(ice_subscribe(e, "node.started", pause_on_a, &r, &sub), 0);
  assert_int_equal(ice_run_execute(r), 0);
  ice_unsubscribe(e, sub);
  assert_string_equal(status_of(ice_run_result(r)), "paused");
  th_want_node(ice_run_result(r), "a", "completed", NULL);
  th_want_node(ice_run_result(r), "b", "pending", NULL);
  ice_run_free(r);
  res = run_logged(e, text, log, log);
  assert_string_equal(status_of(res), "completed");
  assert_false(json_is_true(json_object_get(out_of(res, "m"), "triggered")));
  json_decref(res);
  json_decref(log);
  assert_int_equal(ice_engine_free(e), 0);
}

static void test_validation(void **state) {
  ice_engine_t *e = mk(0);
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};
  const char *text = "nodes:\n"
                     "  - {id: a, type: monitor, metric_expression: 'x >'}\n"
                     "  - {id: b, type: monitor, metric_expression: 'true', "
                     "action_on_trigger: stop}\n"
                     "  - {id: c, type: monitor, metric_expression: 'true', "
                     "alert_channels: [log, pager]}\n"
                     "  - {id: d, type: monitor, metric_expression: 'true', "
                     "check_interval_seconds: 0}\n"
                     "  - {id: f, type: monitor, metric_expression: 'true', "
                     "alert_channels: [webhook]}\n"
                     "  - {id: g, type: monitor, metric_expression: 'true', "
                     "alert_channels: [webhook], webhook_url: 'ftp://x/'}\n"
                     "  - {id: h, type: monitor}\n";
  const char *const want[] = {
      "node 'a': metric_expression: column",
      "node 'b': action_on_trigger 'stop' is not one of alert_only, pause, "
      "abort",
      "node 'c': alert channel 'pager' is not one of log, webhook, email, "
      "slack, sms, dashboard",
      "node 'd': check_interval_seconds must be a number > 0",
      "node 'f': 'webhook_url' is required when alert_channels holds "
      "'webhook'",
      "node 'g': webhook_url 'ftp://x/' is not an http:// or https:// URL",
      "node 'h': missing required field 'metric_expression'"};

  (void)state;
  assert_int_equal(
      ice_workflow_parse(e, "t.yaml", text, strlen(text), 1, &wf, &d),
      ICE_EWORKFLOW);
  if (d.count != sizeof(want) / sizeof(want[0])) {
    for (size_t i = 0; i < d.count; i++)
      fprintf(stderr, "%s\n", d.items[i].message);
    fail_msg("%zu diagnostics", d.count);
  }
  /* Each expected message once, in whatever order they are reported. */
  for (size_t w = 0; w < d.count; w++) {
    int found = 0;
    for (size_t i = 0; i < d.count && !found; i++) {
      char *s = ice_diag_format(&d.items[i]);
      found = strstr(s, want[w]) != NULL;
      free(s);
    }
    if (!found)
      fail_msg("no diagnostic: %s", want[w]);
  }
  ice_diags_free(&d);
  assert_int_equal(ice_engine_free(e), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_alert_once_per_channel),
      cmocka_unit_test(test_webhook_reaches_server),
      cmocka_unit_test(test_webhook_failure_reported),
      cmocka_unit_test(test_pause_then_restore),
      cmocka_unit_test(test_abort_kills_processes),
      cmocka_unit_test(test_never_triggers),
      cmocka_unit_test(test_metrics_names),
      cmocka_unit_test(test_expression_error_fails),
      cmocka_unit_test(test_cancel_stops_monitor),
      cmocka_unit_test(test_cancel_during_webhook),
      cmocka_unit_test(test_outside_pause_restarts_monitor),
      cmocka_unit_test(test_validation),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
