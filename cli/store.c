/* `ice runs`, `ice show RUN` and `ice events RUN`: what the run store
 * keeps (SPEC §9, §11), read through the public API. `ice resume` lives
 * with `ice run` (run.c), whose run it continues. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const usage_runs =
    "usage: ice runs [--limit N] [--store PATH]\n"
    "\n"
    "Prints one line per stored run, newest first, with no header:\n"
    "RUN_ID STATUS WORKFLOW STARTED.\n";

static const char *const usage_show =
    "usage: ice show RUN [--store PATH]\n"
    "\n"
    "Prints the stored result of RUN as `ice run` prints it. A run that has\n"
    "no result yet prints its run_id, workflow and status.\n";

static const char *const usage_events =
    "usage: ice events RUN [--store PATH]\n"
    "\n"
    "Prints the stored events of RUN and of its child runs as JSON lines.\n";

const char *cli_runs_usage(void) {
  return usage_runs;
}

const char *cli_show_usage(void) {
  return usage_show;
}

const char *cli_events_usage(void) {
  return usage_events;
}

typedef struct {
  const char *run;
  const char *store;
  size_t limit;
} store_args_t;

/* Options of the three commands: RUN (when usage names one), --store and,
 * for runs, --limit. 0, -1 after printing the help, or 2. */
static int parse(int argc, char **argv, const char *usage, int want_run,
                 int want_limit, store_args_t *a) {
  int opts_done = 0;

  memset(a, 0, sizeof(*a));
  for (int i = 2; i < argc; i++) {
    const char *s = argv[i], *val = NULL;
    char name[8];

    if (opts_done || s[0] != '-' || s[1] == '\0') {
      if (!want_run || a->run != NULL)
        return cli_usage_error("unexpected argument '%s'", s);
      if (s[0] == '\0')
        return cli_usage_error("%s", "the RUN is an empty string");
      a->run = s;
      continue;
    }
    if (strcmp(s, "--") == 0) {
      opts_done = 1;
      continue;
    }
    if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0)
      return cli_write_out(usage, 0, "the help") == 0 ? -1 : 1;
    /* --name=VALUE is the same as --name VALUE. */
    if (strncmp(s, "--store=", 8) == 0 || strncmp(s, "--limit=", 8) == 0) {
      memcpy(name, s, 7);
      name[7] = '\0';
      val = s + 8;
    } else if (strcmp(s, "--store") == 0 || strcmp(s, "--limit") == 0) {
      snprintf(name, sizeof(name), "%s", s);
      if (i + 1 < argc)
        val = argv[++i];
    } else {
      return cli_usage_error("unknown option '%s'", s);
    }
    if (strcmp(name, "--store") == 0) {
      if (val == NULL || val[0] == '\0')
        return cli_usage_error("%s", "--store needs a PATH");
      a->store = val;
    } else if (!want_limit) {
      return cli_usage_error("unknown option '%s'", s);
    } else {
      char *end = NULL;
      long long v = -1;
      if (val != NULL) {
        errno = 0;
        v = strtoll(val, &end, 10);
      }
      if (val == NULL || end == val || *end != '\0' || errno != 0 || v < 1)
        return cli_usage_error("--limit needs a positive integer, got '%s'",
                               val != NULL ? val : "");
      a->limit = (size_t)v;
    }
  }
  if (want_run && a->run == NULL)
    return cli_usage_error("%s", "this command needs a RUN");
  return 0;
}

/* A field of a run for one line of `ice runs`: strings as they are
 * (control characters as '?'), other values as JSON, malloc'd. */
static char *field_text(json_t *v) {
  char *s = json_is_string(v) ? strdup(json_string_value(v))
            : v == NULL       ? strdup("-")
                              : ice_json_format(v, 0);

  for (char *p = s; p != NULL && *p != '\0'; p++) {
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      *p = '?';
  }
  return s;
}

int cli_runs(int argc, char **argv) {
  store_args_t a;
  ice_store_t *st = NULL;
  json_t *runs = NULL, *r;
  char msg[1024];
  size_t i;
  int rc = parse(argc, argv, usage_runs, 0, 1, &a);

  if (rc != 0)
    return rc < 0 ? 0 : rc;
  if ((rc = cli_open_store(a.store, &st)) != 0)
    return rc;
  if (ice_store_runs(st, a.limit, &runs, msg, sizeof(msg)) != 0) {
    fprintf(stderr, "ice: %s\n", msg);
    cli_close_store(st);
    return 2;
  }
  json_array_foreach(runs, i, r) {
    char *f[4], *line = NULL;
    static const char *const keys[] = {"run_id", "status", "workflow",
                                       "started"};
    for (int k = 0; k < 4; k++)
      f[k] = field_text(json_object_get(r, keys[k]));
    if (f[0] != NULL && f[1] != NULL && f[2] != NULL && f[3] != NULL &&
        asprintf(&line, "%s %s %s %s", f[0], f[1], f[2], f[3]) < 0)
      line = NULL;
    for (int k = 0; k < 4; k++)
      free(f[k]);
    rc = cli_write_out(line, 1, "the runs") == 0 ? 0 : 1;
    free(line);
    if (rc != 0)
      break;
  }
  json_decref(runs);
  if (cli_close_store(st) != 0 && rc == 0)
    rc = 1;
  return rc;
}

/* Prints "ice: no run 'X' in the store PATH"; returns 2. */
static int no_run(ice_store_t *st, const char *run) {
  fprintf(stderr, "ice: no run '");
  for (const char *p = run; *p != '\0'; p++) {
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      fprintf(stderr, "\\x%02X", (unsigned char)*p);
    else
      fputc(*p, stderr);
  }
  fprintf(stderr, "' in the store %s\n", ice_store_path(st));
  return 2;
}

int cli_show(int argc, char **argv) {
  store_args_t a;
  ice_store_t *st = NULL;
  json_t *rec = NULL, *res;
  char msg[1024];
  int rc = parse(argc, argv, usage_show, 1, 0, &a);

  if (rc != 0)
    return rc < 0 ? 0 : rc;
  if ((rc = cli_open_store(a.store, &st)) != 0)
    return rc;
  rc = ice_store_load(st, a.run, &rec, msg, sizeof(msg));
  if (rc == ICE_ENOENT) {
    rc = no_run(st, a.run);
  } else if (rc != 0) {
    fprintf(stderr, "ice: %s\n", msg);
    rc = 2;
  } else if (json_is_object(res = json_object_get(rec, "result"))) {
    rc = cli_print_result(res, 0) == 0 ? 0 : 1;
  } else {
    /* No result yet: the run is going on, or its process died. What is
     * known, in the result's first keys. */
    const char *status = json_string_value(json_object_get(rec, "status"));
    json_t *partial = json_pack(
        "{s:O, s:O, s:s, s:b}", "run_id", json_object_get(rec, "run_id"),
        "workflow", json_object_get(rec, "workflow"), "status",
        status != NULL ? status : "running", "success", 0);
    rc = cli_print_result(partial, 0) == 0 ? 0 : 1;
    json_decref(partial);
    if (!json_is_true(json_object_get(rec, "owner_alive")))
      fprintf(stderr,
              "ice: run %s has no result: its process is gone; ice resume "
              "%s continues it\n",
              a.run, a.run);
  }
  json_decref(rec);
  if (cli_close_store(st) != 0 && rc == 0)
    rc = 1;
  return rc;
}

typedef struct {
  size_t count;
  int failed;
} events_ctx_t;

static void print_event(json_t *ev, void *data) {
  events_ctx_t *c = data;
  char *s;

  if (c->failed)
    return;
  c->count++;
  s = ice_json_format(ev, 0);
  if (cli_write_out(s, 1, "the events") != 0)
    c->failed = 1;
  free(s);
}

int cli_events(int argc, char **argv) {
  store_args_t a;
  ice_store_t *st = NULL;
  events_ctx_t c = {0, 0};
  char msg[1024];
  int rc = parse(argc, argv, usage_events, 1, 0, &a);

  if (rc != 0)
    return rc < 0 ? 0 : rc;
  if ((rc = cli_open_store(a.store, &st)) != 0)
    return rc;
  rc = ice_store_events(st, a.run, print_event, &c, msg, sizeof(msg));
  if (rc == ICE_ENOENT) {
    rc = no_run(st, a.run);
  } else if (rc != 0) {
    fprintf(stderr, "ice: %s\n", msg);
    rc = 2;
  } else if (c.failed) {
    rc = 1;
  } else if (c.count == 0) {
    /* Nothing printed: tell an unknown run from a run without events. */
    json_t *rec = NULL;
    if (ice_store_load(st, a.run, &rec, msg, sizeof(msg)) == ICE_ENOENT)
      rc = no_run(st, a.run);
    json_decref(rec);
  }
  if (cli_close_store(st) != 0 && rc == 0)
    rc = 1;
  return rc;
}
