/* The file's `tools` definitions (SPEC §5.1): process tools' command,
 * env, cwd and sandbox, checked at validation whether or not a node uses
 * them. Running them is exec/tool.c's. */
#include "sandbox.h"
#include "workflow.h"

#include <string.h>

/* Checks one process-tool definition of the file's `tools`. */
static int check_def(ice__vctx_t *v, json_t *tools, const char *name,
                     json_t *def) {
  static const char *const keys[] = {
      "command", "env",          "cwd",         "sandbox", "wasm", "export",
      "fuel",    "memory_pages", "description", "name",    NULL};
  const char *k;
  json_t *x;
  size_t i;

  if (!json_is_object(def)) {
    ice__verr(v, NULL, tools, name, "tools.%s must be an object", name);
    return 0;
  }
  json_object_foreach(def, k, x) {
    int known = 0;
    for (const char *const *p = keys; *p != NULL; p++)
      known |= strcmp(*p, k) == 0;
    char h[96];
    if (!known && !(k[0] == 'x' && k[1] == '-'))
      ice__verr(
          v, NULL, def, k, "tools.%s: unknown field '%s'%s", name, k,
          ice__hint(h, sizeof(h), k, keys, sizeof(keys) / sizeof(keys[0]) - 1));
  }
  if (json_object_get(def, "wasm") != NULL) {
    /* A WASM tool (SPEC §5.1); the module itself is loaded and checked
     * where a node names the tool (toolcall.c). */
    if (!json_is_string(json_object_get(def, "wasm")))
      ice__verr(v, NULL, def, "wasm", "tools.%s.wasm must be a path string",
                name);
    if (json_object_get(def, "command") != NULL)
      ice__verr(v, NULL, def, "command",
                "tools.%s: set either command or wasm, not both", name);
    if ((x = json_object_get(def, "export")) != NULL && !json_is_string(x))
      ice__verr(v, NULL, def, "export", "tools.%s.export must be a string",
                name);
    if ((x = json_object_get(def, "fuel")) != NULL &&
        (!json_is_integer(x) || json_integer_value(x) < 1))
      ice__verr(v, NULL, def, "fuel", "tools.%s.fuel must be an integer >= 1",
                name);
    if ((x = json_object_get(def, "memory_pages")) != NULL &&
        (!json_is_integer(x) || json_integer_value(x) < 1 ||
         json_integer_value(x) > 65536))
      ice__verr(v, NULL, def, "memory_pages",
                "tools.%s.memory_pages must be an integer from 1 to 65536",
                name);
    return 0;
  }
  x = json_object_get(def, "command");
  if (x == NULL) {
    ice__verr(v, NULL, def, NULL, "tools.%s: missing required field 'command'",
              name);
    return 0;
  }
  if (!json_is_array(x) || json_array_size(x) == 0) {
    ice__verr(v, NULL, def, "command",
              "tools.%s.command must be a non-empty array of strings", name);
    return 0;
  }
  json_t *a;
  json_array_foreach(x, i, a) {
    if (!json_is_string(a) || json_string_length(a) == 0 ||
        strlen(json_string_value(a)) != json_string_length(a)) {
      ice__verr(v, NULL, def, "command",
                "tools.%s.command[%zu] must be a non-empty string", name, i);
      return 0;
    }
  }
  if ((x = json_object_get(def, "env")) != NULL) {
    if (!json_is_object(x)) {
      ice__verr(v, NULL, def, "env", "tools.%s.env must be an object", name);
    } else {
      const char *ek;
      json_t *ev;
      json_object_foreach(x, ek, ev) {
        if (!json_is_string(ev) && !json_is_null(ev))
          ice__verr(v, NULL, x, ek, "tools.%s.env.%s must be a string or null",
                    name, ek);
        else if (ek[0] == '\0' || strchr(ek, '=') != NULL)
          ice__verr(v, NULL, x, ek, "tools.%s.env: invalid name '%s'", name,
                    ek);
      }
    }
  }
  if ((x = json_object_get(def, "cwd")) != NULL && !json_is_string(x))
    ice__verr(v, NULL, def, "cwd", "tools.%s.cwd must be a string", name);
  if ((x = json_object_get(def, "sandbox")) != NULL) {
    if (!json_is_object(x)) {
      ice__verr(v, NULL, def, "sandbox", "tools.%s.sandbox must be an object",
                name);
    } else {
      const char *sk;
      json_t *sv;
      json_object_foreach(x, sk, sv) {
        char m[128], h[96];
        const char *bad = ice__sandbox_check_field(sk, sv, m, sizeof(m));
        size_t nf = 0;
        while (ice__sandbox_fields[nf] != NULL)
          nf++;
        if (bad != NULL && strcmp(bad, "unknown field") == 0)
          ice__verr(v, NULL, x, sk, "tools.%s.sandbox: unknown field '%s'%s",
                    name, sk,
                    ice__hint(h, sizeof(h), sk, ice__sandbox_fields, nf));
        else if (bad != NULL)
          ice__verr(v, NULL, x, sk, "tools.%s.sandbox.%s %s", name, sk, bad);
      }
    }
  }
  return 0;
}

int ice__tool_defs_check(ice__vctx_t *v) {
  json_t *tools = v->wf->tools, *def;
  const char *name;

  if (tools == NULL)
    return 0;
  json_object_foreach(tools, name, def) {
    check_def(v, tools, name, def);
  }
  return 0;
}
