/* The `tool` node (SPEC §5.1): resolves `tool_name` once at validation (the
 * file's `tools`, then tools registered in C, then built-ins), renders
 * `tool_args` per attempt, and runs either a C tool or a process tool with
 * the stdin/stdout JSON protocol. The process mechanics are in proc.c; the
 * sandbox limits of §5.2 are not applied yet (see docs/design.md). */
#include "../proc.h"
#include "../control.h"
#include "../engine.h" /* the compile side: registered tools */

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

#define DEFAULT_MAX_OUTPUT (1024 * 1024)

typedef struct {
  const ice_tool_t *ctool; /* C tool, or NULL for a process tool */
  char **argv;             /* process tool: NULL-terminated, owned */
  json_t *env;             /* borrowed: the definition's env object */
  char *cwd;               /* owned */
  size_t max_output;
  ice__tmpl_t *args_tmpl; /* NULL when tool_args hold no template */
  json_t *args;           /* borrowed: tool_args, or NULL */
} tool_conf_t;

static const ice_field_t tool_fields[] = {
    {"tool_name", ICE_T_STRING, 1, 0},
    {"tool_args", ICE_T_OBJECT, 0, 1},
    {NULL, 0, 0, 0},
};

static void conf_free(void *p, void *data) {
  (void)data;
  tool_conf_t *c = p;

  if (c == NULL)
    return;
  for (char **a = c->argv; a != NULL && *a != NULL; a++)
    ice__free(*a);
  ice__free(c->argv);
  ice__free(c->cwd);
  ice__tmpl_free(c->args_tmpl);
  ice__free(c);
}

/* Reports an unknown tool, suggesting the closest known name. */
static void unknown_tool(ice__vctx_t *v, ice__node_t *n, const char *name) {
  static const char *const builtin[] = {"echo", "sleep", "fail", "flaky"};
  const ice_engine_t *e = v->wf->engine;
  size_t cap = json_object_size(v->wf->tools) + e->ntools + 4, nn = 0;
  const char **names = ice__malloc(sizeof(char *) * (cap + 1));
  const char *key;
  json_t *x;
  char h[300] = "";

  if (names != NULL) {
    json_object_foreach(v->wf->tools, key, x) {
      names[nn++] = key;
    }
    for (size_t i = 0; i < e->ntools; i++)
      names[nn++] = e->tools[i].tool.name;
    for (size_t i = 0; i < 4; i++)
      names[nn++] = builtin[i];
    ice__hint(h, sizeof(h), name, names, nn);
  }
  ice__verr(v, n, n->def, "tool_name", "unknown tool '%s'%s", name, h);
  ice__free(names);
}

static void *compile(ice_compile_t *cc) {
  ice__vctx_t *v = cc->v;
  ice__node_t *n = cc->node;
  const char *name = json_string_value(json_object_get(n->def, "tool_name"));
  json_t *args = json_object_get(n->def, "tool_args");
  json_t *def = NULL;
  tool_conf_t *c;
  ice__err_t err;

  if (name == NULL)
    return NULL; /* reported by the field checks */
  c = ice__calloc(1, sizeof(*c));
  if (c == NULL) {
    ice_compile_error(cc, NULL, "out of memory");
    return NULL;
  }
  n->xdata = c;
  if (json_is_object(args)) {
    c->args = args;
    if (ice__tmpl_compile(args, &c->args_tmpl, &err) != 0)
      ice__verr_tmpl(v, n, n->def, "tool_args", &err);
  }
  if (v->wf->tools != NULL)
    def = json_object_get(v->wf->tools, name);
  if (def == NULL) {
    c->ctool = ice__engine_tool(v->wf->engine, name);
    if (c->ctool == NULL)
      unknown_tool(v, n, name);
    return c;
  }
  json_t *cmd = json_object_get(def, "command");
  if (!json_is_array(cmd) || json_array_size(cmd) == 0)
    return c; /* the definition itself was reported */
  c->argv = ice__calloc(json_array_size(cmd) + 1, sizeof(char *));
  if (c->argv == NULL) {
    ice_compile_error(cc, NULL, "out of memory");
    return c;
  }
  for (size_t i = 0; i < json_array_size(cmd); i++) {
    const char *s = json_string_value(json_array_get(cmd, i));
    c->argv[i] = ice__strdup(s != NULL ? s : "");
    if (c->argv[i] == NULL) {
      ice_compile_error(cc, NULL, "out of memory");
      return c;
    }
  }
  c->env = json_object_get(def, "env");
  {
    const char *cwd = json_string_value(json_object_get(def, "cwd"));
    if (cwd == NULL)
      c->cwd = ice__strdup(v->wf->dir);
    else if (cwd[0] == '/')
      c->cwd = ice__strdup(cwd);
    else if (asprintf(&c->cwd, "%s/%s", v->wf->dir, cwd) < 0)
      c->cwd = NULL;
    if (c->cwd == NULL) {
      ice_compile_error(cc, NULL, "out of memory");
      return c;
    }
  }
  json_t *mo =
      json_object_get(json_object_get(def, "sandbox"), "max_output_bytes");
  c->max_output = json_is_integer(mo) && json_integer_value(mo) > 0
                      ? (size_t)json_integer_value(mo)
                      : DEFAULT_MAX_OUTPUT;
  return c;
}

/* ---- process tools ------------------------------------------------------ */

typedef struct {
  ice_task_t *task;
  ice__proc_t *proc;
  char *tmpdir;
  char **envp;
} ptask_t;

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

static void ptask_free(ptask_t *p) {
  if (p->tmpdir != NULL) {
    nftw(p->tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    ice__free(p->tmpdir);
  }
  for (char **e = p->envp; e != NULL && *e != NULL; e++)
    ice__free(*e);
  ice__free(p->envp);
  ice__free(p);
}

/* The child's environment: ours, then the definition's env (null removes
 * a variable), then TMPDIR pointing at the attempt's private directory. */
static char **build_env(json_t *env, const char *tmpdir) {
  size_t n = 0, k = 0;
  char **out;

  while (environ[n] != NULL)
    n++;
  out = ice__calloc(n + json_object_size(env) + 2, sizeof(char *));
  if (out == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    const char *eq = strchr(environ[i], '=');
    size_t len = eq != NULL ? (size_t)(eq - environ[i]) : strlen(environ[i]);
    if ((env != NULL && json_object_getn(env, environ[i], len) != NULL) ||
        (len == 6 && memcmp(environ[i], "TMPDIR", 6) == 0))
      continue;
    if ((out[k++] = ice__strdup(environ[i])) == NULL)
      goto fail;
  }
  if (env != NULL) {
    const char *key;
    json_t *val;
    json_object_foreach(env, key, val) {
      if (!json_is_string(val) || strcmp(key, "TMPDIR") == 0)
        continue;
      if (asprintf(&out[k++], "%s=%s", key, json_string_value(val)) < 0) {
        out[k - 1] = NULL;
        goto fail;
      }
    }
  }
  if (asprintf(&out[k++], "TMPDIR=%s", tmpdir) < 0) {
    out[k - 1] = NULL;
    goto fail;
  }
  return out;
fail:
  for (size_t i = 0; out[i] != NULL; i++)
    ice__free(out[i]);
  ice__free(out);
  return NULL;
}

static void on_stderr(void *data, const char *line, size_t len) {
  ptask_t *p = data;

  ice_task_log(p->task, "stderr", line, len);
}

/* ice__task_fail_kind formats into 1,024 bytes (sched.c): a longer
 * message would lose its end, which is where a tool says what went wrong. */
#define MSG_MAX 1023

/* The stderr tail made to fit `budget` bytes: valid UTF-8 (bad bytes and
 * NULs become U+FFFD), and when too long its *end* is kept (SPEC §5.1: the
 * last lines), with "..." where the cut is. The cut goes at a line start
 * unless that would lose more than half of what fits, and never inside a
 * character. NULL only on ENOMEM. */
static char *tail_fit(const char *tail, size_t len, size_t budget) {
  char *clean = ice__utf8_dup(tail, len);
  char *out;
  const char *mark = "...";
  size_t n, keep, from;

  if (clean == NULL || (n = strlen(clean)) <= budget)
    return clean;
  keep = budget > 4 ? budget - 4 : 0; /* room for "...\n" */
  from = n - keep;
  if (clean[from - 1] == '\n') {
    mark = "...\n";
  } else {
    const char *nl = memchr(clean + from, '\n', n - from);

    if (nl != NULL && (size_t)(nl - clean) + 1 - from < keep / 2) {
      from = (size_t)(nl - clean) + 1;
      mark = "...\n";
    } else {
      while (from < n && ((unsigned char)clean[from] & 0xC0) == 0x80)
        from++;
    }
  }
  if (asprintf(&out, "%s%s", mark, clean + from) < 0)
    out = NULL;
  ice__free(clean);
  return out;
}

/* Fails the task with `prefix`, then ": " and as much of the end of the
 * stderr tail as the message can hold. */
static void fail_with_tail(ice_task_t *t, int kind, const char *prefix,
                           const ice__proc_result_t *res) {
  size_t len = res->stderr_tail != NULL ? res->stderr_tail_len : 0;
  size_t used = strlen(prefix) + 2;
  char *tail;

  if (len == 0 || used >= MSG_MAX) {
    ice__task_fail_kind(t, kind, "%s", prefix);
    return;
  }
  tail = tail_fit(res->stderr_tail, len, MSG_MAX - used);
  ice__task_fail_kind(t, kind, "%s: %s", prefix, tail != NULL ? tail : "");
  ice__free(tail);
}

/* stdout with each byte that is not UTF-8 replaced by U+FFFD, so that a
 * tool printing Latin-1 inside a JSON string still gives its output. NUL
 * bytes are kept: raw, they are not JSON anyway, and jansson says so. NULL
 * only on ENOMEM. */
static char *lossy_stdout(const char *s, size_t n, size_t *out_len) {
  char *buf = ice__malloc(n * 3 + 1);
  size_t w = 0;

  if (buf == NULL)
    return NULL;
  for (size_t i = 0; i < n;) {
    size_t ok = ice__utf8_valid_prefix(s + i, n - i);

    memcpy(buf + w, s + i, ok);
    w += ok;
    i += ok;
    if (i == n)
      break;
    if (s[i] == '\0') {
      buf[w++] = '\0';
    } else {
      memcpy(buf + w, "\xEF\xBF\xBD", 3);
      w += 3;
    }
    i++;
  }
  buf[w] = '\0';
  *out_len = w;
  return buf;
}

/* The JSON text with ".0" after every integer too big for json_int_t, so
 * that jansson reads it as a real: it is valid JSON, and a real is the
 * closest value we can keep. Strings are skipped. NULL only on ENOMEM. */
static char *big_ints_as_reals(const char *s, size_t n, size_t *out_len) {
  char *buf = ice__malloc(n * 2 + 1);
  size_t w = 0;
  int in_str = 0;

  if (buf == NULL)
    return NULL;
  for (size_t i = 0; i < n;) {
    char c = s[i];

    if (in_str || c == '"' || (c != '-' && (c < '0' || c > '9'))) {
      if (in_str && c == '\\' && i + 1 < n)
        buf[w++] = s[i++];
      else if (c == '"')
        in_str = !in_str;
      buf[w++] = s[i++];
      continue;
    }
    size_t j = i, digits_only = 1;
    while (j < n && strchr("+-0123456789.eE", s[j]) != NULL && s[j] != '\0') {
      digits_only &= s[j] != '.' && s[j] != 'e' && s[j] != 'E' && s[j] != '+';
      j++;
    }
    memcpy(buf + w, s + i, j - i);
    w += j - i;
    if (digits_only) {
      char num[32];
      int big = j - i >= sizeof(num);

      if (!big) {
        memcpy(num, s + i, j - i);
        num[j - i] = '\0';
        errno = 0;
        (void)strtoll(num, NULL, 10);
        big = errno == ERANGE;
      }
      if (big) {
        buf[w++] = '.';
        buf[w++] = '0';
      }
    }
    i = j;
  }
  buf[w] = '\0';
  *out_len = w;
  return buf;
}

/* Parses the tool's stdout. Bytes that are not UTF-8 and integers past 64
 * bits are valid output, not errors: see the two helpers above. */
static json_t *parse_output(const char *s, size_t n, json_error_t *jerr) {
  const size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL;
  char *clean = NULL, *reals;
  size_t clen;
  json_t *out;

  /* Without memory for the copy, jansson reports the bad byte instead. */
  if (ice__utf8_valid_prefix(s, n) != n &&
      (clean = lossy_stdout(s, n, &clen)) != NULL) {
    s = clean;
    n = clen;
  }
  out = json_loadb(s, n, flags, jerr);
  if (out == NULL && json_error_code(jerr) == json_error_numeric_overflow &&
      (reals = big_ints_as_reals(s, n, &clen)) != NULL) {
    out = json_loadb(reals, clen, flags, jerr);
    ice__free(reals);
  }
  ice__free(clean);
  return out;
}

static void on_exit_cb(void *data, const ice__proc_result_t *res) {
  ptask_t *p = data;
  ice_task_t *t = p->task;
  char prefix[64];

  ice__task_set_xstate(t, NULL);
  if (ice__task_stopping(t)) {
    ice__task_fail_kind(t, ICE__KIND_CANCELLED, "tool process killed");
  } else if (res->output_exceeded) {
    ice__task_fail_kind(
        t, ICE__KIND_RESOURCE_LIMIT,
        "output: the tool wrote more than %zu bytes to "
        "stdout",
        ((const tool_conf_t *)ice_task_compiled(t))->max_output);
  } else if (res->term_signal != 0) {
    snprintf(prefix, sizeof(prefix), "killed by signal %d", res->term_signal);
    fail_with_tail(t, ICE__KIND_TOOL_ERROR, prefix, res);
  } else if (res->exit_status != 0) {
    snprintf(prefix, sizeof(prefix), "exit status %lld",
             (long long)res->exit_status);
    fail_with_tail(
        t, res->exit_status == 75 ? ICE__KIND_TRANSIENT : ICE__KIND_TOOL_ERROR,
        prefix, res);
  } else {
    json_error_t jerr;
    json_t *out = parse_output(res->out, res->out_len, &jerr);
    if (out == NULL && strspn(res->out, " \t\r\n") == res->out_len)
      ice__task_fail_kind(t, ICE__KIND_TOOL_ERROR,
                          "tool output is not JSON (nothing on stdout)");
    else if (out == NULL)
      ice__task_fail_kind(t, ICE__KIND_TOOL_ERROR,
                          "tool output is not JSON (%s at line %d)", jerr.text,
                          jerr.line);
    else
      ice_task_done(t, out);
  }
  ptask_free(p);
}

/* A child that did not get as far as running the command: say which step
 * failed, so that a bad cwd is not blamed on the command. */
static void start_failed(ice_task_t *t, const tool_conf_t *c, int rc,
                         int step) {
  const char *cmd = c->argv[0];
  int err = -rc;

  if (step == ICE__PROC_STEP_CWD) {
    char here[4096];

    /* A relative cwd (the workflow was given by a relative path) is named
     * absolutely: the user did not write it that way. */
    if (c->cwd[0] != '/' && getcwd(here, sizeof(here)) != NULL)
      ice__task_fail_kind(t, ICE__KIND_TOOL_ERROR,
                          "cannot start '%s': cwd '%s/%s': %s", cmd, here,
                          strncmp(c->cwd, "./", 2) == 0 ? c->cwd + 2 : c->cwd,
                          strerror(err));
    else
      ice__task_fail_kind(t, ICE__KIND_TOOL_ERROR,
                          "cannot start '%s': cwd '%s': %s", cmd, c->cwd,
                          strerror(err));
  } else if (step == ICE__PROC_STEP_EXEC && err == ENOENT &&
             strchr(cmd, '/') == NULL) {
    ice__task_fail_kind(t, ICE__KIND_TOOL_ERROR,
                        "cannot start '%s': command not found in PATH", cmd);
  } else {
    ice__task_fail_kind(t, ICE__KIND_TOOL_ERROR, "cannot start '%s': %s", cmd,
                        strerror(err));
  }
}

static void start_process(ice_task_t *t, const tool_conf_t *c, json_t *args) {
  ice__proc_opts_t o;
  ptask_t *p;
  char *line;
  const char *base = getenv("TMPDIR");
  int rc, step;

  p = ice__calloc(1, sizeof(*p));
  if (p == NULL) {
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    return;
  }
  p->task = t;
  if (asprintf(&p->tmpdir, "%s/ice-tool-XXXXXX",
               base != NULL && base[0] != '\0' ? base : "/tmp") < 0) {
    p->tmpdir = NULL;
    ptask_free(p);
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    return;
  }
  if (mkdtemp(p->tmpdir) == NULL) {
    int err = errno;
    ice__free(p->tmpdir);
    p->tmpdir = NULL;
    ptask_free(p);
    ice__task_fail_kind(t, ICE__KIND_INTERNAL,
                        "cannot create a temporary directory: %s",
                        strerror(err));
    return;
  }
  p->envp = build_env(c->env, p->tmpdir);
  line = json_dumps(args, JSON_COMPACT);
  if (p->envp == NULL || line == NULL) {
    free(line);
    ptask_free(p);
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    return;
  }
  size_t len = strlen(line);
  char *buf = ice__realloc(line, len + 2);
  if (buf == NULL) {
    free(line);
    ptask_free(p);
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    return;
  }
  buf[len] = '\n';
  buf[len + 1] = '\0';
  memset(&o, 0, sizeof(o));
  o.argv = (const char *const *)c->argv;
  o.env = (const char *const *)p->envp;
  o.cwd = c->cwd;
  o.stdin_data = buf;
  o.stdin_len = len + 1;
  o.max_output_bytes = c->max_output;
  o.on_stderr_line = on_stderr;
  o.on_exit = on_exit_cb;
  o.data = p;
  o.failed_step = &step;
  rc = ice__proc_start(ice_task_loop(t), &o, &p->proc);
  ice__free(buf);
  if (rc != 0) {
    ptask_free(p);
    start_failed(t, c, rc, step);
    return;
  }
  ice__task_set_xstate(t, p);
}

/* ---- the executor ------------------------------------------------------- */

static void tool_start(ice_task_t *t) {
  const tool_conf_t *c = ice_task_compiled(t);
  const ice__node_t *n = ice__task_node(t);
  ice__err_t err;
  json_t *args;

  if (ice__tmpl_render_or_share(c->args_tmpl, c->args != NULL ? c->args : NULL,
                                ice__task_lookup, t, &args, &err) != 0) {
    ice__task_fail_kind(t, err.kind == 0 ? ICE__KIND_EXPRESSION : err.kind,
                        "tool_args: %s", err.msg);
    return;
  }
  if (args == NULL)
    args = json_object();
  if (n->in_schema != NULL &&
      ice__schema_check(n->in_schema, args, &err) != 0) {
    json_decref(args);
    ice__task_fail_kind(t, ICE__KIND_INPUT_VALIDATION, "%s", err.msg);
    return;
  }
  /* The task keeps the args alive for as long as a C tool may look. */
  ice__task_keep_input(t, args);
  if (c->ctool != NULL)
    c->ctool->start(t, args, c->ctool->data);
  else
    start_process(t, c, args);
}

static void tool_cancel(ice_task_t *t) {
  const tool_conf_t *c = ice_task_compiled(t);

  if (c->ctool != NULL) {
    if (c->ctool->cancel != NULL)
      c->ctool->cancel(t, c->ctool->data);
    else
      ice__task_abandon(t);
    return;
  }
  if (ice__task_xstate(t) != NULL)
    ice__proc_kill(((ptask_t *)ice__task_xstate(t))->proc);
}

const ice_executor_t ice__exec_tool = {
    .abi = ICE_EXECUTOR_ABI,
    .type = "tool",
    .fields = tool_fields,
    .start = tool_start,
    .cancel = tool_cancel,
    .default_timeout = 30.0,
    .compile = compile,
    .free_compiled = conf_free,
};
