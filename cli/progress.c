/* The progress line of `ice run` on a terminal: nodes done/total, running
 * and failed, redrawn on stderr at most every 50 ms. It is an ordinary
 * event subscriber. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct cli_progress_s {
  ice_sub_t *sub;
  char run_id[64]; /* the run shown; sub-workflow runs are not counted */
  size_t total, done, running, failed;
  double last_draw;
  int drawn;
};

static double now_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void draw(cli_progress_t *p, int force) {
  double t = now_s();

  if (!force && t - p->last_draw < 0.05)
    return;
  p->last_draw = t;
  p->drawn = 1;
  fprintf(stderr, "\r\033[K[%zu/%zu] running %zu, failed %zu", p->done,
          p->total, p->running, p->failed);
  fflush(stderr);
}

static void on_event(json_t *ev, void *data) {
  cli_progress_t *p = data;
  const char *type = json_string_value(json_object_get(ev, "type"));

  const char *run = json_string_value(json_object_get(ev, "run_id"));

  if (type == NULL || run == NULL)
    return;
  if (strcmp(type, "workflow.started") == 0 && p->run_id[0] == '\0') {
    /* The first run is ours; its top-level node count is the total. */
    snprintf(p->run_id, sizeof(p->run_id), "%s", run);
    p->total = (size_t)json_integer_value(json_object_get(ev, "nodes"));
    return;
  }
  if (strcmp(run, p->run_id) != 0 || json_object_get(ev, "parent_id") != NULL)
    return; /* nested nodes count through their parent */
  if (strcmp(type, "node.started") == 0) {
    if (json_integer_value(json_object_get(ev, "attempt")) == 1)
      p->running++;
  } else if (strcmp(type, "node.completed") == 0) {
    p->running--;
    p->done++;
  } else if (strcmp(type, "node.failed") == 0) {
    if (!json_is_true(json_object_get(ev, "will_retry"))) {
      if (json_integer_value(json_object_get(ev, "attempt")) > 0)
        p->running--;
      p->done++;
      p->failed++;
    }
  } else if (strcmp(type, "node.skipped") == 0 ||
             strcmp(type, "node.cancelled") == 0) {
    p->done++;
  } else {
    return;
  }
  draw(p, 0);
}

cli_progress_t *cli_progress_start(ice_engine_t *e, size_t total) {
  cli_progress_t *p = calloc(1, sizeof(*p));

  if (p == NULL)
    return NULL;
  p->total = total;
  if (ice_subscribe(e, NULL, on_event, p, &p->sub) != 0) {
    free(p);
    return NULL;
  }
  return p;
}

void cli_progress_stop(ice_engine_t *e, cli_progress_t *p) {
  if (p == NULL)
    return;
  if (p->drawn)
    fprintf(stderr, "\r\033[K");
  ice_unsubscribe(e, p->sub);
  free(p);
}
