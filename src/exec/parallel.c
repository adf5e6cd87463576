/* The `parallel` node (SPEC §7.3): one child frame per branch, at most
 * max_concurrency at once. `all` waits for every branch; `any` ends with
 * the first branch that succeeds and `race` with the first that finishes,
 * stopping the others (their processes killed) before completing. */
#include "flow.h"

#include <string.h>

enum { WAIT_ALL, WAIT_ANY, WAIT_RACE };
enum { BR_IDLE, BR_RUNNING, BR_OK, BR_FAILED, BR_STOPPED };

typedef struct {
  uint32_t *scopes;
  uint32_t nbranches;
  long concurrency; /* 0 = all at once */
  int strategy;
  int merge;
} par_conf_t;

struct par_state_s;

typedef struct {
  struct par_state_s *st;
  uint32_t index;
  int status;
  ice__frame_t *frame;
  json_t *outputs;
  char *failed; /* id of the node that failed */
  int fail_kind;
  char *fail_msg;
} branch_t;

typedef struct par_state_s {
  ice_task_t *task;
  branch_t *br;
  uint32_t next, inflight;
  int decided; /* any/race: the outcome is known, stop the rest */
  int stopping;
} par_state_t;

static const ice_field_t fields[] = {
    {"branches", ICE_T_ARRAY | ICE_T_NODE_LISTS, 1, 0},
    {"max_concurrency", ICE_T_INT, 0, 0},
    {"wait_strategy", ICE_T_STRING, 0, 0},
    {"merge_outputs", ICE_T_BOOL, 0, 0},
    {NULL, 0, 0, 0},
};

static const char *const strategy_names[] = {"all", "any", "race"};

static void conf_free(void *p, void *data) {
  (void)data;
  par_conf_t *c = p;

  ice__free(c->scopes);
  ice__free(c);
}

static void *compile(ice_compile_t *cc) {
  ice__vctx_t *v = cc->v;
  ice__node_t *n = cc->node;
  par_conf_t *c = ice__calloc(1, sizeof(*c));
  json_t *branches = json_object_get(n->def, "branches"), *b;
  const char *ws = json_string_value(json_object_get(n->def, "wait_strategy"));
  size_t i;

  if (c == NULL) {
    ice_compile_error(cc, NULL, "out of memory");
    return NULL;
  }
  n->xdata = c;
  c->concurrency = ice__field_int(v, n, "max_concurrency", 0, 1);
  c->merge = !json_is_false(json_object_get(n->def, "merge_outputs"));
  c->strategy = WAIT_ALL;
  if (ws != NULL) {
    if (strcmp(ws, "any") == 0)
      c->strategy = WAIT_ANY;
    else if (strcmp(ws, "race") == 0)
      c->strategy = WAIT_RACE;
    else if (strcmp(ws, "all") != 0)
      ice__verr(v, n, n->def, "wait_strategy",
                "wait_strategy '%s' is not one of all, any, race", ws);
  }
  if (!json_is_array(branches))
    return c;
  if (json_array_size(branches) == 0)
    ice__verr(v, n, n->def, "branches",
              "'branches' must hold at least one branch");
  c->scopes = ice__calloc(json_array_size(branches) + 1, sizeof(uint32_t));
  if (c->scopes == NULL) {
    ice_compile_error(cc, NULL, "out of memory");
    return c;
  }
  json_array_foreach(branches, i, b) {
    uint32_t s = ice__node_scope_of(v->wf, n, b);
    if (s == ICE__NONE)
      continue; /* not a list: reported while collecting nodes */
    c->scopes[c->nbranches++] = s;
  }
  return c;
}

static json_t *output_of(par_state_t *st) {
  const par_conf_t *c = ice_task_compiled(st->task);
  json_t *results = json_array(), *done = json_array(), *merged = json_object();
  json_t *out;
  int bad = results == NULL || done == NULL || merged == NULL;

  for (uint32_t b = 0; b < c->nbranches && !bad; b++) {
    branch_t *br = &st->br[b];
    bad |= json_array_append_new(results, br->outputs != NULL
                                              ? json_incref(br->outputs)
                                              : json_object());
    if (br->status == BR_OK) {
      bad |= json_array_append_new(done, json_integer(b));
      bad |= json_object_update(merged, br->outputs);
    }
  }
  if (bad) {
    json_decref(results);
    json_decref(done);
    json_decref(merged);
    return NULL; /* ENOMEM: ice_task_done fails the node */
  }
  out = json_pack("{s:o,s:o,s:s}", "branch_results", results,
                  "completed_branches", done, "strategy",
                  strategy_names[c->strategy]);
  if (c->merge && out != NULL && json_object_set(out, "merged", merged) != 0) {
    json_decref(out);
    out = NULL;
  }
  json_decref(merged);
  return out;
}

static void finish(par_state_t *st) {
  ice_task_t *t = st->task;
  const par_conf_t *c = ice_task_compiled(t);
  branch_t *bad = NULL;
  uint32_t ok = 0;

  for (uint32_t b = 0; b < c->nbranches; b++) {
    if (st->br[b].status == BR_OK)
      ok++;
    if (st->br[b].status == BR_FAILED && bad == NULL)
      bad = &st->br[b];
  }
  /* Branches that never started because another won or the node was
   * stopped: their nodes are cancelled, and say so. */
  for (uint32_t b = 0; b < c->nbranches; b++) {
    if (st->br[b].status == BR_IDLE)
      ice__scope_skip(t, c->scopes[b], (long)b, ICE__SKIP_NONE);
  }
  ice_task_set_data(t, NULL);
  if (ice__task_stopping(t))
    ice__task_fail_kind(t, ICE__KIND_CANCELLED, "parallel cancelled");
  else if (c->strategy == WAIT_ALL && bad != NULL)
    ice__task_fail_kind(t, bad->fail_kind, "branch %u: node '%s' failed: %s",
                        bad->index, bad->failed,
                        bad->fail_msg != NULL ? bad->fail_msg : "");
  else if (c->strategy == WAIT_ANY && ok == 0)
    ice__task_fail_kind(t, bad != NULL ? bad->fail_kind : ICE__KIND_TOOL_ERROR,
                        "every branch failed; branch %u: node '%s' failed: "
                        "%s",
                        bad != NULL ? bad->index : 0,
                        bad != NULL ? bad->failed : "?",
                        bad != NULL && bad->fail_msg ? bad->fail_msg : "");
  else
    ice__task_done_flow(t, output_of(st));
  for (uint32_t b = 0; b < c->nbranches; b++) {
    json_decref(st->br[b].outputs);
    ice__free(st->br[b].fail_msg);
    ice__free(st->br[b].failed);
  }
  ice__free(st->br);
  ice__free(st);
}

static void maybe_finish(par_state_t *st) {
  const par_conf_t *c = ice_task_compiled(st->task);

  if (st->stopping || st->inflight > 0)
    return;
  if (st->decided || st->next == c->nbranches || ice__task_stopping(st->task))
    finish(st);
}

static void stop_all(par_state_t *st) {
  const par_conf_t *c = ice_task_compiled(st->task);

  st->stopping = 1;
  for (uint32_t b = 0; b < c->nbranches; b++) {
    if (st->br[b].frame != NULL)
      ice__frame_stop(st->br[b].frame);
  }
  st->stopping = 0;
}

static void pump(par_state_t *st);

static void branch_done(ice__frame_t *f, void *data) {
  branch_t *br = data;
  par_state_t *st = br->st;
  const par_conf_t *c = ice_task_compiled(st->task);
  const char *failed, *msg;

  br->frame = NULL;
  st->inflight--;
  br->outputs = ice__frame_outputs(f);
  if (br->outputs == NULL)
    ice__task_fault(st->task); /* ENOMEM: the branch's outputs are lost */
  failed = ice__frame_failure(f, &br->fail_kind, &msg);
  if (failed != NULL) {
    br->status = BR_FAILED;
    br->failed = ice__strdup(failed);
    br->fail_msg = ice__strdup(msg);
  } else {
    br->status = ice__frame_succeeded(f) ? BR_OK : BR_STOPPED;
  }
  ice__frame_close(f);
  if (!st->decided &&
      ((c->strategy == WAIT_ANY && br->status == BR_OK) ||
       (c->strategy == WAIT_RACE && br->status != BR_STOPPED))) {
    st->decided = 1;
    stop_all(st);
  }
  if (!st->stopping) {
    pump(st);
    maybe_finish(st);
  }
}

static void pump(par_state_t *st) {
  ice_task_t *t = st->task;
  const par_conf_t *c = ice_task_compiled(t);

  while (!st->decided && !ice__task_stopping(t) && st->next < c->nbranches &&
         (c->concurrency == 0 || st->inflight < (uint32_t)c->concurrency)) {
    branch_t *br = &st->br[st->next];
    ice__frame_t *f;
    /* Marked running first: a branch whose frame is empty finishes at
     * once, from the drain. */
    br->status = BR_RUNNING;
    st->inflight++;
    if (ice__frame_open(t, c->scopes[st->next], NULL, -1, (long)st->next,
                        branch_done, br, &f) != 0) {
      st->inflight--;
      ice__task_fault(t);
      br->status = BR_FAILED;
      br->fail_kind = ICE__KIND_INTERNAL;
      br->failed = ice__strdup("?");
      br->fail_msg = ice__strdup("out of memory");
      st->next++;
      continue;
    }
    st->next++;
    br->frame = f;
  }
}

static void par_start(ice_task_t *t) {
  const par_conf_t *c = ice_task_compiled(t);
  par_state_t *st = ice__calloc(1, sizeof(*st));

  if (st != NULL)
    st->br = ice__calloc(c->nbranches + 1, sizeof(branch_t));
  if (st == NULL || st->br == NULL) {
    ice__free(st);
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    return;
  }
  st->task = t;
  for (uint32_t b = 0; b < c->nbranches; b++) {
    st->br[b].st = st;
    st->br[b].index = b;
  }
  ice_task_set_data(t, st);
  pump(st);
  maybe_finish(st);
}

static void par_cancel(ice_task_t *t) {
  par_state_t *st = ice_task_data(t);

  if (st == NULL)
    return;
  stop_all(st);
  maybe_finish(st);
}

const ice_executor_t ice__exec_parallel = {
    .abi = ICE_EXECUTOR_ABI,
    .type = "parallel",
    .fields = fields,
    .start = par_start,
    .cancel = par_cancel,
    .flags = ICE_EX_CONTROL_FLOW,
    .compile = compile,
    .free_compiled = conf_free,
};
