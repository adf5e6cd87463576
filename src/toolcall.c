/* Running a tool (SPEC §5.1), whoever asks: a tool node on its own
 * attempt, or an agent step or swarm member as a call (call.h). A name is
 * resolved once, at validation: the workflow's `tools`, the tool files,
 * tools registered in C, then built-ins. A process tool gets its args as
 * one JSON line on stdin and answers one JSON value on stdout; the process
 * mechanics are in proc.c, the sandbox of §5.2 in sandbox.c. */
#include "call.h"
#include "engine.h" /* registered tools */
#include "proc.h"
#include "wasm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

#define DEFAULT_MAX_OUTPUT (1024 * 1024)

struct ice__tooldef_s {
  char *name;
  const ice_tool_t *ctool; /* C tool, or NULL for a process tool */
  char **argv;             /* process tool: NULL-terminated, owned */
  json_t *env;             /* borrowed: the definition's env object */
  char *cwd;               /* owned */
  size_t max_output;
  ice__sandbox_conf_t sandbox; /* process tool: SPEC §5.2, owned */
  ice__wasm_mod_t *wasm;       /* a WASM tool: loaded once, at validation */
  uint64_t fuel;
  /* Every node that names the same tool shares one definition (W1: 100,000
   * `echo` nodes, one definition): the workflow's list holds a reference,
   * each compiled node another. Nothing in it changes after validation. */
  int refs;
  struct ice__tooldef_s *next_shared; /* the workflow's list */
};

/* The workflow's shared definitions: at most this many distinct names are
 * kept (a longer list would cost more to search than it saves). */
#define SHARED_MAX 64

void ice__tooldef_free(ice__tooldef_t *d) {
  if (d == NULL || --d->refs > 0)
    return;
  for (char **a = d->argv; a != NULL && *a != NULL; a++)
    ice__free(*a);
  ice__free(d->argv);
  ice__free(d->cwd);
  ice__sandbox_conf_free(&d->sandbox);
  ice__free(d->name);
  ice__wasm_free(d->wasm);
  ice__free(d);
}

const char *ice__tooldef_name(const ice__tooldef_t *d) {
  return d->name;
}

/* Reports an unknown tool, suggesting the closest known name. */
static void unknown_tool(ice__vctx_t *v, const ice__node_t *n, json_t *obj,
                         const char *key, const char *name) {
  static const char *const builtin[] = {"echo", "sleep", "fail", "flaky"};
  const ice_engine_t *e = v->wf->engine;
  size_t cap = json_object_size(v->wf->tools) + e->ntools + 4, nn = 0;
  const char **names = ice__malloc(sizeof(char *) * (cap + 1));
  const char *tk;
  json_t *x;
  char h[300] = "";

  if (names != NULL) {
    json_object_foreach(v->wf->tools, tk, x) {
      names[nn++] = tk;
    }
    for (size_t i = 0; i < e->ntools; i++)
      names[nn++] = e->tools[i].tool.name;
    for (size_t i = 0; i < 4; i++)
      names[nn++] = builtin[i];
    ice__hint(h, sizeof(h), name, names, nn);
  }
  ice__verr(v, n, obj, key, "unknown tool '%s'%s", name, h);
  ice__free(names);
}

/* The directories of the files the command names (`python3
 * ../tools/wc.py`: ../tools), resolved from its cwd, for the sandbox to
 * keep visible (sandbox.h, readable). A bare program name is found on
 * PATH, which the tool can search anyway. 0, or -1 on ENOMEM. */
static int command_dirs(ice__tooldef_t *d) {
  size_t n = 0, k = 0;
  char **out;

  while (d->argv[n] != NULL)
    n++;
  out = ice__calloc(n + 1, sizeof(char *));
  if (out == NULL)
    return -1;
  for (size_t i = 0; i < n; i++) {
    const char *a = d->argv[i];
    char *path = NULL, *real, *slash;
    struct stat st;

    if (strchr(a, '/') == NULL)
      continue;
    if (a[0] == '/' ? (path = ice__strdup(a)) == NULL
                    : asprintf(&path, "%s/%s", d->cwd, a) < 0)
      continue;
    real = realpath(path, NULL);
    free(path);
    if (real == NULL || stat(real, &st) != 0 || !S_ISREG(st.st_mode) ||
        (slash = strrchr(real, '/')) == NULL) {
      free(real);
      continue;
    }
    *slash = '\0';
    out[k] = ice__strdup(real[0] != '\0' ? real : "/");
    free(real);
    if (out[k] == NULL) {
      for (size_t j = 0; j < k; j++)
        ice__free(out[j]);
      ice__free(out);
      return -1;
    }
    k++;
  }
  d->sandbox.readable = out;
  return 0;
}

/* Fills d's process-tool fields from a definition (command, env, cwd,
 * sandbox); dir is where its relative paths start. 0, or -1 when the
 * definition was unusable (already reported) or on ENOMEM (*nomem set). */
/* A WASM tool's module, loaded and checked now (SPEC §5.1: validation
 * loads every module a node names). 0, or -1 reported at def's `wasm`. */
static int wasm_def(ice__vctx_t *v, const ice__node_t *n, ice__tooldef_t *d,
                    json_t *def, const char *dir) {
  const char *path = json_string_value(json_object_get(def, "wasm"));
  json_t *pages = json_object_get(def, "memory_pages");
  json_t *fuel = json_object_get(def, "fuel");
  char *full = NULL, msg[512];

  if (path == NULL)
    return -1; /* reported with the definition */
  if (path[0] == '/' ? (full = ice__strdup(path)) == NULL
                     : asprintf(&full, "%s/%s", dir, path) < 0) {
    ice__verr(v, n, def, "wasm", "out of memory");
    return -1;
  }
  if (ice__wasm_load(full, json_string_value(json_object_get(def, "export")),
                     json_is_integer(pages)
                         ? (uint32_t)json_integer_value(pages)
                         : ICE__WASM_DEFAULT_PAGES,
                     &d->wasm, msg, sizeof(msg)) != 0) {
    ice__verr(v, n, def, "wasm", "WASM tool '%s': %s: %s", d->name, path, msg);
    free(full);
    return -1;
  }
  free(full);
  d->fuel = json_is_integer(fuel) && json_integer_value(fuel) > 0
                ? (uint64_t)json_integer_value(fuel)
                : ICE__WASM_DEFAULT_FUEL;
  d->max_output = DEFAULT_MAX_OUTPUT;
  return 0;
}

/* A `sandbox` object that does not parse was reported by the tool
 * definition checks (tooldefs.c); a code node's is reported by
 * ice__tooldef_from_json: its message is then in sberr. */
static int from_def(ice__tooldef_t *d, json_t *def, const char *dir, int *nomem,
                    char *sberr, size_t sberrlen) {
  json_t *cmd = json_object_get(def, "command");

  if (!json_is_array(cmd) || json_array_size(cmd) == 0)
    return -1; /* the definition itself was reported */
  d->argv = ice__calloc(json_array_size(cmd) + 1, sizeof(char *));
  if (d->argv == NULL)
    goto nomem;
  for (size_t i = 0; i < json_array_size(cmd); i++) {
    const char *s = json_string_value(json_array_get(cmd, i));
    if ((d->argv[i] = ice__strdup(s != NULL ? s : "")) == NULL)
      goto nomem;
  }
  d->env = json_object_get(def, "env");
  {
    const char *cwd = json_string_value(json_object_get(def, "cwd"));
    if (cwd == NULL)
      d->cwd = ice__strdup(dir);
    else if (cwd[0] == '/')
      d->cwd = ice__strdup(cwd);
    else if (asprintf(&d->cwd, "%s/%s", dir, cwd) < 0)
      d->cwd = NULL;
    if (d->cwd == NULL)
      goto nomem;
  }
  ice__sandbox_conf_init(&d->sandbox);
  if (ice__sandbox_conf_parse(&d->sandbox, json_object_get(def, "sandbox"), dir,
                              sberr, sberrlen) != 0) {
    if (strcmp(sberr, "out of memory") == 0)
      goto nomem;
    return -1;
  }
  d->max_output = d->sandbox.max_output_bytes;
  if (command_dirs(d) != 0)
    goto nomem;
  return 0;
nomem:
  *nomem = 1;
  return -1;
}

static ice__tooldef_t *tooldef_from_json(ice__vctx_t *v, const ice__node_t *n,
                                         const char *name, json_t *def,
                                         const char *dir, int report) {
  ice__tooldef_t *d = ice__calloc(1, sizeof(*d));
  int nomem = 0;
  char sberr[256] = "";

  if (d != NULL)
    d->refs = 1;

  if (d != NULL && (d->name = ice__strdup(name)) != NULL &&
      json_object_get(def, "wasm") != NULL) {
    if (wasm_def(v, n, d, def, dir) == 0)
      return d;
    ice__tooldef_free(d);
    return NULL;
  }
  if (d == NULL || d->name == NULL ||
      from_def(d, def, dir, &nomem, sberr, sizeof(sberr)) != 0) {
    nomem |= d == NULL || d->name == NULL;
    ice__tooldef_free(d);
    if (nomem)
      ice__verr(v, n, n != NULL ? n->def : NULL, NULL, "out of memory");
    else if (report && sberr[0] != '\0')
      ice__verr(v, n, n != NULL ? n->def : NULL, "sandbox", "%s", sberr);
    return NULL;
  }
  return d;
}

ice__tooldef_t *ice__tooldef_from_json(ice__vctx_t *v, const ice__node_t *n,
                                       const char *name, json_t *def,
                                       const char *dir) {
  return tooldef_from_json(v, n, name, def, dir, 1);
}

void ice__tooldefs_release(ice_workflow_t *wf) {
  ice__tooldef_t *d = wf->tooldefs, *next;

  for (; d != NULL; d = next) {
    next = d->next_shared;
    ice__tooldef_free(d);
  }
  wf->tooldefs = NULL;
}

static ice__tooldef_t *resolve(ice__vctx_t *v, const ice__node_t *n,
                               json_t *obj, const char *key, const char *name) {
  const char *dir = v->wf->dir;
  json_t *def = ice__wf_tool_def(v->wf, name, &dir);
  ice__tooldef_t *d;

  if (def != NULL)
    return tooldef_from_json(v, n, name, def, dir, 0);
  d = ice__calloc(1, sizeof(*d));
  if (d == NULL || (d->name = ice__strdup(name)) == NULL) {
    ice__free(d);
    ice__verr(v, n, obj, key, "out of memory");
    return NULL;
  }
  d->refs = 1;
  d->ctool = ice__engine_tool(v->wf->engine, name);
  if (d->ctool != NULL)
    return d;
  unknown_tool(v, n, obj, key, name);
  ice__tooldef_free(d);
  return NULL;
}

ice__tooldef_t *ice__tooldef_resolve(ice__vctx_t *v, const ice__node_t *n,
                                     json_t *obj, const char *key,
                                     const char *name) {
  ice__tooldef_t *d, **tail = &v->wf->tooldefs;
  int kept = 0;

  /* A name resolves to the same definition for the whole workflow; one
   * that did not resolve is not kept, so that each node reports it. */
  for (d = *tail; d != NULL; d = d->next_shared, kept++) {
    if (strcmp(d->name, name) == 0) {
      d->refs++;
      return d;
    }
    tail = &d->next_shared;
  }
  d = resolve(v, n, obj, key, name);
  if (d != NULL && kept < SHARED_MAX) {
    d->refs++;
    *tail = d;
  }
  return d;
}

/* ---- process tools ------------------------------------------------------ */

typedef struct ptask_s {
  ice_task_t *task;
  ice__proc_t *proc;
  const ice__tooldef_t *def;
  char *tmpdir;
  char **envp;
  size_t env_own; /* envp[env_own..] are ours; those before, environ's */
  size_t max_output;
  /* After the tool ended, it waits with its emptied TMPDIR for the next
   * tool started on the same loop, which takes both (see release). */
  uv_prepare_t keep;
  int keep_init; /* `keep` was initialised: it must be closed */
  uv_loop_t *loop;
  struct ptask_s *next_spare;
} ptask_t;

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

static void free_env(ptask_t *p) {
  if (p->envp == NULL)
    return;
  for (char **e = p->envp + p->env_own; *e != NULL; e++)
    ice__free(*e);
  ice__free(p->envp);
  p->envp = NULL;
}

static void ptask_free(ptask_t *p) {
  if (p->tmpdir != NULL) {
    nftw(p->tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    ice__free(p->tmpdir);
  }
  free_env(p);
  ice__free(p);
}

/* ---- private temporary directories ---------------------------------------
 *
 * Creating and removing a directory cost a short tool a fifth of its CPU
 * (on ext4, the inode allocator's search and the discard of the freed
 * block: 0.3 ms). A tool that ended (in the loop's closing phase) leaves
 * its TMPDIR, emptied, to the next tool the scheduler starts on the same
 * loop, which it does in the idle phase of the next turn when nodes are
 * waiting; a prepare handle, which runs right after, removes it as before
 * if nobody took it. Only when proc.h says the directory may be reused
 * (tmp_reusable): nothing of the tool can still run, or it could reach
 * any TMPDIR of the engine's user anyway. Per thread: each loop runs on
 * one. */
static _Thread_local ptask_t *spares;

static int rm_below(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw) {
  (void)sb;
  (void)flag;
  if (ftw->level == 0)
    return 0;
  return remove(path) == 0 ? 0 : 1; /* 1 stops the walk: no reuse */
}

static void spare_unlink(ptask_t *p) {
  for (ptask_t **q = &spares; *q != NULL; q = &(*q)->next_spare) {
    if (*q == p) {
      *q = p->next_spare;
      return;
    }
  }
}

static void on_keep_closed(uv_handle_t *h) {
  ptask_free(h->data); /* removes the directory if nobody took it */
}

/* Frees p, its handle first if it has one. */
static void ptask_drop(ptask_t *p) {
  if (p->keep_init)
    uv_close((uv_handle_t *)&p->keep, on_keep_closed);
  else
    ptask_free(p);
}

static void on_keep(uv_prepare_t *h) {
  ptask_t *p = h->data;

  spare_unlink(p);
  uv_close((uv_handle_t *)h, on_keep_closed);
}

/* 1 when dir is now an empty directory of ours with mode 0700, checked
 * in five system calls on the directory itself (nftw takes twice as many,
 * and allocates: a tenth of the engine's time per short tool). 0 when it
 * is not, or holds anything. */
static int empty_own_dir(const char *dir) {
#ifdef __linux__
  char buf[1024] __attribute__((aligned(8)));
  struct stat st;
  ssize_t n = 0;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  int ok;

  if (fd < 0)
    return 0;
  ok = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
       (st.st_mode & 07777) == 0700;
  while (ok && (n = getdents64(fd, buf, sizeof(buf))) > 0) {
    for (ssize_t off = 0; off < n;) {
      const struct dirent64 *d = (const struct dirent64 *)(buf + off);

      if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0)
        ok = 0;
      off += d->d_reclen;
    }
  }
  close(fd);
  return ok && n == 0;
#else
  (void)dir;
  return 0;
#endif
}

/* Empties dir and checks it is still ours: 1 when it may be reused. */
static int emptied(const char *dir) {
  struct stat st;

  if (empty_own_dir(dir))
    return 1; /* what a short tool leaves: nothing */
  return nftw(dir, rm_below, 16, FTW_DEPTH | FTW_PHYS) == 0 &&
         lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) &&
         st.st_uid == geteuid() && (st.st_mode & 07777) == 0700;
}

/* Empties p's TMPDIR and offers p with it, or frees p (removing it). The
 * next tool takes p whole, its stopped handle included: a handle closed
 * per tool would cost the loop a turn more per tool (a closing handle
 * makes the loop poll without waiting). */
static void release(ptask_t *p, int reusable) {
  if (p->tmpdir == NULL || !reusable || !emptied(p->tmpdir)) {
    ptask_drop(p);
    return;
  }
  if (!p->keep_init) {
    if (uv_prepare_init(p->loop, &p->keep) != 0) {
      ptask_free(p);
      return;
    }
    p->keep_init = 1;
    p->keep.data = p;
  }
  uv_prepare_start(&p->keep, on_keep);
  p->next_spare = spares;
  spares = p;
}

/* A new private directory under base into *out: 0 or an errno. */
static int new_tmpdir(const char *base, char **out) {
  char *d;

  if (asprintf(&d, "%s/ice-tool-XXXXXX", base) < 0)
    return ENOMEM;
  if (mkdtemp(d) == NULL) {
    int err = errno;

    free(d);
    return err;
  }
  *out = d;
  return 0;
}

/* A ptask left by a tool on this loop with an emptied TMPDIR under base,
 * or NULL. */
static ptask_t *take_spare(uv_loop_t *loop, const char *base) {
  size_t n = strlen(base);

  for (ptask_t *q = spares; q != NULL; q = q->next_spare) {
    const char *d = q->tmpdir;

    if (q->loop == loop && strncmp(d, base, n) == 0 && d[n] == '/' &&
        strchr(d + n + 1, '/') == NULL) {
      spare_unlink(q);
      uv_prepare_stop(&q->keep);
      return q;
    }
  }
  return NULL;
}

/* The child's environment: ours, then the definition's env (null removes
 * a variable), then TMPDIR pointing at the attempt's private directory.
 * Our variables are borrowed from environ, not copied (40 allocations per
 * tool): the array lives only until the child has exec'd, inside
 * start_process. *own: the index of the first entry allocated here. */
static char **build_env(json_t *env, const char *tmpdir, size_t *own) {
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
    out[k++] = environ[i];
  }
  *own = k;
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
  for (size_t i = *own; out[i] != NULL; i++)
    ice__free(out[i]);
  ice__free(out);
  return NULL;
}

/* strict: false, and the kernel refused something (SPEC §5.2). */
static void on_degraded(void *data, unsigned mask) {
  ptask_t *p = data;

  ice__task_emit(
      p->task, ICE__EV_SANDBOX_DEGRADED,
      ice__task_wants(p->task, ICE__EV_SANDBOX_DEGRADED)
          ? json_pack("{s:o}", "missing", ice__sandbox_missing_json(mask))
          : NULL);
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
json_t *ice__tool_output_parse(const char *s, size_t n, json_error_t *jerr) {
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

/* Out of fds, processes or memory: a later attempt may well start, so it
 * is `transient` (a retry policy retries it), not the tool's fault. */
static int start_kind(int err) {
  return err == EMFILE || err == ENFILE || err == EAGAIN || err == ENOMEM
             ? ICE__KIND_TRANSIENT
             : ICE__KIND_TOOL_ERROR;
}

/* A child that did not get as far as running the command: say which step
 * failed, so that a bad cwd is not blamed on the command. */
static void start_failed(ice_task_t *t, const ice__tooldef_t *c, int rc,
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
    ice__task_fail_kind(t, start_kind(err), "cannot start '%s': %s", cmd,
                        strerror(err));
  }
}

/* "SIGTERM" for 15: the number alone makes the user look it up, and the
 * numbers differ between architectures. NULL for a signal without a name
 * here (real-time ones are named by the caller). */
static const char *signal_name(int sig) {
  static const struct {
    int sig;
    const char *name;
  } names[] = {
      {SIGHUP, "SIGHUP"},       {SIGINT, "SIGINT"},   {SIGQUIT, "SIGQUIT"},
      {SIGILL, "SIGILL"},       {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"},
      {SIGBUS, "SIGBUS"},       {SIGFPE, "SIGFPE"},   {SIGKILL, "SIGKILL"},
      {SIGUSR1, "SIGUSR1"},     {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
      {SIGPIPE, "SIGPIPE"},     {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"},
      {SIGCHLD, "SIGCHLD"},     {SIGCONT, "SIGCONT"}, {SIGSTOP, "SIGSTOP"},
      {SIGTSTP, "SIGTSTP"},     {SIGTTIN, "SIGTTIN"}, {SIGTTOU, "SIGTTOU"},
      {SIGURG, "SIGURG"},       {SIGXCPU, "SIGXCPU"}, {SIGXFSZ, "SIGXFSZ"},
      {SIGVTALRM, "SIGVTALRM"}, {SIGPROF, "SIGPROF"}, {SIGWINCH, "SIGWINCH"},
      {SIGIO, "SIGIO"},         {SIGSYS, "SIGSYS"},
#ifdef SIGSTKFLT
      {SIGSTKFLT, "SIGSTKFLT"},
#endif
#ifdef SIGPWR
      {SIGPWR, "SIGPWR"},
#endif
  };

  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    if (names[i].sig == sig)
      return names[i].name;
  }
  return NULL;
}

static void on_exit_cb(void *data, const ice__proc_result_t *res) {
  ptask_t *p = data;
  ice_task_t *t = p->task;
  char prefix[64];

  ice__task_set_xstate(t, NULL);
  if (ice__task_stopping(t)) {
    ice__task_fail_kind(t, ICE__KIND_CANCELLED, "tool process killed");
  } else if (res->spawn_error != 0 &&
             res->failed_step == ICE__PROC_STEP_SANDBOX) {
    ice__task_fail_kind(t, start_kind(-res->spawn_error), "%s", res->spawn_msg);
  } else if (res->spawn_error != 0) {
    start_failed(t, p->def, res->spawn_error, res->failed_step);
  } else if (res->output_exceeded) {
    ice__task_fail_kind(t, ICE__KIND_RESOURCE_LIMIT,
                        "output: the tool wrote more than %zu bytes to "
                        "stdout",
                        p->max_output);
  } else if (res->limit != NULL) {
    ice__task_fail_kind(t, ICE__KIND_RESOURCE_LIMIT, "%s", res->limit);
  } else if (res->term_signal != 0) {
    const char *name = signal_name(res->term_signal);

    if (name != NULL)
      snprintf(prefix, sizeof(prefix), "killed by signal %d (%s)",
               res->term_signal, name);
#ifdef SIGRTMIN
    else if (res->term_signal == SIGRTMIN)
      snprintf(prefix, sizeof(prefix), "killed by signal %d (SIGRTMIN)",
               res->term_signal);
    else if (res->term_signal > SIGRTMIN && res->term_signal <= SIGRTMAX)
      snprintf(prefix, sizeof(prefix), "killed by signal %d (SIGRTMIN+%d)",
               res->term_signal, res->term_signal - SIGRTMIN);
#endif
    else
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
    json_t *out = ice__tool_output_parse(res->out, res->out_len, &jerr);
    if (out == NULL && json_error_code(&jerr) == json_error_out_of_memory)
      ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    else if (out == NULL && strspn(res->out, " \t\r\n") == res->out_len)
      ice__task_fail_kind(t, ICE__KIND_TOOL_ERROR,
                          "tool output is not JSON (nothing on stdout)");
    else if (out == NULL)
      ice__task_fail_kind(t, ICE__KIND_TOOL_ERROR,
                          "tool output is not JSON (%s at line %d)", jerr.text,
                          jerr.line);
    else
      ice_task_done(t, out);
  }
  release(p, res->tmp_reusable);
}

static void start_process(ice_task_t *t, const ice__tooldef_t *c,
                          json_t *args) {
  ice__proc_opts_t o;
  ptask_t *p;
  char *line;
  const char *base = getenv("TMPDIR");
  int rc, step, err;
  char sbmsg[512] = "";

  if (base == NULL || base[0] == '\0')
    base = "/tmp";
  p = take_spare(ice_task_loop(t), base);
  if (p == NULL && (p = ice__calloc(1, sizeof(*p))) == NULL) {
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    return;
  }
  p->task = t;
  p->proc = NULL;
  p->def = c;
  p->max_output = c->max_output;
  p->loop = ice_task_loop(t);
  if (p->tmpdir == NULL && (err = new_tmpdir(base, &p->tmpdir)) != 0) {
    ptask_drop(p);
    if (err == ENOMEM)
      ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    else
      ice__task_fail_kind(t, ICE__KIND_INTERNAL,
                          "cannot create a temporary directory: %s",
                          strerror(err));
    return;
  }
  p->envp = build_env(c->env, p->tmpdir, &p->env_own);
  line = json_dumps(args, JSON_COMPACT);
  if (p->envp == NULL || line == NULL) {
    free(line);
    ptask_drop(p);
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    return;
  }
  size_t len = strlen(line);
  char *buf = ice__realloc(line, len + 2);
  if (buf == NULL) {
    free(line);
    ptask_drop(p);
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
  o.sandbox = &c->sandbox;
  o.tmpdir = p->tmpdir;
  o.errbuf = sbmsg;
  o.errlen = sizeof(sbmsg);
  o.async_start = 1;
  o.on_degraded = on_degraded;
  rc = ice__proc_start(ice_task_loop(t), &o, &p->proc);
  ice__free(buf);
  free_env(p); /* the child has its copy (or never ran) */
  if (rc != 0) {
    ptask_drop(p);
    if (step == ICE__PROC_STEP_SANDBOX)
      ice__task_fail_kind(t, ICE__KIND_TOOL_ERROR, "%s", sbmsg);
    else
      start_failed(t, c, rc, step);
    return;
  }
  ice__task_set_xstate(t, p);
}

/* ---- WASM tools -------------------------------------------------------------
 */

/* The most of a call's env.ice_log output kept (the rest is dropped, and
 * one line says so): a module's log costs it one instruction per call. */
#define WASM_LOG_MAX (1024 * 1024)

/* One call on the thread pool: a long module never stalls the loop. Its
 * log lines are kept as length-prefixed records and become node.log
 * events when it ends, on the loop thread. */
typedef struct {
  uv_work_t work;
  ice_task_t *task;
  const ice__tooldef_t *def;
  char *args;
  size_t args_len;
  ice__wasm_flag_t stop;
  int kind;
  char *out;
  size_t out_len;
  char *log;
  size_t log_len, log_cap;
  int log_cut;
  char msg[512];
} wcall_t;

static void wasm_log(void *data, const char *line, size_t len) {
  wcall_t *w = data;
  size_t need = w->log_len + sizeof(size_t) + len;

  if (need > WASM_LOG_MAX) {
    w->log_cut = 1;
    return;
  }
  if (need > w->log_cap) {
    size_t cap = w->log_cap != 0 ? w->log_cap : 4096;
    char *b;
    while (cap < need)
      cap *= 2;
    if ((b = ice__realloc(w->log, cap)) == NULL) {
      w->log_cut = 1;
      return;
    }
    w->log = b;
    w->log_cap = cap;
  }
  memcpy(w->log + w->log_len, &len, sizeof(size_t));
  memcpy(w->log + w->log_len + sizeof(size_t), line, len);
  w->log_len = need;
}

static void wasm_work(uv_work_t *req) {
  wcall_t *w = req->data;

  w->kind =
      ice__wasm_call(w->def->wasm, w->args, w->args_len, w->def->fuel, wasm_log,
                     w, &w->stop, &w->out, &w->out_len, w->msg, sizeof(w->msg));
}

static void wasm_done(uv_work_t *req, int status) {
  wcall_t *w = req->data;
  ice_task_t *t = w->task;

  (void)status;
  ice__task_set_xstate(t, NULL);
  for (size_t at = 0; at < w->log_len;) {
    size_t len;
    memcpy(&len, w->log + at, sizeof(size_t));
    ice_task_log(t, "wasm", w->log + at + sizeof(size_t), len);
    at += sizeof(size_t) + len;
  }
  if (w->log_cut)
    ice_task_log(t, "wasm", "(log cut: over 1 MiB)", 21);
  if (ice__task_stopping(t)) {
    ice__task_fail_kind(t, ICE__KIND_CANCELLED, "WASM call stopped");
  } else if (w->kind != 0) {
    ice__task_fail_kind(t, w->kind, "%s", w->msg);
  } else if (w->out_len > w->def->max_output) {
    ice__task_fail_kind(t, ICE__KIND_RESOURCE_LIMIT,
                        "output: the module returned more than %zu bytes",
                        w->def->max_output);
  } else {
    json_error_t jerr;
    json_t *o =
        ice__tool_output_parse(w->out != NULL ? w->out : "", w->out_len, &jerr);
    if (o == NULL)
      ice__task_fail_kind(t, ICE__KIND_TOOL_ERROR,
                          "tool output is not JSON (%s at line %d)", jerr.text,
                          jerr.line);
    else
      ice_task_done(t, o);
  }
  free(w->out);
  ice__free(w->args);
  ice__free(w->log);
  ice__free(w);
}

static void start_wasm(ice_task_t *t, const ice__tooldef_t *d, json_t *args) {
  wcall_t *w = ice__calloc(1, sizeof(*w));

  if (w == NULL || (w->args = ice_json_format(args, 0)) == NULL) {
    ice__free(w);
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    return;
  }
  w->task = t;
  w->def = d;
  w->args_len = strlen(w->args);
  atomic_init(&w->stop, 0);
  w->work.data = w;
  if (uv_queue_work(ice_task_loop(t), &w->work, wasm_work, wasm_done) != 0) {
    ice__free(w->args);
    ice__free(w);
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "cannot queue the WASM call");
    return;
  }
  ice__task_set_xstate(t, w);
}

/* ---- running ------------------------------------------------------------ */

void ice__tool_run(ice_task_t *t, const ice__tooldef_t *d, json_t *args) {
  /* The task keeps the args alive for as long as a C tool may look. */
  ice__task_keep_input(t, args);
  if (d->ctool != NULL)
    d->ctool->start(t, args, d->ctool->data);
  else if (d->wasm != NULL)
    start_wasm(t, d, args);
  else
    start_process(t, d, args);
}

void ice__tool_stop(ice_task_t *t, const ice__tooldef_t *d) {
  if (d->ctool != NULL) {
    if (d->ctool->cancel != NULL)
      d->ctool->cancel(t, d->ctool->data);
    else
      ice__task_abandon(t);
    return;
  }
  if (ice__task_xstate(t) == NULL)
    return;
  if (d->wasm != NULL)
    atomic_store(&((wcall_t *)ice__task_xstate(t))->stop, 1);
  else
    ice__proc_kill(((ptask_t *)ice__task_xstate(t))->proc);
}

/* A call's start and cancel: the call's task runs the tool. The args ride
 * in the task's kept input until the call starts. */
static void call_start(ice_task_t *sub, void *arg) {
  json_t *args = json_incref(ice__task_input(sub));

  ice__tool_run(sub, arg, args);
}

static void call_cancel(ice_task_t *sub, void *arg) {
  const ice__tooldef_t *d = arg;

  if (d->ctool != NULL && d->ctool->cancel == NULL) {
    ice__call_abandon(sub);
    return;
  }
  ice__tool_stop(sub, d);
}

static const ice__call_ops_t call_ops = {call_start, call_cancel, NULL};

ice_task_t *ice__tool_call(ice_task_t *parent, const ice__tooldef_t *d,
                           json_t *args, ice__call_cb cb, void *data) {
  ice_task_t *sub = ice__call_start(parent, 0, &call_ops, (void *)d, cb, data);

  if (sub != NULL)
    ice__task_keep_input(sub, json_incref(args));
  return sub;
}
