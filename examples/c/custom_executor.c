/* Extending ice from C: a custom node type and a custom tool.
 *
 * - `my_node` (ice_register_node) compiles its config once per node, at
 *   validation (executor ABI 2: problems are reported at the field), then
 *   per attempt renders its `greeting` template, waits `delay_ms` on a
 *   libuv timer and only then completes: the executor returns from start()
 *   at once and finishes later, from the loop. It reports usage (one
 *   "token" per word it says), which the run sums into metrics.tokens and
 *   metrics.cost_usd. It can fail on purpose (`fail_attempts`) to show that
 *   a failure is data the scheduler retries, and it has a cancel hook,
 *   used when a parallel branch loses.
 * - `word_count` (ice_register_tool) is a C tool that answers at once.
 *
 * The engine runs on a loop that this program owns, and the run is started
 * with ice_run_start(), as an application with its own event loop would
 * do. Exits 0 when every result is as expected, 1 otherwise (ctest runs
 * it). */

/* <ice.h> includes <uv.h>, which needs POSIX types that strict -std=c11
 * hides. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <ice.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the `my_node` node type -------------------------------------------- */

/* The fields my_node accepts besides the common ones (id, dependencies,
 * retry_policy...). Any other field is a validation error. */
static const ice_field_t my_node_fields[] = {
    {"greeting", ICE_T_STRING, 1, 1},   /* required; may hold {{ }} */
    {"delay_ms", ICE_T_INT, 0, 0},      /* default 10 */
    {"repeat", ICE_T_INT, 0, 0},        /* default 1 */
    {"fail_attempts", ICE_T_INT, 0, 0}, /* fail this many attempts */
    {NULL, 0, 0, 0},
};

/* One attempt in flight. The timer lives here, so the struct is freed only
 * when libuv says the handle is closed. */
typedef struct {
  uv_timer_t timer;
  ice_task_t *task; /* NULL once the attempt completed */
  json_t *text;     /* the rendered greeting */
  long repeat;
} pending_t;

static int cancels_seen;

/* What the type knows of the world: the executor's data, handed to the
 * compile hook and to every attempt (instead of a global). */
typedef struct {
  double price_per_token;
  int compiles;
} my_type_t;

static my_type_t my_type = {0.001, 0};

/* One node's config, parsed once at validation, read by every attempt. */
typedef struct {
  uint64_t delay_ms;
  long repeat;
  long fail_attempts;
} my_config_t;

/* Range checks that the field table cannot express, and the parse, once
 * per node. The result is kept with the node (ice_task_compiled). */
static void *my_node_compile(ice_compile_t *c) {
  json_t *config = ice_compile_config(c); /* borrowed */
  json_t *repeat = json_object_get(config, "repeat");
  json_t *delay = json_object_get(config, "delay_ms");
  my_type_t *type = ice_compile_executor_data(c);
  my_config_t *cfg;

  type->compiles++;
  if (repeat != NULL &&
      (json_integer_value(repeat) < 1 || json_integer_value(repeat) > 10))
    ice_compile_error(c, "repeat", "repeat must be between 1 and 10");
  if (delay != NULL && json_integer_value(delay) < 0)
    ice_compile_error(c, "delay_ms", "delay_ms must be >= 0");
  cfg = calloc(1, sizeof(*cfg));
  if (cfg == NULL) {
    ice_compile_error(c, NULL, "out of memory");
    return NULL;
  }
  cfg->delay_ms = delay != NULL ? (uint64_t)json_integer_value(delay) : 10;
  cfg->repeat = repeat != NULL ? (long)json_integer_value(repeat) : 1;
  cfg->fail_attempts =
      (long)json_integer_value(json_object_get(config, "fail_attempts"));
  return cfg;
}

static void my_node_free(void *compiled, void *data) {
  (void)data;
  free(compiled);
}

static void pending_closed(uv_handle_t *h) {
  pending_t *p = h->data;

  json_decref(p->text);
  free(p);
}

static void on_timer(uv_timer_t *timer) {
  pending_t *p = timer->data;
  ice_task_t *t = p->task;
  json_t *out = json_object();
  char *joined = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&joined, &len);

  for (long i = 0; mem != NULL && i < p->repeat; i++)
    fprintf(mem, "%s%s", i > 0 ? " " : "", json_string_value(p->text));
  if (mem != NULL)
    fclose(mem);
  json_object_set_new(out, "text", json_string(joined != NULL ? joined : ""));
  json_object_set_new(out, "attempt", json_integer(ice_task_attempt(t)));
  free(joined);
  /* Usage, as an LLM node reports tokens: summed into the node, its
   * enclosing nodes and the run's metrics. */
  {
    const my_type_t *type = ice_task_executor_data(t);
    long long words = 0;
    for (const char *s = json_string_value(p->text); *s != '\0'; s++)
      words += *s != ' ' && (s == json_string_value(p->text) || s[-1] == ' ');
    words *= p->repeat;
    ice_task_usage(t, words, (double)words * type->price_per_token);
  }

  /* Complete exactly once, then forget the task: the engine may free it
   * as soon as it processes the completion. */
  p->task = NULL;
  ice_task_set_data(t, NULL);
  ice_task_done(t, out); /* takes out */
  uv_close((uv_handle_t *)&p->timer, pending_closed);
}

static void my_node_start(ice_task_t *t) {
  json_t *config = ice_task_config(t); /* borrowed */
  const my_config_t *cfg = ice_task_compiled(t);
  char msg[256];
  json_t *text;
  pending_t *p;

  /* A failure is data: ice_task_fail, never a crash or an exit. With a
   * retry_policy on the node, the scheduler tries again after a back-off. */
  if (ice_task_attempt(t) <= cfg->fail_attempts) {
    ice_task_fail(t, "transient", "attempt %d failed on purpose",
                  ice_task_attempt(t));
    return;
  }
  /* Templates in our own fields are rendered on demand, against the node's
   * context (run inputs, dependency outputs). */
  if (ice_task_render(t, json_object_get(config, "greeting"), &text, msg,
                      sizeof(msg)) != 0) {
    ice_task_fail(t, "expression", "greeting: %s", msg);
    return;
  }
  if (!json_is_string(text)) {
    json_decref(text);
    ice_task_fail(t, "non_retryable", "greeting did not render to a string");
    return;
  }
  p = calloc(1, sizeof(*p));
  if (p == NULL || uv_timer_init(ice_task_loop(t), &p->timer) != 0) {
    free(p);
    json_decref(text);
    ice_task_fail(t, "internal", "out of memory");
    return;
  }
  p->timer.data = p;
  p->task = t;
  p->text = text;
  p->repeat = cfg->repeat;
  ice_task_set_data(t, p);
  snprintf(msg, sizeof(msg), "waiting %llu ms",
           (unsigned long long)cfg->delay_ms);
  ice_task_log(t, "stdout", msg, strlen(msg));
  uv_timer_start(&p->timer, on_timer, cfg->delay_ms, 0);
  /* Return now; on_timer completes the attempt later. */
}

/* A timeout, a halt, a cancelled run or a lost race. The attempt must
 * still complete, once; as failed is usual. */
static void my_node_cancel(ice_task_t *t) {
  pending_t *p = ice_task_data(t);

  if (p == NULL)
    return;
  cancels_seen++;
  p->task = NULL;
  ice_task_set_data(t, NULL);
  uv_timer_stop(&p->timer);
  uv_close((uv_handle_t *)&p->timer, pending_closed);
  ice_task_fail(t, "cancelled", "my_node cancelled");
}

/* Static and const: the table must outlive the engine. */
static const ice_executor_t my_node = {
    .abi = ICE_EXECUTOR_ABI,
    .type = "my_node",
    .fields = my_node_fields,
    .start = my_node_start,
    .cancel = my_node_cancel,
    .default_timeout = 10.0, /* seconds per attempt, unless the node says */
    .data = &my_type,
    .compile = my_node_compile, /* once per node, not per attempt */
    .free_compiled = my_node_free,
};

/* ---- the `word_count` tool ---------------------------------------------- */

/* args are the rendered tool_args (borrowed); data is ice_tool_t.data. */
static void word_count_start(ice_task_t *t, json_t *args, void *data) {
  const char *s = json_string_value(json_object_get(args, "text"));
  int *calls = data;
  long words = 0;
  int in_word = 0;

  ++*calls;
  if (s == NULL) {
    ice_task_fail(t, "tool_error", "word_count needs a string 'text'");
    return;
  }
  for (; *s != '\0'; s++) {
    int space = *s == ' ' || *s == '\t' || *s == '\n';
    words += !space && !in_word;
    in_word = !space;
  }
  /* Completing inside start() is fine: the engine queues the completion
   * and processes it after start() returns. */
  ice_task_done(t, json_pack("{s:I}", "words", (json_int_t)words));
}

/* ---- the workflow ------------------------------------------------------- */

static const char workflow_yaml[] =
    "name: custom\n"
    "nodes:\n"
    "  - id: greet\n"
    "    type: my_node\n"
    "    greeting: 'hello {{ inputs.name }}'\n"
    "    repeat: 2\n"
    "    delay_ms: 20\n"
    "    fail_attempts: 1\n"
    "    retry_policy: {max_attempts: 2, backoff_seconds: 0.01}\n"
    "  - id: count\n"
    "    type: tool\n"
    "    tool_name: word_count\n"
    "    dependencies: [greet]\n"
    "    tool_args: {text: '{{ greet.text }}'}\n"
    "  - id: first\n"
    "    type: parallel\n"
    "    wait_strategy: any\n"
    "    branches:\n"
    "      - - {id: fast, type: my_node, greeting: fast, delay_ms: 5}\n"
    "      - - {id: slow, type: my_node, greeting: slow, delay_ms: 5000}\n";

typedef struct {
  int logs;
  int cancelled;
} seen_t;

/* Events are borrowed for the call. */
static void on_event(json_t *ev, void *data) {
  seen_t *seen = data;
  const char *type = json_string_value(json_object_get(ev, "type"));

  if (strcmp(type, "node.log") == 0)
    seen->logs++;
  else if (strcmp(type, "node.cancelled") == 0)
    seen->cancelled++;
}

static void on_done(ice_run_t *run, void *data) {
  int *finished = data;

  (void)run;
  *finished = 1;
}

static int check(int cond, const char *what) {
  if (!cond)
    fprintf(stderr, "custom_executor: unexpected: %s\n", what);
  return cond;
}

int main(void) {
  uv_loop_t loop;
  ice_engine_t *engine = NULL;
  ice_workflow_t *wf = NULL;
  ice_run_t *run = NULL;
  ice_diags_t diags = {0};
  ice_run_opts_t opts = ICE_RUN_OPTS_INIT;
  ice_sub_t *sub = NULL;
  seen_t seen = {0, 0};
  int tool_calls = 0, finished = 0, ok = 0;
  ice_tool_t word_count = {"word_count", word_count_start, NULL, &tool_calls};
  json_t *inputs = NULL, *res, *expected, *greet, *merged;
  char *text;

  if (uv_loop_init(&loop) != 0)
    return 1;
  if (ice_engine_new(&engine, &loop, NULL) != 0) {
    uv_loop_close(&loop);
    return 1;
  }
  /* Register before loading: validation looks types and tools up. */
  if (ice_register_node(engine, &my_node) != 0 ||
      ice_register_tool(engine, &word_count) != 0)
    goto out;
  if (ice_workflow_parse(engine, "custom.yaml", workflow_yaml,
                         strlen(workflow_yaml), 1, &wf, &diags) != 0) {
    for (size_t i = 0; i < diags.count; i++) {
      char *line = ice_diag_format(&diags.items[i]);
      fprintf(stderr, "%s\n", line != NULL ? line : "?");
      free(line);
    }
    goto out;
  }
  ice_subscribe(engine, "node.", on_event, &seen, &sub);

  inputs = json_pack("{s:s}", "name", "ada");
  opts.inputs = inputs; /* borrowed: the run takes its own reference */
  if (ice_run_new(engine, wf, &opts, &run, &diags) != 0 ||
      ice_run_start(run, on_done, &finished) != 0)
    goto out;
  /* Our loop, our call. Other handles of the program would run here too. */
  uv_run(&loop, UV_RUN_DEFAULT);

  res = ice_run_result(run); /* borrowed, valid until ice_run_free */
  text = ice_json_format(json_object_get(res, "output"), 2);
  printf("%s\n", text != NULL ? text : "null");
  free(text);

  expected =
      json_pack("{s:s,s:i}", "text", "hello ada hello ada", "attempt", 2);
  greet = json_object_get(json_object_get(res, "nodes"), "greet");
  merged = json_object_get(ice_run_output(run, "first"), "merged");
  ok = check(finished, "the done callback fired") &
       check(json_is_true(json_object_get(res, "success")), "run succeeded") &
       check(json_equal(ice_run_output(run, "greet"), expected),
             "greet output") &
       check(json_integer_value(json_object_get(greet, "attempts")) == 2,
             "greet took two attempts") &
       check(json_integer_value(
                 json_object_get(ice_run_output(run, "count"), "words")) == 4,
             "count.words == 4") &
       check(json_object_get(merged, "fast") != NULL &&
                 json_object_get(merged, "slow") == NULL,
             "the fast branch won") &
       check(cancels_seen == 1, "the slow branch was cancelled") &
       check(seen.cancelled == 1, "one node.cancelled event") &
       check(seen.logs == 3, "three node.log events") &
       check(tool_calls == 1, "word_count called once") &
       /* 3 my_node nodes, one compile each, though greet ran twice. */
       check(my_type.compiles == 3, "one compile per node") &
       /* greet said 4 words; fast 1; slow was cancelled before saying any. */
       check(json_integer_value(json_object_get(json_object_get(res, "metrics"),
                                                "tokens")) == 5,
             "metrics.tokens == 5") &
       check(json_real_value(json_object_get(json_object_get(res, "metrics"),
                                             "cost_usd")) > 0.0049 &&
                 json_real_value(json_object_get(
                     json_object_get(res, "metrics"), "cost_usd")) < 0.0051,
             "metrics.cost_usd == 0.005");
  json_decref(expected);

out:
  json_decref(inputs);
  ice_diags_free(&diags);
  ice_unsubscribe(engine, sub);
  ice_run_free(run);
  ice_workflow_free(wf);
  /* A freed run closes its libuv handles; let the loop finish that before
   * the engine checks that nothing is alive. */
  uv_run(&loop, UV_RUN_DEFAULT);
  if (!check(ice_engine_free(engine) == 0, "engine freed") ||
      !check(uv_loop_close(&loop) == 0, "loop closed"))
    ok = 0;
  return ok ? 0 : 1;
}
