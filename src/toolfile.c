/* Tool files (SPEC §1.1): JSON or YAML files of `tools` and `agents`
 * definitions that an engine keeps for every workflow it loads, after the
 * workflow's own definitions (defs.c looks them up). Each is parsed with
 * positions and checked as a workflow's `tools` are (tooldefs.c); its
 * text is kept, so that a store can record what a run started with. */
#include "engine.h"
#include "readfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ice__toolfile_s {
  char *path; /* absolute (not resolved), for the store */
  char *dir;  /* its directory: relative paths inside start here */
  char *text; /* the content as read */
  size_t len;
  json_t *doc;
  json_t *tools;  /* borrowed from doc, or NULL */
  json_t *agents; /* borrowed from doc, or NULL */
};

static const char *const top_keys[] = {"tools", "agents", NULL};

static void toolfile_clear(ice__toolfile_t *tf) {
  ice__free(tf->path);
  ice__free(tf->dir);
  ice__free(tf->text);
  json_decref(tf->doc);
}

void ice__toolfiles_free(ice_engine_t *e) {
  for (size_t i = 0; i < e->ntoolfiles; i++)
    toolfile_clear(&e->toolfiles[i]);
  ice__free(e->toolfiles);
  e->toolfiles = NULL;
  e->ntoolfiles = 0;
}

json_t *ice__toolfile_def(const ice_engine_t *e, const char *section,
                          const char *name, const char **dir) {
  for (size_t i = 0; i < e->ntoolfiles; i++) {
    const ice__toolfile_t *tf = &e->toolfiles[i];
    json_t *defs = strcmp(section, "agents") == 0 ? tf->agents : tf->tools;
    json_t *def = json_object_get(defs, name);
    if (def != NULL) {
      if (dir != NULL)
        *dir = tf->dir;
      return def;
    }
  }
  return NULL;
}

/* ---- checking ----------------------------------------------------------- */

/* The checks of one parsed tool file. Diagnostics go through a workflow
 * shell that holds just what they need: the file's name and positions. */
static void check(ice__vctx_t *v, json_t *root, json_t **tools,
                  json_t **agents) {
  const char *k;
  json_t *x, *sv;

  *tools = *agents = NULL;
  if (!json_is_object(root)) {
    ice__verr(v, NULL, root, NULL,
              "a tool file must be an object with 'tools' and/or 'agents'");
    return;
  }
  sv = json_object_get(root, "schema_version");
  if (json_is_string(sv) && strcmp(json_string_value(sv), "plugins.v0") == 0) {
    /* One message says it all; its other keys would only add noise. */
    ice__verr(v, NULL, root, "schema_version",
              "this is an iceOS plugin manifest (schema_version: plugins.v0), "
              "not a tool file: ice cannot load its Python components; define "
              "each of them as a process tool in a tool file (tools: {NAME: "
              "{command: [python3, script.py]}}) that reads its arguments as "
              "JSON on stdin and writes its result as JSON on stdout");
    return;
  }
  json_object_foreach(root, k, x) {
    char h[96];
    if (!ice__in_list(k, top_keys) && !ice__is_x_key(k))
      ice__verr(v, NULL, root, k,
                "unknown field '%s' at the top level of a tool file (it may "
                "have 'tools' and 'agents')%s",
                k, ice__hint(h, sizeof(h), k, top_keys, 2));
  }
  *tools = ice__field(v, NULL, root, "tools", ICE_T_OBJECT);
  *agents = ice__field(v, NULL, root, "agents", ICE_T_OBJECT);
  /* The same checks as a workflow's own `tools` (tooldefs.c). */
  v->wf->tools = *tools;
  ice__tool_defs_check(v);
  json_object_foreach(*agents, k, x) {
    if (!json_is_object(x))
      ice__verr(v, NULL, *agents, k, "agents.%s must be an object", k);
  }
}

static int has_suffix(const char *s, const char *suf) {
  size_t n = strlen(s), m = strlen(suf);

  return n >= m && strcmp(s + n - m, suf) == 0;
}

/* path made absolute against the current directory (not resolved). */
static char *absolute(const char *path) {
  char *cwd, *out = NULL;

  if (path[0] == '/')
    return ice__strdup(path);
  cwd = getcwd(NULL, 0);
  if (cwd == NULL)
    return ice__strdup(path); /* relative, then: the best there is */
  if (asprintf(&out, "%s/%s", cwd, path) < 0)
    out = NULL;
  free(cwd);
  if (out != NULL) {
    char *copy = ice__strdup(out);
    free(out);
    out = copy;
  }
  return out;
}

static char *dir_of(const char *file) {
  const char *slash = strrchr(file, '/');

  if (slash == NULL)
    return ice__strdup(".");
  if (slash == file)
    return ice__strdup("/");
  return ice__strndup(file, (size_t)(slash - file));
}

int ice_engine_add_tool_text(ice_engine_t *e, const char *path,
                             const char *text, size_t len, ice_diags_t *diags) {
  ice__toolfile_t tf;
  ice_workflow_t shell;
  ice__vctx_t v;
  ice__posmap_t pos = {0};
  char msg[512];
  int line = 0, col = 0, nsoft = 0;
  int is_yaml;

  if (e == NULL || path == NULL || text == NULL)
    return ICE_EINVAL;
  memset(&tf, 0, sizeof(tf));
  is_yaml = has_suffix(path, ".yaml") || has_suffix(path, ".yml");
  if (ice__doc_parse_all(text, len, is_yaml, &tf.doc, &pos, diags, path, &nsoft,
                         &line, &col, msg, sizeof(msg)) != 0) {
    ice__pos_free(&pos);
    ice__diags_add_sev(diags, ICE_DIAG_ERROR, path, line, col, msg);
    return ICE_EWORKFLOW;
  }
  memset(&shell, 0, sizeof(shell));
  shell.engine = e;
  shell.file = (char *)path;
  shell.doc = tf.doc;
  shell.pos = pos;
  v = (ice__vctx_t){.wf = &shell, .diags = diags};
  check(&v, tf.doc, &tf.tools, &tf.agents);
  ice__pos_free(&shell.pos);
  if (v.errors > 0 || nsoft > 0) {
    json_decref(tf.doc);
    return ICE_EWORKFLOW;
  }
  tf.path = absolute(path);
  tf.dir = tf.path != NULL ? dir_of(tf.path) : NULL;
  tf.text = ice__strndup(text, len);
  tf.len = len;
  if (tf.path == NULL || tf.dir == NULL || tf.text == NULL) {
    toolfile_clear(&tf);
    return ICE_ENOMEM;
  }
  {
    ice__toolfile_t *n =
        ice__realloc(e->toolfiles, (e->ntoolfiles + 1) * sizeof(*n));
    if (n == NULL) {
      toolfile_clear(&tf);
      return ICE_ENOMEM;
    }
    e->toolfiles = n;
    e->toolfiles[e->ntoolfiles++] = tf;
  }
  return 0;
}

int ice_engine_add_tool_file(ice_engine_t *e, const char *path,
                             ice_diags_t *diags) {
  char *buf = NULL;
  size_t len = 0;
  int rc;

  if (e == NULL || path == NULL)
    return ICE_EINVAL;
  /* Bounded and non-blocking, as workflow files are read. */
  rc = ice__file_read_diag(path, "tool file", &buf, &len, diags);
  if (rc != 0)
    return rc;
  rc = ice_engine_add_tool_text(e, path, buf, len, diags);
  ice__free(buf);
  return rc;
}

json_t *ice_engine_tool_files(const ice_engine_t *e) {
  json_t *out = json_array();

  for (size_t i = 0; out != NULL && e != NULL && i < e->ntoolfiles; i++) {
    const ice__toolfile_t *tf = &e->toolfiles[i];
    if (json_array_append_new(out, json_pack("{s:s,s:s%}", "path", tf->path,
                                             "content", tf->text, tf->len)) !=
        0) {
      json_decref(out);
      return NULL;
    }
  }
  return out;
}
