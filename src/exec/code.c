/* The `code` node (SPEC §7.6). Python and JavaScript run as a process
 * tool of the machine's `python3` or `node` (so through the same path and
 * sandbox as every process tool): a small wrapper reads {"code", "ctx"}
 * from stdin, runs the code with `ctx` bound, and writes `output` as JSON.
 * While the code runs, its own stdout goes to stderr (node.log lines), so
 * a print() cannot corrupt the output. */
#include "../call.h"

#include <string.h>

/* python3 -I: isolated, so the user's site-packages and PYTHON* variables
 * do not change what a workflow does. */
static const char py_wrapper[] =
    "import json, sys\n"
    "d = json.loads(sys.stdin.buffer.read())\n"
    "out, sys.stdout = sys.stdout, sys.stderr\n"
    "ns = {'ctx': d['ctx'], '__name__': '__ice_code__'}\n"
    "exec(compile(d['code'], d['name'], 'exec'), ns)\n"
    "if 'output' not in ns:\n"
    "    sys.stderr.write('the code did not set `output`\\n')\n"
    "    sys.exit(1)\n"
    "out.write(json.dumps(ns['output'], default=str))\n";

static const char js_wrapper[] =
    "const chunks = [];\n"
    "process.stdin.on('data', (c) => chunks.push(c));\n"
    "process.stdin.on('end', () => {\n"
    "  const d = JSON.parse(Buffer.concat(chunks).toString());\n"
    "  const write = process.stdout.write.bind(process.stdout);\n"
    "  const log = (...a) => process.stderr.write(a.join(' ') + '\\n');\n"
    "  console.log = console.info = console.debug = log;\n"
    "  const ctx = d.ctx;\n"
    "  let output;\n"
    "  eval(d.code);\n"
    "  if (typeof output === 'undefined') {\n"
    "    process.stderr.write('the code did not set `output`\\n');\n"
    "    process.exit(1);\n"
    "  }\n"
    "  write(JSON.stringify(output));\n"
    "});\n";

typedef struct {
  ice__tooldef_t *def;
  json_t *proc_def; /* the interpreter's definition (the tooldef borrows) */
  json_t *code;     /* borrowed */
  char *name;       /* "<code node ID>" for tracebacks */
} code_conf_t;

static const ice_field_t code_fields[] = {
    {"language", ICE_T_STRING, 1, 0},  {"code", ICE_T_STRING, 0, 0},
    {"module", ICE_T_STRING, 0, 0},    {"export", ICE_T_STRING, 0, 0},
    {"sandbox", ICE_T_OBJECT, 0, 0},   {"fuel", ICE_T_INT, 0, 0},
    {"memory_pages", ICE_T_INT, 0, 0}, {NULL, 0, 0, 0},
};

static void conf_free(void *p, void *data) {
  code_conf_t *c = p;

  (void)data;
  if (c == NULL)
    return;
  ice__tooldef_free(c->def);
  json_decref(c->proc_def);
  ice__free(c->name);
  ice__free(c);
}

/* language wasm: the module runs as a WASM tool (SPEC §5.1) whose args
 * are the node's context. */
static void *compile_wasm(ice_compile_t *cc, code_conf_t *c) {
  ice__node_t *n = cc->node;
  json_t *module = json_object_get(n->def, "module");

  if (module == NULL)
    module = json_object_get(n->def, "code"); /* the SPEC's "code" | "module" */
  if (!json_is_string(module)) {
    ice_compile_error(cc, NULL,
                      "missing required field 'module' (the .wasm or .wat "
                      "file)");
    return c;
  }
  c->proc_def = json_pack("{s:O}", "wasm", module);
  if (c->proc_def == NULL) {
    ice_compile_error(cc, NULL, "out of memory");
    return c;
  }
  for (const char *const *k =
           (const char *const[]){"export", "fuel", "memory_pages", NULL};
       *k != NULL; k++) {
    json_t *x = json_object_get(n->def, *k);
    if (x != NULL && json_object_set(c->proc_def, *k, x) != 0) {
      ice_compile_error(cc, NULL, "out of memory");
      return c;
    }
  }
  c->def = ice__tooldef_from_json(cc->v, n, n->id, c->proc_def, cc->v->wf->dir);
  return c;
}

static void *compile(ice_compile_t *cc) {
  ice__vctx_t *v = cc->v;
  ice__node_t *n = cc->node;
  const char *lang = json_string_value(json_object_get(n->def, "language"));
  json_t *sandbox = json_object_get(n->def, "sandbox");
  code_conf_t *c;
  int python;

  if (lang == NULL)
    return NULL; /* reported by the field checks */
  python = strcmp(lang, "python") == 0;
  if (!python && strcmp(lang, "javascript") != 0 && strcmp(lang, "wasm") != 0) {
    ice_compile_error(cc, "language",
                      "language '%s' is not one of python, javascript, wasm",
                      lang);
    return NULL;
  }
  c = ice__calloc(1, sizeof(*c));
  if (c == NULL) {
    ice_compile_error(cc, NULL, "out of memory");
    return NULL;
  }
  if (strcmp(lang, "wasm") == 0)
    return compile_wasm(cc, c);
  c->code = json_object_get(n->def, "code");
  if (!json_is_string(c->code)) {
    ice_compile_error(cc, NULL, "missing required field 'code'");
    return c;
  }
  if (json_object_get(n->def, "module") != NULL)
    ice_compile_error(cc, "module", "module is for language wasm");
  if (asprintf(&c->name, "<code node %s>", n->id) < 0) {
    c->name = NULL;
    ice_compile_error(cc, NULL, "out of memory");
    return c;
  }
  c->proc_def =
      python ? json_pack("{s:[s,s,s,s]}", "command", "python3", "-I", "-c",
                         py_wrapper)
             : json_pack("{s:[s,s,s]}", "command", "node", "-e", js_wrapper);
  if (c->proc_def != NULL && sandbox != NULL &&
      json_object_set(c->proc_def, "sandbox", sandbox) != 0) {
    json_decref(c->proc_def);
    c->proc_def = NULL;
  }
  if (c->proc_def == NULL) {
    ice_compile_error(cc, NULL, "out of memory");
    return c;
  }
  c->def = ice__tooldef_from_json(v, n, python ? "python3" : "node",
                                  c->proc_def, v->wf->dir);
  return c;
}

static void code_start(ice_task_t *t) {
  const code_conf_t *c = ice_task_compiled(t);
  const ice__node_t *n = ice__task_node(t);
  json_t *ctx, *args;
  ice__err_t err;

  if (c->def == NULL) {
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "code node not compiled");
    return;
  }
  ctx = ice_task_context(t);
  if (ctx == NULL) {
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    return;
  }
  if (n->in_schema != NULL && ice__schema_check(n->in_schema, ctx, &err) != 0) {
    json_decref(ctx);
    ice__task_fail_kind(t, ICE__KIND_INPUT_VALIDATION, "%s", err.msg);
    return;
  }
  args = c->code == NULL ? ctx
                         : json_pack("{s:O,s:o,s:s}", "code", c->code, "ctx",
                                     ctx, "name", c->name);
  if (args == NULL) {
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    return;
  }
  ice__tool_run(t, c->def, args);
}

static void code_cancel(ice_task_t *t) {
  const code_conf_t *c = ice_task_compiled(t);

  if (c->def != NULL)
    ice__tool_stop(t, c->def);
}

const ice_executor_t ice__exec_code = {
    .abi = ICE_EXECUTOR_ABI,
    .type = "code",
    .fields = code_fields,
    .start = code_start,
    .cancel = code_cancel,
    .default_timeout = 30.0,
    .compile = compile,
    .free_compiled = conf_free,
};
