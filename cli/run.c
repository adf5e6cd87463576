/* `ice run` and `ice resume`: options, inputs, answers, the events file,
 * the run store, signals, the terminal prompt and the result.
 * SIGINT/SIGTERM/SIGHUP cancel the run through the library (processes
 * killed), then the command exits 130. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
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
    "Validates FILE, runs it, records it in the run store and prints the\n"
    "result as JSON on stdout.\n"
    "\n"
    "  --input K=V         a run input; V is JSON when it parses, else a "
    "string\n"
    "  --inputs JSON|@FILE all run inputs as one JSON object\n"
    "  --answer NODE=V     an answer for a human node, given ahead\n"
    "  --max-parallel N    most top-level nodes running at once\n"
    "  --events FILE       write events as JSON lines (- = stderr)\n"
    "  --store PATH        the run store (default $ICE_HOME/runs.db)\n"
    "  --no-store          keep the run in memory (it cannot be resumed)\n"
    "  --max-wait SECONDS  wait in-process for a timer due within this "
    "(60)\n"
    "  --tools FILE        a tool file: tools and agents the workflow uses\n"
    "                      (repeatable, the first named wins; then the\n"
    "                      files of $ICE_TOOLS, a ':'-separated list)\n"
    "  --output-only       print only the run's output (its `outputs`,\n"
    "                      or the outputs of the nodes)\n"
    "  --quiet             no progress line on stderr (warnings stay)\n"
    "  --no-interactive    never prompt for an answer\n"
    "\n"
    "Exit 2, before anything runs, for an invalid workflow or tool file and\n"
    "for inputs the workflow refuses (input_schema, declared inputs).\n"
    "Exit 3 when the run is paused or waiting for an answer.\n"
    "SIGINT, SIGTERM and SIGHUP cancel the run (exit 130).\n";

static const char *const usage_resume =
    "usage: ice resume RUN [options]\n"
    "\n"
    "Continues a stored run that was interrupted, cancelled, paused or is\n"
    "waiting, and prints its result as `ice run` does.\n"
    "\n"
    "  --answer NODE=V     an answer for a waiting human node\n"
    "  --events FILE       append events as JSON lines (- = stderr)\n"
    "  --store PATH        the run store (default $ICE_HOME/runs.db)\n"
    "  --max-wait SECONDS  wait in-process for a timer due within this "
    "(60)\n"
    "  --force             resume even if the workflow file changed\n"
    "  --output-only       print only the run's output\n"
    "  --quiet             no progress line on stderr (warnings stay)\n"
    "  --no-interactive    never prompt for an answer\n"
    "\n"
    "The run keeps its inputs and the tool files it started with (as they\n"
    "were then, from the store); --tools and $ICE_TOOLS are not read.\n";

const char *cli_run_usage(void) {
  return usage_run;
}

const char *cli_resume_usage(void) {
  return usage_resume;
}

/* --inputs @FILE reads at most this much: inputs are parameters, and a
 * FIFO or a device must not grow memory without end. */
#define INPUTS_MAX ((size_t)64 << 20)

typedef struct {
  int resume;       /* parsing `ice resume`: FILE is the run id */
  const char *file; /* the workflow FILE, or the RUN */
  json_t *inputs;
  json_t *answers; /* node id -> answer string */
  json_t *tools;   /* --tools FILE, in order */
  int max_parallel;
  const char *events;
  int output_only;
  int quiet;
  int no_interactive;
  int no_store;
  int force;
  const char *store;
  double max_wait;
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

/* OPT KEY=VALUE (--input, --answer): split at the first '=' and set
 * obj[KEY]. VALUE is JSON when `json` is set and it parses, else a string.
 * Values are JSON, whose strings are UTF-8: other bytes are refused rather
 * than changed behind the user's back. `what` names KEY in the usage
 * error. */
static int add_pair(json_t *obj, const char *opt, const char *what,
                    const char *kv, int json) {
  const char *eq = strchr(kv, '=');
  size_t len = strlen(kv), bad = utf8_bad(kv, len);
  json_t *v = NULL;
  char *key;

  if (bad < len) {
    fprintf(stderr, "ice: %s '", opt);
    put_escaped(kv);
    fprintf(stderr,
            "' is not valid UTF-8 (byte 0x%02X at offset %zu)\n"
            "Try 'ice help'.\n",
            (unsigned char)kv[bad], bad);
    return 2;
  }
  if (eq == NULL || eq == kv) {
    char fmt[64];
    snprintf(fmt, sizeof(fmt), "%s needs %s=VALUE, got '%%s'", opt, what);
    return cli_usage_error(fmt, kv);
  }
  if (json)
    v = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
  if (v == NULL)
    v = json_string(eq + 1);
  key = strndup(kv, (size_t)(eq - kv));
  if (v == NULL || key == NULL || json_object_set_new(obj, key, v) != 0) {
    free(key);
    fprintf(stderr, "ice: %s: %s\n", opt, strerror(ENOMEM));
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
        rc = cli_usage_error(
            "%s", o->resume ? "the RUN is an empty string"
                            : "the workflow FILE is an empty string");
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
    /* A resumed run keeps its inputs, its limits and its store. */
    if (o->resume &&
        (strcmp(a, "--input") == 0 || strcmp(a, "-i") == 0 ||
         strcmp(a, "--inputs") == 0 || strcmp(a, "--max-parallel") == 0 ||
         strcmp(a, "--no-store") == 0 || strcmp(a, "--tools") == 0)) {
      fprintf(stderr, "ice: %s is not an option of 'ice resume'\n", a);
      rc = cli_usage_error("%s", "a resumed run keeps its inputs and limits");
    } else if (!o->resume && strcmp(a, "--force") == 0) {
      rc = cli_usage_error("unknown option '%s'", argv[i]);
    } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      rc = cli_write_out(o->resume ? usage_resume : usage_run, 0, "the help") ==
                   0
               ? -1
               : 1;
    } else if (strcmp(a, "--input") == 0 || strcmp(a, "-i") == 0) {
      if (val == NULL)
        rc = cli_usage_error("%s needs KEY=VALUE", a);
      else
        rc = add_pair(later, "--input", "KEY", val, 1);
      TAKE_VALUE();
    } else if (strcmp(a, "--inputs") == 0) {
      if (val == NULL)
        rc = cli_usage_error("%s needs JSON or @FILE", a);
      else
        rc = set_inputs(o->inputs, val);
      TAKE_VALUE();
    } else if (strcmp(a, "--answer") == 0) {
      if (val == NULL)
        rc = cli_usage_error("%s needs NODE=VALUE", a);
      else
        rc = add_pair(o->answers, "--answer", "NODE", val, 0);
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
    } else if (strcmp(a, "--max-wait") == 0) {
      char *end = NULL;
      double s = -1;
      if (val != NULL) {
        errno = 0;
        s = strtod(val, &end);
      }
      /* isfinite refuses "inf" and "nan"; a year is far beyond any timer
       * worth waiting for in-process. */
      if (val == NULL || end == val || *end != '\0' || errno != 0 ||
          !isfinite(s) || s < 0 || s > 31536000)
        rc = cli_usage_error(
            "--max-wait needs a number of seconds from 0 to 31536000, got "
            "'%s'",
            val != NULL ? val : "");
      else
        o->max_wait = s;
      TAKE_VALUE();
    } else if (strcmp(a, "--events") == 0) {
      if (val == NULL || val[0] == '\0')
        rc = cli_usage_error("%s needs a FILE (- for stderr)", a);
      else
        o->events = val;
      TAKE_VALUE();
    } else if (strcmp(a, "--store") == 0) {
      if (val == NULL || val[0] == '\0')
        rc = cli_usage_error("%s needs a PATH", a);
      else
        o->store = val;
      TAKE_VALUE();
    } else if (strcmp(a, "--tools") == 0) {
      if (val == NULL || val[0] == '\0')
        rc = cli_usage_error("%s needs a FILE", a);
      else if (json_array_append_new(o->tools, json_string(val)) != 0)
        rc = cli_usage_error("%s: out of memory", a);
      TAKE_VALUE();
    } else if (inline_val) {
      /* Every option below is a flag. */
      if (strcmp(a, "--no-store") == 0 || strcmp(a, "--output-only") == 0 ||
          strcmp(a, "--quiet") == 0 || strcmp(a, "--no-interactive") == 0 ||
          strcmp(a, "--force") == 0)
        rc = cli_usage_error("%s takes no value", a);
      else
        rc = cli_usage_error("unknown option '%s'", argv[i]);
    } else if (strcmp(a, "--no-store") == 0) {
      o->no_store = 1;
    } else if (strcmp(a, "--no-interactive") == 0) {
      o->no_interactive = 1;
    } else if (strcmp(a, "--force") == 0) {
      o->force = 1;
    } else if (strcmp(a, "--output-only") == 0) {
      o->output_only = 1;
    } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
      o->quiet = 1;
    } else {
      rc = cli_usage_error("unknown option '%s'", a);
    }
#undef TAKE_VALUE
  }
  if (rc == 0 && o->file == NULL)
    rc = cli_usage_error("%s", o->resume ? "resume needs a RUN"
                                         : "run needs a workflow FILE");
  if (rc == 0 && o->store != NULL && o->no_store)
    rc = cli_usage_error("%s", "--store and --no-store exclude each other");
  if (rc == 0)
    json_object_update(o->inputs, later);
  json_decref(later);
  return rc;
}

/* One `ice run` or `ice resume`: the run, and the runs that continue it
 * after answers typed on the terminal. */
typedef struct {
  run_opts_t *o;
  ice_engine_t *e;
  ice_workflow_t *wf;
  ice_store_t *st;  /* NULL = --no-store */
  const char *path; /* the workflow file, absolute */
  const char *hash; /* of its content */
  json_t *tools;    /* the tool files to record with the run, or NULL */
  json_t *inputs;   /* borrowed */
  const char *events_mode;
  events_out_t ev;
  ice_run_t *run;
  int signalled; /* the first signal that cancelled the run, or 0 */
  int finish_failed;
  int hup; /* 1 when SIGHUP cancels */
  uv_signal_t sigint, sigterm, sighup;
  int can_prompt;
  /* node id -> its human.requested event, until human.resolved */
  json_t *requests;
  /* Without a store, when the terminal may answer: the commit log and the
   * run's last event seq, to continue the run from. */
  json_t *records;
  unsigned long long last_seq;
} exec_t;

static void on_signal(uv_signal_t *h, int signum) {
  exec_t *x = h->data;

  if (!x->signalled)
    x->signalled = signum;
  ice_run_cancel(x->run);
}

/* After the run has ended there is nothing left to cancel, and a signal
 * must not kill ice halfway through recording the end and printing the
 * result (uv_signal_stop restores the default action): the signals that
 * cancel are ignored until ice exits (ignore 1), or get their default
 * action back for a prompt (ignore 0), where Ctrl-C still ends ice. The
 * action is process-wide: blocking would not cover libuv's threads. */
static void cancel_signals_ignored(const exec_t *x, int ignore) {
  struct sigaction sa;

  memset(&sa, 0, sizeof(sa));
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = ignore ? SIG_IGN : SIG_DFL;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  if (x->hup) /* under nohup it stays ignored */
    sigaction(SIGHUP, &sa, NULL);
}

static void on_done(ice_run_t *run, void *data) {
  exec_t *x = data;
  char msg[512];
  sigset_t set, old;

  /* Blocked for the few instructions between libuv's default action and
   * ours; one that comes then is discarded by SIG_IGN. */
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  sigprocmask(SIG_BLOCK, &set, &old);
  uv_signal_stop(&x->sigint);
  uv_signal_stop(&x->sigterm);
  uv_signal_stop(&x->sighup);
  cancel_signals_ignored(x, 1);
  sigprocmask(SIG_SETMASK, &old, NULL);
  /* The end (or stop) of the run, as soon as it is known. */
  if (x->st != NULL &&
      ice_store_finish(x->st, ice_run_id(run), ice_run_result(run), msg,
                       sizeof(msg)) != 0) {
    fprintf(stderr, "ice: cannot record the end of run %s in the store: %s\n",
            ice_run_id(run), msg);
    /* Its row says `running`, its owner gone once we exit. */
    fprintf(stderr,
            "ice: once the store can be written, ice resume %s%s%s continues "
            "it\n",
            ice_run_id(run), x->o->store != NULL ? " --store " : "",
            x->o->store != NULL ? x->o->store : "");
    x->finish_failed = 1;
  }
}

static void on_human(json_t *ev, void *data) {
  exec_t *x = data;
  const char *type = json_string_value(json_object_get(ev, "type"));
  const char *node = json_string_value(json_object_get(ev, "node_id"));

  if (type == NULL || node == NULL)
    return;
  if (strcmp(type, "human.requested") == 0)
    json_object_set(x->requests, node, ev);
  else if (strcmp(type, "human.resolved") == 0)
    json_object_del(x->requests, node);
}

/* The library never prints (SPEC §8.2): a monitor's `log` channel is
 * ours. */
static void on_alert(json_t *ev, void *data) {
  const char *node = json_string_value(json_object_get(ev, "node_id"));
  const char *chan = json_string_value(json_object_get(ev, "channel"));
  const char *text = json_string_value(json_object_get(ev, "message"));
  json_t *metric = json_object_get(ev, "metric_expression");
  char *s = NULL;

  (void)data;
  if (chan == NULL || strcmp(chan, "log") != 0)
    return;
  if (text == NULL && json_is_string(metric))
    text = json_string_value(metric);
  if (text == NULL)
    text = s = ice_json_format(ev, 0);
  fputs("ice: monitor ", stderr);
  put_escaped(node != NULL ? node : "?");
  fputs(": alert: ", stderr);
  put_escaped(text != NULL ? text : "triggered");
  fputc('\n', stderr);
  free(s);
}

static void on_seq(json_t *ev, void *data) {
  exec_t *x = data;
  const char *id = json_string_value(json_object_get(ev, "run_id"));

  if (x->run != NULL && id != NULL && strcmp(id, ice_run_id(x->run)) == 0)
    x->last_seq =
        (unsigned long long)json_integer_value(json_object_get(ev, "seq"));
}

static int mem_commit(const ice_commit_t *c, void *data, char *msg,
                      size_t msglen) {
  exec_t *x = data;
  json_t *rec = ice_commit_to_json(c);

  if (rec == NULL || json_array_append_new(x->records, rec) != 0) {
    snprintf(msg, msglen, "%s", strerror(ENOMEM));
    return -1;
  }
  return 0;
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

int cli_print_result(json_t *res, int output_only) {
  const json_t *shown = output_only ? json_object_get(res, "output") : res;
  /* Outputs share values: one built by an executor can hold the same
   * object so many times that its text would never end. */
  int too_big = ice_json_size(shown, MAX_RESULT_TEXT) == SIZE_MAX;

  if (too_big) {
    fprintf(stderr,
            "ice: the result's JSON text would be over %zu MiB; it is not "
            "printed\n",
            MAX_RESULT_TEXT >> 20);
    return -1;
  }
  return cli_write_json(shown, isatty(STDOUT_FILENO) ? 2 : 0, "the result");
}

int cli_print_run(ice_run_t *run, int output_only) {
  int rc = cli_write_run_result(run, output_only, isatty(STDOUT_FILENO) ? 2 : 0,
                                MAX_RESULT_TEXT);

  if (rc == 1) {
    fprintf(stderr,
            "ice: the result's JSON text would be over %zu MiB; it is not "
            "printed\n",
            MAX_RESULT_TEXT >> 20);
    return -1;
  }
  return rc;
}

/* cli_result_exit from the status alone (a result's `success` is its
 * status being `completed`). */
static int status_exit(const char *st) {
  if (st != NULL && (strcmp(st, "waiting") == 0 || strcmp(st, "paused") == 0))
    return 3;
  return st != NULL && strcmp(st, "completed") == 0 ? 0 : 1;
}

int cli_result_exit(json_t *res) {
  const char *st = json_string_value(json_object_get(res, "status"));

  if (st != NULL && (strcmp(st, "waiting") == 0 || strcmp(st, "paused") == 0))
    return 3;
  return json_is_true(json_object_get(res, "success")) ? 0 : 1;
}

/* The nodes a waiting run waits on: the human nodes that asked and were
 * not answered (nested ones too), else the top-level nodes marked
 * waiting. A new reference to an array of ids. */
static json_t *waiting_nodes(exec_t *x, json_t *res) {
  json_t *ids = json_array(), *n;
  const char *k;

  json_object_foreach(x->requests, k, n) {
    json_array_append_new(ids, json_string(k));
  }
  if (json_array_size(ids) > 0)
    return ids;
  json_object_foreach(json_object_get(res, "nodes"), k, n) {
    const char *st = json_string_value(json_object_get(n, "status"));
    if (st != NULL && strcmp(st, "waiting") == 0)
      json_array_append_new(ids, json_string(k));
  }
  return ids;
}

/* Tells on stderr how a run stopped as paused or waiting goes on. */
/* After a signal: what cancelled the run, and how to go on with it. */
static void tell_cancelled(const exec_t *x, json_t *res) {
  const char *id = json_string_value(json_object_get(res, "run_id"));
  const char *sig = x->signalled == SIGINT    ? "SIGINT"
                    : x->signalled == SIGTERM ? "SIGTERM"
                                              : "SIGHUP";

  /* The signal may have come as the run ended: then nothing was. */
  if (id == NULL || !json_is_string(json_object_get(res, "status")) ||
      strcmp(json_string_value(json_object_get(res, "status")), "cancelled") !=
          0)
    return;
  if (x->st != NULL)
    fprintf(stderr, "ice: run %s was cancelled by %s: ice resume %s%s%s\n", id,
            sig, id, x->o->store != NULL ? " --store " : "",
            x->o->store != NULL ? x->o->store : "");
  else
    fprintf(stderr,
            "ice: run %s was cancelled by %s; it was not stored "
            "(--no-store), so it cannot be resumed\n",
            id, sig);
}

static void tell_how_to_go_on(exec_t *x, json_t *res) {
  const char *id = json_string_value(json_object_get(res, "run_id"));
  const char *st = json_string_value(json_object_get(res, "status"));
  const char *sp = x->o->store != NULL ? " --store " : "";
  const char *spath = x->o->store != NULL ? x->o->store : "";
  json_t *ids, *n;
  size_t i;

  if (id == NULL || st == NULL)
    return;
  if (strcmp(st, "paused") == 0) {
    if (x->st != NULL)
      fprintf(stderr, "ice: run %s is paused: ice resume %s%s%s\n", id, id, sp,
              spath);
    else
      fprintf(stderr,
              "ice: run %s is paused; it was not stored (--no-store), so it "
              "cannot be resumed\n",
              id);
    return;
  }
  if (strcmp(st, "waiting") != 0)
    return;
  ids = waiting_nodes(x, res);
  if (json_array_size(ids) == 0 && x->st != NULL)
    fprintf(stderr, "ice: run %s is waiting: ice resume %s%s%s\n", id, id, sp,
            spath);
  json_array_foreach(ids, i, n) {
    const char *node = json_string_value(n);
    const char *ask = json_string_value(
        json_object_get(json_object_get(x->requests, node), "prompt_message"));
    if (ask != NULL) {
      fprintf(stderr, "ice: %s asks: ", node);
      put_escaped(ask);
      fputc('\n', stderr);
    }
    if (x->st != NULL)
      fprintf(stderr,
              "ice: run %s is waiting for an answer: ice resume %s --answer "
              "%s=VALUE%s%s\n",
              id, id, node, sp, spath);
    else
      fprintf(stderr,
              "ice: run %s is waiting for an answer to %s; it was not stored "
              "(--no-store): run it again with --answer %s=VALUE\n",
              id, node, node);
  }
  json_decref(ids);
}

/* Asks on the terminal for the answer of each node in ids, checking each
 * as --answer is checked. 1 when every node got one, 0 at the end of
 * input. */
static int prompt_answers(exec_t *x, json_t *ids) {
  json_t *n;
  size_t i;
  char *line = NULL;
  size_t cap = 0;
  int all = 1;

  json_array_foreach(ids, i, n) {
    const char *node = json_string_value(n);
    json_t *req = json_object_get(x->requests, node);
    const char *ask = json_string_value(json_object_get(req, "prompt_message"));
    const char *type = json_string_value(json_object_get(req, "approval_type"));
    json_t *choices = json_object_get(req, "choices"), *c;
    size_t j;

    fprintf(stderr, "ice: %s is waiting for an answer", node);
    if (ask != NULL) {
      fputs(": ", stderr);
      put_escaped(ask);
    }
    fputc('\n', stderr);
    if (type != NULL && strcmp(type, "choice") == 0 && json_is_array(choices)) {
      fputs("  one of:", stderr);
      json_array_foreach(choices, j, c) {
        if (json_is_string(c)) {
          fputc(' ', stderr);
          put_escaped(json_string_value(c));
        }
      }
      fputc('\n', stderr);
    } else if (type != NULL && strcmp(type, "input_required") == 0) {
      fputs("  a JSON value or text\n", stderr);
    } else if (type == NULL || strcmp(type, "approve_reject") == 0) {
      fputs("  approve or reject (approve:COMMENT)\n", stderr);
    }
    for (;;) {
      char msg[512];
      ssize_t len;
      json_t *v;

      fprintf(stderr, "%s> ", node);
      fflush(stderr);
      len = getline(&line, &cap, stdin);
      if (len < 0) {
        fputc('\n', stderr);
        all = 0;
        break;
      }
      while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
      if (len == 0)
        continue;
      if (ice_workflow_check_answer(x->wf, node, line, msg, sizeof(msg)) != 0) {
        fputs("ice: ", stderr);
        put_escaped(msg);
        fputc('\n', stderr);
        continue;
      }
      v = json_string(line);
      if (v == NULL) {
        fprintf(stderr, "ice: the answer is not valid UTF-8\n");
        continue;
      }
      json_object_set_new(x->o->answers, node, v);
      break;
    }
    if (!all)
      break;
  }
  free(line);
  return all;
}

/* Creates the run (restored from `restore` when given), runs it, and, on
 * a terminal, asks for the answers a waiting run needs and continues it at
 * once. Prints the result; returns the exit status. */
static int execute(exec_t *x, json_t *restore, const char *run_id,
                   unsigned long long seq) {
  run_opts_t *o = x->o;
  json_t *loaded = NULL;
  char *id = NULL;
  int rc = 0, first = 1;

  x->sigint.data = x->sigterm.data = x->sighup.data = x;
  for (;;) {
    ice_run_opts_t ro = ICE_RUN_OPTS_INIT;
    ice_diags_t d = {0};
    cli_progress_t *progress = NULL;
    char msg[512];
    json_t *ids;
    const char *status;
    int lost, ask;

    ro.inputs = x->inputs;
    ro.max_parallel = o->max_parallel;
    ro.restore = restore;
    ro.run_id = run_id;
    ro.seq = seq;
    ro.suspend_after = o->max_wait;
    ro.answers = o->answers;
    if (x->st != NULL) {
      ro.commit = ice_store_commit;
      ro.commit_data = x->st;
      /* use_cache nodes keep their outputs in the same store. */
      ro.cache_get = ice_store_cache_get;
      ro.cache_put = ice_store_cache_put;
      ro.cache_data = x->st;
    } else if (x->records != NULL) {
      ro.commit = mem_commit;
      ro.commit_data = x;
    }
    rc = ice_run_new(x->e, x->wf, &ro, &x->run, &d);
    cli_print_diags(&d);
    ice_diags_free(&d);
    if (rc != 0) {
      rc = 2;
      break;
    }
    /* Printed, not kept: written from the run's state (a store still has
     * it built, by ice_store_finish). */
    ice_run_defer_result(x->run);
    if (first && o->events != NULL) {
      x->ev.name = o->events;
      x->ev.fp = strcmp(o->events, "-") == 0 ? stderr
                                             : fopen(o->events, x->events_mode);
      if (x->ev.fp == NULL) {
        fprintf(stderr, "ice: cannot write events to %s: %s\n", o->events,
                strerror(errno));
        rc = 2;
        break;
      }
      /* stderr was closed: the events would be lost, and nothing can say
       * so but the exit status. */
      if (x->ev.fp == stderr && cli_fd_was_closed(STDERR_FILENO))
        x->ev.failed = 1;
      /* Line-buffered, so that `tail -f` and a killed run see every event
       * written so far. */
      setvbuf(x->ev.fp, NULL, _IOLBF, 0);
      ice_subscribe(x->e, NULL, write_event, &x->ev, NULL);
    }
    first = 0;
    /* From the moment the run is recorded, a signal cancels it (and is
     * recorded) instead of killing ice: its callback runs once the loop
     * does. Before, ice dies of it and nothing of the run is stored. */
    uv_signal_start(&x->sigint, on_signal, SIGINT);
    uv_signal_start(&x->sigterm, on_signal, SIGTERM);
    if (x->hup)
      uv_signal_start(&x->sighup, on_signal, SIGHUP);
    if (x->st != NULL &&
        ice_store_begin_tools(x->st, ice_run_id(x->run),
                              ice_workflow_name(x->wf), x->path, x->hash,
                              x->inputs, x->tools, msg, sizeof(msg)) != 0) {
      fprintf(stderr, "ice: cannot record the run in the store: %s\n", msg);
      rc = 2;
      break;
    }
    /* Events written to stderr would tangle with the progress line. */
    if (!o->quiet && isatty(STDERR_FILENO) &&
        (o->events == NULL || strcmp(o->events, "-") != 0))
      progress = cli_progress_start(x->e, 0);
    ice_run_start(x->run, on_done, x);
    uv_run(ice_engine_loop(x->e), UV_RUN_DEFAULT);
    cli_progress_stop(x->e, progress);

    /* The result is built only when more than its text is needed. */
    status = ice_run_status(x->run);
    ask = x->can_prompt && !x->signalled && !x->finish_failed &&
          status != NULL && strcmp(status, "waiting") == 0;
    ids = ask ? waiting_nodes(x, ice_run_result(x->run)) : NULL;
    if (ask && json_array_size(ids) > 0)
      cancel_signals_ignored(x, 0);
    if (ask && json_array_size(ids) > 0 && prompt_answers(x, ids)) {
      /* Continue at once, as `ice resume` would, from what was
       * committed. */
      json_decref(ids);
      free(id);
      id = strdup(ice_run_id(x->run));
      if (id == NULL) {
        fprintf(stderr, "ice: %s\n", strerror(ENOMEM));
        rc = 1;
        break;
      }
      ice_run_free(x->run);
      x->run = NULL;
      run_id = id;
      if (x->st != NULL) {
        json_decref(loaded);
        loaded = NULL;
        if (ice_store_load(x->st, id, &loaded, msg, sizeof(msg)) != 0) {
          fprintf(stderr, "ice: %s\n", msg);
          rc = 1;
          break;
        }
        restore = json_object_get(loaded, "records");
        seq = (unsigned long long)json_integer_value(
            json_object_get(loaded, "last_seq"));
      } else {
        restore = x->records;
        seq = x->last_seq;
      }
      continue;
    }
    json_decref(ids);

    lost = cli_print_run(x->run, o->output_only) != 0;
    if (events_close(&x->ev) != 0)
      lost = 1;
    /* A signal says more than a lost result: 130 stays. */
    if (x->signalled) {
      tell_cancelled(x, ice_run_result(x->run));
      rc = 130;
    } else if (lost || x->finish_failed)
      rc = 1;
    else
      rc = status_exit(status);
    if (rc == 3)
      tell_how_to_go_on(x, ice_run_result(x->run));
    break;
  }
  json_decref(loaded);
  free(id);
  return rc;
}

/* The file's path made absolute (not resolved: the path the user gave,
 * from the current directory), malloc'd. */
static char *abs_path(const char *p) {
  char *cwd, *out;
  size_t n;

  if (p[0] == '/')
    return strdup(p);
  cwd = getcwd(NULL, 0);
  if (cwd == NULL)
    return NULL;
  n = strlen(cwd) + strlen(p) + 2;
  out = malloc(n);
  if (out != NULL)
    snprintf(out, n, "%s/%s", cwd, p);
  free(cwd);
  return out;
}

/* The hash of a regular file's content (ice_store_hash), malloc'd; NULL
 * with the reason in why. */
static char *hash_file(const char *path, char *why, size_t whylen) {
  struct stat st;
  char *buf = NULL, *h = NULL;
  size_t n = 0, cap = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

  if (fd < 0) {
    snprintf(why, whylen, "%s", strerror(errno));
    return NULL;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    snprintf(why, whylen, "not a regular file");
    close(fd);
    return NULL;
  }
  for (;;) {
    ssize_t r;
    if (cap - n < 65536) {
      char *nb = realloc(buf, cap = cap == 0 ? 65536 : cap * 2);
      if (nb == NULL) {
        snprintf(why, whylen, "%s", strerror(ENOMEM));
        goto out;
      }
      buf = nb;
    }
    r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      snprintf(why, whylen, "%s", strerror(errno));
      goto out;
    }
    if (r == 0)
      break;
    n += (size_t)r;
  }
  h = ice_store_hash(buf, n);
  if (h == NULL)
    snprintf(why, whylen, "%s", strerror(ENOMEM));
out:
  free(buf);
  close(fd);
  return h;
}

/* Opens the store of --store, or the default one; 0, or 2 after saying
 * why. */
int cli_open_store(const char *path, ice_store_t **out) {
  char msg[1024];

  if (ice_store_open(out, path, msg, sizeof(msg)) != 0) {
    *out = NULL;
    fprintf(stderr, "ice: %s\n", msg); /* names the store and why */
    return 2;
  }
  return 0;
}

/* Closes the store; 0, or 1 after saying why. */
int cli_close_store(ice_store_t *s) {
  char msg[1024];

  if (s == NULL || ice_store_close(s, msg, sizeof(msg)) == 0)
    return 0;
  fprintf(stderr, "ice: cannot close the run store: %s\n", msg);
  return 1;
}

/* Every --answer, checked against the workflow before anything runs. */
static int check_answers(ice_workflow_t *wf, json_t *answers) {
  const char *node;
  json_t *v;

  json_object_foreach(answers, node, v) {
    char msg[512];
    if (ice_workflow_check_answer(wf, node, json_string_value(v), msg,
                                  sizeof(msg)) != 0) {
      fputs("ice: --answer ", stderr);
      put_escaped(node);
      fputs(": ", stderr);
      put_escaped(msg);
      fputc('\n', stderr);
      return 2;
    }
  }
  return 0;
}

/* Shared by run and resume once the workflow is loaded: the events file
 * check, the subscribers, the signals, then execute(). */
static int run_loaded(exec_t *x, json_t *restore, const char *run_id,
                      unsigned long long seq) {
  run_opts_t *o = x->o;
  struct sigaction hup;
  int rc;

  if (o->events != NULL && same_file(o->events, o->file)) {
    /* Opening it for writing would destroy the workflow. */
    return cli_usage_error("--events %s is the workflow file", o->events);
  }
  if (x->requests == NULL)
    x->requests = json_object();
  x->can_prompt = isatty(STDIN_FILENO) && !o->no_interactive;
  ice_subscribe(x->e, "human.", on_human, x, NULL);
  ice_subscribe(x->e, "monitor.alert", on_alert, x, NULL);
  if (x->st == NULL && x->can_prompt) {
    x->records = json_array();
    ice_subscribe(x->e, NULL, on_seq, x, NULL);
  }
  if (x->st != NULL)
    ice_store_attach(x->st, x->e);
  uv_signal_init(ice_engine_loop(x->e), &x->sigint);
  uv_signal_init(ice_engine_loop(x->e), &x->sigterm);
  uv_signal_init(ice_engine_loop(x->e), &x->sighup);
  /* A closed terminal or SSH session (SIGHUP) cancels like SIGTERM, so no
   * tool outlives us; under nohup (SIGHUP ignored) the run goes on. */
  x->hup = sigaction(SIGHUP, NULL, &hup) != 0 || hup.sa_handler != SIG_IGN;
  rc = execute(x, restore, run_id, seq);
  uv_close((uv_handle_t *)&x->sigint, NULL);
  uv_close((uv_handle_t *)&x->sigterm, NULL);
  uv_close((uv_handle_t *)&x->sighup, NULL);
  if (x->ev.fp != NULL && x->ev.fp != stderr)
    fclose(x->ev.fp);
  x->ev.fp = NULL;
  /* A finished run is left to the exit (cli_free_at_exit); one that is
   * still executing (a lost result) is cancelled by ice_run_free. */
  if (x->run != NULL && (cli_free_at_exit() || !ice_run_finished(x->run)))
    ice_run_free(x->run);
  x->run = NULL;
  if (x->st != NULL)
    ice_store_detach(x->st, x->e);
  json_decref(x->requests);
  json_decref(x->records);
  return rc;
}

static ice_engine_t *new_engine(void) {
  ice_engine_opts_t eo = ICE_ENGINE_OPTS_INIT;
  ice_engine_t *e = NULL;
  const char *vc;

  /* Testing aid: ICE_VIRTUAL_CLOCK=1 makes back-off delays instant while
   * events still show them (docs/cli.md). */
  vc = getenv("ICE_VIRTUAL_CLOCK");
  eo.virtual_clock = vc != NULL && strcmp(vc, "1") == 0;
  if (ice_engine_new(&e, NULL, &eo) != 0) {
    fprintf(stderr, "ice: cannot create the engine\n");
    return NULL;
  }
  return e;
}

int cli_run(int argc, char **argv) {
  run_opts_t o;
  exec_t x;
  ice_diags_t d = {0};
  char *path = NULL, *hash = NULL;
  int rc;

  memset(&o, 0, sizeof(o));
  memset(&x, 0, sizeof(x));
  o.inputs = json_object();
  o.answers = json_object();
  o.tools = json_array();
  o.max_wait = 60;
  rc = parse(argc, argv, &o);
  if (rc != 0) {
    rc = rc < 0 ? 0 : rc;
    goto out;
  }
  x.o = &o;
  x.inputs = o.inputs;
  x.events_mode = "w";
  if ((x.e = new_engine()) == NULL) {
    rc = 2;
    goto out;
  }
  /* Tool files before the workflow, whose names resolve in them; the run
   * records them (path and content) so that `ice resume` uses the same
   * definitions. */
  if (cli_add_tool_files(x.e, o.tools) != 0) {
    rc = 2;
    goto out;
  }
  x.tools = ice_engine_tool_files(x.e);
  if (x.tools == NULL) {
    fprintf(stderr, "ice: %s\n", strerror(ENOMEM));
    rc = 2;
    goto out;
  }
  if (json_array_size(x.tools) == 0) {
    json_decref(x.tools);
    x.tools = NULL;
  }
  rc = ice_workflow_load(x.e, o.file, &x.wf, &d);
  /* Every diagnostic, warnings of a valid file included, before the run. */
  cli_print_diags(&d);
  ice_diags_free(&d);
  if (rc != 0 || check_answers(x.wf, o.answers) != 0) {
    rc = 2;
    goto out;
  }
  if (!o.no_store) {
    char why[256];
    path = abs_path(o.file);
    hash = path != NULL ? hash_file(o.file, why, sizeof(why)) : NULL;
    if (path == NULL || hash == NULL) {
      fprintf(stderr, "ice: cannot read %s: %s\n", o.file,
              path == NULL ? strerror(errno) : why);
      rc = 2;
      goto out;
    }
    /* Every run is recorded (SPEC §9): without its store it does not
     * start. */
    if (cli_open_store(o.store, &x.st) != 0) {
      fprintf(stderr, "ice: use --no-store to run without recording the run\n");
      rc = 2;
      goto out;
    }
  }
  x.path = path;
  x.hash = hash;
  rc = run_loaded(&x, NULL, NULL, 0);
out:
  if (cli_close_store(x.st) != 0 && rc == 0)
    rc = 1;
  if (cli_free_at_exit()) {
    ice_workflow_free(x.wf);
    if (x.e != NULL)
      ice_engine_free(x.e);
  }
  free(path);
  free(hash);
  json_decref(x.tools);
  json_decref(o.inputs);
  json_decref(o.answers);
  json_decref(o.tools);
  return rc;
}

/* Loads the tool files a stored run started with (ice_store_load's
 * "tools"), from their recorded content: a file changed or deleted since
 * does not change the run. 0, or 2 after printing why. */
static int add_recorded_tools(ice_engine_t *e, json_t *tools,
                              const char *run_id) {
  size_t i;
  json_t *t;
  int bad = 0;

  json_array_foreach(tools, i, t) {
    const char *path = json_string_value(json_object_get(t, "path"));
    json_t *content = json_object_get(t, "content");
    ice_diags_t d = {0};
    if (path == NULL || !json_is_string(content) ||
        ice_engine_add_tool_text(e, path, json_string_value(content),
                                 json_string_length(content), &d) != 0)
      bad = 1;
    cli_print_diags(&d);
    ice_diags_free(&d);
  }
  if (bad)
    fprintf(stderr,
            "ice: cannot load the tool files run %s started with, as the "
            "store recorded them\n",
            run_id);
  return bad ? 2 : 0;
}

static const char *const finished[] = {"completed", "failed", "aborted", NULL};

int cli_resume(int argc, char **argv) {
  run_opts_t o;
  exec_t x;
  ice_diags_t d = {0};
  json_t *rec = NULL;
  char msg[1024], *hash = NULL;
  const char *status, *path, *stored_hash;
  int rc;

  memset(&o, 0, sizeof(o));
  memset(&x, 0, sizeof(x));
  o.resume = 1;
  o.inputs = json_object();
  o.answers = json_object();
  o.tools = json_array();
  o.max_wait = 60;
  rc = parse(argc, argv, &o);
  if (rc != 0) {
    rc = rc < 0 ? 0 : rc;
    goto out;
  }
  x.o = &o;
  x.events_mode = "a";
  if ((rc = cli_open_store(o.store, &x.st)) != 0)
    goto out;
  rc = ice_store_load(x.st, o.file, &rec, msg, sizeof(msg));
  if (rc == ICE_ENOENT) {
    fputs("ice: no run '", stderr);
    put_escaped(o.file);
    fprintf(stderr, "' in the store %s\n", ice_store_path(x.st));
    rc = 2;
    goto out;
  }
  if (rc != 0) {
    fprintf(stderr, "ice: %s\n", msg);
    rc = 2;
    goto out;
  }
  status = json_string_value(json_object_get(rec, "status"));
  if (status == NULL)
    status = "";
  for (size_t i = 0; finished[i] != NULL; i++) {
    json_t *res = json_object_get(rec, "result");
    if (strcmp(status, finished[i]) != 0 || !json_is_object(res))
      continue;
    /* Nothing to do: what `ice run` printed, and its exit status. */
    if (cli_print_result(res, o.output_only) != 0)
      rc = 1;
    else
      rc = cli_result_exit(res);
    goto out;
  }
  if (strcmp(status, "running") == 0 &&
      json_is_true(json_object_get(rec, "owner_alive"))) {
    json_t *pid = json_object_get(rec, "owner_pid");
    if (json_is_integer(pid))
      fprintf(stderr, "ice: run %s is still running (process %lld)\n", o.file,
              (long long)json_integer_value(pid));
    else
      fprintf(stderr, "ice: run %s is still running in another process\n",
              o.file);
    rc = 2;
    goto out;
  }
  path = json_string_value(json_object_get(rec, "path"));
  stored_hash = json_string_value(json_object_get(rec, "hash"));
  if (path == NULL) {
    fprintf(stderr, "ice: run %s has no workflow file in the store\n", o.file);
    rc = 2;
    goto out;
  }
  o.file = json_string_value(json_object_get(rec, "run_id"));
  hash = hash_file(path, msg, sizeof(msg));
  if (hash == NULL) {
    fprintf(stderr, "ice: cannot read %s, the workflow of run %s: %s\n", path,
            o.file, msg);
    rc = 2;
    goto out;
  }
  if (!o.force && (stored_hash == NULL || strcmp(hash, stored_hash) != 0)) {
    fprintf(stderr,
            "ice: %s changed since run %s started; use --force to resume "
            "anyway\n",
            path, o.file);
    rc = 2;
    goto out;
  }
  if ((x.e = new_engine()) == NULL) {
    rc = 2;
    goto out;
  }
  /* The tool files it started with; the row keeps them (x.tools NULL). */
  if ((rc = add_recorded_tools(x.e, json_object_get(rec, "tools"), o.file)) !=
      0)
    goto out;
  rc = ice_workflow_load(x.e, path, &x.wf, &d);
  cli_print_diags(&d);
  ice_diags_free(&d);
  if (rc != 0 || check_answers(x.wf, o.answers) != 0) {
    rc = 2;
    goto out;
  }
  x.path = path;
  x.hash = hash;
  x.inputs = json_object_get(rec, "inputs");
  /* The questions still open, for the prompt and the instructions: asked
   * by an earlier process. */
  x.requests = json_object();
  if (strcmp(status, "waiting") == 0 &&
      ice_store_events(x.st, o.file, on_human, &x, msg, sizeof(msg)) != 0)
    json_object_clear(x.requests);
  /* The file whose run this is: the events check compares against it. */
  {
    const char *run_id = o.file;
    o.file = path;
    rc = run_loaded(&x, json_object_get(rec, "records"), run_id,
                    (unsigned long long)json_integer_value(
                        json_object_get(rec, "last_seq")));
  }
out:
  if (cli_close_store(x.st) != 0 && rc == 0)
    rc = 1;
  if (cli_free_at_exit()) {
    ice_workflow_free(x.wf);
    if (x.e != NULL)
      ice_engine_free(x.e);
  }
  free(hash);
  json_decref(rec);
  json_decref(o.inputs);
  json_decref(o.answers);
  json_decref(o.tools);
  return rc;
}
