/* `ice run`: options, inputs, the events file, signals and the result.
 * SIGINT/SIGTERM cancel the run through the library (processes killed),
 * then the command exits 130. */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  const char *file;
  json_t *inputs;
  int max_parallel;
  const char *events;
  int output_only;
  int quiet;
} run_opts_t;

typedef struct {
  FILE *fp;
  int failed;
} events_out_t;

static void write_event(json_t *ev, void *data) {
  events_out_t *o = data;
  char *s = ice_json_format(ev, 0);

  if (s == NULL)
    return;
  if (fprintf(o->fp, "%s\n", s) < 0)
    o->failed = 1;
  free(s);
}

/* --input K=V: V is JSON when it parses, else a string. */
static int add_input(json_t *inputs, const char *kv) {
  const char *eq = strchr(kv, '=');
  json_t *v;
  char *key;

  if (eq == NULL || eq == kv)
    return cli_usage_error("--input needs KEY=VALUE, got '%s'", kv);
  v = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
  if (v == NULL)
    v = json_string(eq + 1);
  if (v == NULL)
    return cli_usage_error("--input value is not valid UTF-8: '%s'", kv);
  key = strndup(kv, (size_t)(eq - kv));
  json_object_set_new(inputs, key, v);
  free(key);
  return 0;
}

static int set_inputs(json_t *inputs, const char *arg) {
  json_error_t err;
  json_t *v;

  if (arg[0] == '@') {
    v = json_load_file(arg + 1, 0, &err);
    if (v == NULL) {
      if (err.line > 0)
        fprintf(stderr, "ice: --inputs %s:%d:%d: %s\n", arg + 1, err.line,
                err.column, err.text);
      else
        fprintf(stderr, "ice: --inputs: %s\n", err.text);
      return 2;
    }
  } else {
    v = json_loads(arg, 0, &err);
    if (v == NULL) {
      fprintf(stderr, "ice: --inputs is not a JSON object: %s\n", err.text);
      return 2;
    }
  }
  if (!json_is_object(v)) {
    json_decref(v);
    return cli_usage_error("%s", "--inputs must be a JSON object");
  }
  json_object_update(inputs, v);
  json_decref(v);
  return 0;
}

static int parse(int argc, char **argv, run_opts_t *o) {
  json_t *later = json_object(); /* --input wins over --inputs */
  int rc = 0;

  for (int i = 2; i < argc && rc == 0; i++) {
    const char *a = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(cli_run_usage(), stdout);
      rc = -1;
    } else if (strcmp(a, "--input") == 0 || strcmp(a, "-i") == 0) {
      if (val == NULL)
        rc = cli_usage_error("%s needs KEY=VALUE", a);
      else
        rc = add_input(later, argv[++i]);
    } else if (strcmp(a, "--inputs") == 0) {
      if (val == NULL)
        rc = cli_usage_error("%s needs JSON or @FILE", a);
      else
        rc = set_inputs(o->inputs, argv[++i]);
    } else if (strcmp(a, "--max-parallel") == 0) {
      char *end;
      long n = val != NULL ? strtol(val, &end, 10) : 0;
      if (val == NULL || *end != '\0' || n < 1 || n > 1000000)
        rc = cli_usage_error("--max-parallel needs an integer >= 1, got '%s'",
                             val != NULL ? val : "");
      else
        o->max_parallel = (int)n;
      i++;
    } else if (strcmp(a, "--events") == 0) {
      if (val == NULL)
        rc = cli_usage_error("%s needs a FILE (- for stderr)", a);
      else
        o->events = argv[++i];
    } else if (strcmp(a, "--no-store") == 0) {
      /* The only mode until the store exists. */
    } else if (strcmp(a, "--output-only") == 0) {
      o->output_only = 1;
    } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
      o->quiet = 1;
    } else if (strcmp(a, "--store") == 0 || strcmp(a, "--answer") == 0 ||
               strcmp(a, "--max-wait") == 0 ||
               strcmp(a, "--no-interactive") == 0) {
      fprintf(stderr, "ice: %s is not supported yet\n", a);
      rc = 2;
    } else if (a[0] == '-' && a[1] != '\0') {
      rc = cli_usage_error("unknown option '%s'", a);
    } else if (o->file == NULL) {
      o->file = a;
    } else {
      rc = cli_usage_error("unexpected argument '%s'", a);
    }
  }
  if (rc == 0 && o->file == NULL)
    rc = cli_usage_error("%s", "run needs a workflow FILE");
  if (rc == 0)
    json_object_update(o->inputs, later);
  json_decref(later);
  return rc;
}

typedef struct {
  ice_run_t *run;
  int signalled;
  uv_signal_t sigint, sigterm;
} sig_ctx_t;

static void on_signal(uv_signal_t *h, int signum) {
  sig_ctx_t *s = h->data;

  (void)signum;
  s->signalled = 1;
  ice_run_cancel(s->run);
}

static void on_done(ice_run_t *run, void *data) {
  sig_ctx_t *s = data;

  (void)run;
  uv_signal_stop(&s->sigint);
  uv_signal_stop(&s->sigterm);
}

static void print_json(const json_t *v) {
  char *s = ice_json_format(v, isatty(STDOUT_FILENO) ? 2 : 0);

  if (s != NULL) {
    printf("%s\n", s);
    free(s);
  }
}

int cli_run(int argc, char **argv) {
  run_opts_t o;
  ice_engine_t *e = NULL;
  ice_workflow_t *wf = NULL;
  ice_run_t *run = NULL;
  ice_diags_t d = {0};
  ice_run_opts_t ro = ICE_RUN_OPTS_INIT;
  ice_engine_opts_t eo = ICE_ENGINE_OPTS_INIT;
  events_out_t ev = {NULL, 0};
  cli_progress_t *progress = NULL;
  sig_ctx_t sig;
  const char *vc;
  int rc;

  memset(&o, 0, sizeof(o));
  o.inputs = json_object();
  rc = parse(argc, argv, &o);
  if (rc != 0) {
    json_decref(o.inputs);
    return rc < 0 ? 0 : rc;
  }
  /* Testing aid: ICE_VIRTUAL_CLOCK=1 makes back-off delays instant while
   * events still show them (docs/cli.md). */
  vc = getenv("ICE_VIRTUAL_CLOCK");
  eo.virtual_clock = vc != NULL && strcmp(vc, "1") == 0;
  if (ice_engine_new(&e, NULL, &eo) != 0) {
    json_decref(o.inputs);
    fprintf(stderr, "ice: cannot create the engine\n");
    return 2;
  }
  rc = ice_workflow_load(e, o.file, &wf, &d);
  if (rc == 0) {
    ro.inputs = o.inputs;
    ro.max_parallel = o.max_parallel;
    rc = ice_run_new(e, wf, &ro, &run, &d);
  }
  cli_print_diags(&d);
  ice_diags_free(&d);
  if (rc != 0) {
    rc = 2;
    goto out;
  }
  if (o.events != NULL) {
    ev.fp = strcmp(o.events, "-") == 0 ? stderr : fopen(o.events, "w");
    if (ev.fp == NULL) {
      fprintf(stderr, "ice: cannot write events to %s: %s\n", o.events,
              strerror(errno));
      rc = 2;
      goto out;
    }
    /* Line-buffered, so that `tail -f` and a killed run see every event
     * written so far. */
    setvbuf(ev.fp, NULL, _IOLBF, 0);
    ice_subscribe(e, NULL, write_event, &ev, NULL);
  }
  /* Events written to stderr would tangle with the progress line. */
  if (!o.quiet && isatty(STDERR_FILENO) &&
      (o.events == NULL || strcmp(o.events, "-") != 0))
    progress = cli_progress_start(e, 0);

  memset(&sig, 0, sizeof(sig));
  sig.run = run;
  uv_signal_init(ice_engine_loop(e), &sig.sigint);
  uv_signal_init(ice_engine_loop(e), &sig.sigterm);
  sig.sigint.data = sig.sigterm.data = &sig;
  uv_signal_start(&sig.sigint, on_signal, SIGINT);
  uv_signal_start(&sig.sigterm, on_signal, SIGTERM);
  ice_run_start(run, on_done, &sig);
  uv_run(ice_engine_loop(e), UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&sig.sigint, NULL);
  uv_close((uv_handle_t *)&sig.sigterm, NULL);
  cli_progress_stop(e, progress);

  {
    json_t *res = ice_run_result(run);
    print_json(o.output_only ? json_object_get(res, "output") : res);
    fflush(stdout);
    if (sig.signalled)
      rc = 130;
    else
      rc = json_is_true(json_object_get(res, "success")) ? 0 : 1;
  }
out:
  if (ev.fp != NULL && ev.fp != stderr)
    fclose(ev.fp);
  ice_run_free(run);
  ice_workflow_free(wf);
  if (e != NULL)
    ice_engine_free(e);
  json_decref(o.inputs);
  return rc;
}
