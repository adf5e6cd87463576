/* `ice run`: options, inputs, the events file, signals and the result.
 * SIGINT/SIGTERM/SIGHUP cancel the run through the library (processes
 * killed), then the command exits 130. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Most JSON text ice prints for one result (as the engine's limit for one
 * control-flow output). */
#define MAX_RESULT_TEXT ((size_t)256 << 20)

static const char *const usage_run =
    "usage: ice run FILE [options]\n"
    "\n"
    "Validates FILE, runs it and prints the result as JSON on stdout.\n"
    "\n"
    "  --input K=V         a run input; V is JSON when it parses, else a "
    "string\n"
    "  --inputs JSON|@FILE all run inputs as one JSON object\n"
    "  --max-parallel N    most top-level nodes running at once\n"
    "  --events FILE       write events as JSON lines (- = stderr)\n"
    "  --no-store          keep the run in memory (the only mode for now)\n"
    "  --output-only       print only the outputs of the nodes\n"
    "  --quiet             no progress line on stderr\n"
    "  --no-interactive    never prompt (nothing prompts yet)\n"
    "\n"
    "--store, --answer, --max-wait, --tools: not supported yet (exit 2).\n"
    "SIGINT, SIGTERM and SIGHUP cancel the run (exit 130).\n";

const char *cli_run_usage(void) {
  return usage_run;
}

/* --inputs @FILE reads at most this much: inputs are parameters, and a
 * FIFO or a device must not grow memory without end. */
#define INPUTS_MAX ((size_t)64 << 20)

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
  const char *name;
  int failed; /* set at the first failed write; no event is written after */
  int err;    /* its errno; 0 = nothing to say (stderr is closed) */
} events_out_t;

static void write_event(json_t *ev, void *data) {
  events_out_t *o = data;
  char *s;

  if (o->failed)
    return;
  s = ice_json_format(ev, 0);
  errno = 0;
  if (s == NULL) {
    o->failed = 1;
    o->err = ENOMEM;
    return;
  }
  if (fputs(s, o->fp) == EOF || putc('\n', o->fp) == EOF || ferror(o->fp)) {
    o->failed = 1;
    o->err = errno != 0 ? errno : EIO;
  }
  free(s);
}

/* Offset of the first byte of s[0, n) that is not valid UTF-8 (RFC 3629:
 * no overlong forms, no surrogates, nothing above U+10FFFF, as jansson
 * checks), or n when all of it is valid. */
static size_t utf8_bad(const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;

  while (i < n) {
    unsigned c = s[i], cp, min;
    size_t len;
    if (c < 0x80) {
      i++;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return i;
    }
    if (n - i < len)
      return i;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80)
        return i;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return i;
    i += len;
  }
  return n;
}

/* Prints s on stderr with every byte that is not valid UTF-8, and every
 * control character, as \xHH, so that a message never carries them. */
static void put_escaped(const char *s) {
  size_t n = strlen(s);

  while (n > 0) {
    size_t ok = utf8_bad(s, n);
    for (size_t i = 0; i < ok; i++) {
      if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
        fprintf(stderr, "\\x%02X", (unsigned char)s[i]);
      else
        fputc(s[i], stderr);
    }
    if (ok == n)
      break;
    fprintf(stderr, "\\x%02X", (unsigned char)s[ok]);
    s += ok + 1;
    n -= ok + 1;
  }
}

/* --input K=V: V is JSON when it parses, else a string. Inputs are JSON,
 * whose strings are UTF-8: other bytes are refused rather than changed
 * behind the user's back. */
static int add_input(json_t *inputs, const char *kv) {
  const char *eq = strchr(kv, '=');
  size_t len = strlen(kv), bad = utf8_bad(kv, len);
  json_t *v;
  char *key;

  if (bad < len) {
    fputs("ice: --input '", stderr);
    put_escaped(kv);
    fprintf(stderr,
            "' is not valid UTF-8 (byte 0x%02X at offset %zu)\n"
            "Try 'ice help'.\n",
            (unsigned char)kv[bad], bad);
    return 2;
  }
  if (eq == NULL || eq == kv)
    return cli_usage_error("--input needs KEY=VALUE, got '%s'", kv);
  v = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
  if (v == NULL)
    v = json_string(eq + 1);
  key = strndup(kv, (size_t)(eq - kv));
  if (v == NULL || key == NULL || json_object_set_new(inputs, key, v) != 0) {
    free(key);
    fprintf(stderr, "ice: --input: %s\n", strerror(ENOMEM));
    return 2;
  }
  free(key);
  return 0;
}

/* The text of --inputs @FILE, whole, in a malloc'd buffer; NULL after
 * printing why. Pipes and /dev/stdin work; a directory, a NUL byte (no
 * JSON text has one: /dev/zero fails at once) and more than INPUTS_MAX
 * bytes are refused. */
static char *read_inputs(const char *path, size_t *len) {
  struct stat st;
  char *buf = NULL;
  size_t n = 0, cap = 0;
  const char *why = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);

  if (fd < 0) {
    fprintf(stderr, "ice: --inputs @%s: %s\n", path, strerror(errno));
    return NULL;
  }
  if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
    why = strerror(EISDIR);
  while (why == NULL) {
    ssize_t r;
    if (cap - n < 65536) {
      char *nb;
      cap = cap == 0 ? 65536 : cap * 2;
      nb = realloc(buf, cap);
      if (nb == NULL) {
        why = strerror(ENOMEM);
        break;
      }
      buf = nb;
    }
    r = read(fd, buf + n, cap - n - 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      why = strerror(errno);
    } else if (r == 0) {
      break;
    } else if (memchr(buf + n, '\0', (size_t)r) != NULL) {
      why = "contains a NUL byte: not a JSON text";
    } else if ((n += (size_t)r) > INPUTS_MAX) {
      why = "is larger than 64 MiB";
    }
  }
  close(fd);
  if (why != NULL) {
    fprintf(stderr, "ice: --inputs @%s: %s\n", path, why);
    free(buf);
    return NULL;
  }
  if (buf == NULL) /* a directory was caught above: cannot happen */
    return NULL;
  buf[n] = '\0';
  *len = n;
  return buf;
}

/* Line and column (1-based, in bytes) of offset off in text. */
static void line_col(const char *text, size_t off, size_t *line, size_t *col) {
  size_t l = 1, c = 1;

  for (size_t i = 0; i < off; i++) {
    if (text[i] == '\n')
      l++, c = 1;
    else
      c++;
  }
  *line = l;
  *col = c;
}

static int set_inputs(json_t *inputs, const char *arg) {
  json_error_t err;
  json_t *v;

  if (arg[0] == '@') {
    const char *path = arg + 1;
    size_t len = 0, bad, line, col;
    char *text = read_inputs(path, &len);
    if (text == NULL)
      return 2;
    bad = utf8_bad(text, len);
    if (bad < len) {
      line_col(text, bad, &line, &col);
      fprintf(stderr,
              "ice: --inputs %s:%zu:%zu: not valid UTF-8 (byte 0x%02X)\n", path,
              line, col, (unsigned char)text[bad]);
      free(text);
      return 2;
    }
    /* A key given twice is a mistake, not a choice between two values. */
    v = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    free(text);
    if (v == NULL) {
      fprintf(stderr, "ice: --inputs %s:%d:%d: %s\n", path, err.line,
              err.column, err.text);
      return 2;
    }
  } else {
    size_t len = strlen(arg), bad = utf8_bad(arg, len);
    if (bad < len) {
      fprintf(stderr,
              "ice: --inputs is not valid UTF-8 (byte 0x%02X at offset %zu)\n"
              "Try 'ice help'.\n",
              (unsigned char)arg[bad], bad);
      return 2;
    }
    v = json_loads(arg, JSON_REJECT_DUPLICATES, &err);
    if (v == NULL) {
      fprintf(stderr, "ice: --inputs is not valid JSON: %s\n", err.text);
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
  int rc = 0, opts_done = 0;

  for (int i = 2; i < argc && rc == 0; i++) {
    const char *a = argv[i], *val, *eq;
    char name[32];
    int inline_val = 0;

    if (opts_done || a[0] != '-' || a[1] == '\0') {
      if (o->file != NULL)
        rc = cli_usage_error("unexpected argument '%s'", a);
      else if (a[0] == '\0')
        rc = cli_usage_error("%s", "the workflow FILE is an empty string");
      else
        o->file = a;
      continue;
    }
    if (strcmp(a, "--") == 0) {
      opts_done = 1;
      continue;
    }
    /* --name=VALUE is the same as --name VALUE. */
    eq = strchr(a, '=');
    if (a[1] == '-' && eq != NULL && (size_t)(eq - a) < sizeof(name)) {
      memcpy(name, a, (size_t)(eq - a));
      name[eq - a] = '\0';
      a = name;
      val = eq + 1;
      inline_val = 1;
    } else {
      val = i + 1 < argc ? argv[i + 1] : NULL;
    }
#define TAKE_VALUE()                                                           \
  do {                                                                         \
    if (!inline_val)                                                           \
      i++;                                                                     \
  } while (0)
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      rc = cli_write_out(cli_run_usage(), 0, "the help") == 0 ? -1 : 1;
    } else if (strcmp(a, "--input") == 0 || strcmp(a, "-i") == 0) {
      if (val == NULL)
        rc = cli_usage_error("%s needs KEY=VALUE", a);
      else
        rc = add_input(later, val);
      TAKE_VALUE();
    } else if (strcmp(a, "--inputs") == 0) {
      if (val == NULL)
        rc = cli_usage_error("%s needs JSON or @FILE", a);
      else
        rc = set_inputs(o->inputs, val);
      TAKE_VALUE();
    } else if (strcmp(a, "--max-parallel") == 0) {
      char *end = NULL;
      long n = 0;
      if (val != NULL) {
        errno = 0;
        n = strtol(val, &end, 10);
      }
      if (val == NULL || end == val || *end != '\0' || errno != 0 || n < 1 ||
          n > 1000000)
        rc = cli_usage_error(
            "--max-parallel needs an integer from 1 to 1000000, got '%s'",
            val != NULL ? val : "");
      else
        o->max_parallel = (int)n;
      TAKE_VALUE();
    } else if (strcmp(a, "--events") == 0) {
      if (val == NULL || val[0] == '\0')
        rc = cli_usage_error("%s needs a FILE (- for stderr)", a);
      else
        o->events = val;
      TAKE_VALUE();
    } else if (inline_val) {
      /* Every option below is a flag, or refused whatever its value. */
      if (strcmp(a, "--store") == 0 || strcmp(a, "--answer") == 0 ||
          strcmp(a, "--max-wait") == 0 || strcmp(a, "--tools") == 0)
        rc = cli_unsupported(a);
      else if (strcmp(a, "--no-store") == 0 ||
               strcmp(a, "--output-only") == 0 || strcmp(a, "--quiet") == 0 ||
               strcmp(a, "--no-interactive") == 0)
        rc = cli_usage_error("%s takes no value", a);
      else
        rc = cli_usage_error("unknown option '%s'", argv[i]);
    } else if (strcmp(a, "--no-store") == 0) {
      /* The only mode until the store exists. */
    } else if (strcmp(a, "--no-interactive") == 0) {
      /* Nothing prompts yet (no human nodes): accepted so that scripts
       * written against the SPEC run. */
    } else if (strcmp(a, "--output-only") == 0) {
      o->output_only = 1;
    } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
      o->quiet = 1;
    } else if (strcmp(a, "--store") == 0 || strcmp(a, "--answer") == 0 ||
               strcmp(a, "--max-wait") == 0 || strcmp(a, "--tools") == 0) {
      rc = cli_unsupported(a);
    } else {
      rc = cli_usage_error("unknown option '%s'", a);
    }
#undef TAKE_VALUE
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
  int hup; /* 1 when the SIGHUP handle is started */
  uv_signal_t sigint, sigterm, sighup;
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
  uv_signal_stop(&s->sighup);
}

/* The events file's last bytes and its close can fail too. Returns 0, or
 * -1 after printing why the events are incomplete. */
static int events_close(events_out_t *ev) {
  int bad;

  if (ev->fp == NULL)
    return 0;
  errno = 0;
  if (ev->fp == stderr)
    bad = fflush(stderr) != 0 || ferror(stderr);
  else
    bad = fclose(ev->fp) != 0;
  ev->fp = NULL;
  if (bad && !ev->failed) {
    ev->failed = 1;
    ev->err = errno != 0 ? errno : EIO;
  }
  if (!ev->failed)
    return 0;
  if (ev->err != 0)
    fprintf(stderr, "ice: cannot write events to %s: %s\n", ev->name,
            strerror(ev->err));
  return -1;
}

/* 1 when both paths name the same existing file. */
static int same_file(const char *a, const char *b) {
  struct stat sa, sb;

  return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

int cli_run(int argc, char **argv) {
  run_opts_t o;
  ice_engine_t *e = NULL;
  ice_workflow_t *wf = NULL;
  ice_run_t *run = NULL;
  ice_diags_t d = {0};
  ice_run_opts_t ro = ICE_RUN_OPTS_INIT;
  ice_engine_opts_t eo = ICE_ENGINE_OPTS_INIT;
  events_out_t ev = {NULL, NULL, 0, 0};
  cli_progress_t *progress = NULL;
  sig_ctx_t sig;
  struct sigaction hup;
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
  /* Every diagnostic, warnings of a valid file included, before the run. */
  cli_print_diags(&d);
  ice_diags_free(&d);
  if (rc != 0) {
    rc = 2;
    goto out;
  }
  if (o.events != NULL && same_file(o.events, o.file)) {
    /* Opening it for writing would destroy the workflow. */
    rc = cli_usage_error("--events %s is the workflow file", o.events);
    goto out;
  }
  if (o.events != NULL) {
    ev.name = o.events;
    ev.fp = strcmp(o.events, "-") == 0 ? stderr : fopen(o.events, "w");
    if (ev.fp == NULL) {
      fprintf(stderr, "ice: cannot write events to %s: %s\n", o.events,
              strerror(errno));
      rc = 2;
      goto out;
    }
    /* stderr was closed: the events would be lost, and nothing can say
     * so but the exit status. */
    if (ev.fp == stderr && cli_fd_was_closed(STDERR_FILENO))
      ev.failed = 1;
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
  uv_signal_init(ice_engine_loop(e), &sig.sighup);
  sig.sigint.data = sig.sigterm.data = sig.sighup.data = &sig;
  uv_signal_start(&sig.sigint, on_signal, SIGINT);
  uv_signal_start(&sig.sigterm, on_signal, SIGTERM);
  /* A closed terminal or SSH session (SIGHUP) cancels like SIGTERM, so no
   * tool outlives us; under nohup (SIGHUP ignored) the run goes on. */
  if (sigaction(SIGHUP, NULL, &hup) != 0 || hup.sa_handler != SIG_IGN)
    uv_signal_start(&sig.sighup, on_signal, SIGHUP);
  ice_run_start(run, on_done, &sig);
  uv_run(ice_engine_loop(e), UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&sig.sigint, NULL);
  uv_close((uv_handle_t *)&sig.sigterm, NULL);
  uv_close((uv_handle_t *)&sig.sighup, NULL);
  cli_progress_stop(e, progress);

  {
    json_t *res = ice_run_result(run);
    const json_t *shown = o.output_only ? json_object_get(res, "output") : res;
    /* Outputs share values: one built by an executor can hold the same
     * object so many times that its text would never end. */
    int too_big = ice_json_size(shown, MAX_RESULT_TEXT) == SIZE_MAX;
    char *s =
        too_big ? NULL : ice_json_format(shown, isatty(STDOUT_FILENO) ? 2 : 0);
    int lost;

    if (too_big) {
      fprintf(stderr,
              "ice: the result's JSON text would be over %zu MiB; it is not "
              "printed\n",
              MAX_RESULT_TEXT >> 20);
      lost = 1;
    } else {
      lost = cli_write_out(s, 1, "the result") != 0;
    }

    free(s);
    if (events_close(&ev) != 0)
      lost = 1;
    /* A signal says more than a lost result: 130 stays. */
    if (sig.signalled)
      rc = 130;
    else if (lost)
      rc = 1;
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
