/* The `swarm` node (SPEC §6.3): members (agents or tools) asked in rounds,
 * each round made of phases whose calls run concurrently, under one of
 * three coordination strategies:
 *
 *   consensus     propose, until one value has enough support;
 *   hierarchical  the leader plans, the named members work, the leader
 *                 aggregates, until it says done;
 *   marketplace   everyone bids, the lowest bid executes.
 *
 * A phase starts every call at once and counts their callbacks; the next
 * phase starts from the callback of the last one. A member that fails
 * stops the others of its phase, and the node fails once every callback
 * has come in, so that no call outlives the attempt. */
#include "../agent.h"
#include "../expr.h" /* ice__json_truthy, ice__json_equal */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { STRAT_CONSENSUS, STRAT_HIERARCHICAL, STRAT_MARKETPLACE };

static const char *const strategies[] = {"consensus", "hierarchical",
                                         "marketplace", NULL};

/* An agent member gets this many LLM steps per call (an agent node's
 * default max_iterations). */
#define MEMBER_MAX_ITERATIONS 10

typedef struct {
  const char *role;     /* borrowed from the document */
  ice__tooldef_t *tool; /* a tool member, or */
  ice__agent_t *agent;  /* an agent member */
  json_t *overrides;    /* borrowed: config_overrides, or NULL */
  ice__tmpl_t *overrides_tmpl;
} member_t;

typedef struct {
  member_t *members;
  size_t n;
  int strategy;
  long max_rounds;
  double threshold;
  json_t *task; /* borrowed, or NULL: the node's context */
  ice__tmpl_t *task_tmpl;
} swarm_conf_t;

static const ice_field_t swarm_fields[] = {
    {"agents", ICE_T_ARRAY, 1, 0},
    {"coordination_strategy", ICE_T_STRING, 0, 0},
    {"max_rounds", ICE_T_INT, 0, 0},
    {"consensus_threshold", ICE_T_NUMBER, 0, 0},
    {"task", ICE_T_ANY, 0, 1},
    {NULL, 0, 0, 0},
};

static const char *const member_keys[] = {"role", "agent", "tool",
                                          "config_overrides", NULL};

/* ---- validation ---------------------------------------------------------- */

static void conf_free(void *p, void *data) {
  swarm_conf_t *c = p;

  (void)data;
  if (c == NULL)
    return;
  for (size_t i = 0; i < c->n; i++) {
    ice__tooldef_free(c->members[i].tool);
    ice__agent_free(c->members[i].agent);
    ice__tmpl_free(c->members[i].overrides_tmpl);
  }
  ice__free(c->members);
  ice__tmpl_free(c->task_tmpl);
  ice__free(c);
}

/* obj[key], with null meaning absent (SPEC §1.1). */
static json_t *opt(json_t *obj, const char *key) {
  json_t *x = json_object_get(obj, key);

  return json_is_null(x) ? NULL : x;
}

/* Checks agents[i] and compiles it as the next member. Every problem is
 * reported; an object always becomes a member (the workflow is invalid
 * when one was reported, so it never runs). */
static void compile_member(ice__vctx_t *v, ice__node_t *n, swarm_conf_t *c,
                           json_t *list, size_t i) {
  json_t *m = json_array_get(list, i), *role, *agent, *tool, *ov, *x;
  member_t *mb = &c->members[c->n];
  const char *k, *r;
  ice__err_t err;

  if (!json_is_object(m)) {
    ice__verr_item(v, n, list, i,
                   "agents[%zu] must be an object {\"role\", \"agent\" | "
                   "\"tool\", \"config_overrides\"}",
                   i);
    return;
  }
  c->n++;
  json_object_foreach(m, k, x) {
    if (!ice__in_list(k, member_keys) && !ice__is_x_key(k)) {
      char h[96];
      ice__verr(v, n, m, k, "agents[%zu]: unknown field '%s'%s", i, k,
                ice__hint(h, sizeof(h), k, member_keys, 4));
    }
  }
  role = opt(m, "role");
  agent = opt(m, "agent");
  tool = opt(m, "tool");
  ov = opt(m, "config_overrides");
  if (role == NULL) {
    ice__verr_item(v, n, list, i, "agents[%zu]: missing \"role\"", i);
  } else if (!json_is_string(role) || json_string_length(role) == 0) {
    ice__verr(v, n, m, "role", "agents[%zu]: role must be a non-empty string",
              i);
  } else {
    r = json_string_value(role);
    for (size_t j = 0; j + 1 < c->n; j++) {
      if (c->members[j].role != NULL && strcmp(c->members[j].role, r) == 0) {
        ice__verr(v, n, m, "role",
                  "agents[%zu]: duplicate role '%s': roles must be unique", i,
                  r);
        break;
      }
    }
    mb->role = r;
  }
  r = mb->role != NULL ? mb->role : "?";
  if (agent != NULL && tool != NULL)
    ice__verr(v, n, m, "tool",
              "agents[%zu] (role '%s'): give either \"agent\" or \"tool\", "
              "not both",
              i, r);
  else if (agent == NULL && tool == NULL)
    ice__verr_item(v, n, list, i,
                   "agents[%zu] (role '%s'): needs \"agent\" (a name of "
                   "`agents`) or \"tool\" (a tool name)",
                   i, r);
  if (tool != NULL && !json_is_string(tool))
    ice__verr(v, n, m, "tool", "agents[%zu]: tool must be a tool name", i);
  else if (tool != NULL)
    mb->tool = ice__tooldef_resolve(v, n, m, "tool", json_string_value(tool));
  if (agent != NULL && !json_is_string(agent))
    ice__verr(v, n, m, "agent",
              "agents[%zu]: agent must be the name of an agent", i);
  else if (agent != NULL)
    mb->agent =
        ice__agent_compile(v, n, json_string_value(agent), NULL, m, "agent");
  if (ov != NULL && !json_is_object(ov))
    ice__verr(v, n, m, "config_overrides",
              "agents[%zu]: config_overrides must be an object", i);
  else if (ov != NULL && ice__tmpl_compile(ov, &mb->overrides_tmpl, &err) != 0)
    ice__verr_tmpl(v, n, m, "config_overrides", &err);
  else
    mb->overrides = ov;
}

static void *compile(ice_compile_t *cc) {
  ice__vctx_t *v = cc->v;
  ice__node_t *n = cc->node;
  json_t *def = n->def, *list = json_object_get(def, "agents"), *x;
  swarm_conf_t *c = ice__calloc(1, sizeof(*c));
  ice__err_t err;
  size_t i;

  if (c == NULL) {
    ice_compile_error(cc, NULL, "out of memory");
    return NULL;
  }
  c->strategy = STRAT_CONSENSUS;
  c->max_rounds = 10;
  c->threshold = 0.75;
  if ((x = json_object_get(def, "coordination_strategy")) != NULL &&
      json_is_string(x)) {
    const char *s = json_string_value(x);
    for (i = 0; strategies[i] != NULL && strcmp(strategies[i], s) != 0; i++)
      ;
    if (strategies[i] != NULL) {
      c->strategy = (int)i;
    } else {
      char h[96];
      ice__verr(v, n, def, "coordination_strategy",
                "coordination_strategy '%s' is not one of consensus, "
                "hierarchical, marketplace%s",
                s, ice__hint(h, sizeof(h), s, strategies, 3));
    }
  }
  if ((x = json_object_get(def, "max_rounds")) != NULL && json_is_integer(x)) {
    if (json_integer_value(x) < 1 || json_integer_value(x) > 100000)
      ice__verr(v, n, def, "max_rounds",
                "max_rounds must be an integer from 1 to 100000");
    else
      c->max_rounds = (long)json_integer_value(x);
  }
  if ((x = json_object_get(def, "consensus_threshold")) != NULL &&
      json_is_number(x)) {
    double d = json_number_value(x);
    if (!(d > 0 && d <= 1))
      ice__verr(v, n, def, "consensus_threshold",
                "consensus_threshold must be a number in (0, 1]");
    else
      c->threshold = d;
  }
  c->task = json_object_get(def, "task");
  if (c->task != NULL && ice__tmpl_compile(c->task, &c->task_tmpl, &err) != 0)
    ice__verr_tmpl(v, n, def, "task", &err);
  if (!json_is_array(list))
    return c; /* reported by the field checks */
  if (json_array_size(list) < 2)
    ice__verr_value(v, n, def, "agents",
                    "a swarm needs at least two members in agents (got %zu)",
                    json_array_size(list));
  c->members = ice__calloc(json_array_size(list) + 1, sizeof(*c->members));
  if (c->members == NULL) {
    ice_compile_error(cc, "agents", "out of memory");
    return c;
  }
  for (i = 0; i < json_array_size(list); i++)
    compile_member(v, n, c, list, i);
  return c;
}

/* ---- one attempt ----------------------------------------------------------
 */

typedef struct swarm_s swarm_t;

/* One call of a phase: a member asked once. */
typedef struct {
  swarm_t *s;
  size_t member;
  ice_task_t *call;     /* a tool member's call in flight */
  ice__agentrun_t *run; /* an agent member's run in flight */
  json_t *answer;       /* its answer object, once in */
} slot_t;

struct swarm_s {
  ice_task_t *t;
  const swarm_conf_t *c;
  json_t *task;       /* the rendered task */
  json_t **overrides; /* per member: rendered config_overrides, or NULL */
  long round;
  const char *phase;
  slot_t *slots; /* the calls of the current phase */
  size_t nslots, pending;
  /* A member failed or the node is stopping: the phase's other calls are
   * being stopped, and the attempt fails once they all reported. */
  int failed;
  int kind;
  char *msg;
  json_t *proposals; /* the previous round's [{"role", "proposal"}] */
  json_t *subtasks;  /* hierarchical: this round's [{"role", "task"}] */
  json_t *results;   /* hierarchical: this round's work answers */
  json_t *bids;      /* marketplace: {role: bid} */
};

static void slots_clear(swarm_t *s) {
  for (size_t i = 0; i < s->nslots; i++)
    json_decref(s->slots[i].answer);
  ice__free(s->slots);
  s->slots = NULL;
  s->nslots = 0;
}

static void swarm_free(swarm_t *s) {
  slots_clear(s);
  json_decref(s->task);
  for (size_t i = 0; s->overrides != NULL && i < s->c->n; i++)
    json_decref(s->overrides[i]);
  ice__free(s->overrides);
  ice__free(s->msg);
  json_decref(s->proposals);
  json_decref(s->subtasks);
  json_decref(s->results);
  json_decref(s->bids);
  ice__free(s);
}

static void finish_ok(swarm_t *s, json_t *out) {
  ice_task_t *t = s->t;

  ice_task_set_data(t, NULL);
  swarm_free(s);
  if (out == NULL)
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
  else
    ice_task_done(t, out);
}

static void finish_fail(swarm_t *s) {
  ice_task_t *t = s->t;
  int kind = ice__task_stopping(t) ? ICE__KIND_CANCELLED : s->kind;
  char *msg = s->msg;

  s->msg = NULL;
  ice_task_set_data(t, NULL);
  swarm_free(s);
  ice__task_fail_kind(t, kind, "%s", msg != NULL ? msg : "out of memory");
  ice__free(msg);
}

/* Stops every call of the phase still in flight; each callback still
 * comes. */
static void stop_calls(swarm_t *s) {
  for (size_t i = 0; i < s->nslots; i++) {
    if (s->slots[i].call != NULL)
      ice__call_cancel(s->slots[i].call);
    else if (s->slots[i].run != NULL)
      ice__agent_cancel(s->slots[i].run);
  }
}

/* Records the first failure of the phase and stops the other calls. */
static void round_fail(swarm_t *s, int kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void round_fail(swarm_t *s, int kind, const char *fmt, ...) {
  va_list ap;

  if (s->failed)
    return;
  s->failed = 1;
  s->kind = kind;
  va_start(ap, fmt);
  if (vasprintf(&s->msg, fmt, ap) < 0)
    s->msg = NULL;
  va_end(ap);
  stop_calls(s);
}

/* A member whose answer does not follow the protocol: as if its call had
 * failed (tool_error for a tool, llm_error for an agent). */
static void bad_answer(swarm_t *s, size_t slot, const char *what) {
  const member_t *m = &s->c->members[s->slots[slot].member];

  round_fail(s, m->tool != NULL ? ICE__KIND_TOOL_ERROR : ICE__KIND_LLM_ERROR,
             "member '%s' answered %s in round %ld (phase %s)", m->role, what,
             s->round, s->phase);
}

static const char *role_of(const swarm_t *s, size_t slot) {
  return s->c->members[s->slots[slot].member].role;
}

static void phase_end(swarm_t *s);

/* The answer of one call is in (answer taken; NULL when it failed). */
static void slot_done(slot_t *sl, const ice__call_res_t *res, json_t *answer) {
  swarm_t *s = sl->s;

  sl->call = NULL;
  sl->run = NULL;
  s->pending--;
  if (res->ok) {
    sl->answer = answer;
  } else {
    json_decref(answer);
    round_fail(s, res->kind, "member '%s' failed in round %ld (phase %s): %s",
               s->c->members[sl->member].role, s->round, s->phase, res->msg);
  }
  if (s->pending == 0)
    phase_end(s);
}

static void on_tool(void *data, const ice__call_res_t *res) {
  slot_done(data, res, res->ok ? json_incref(res->output) : NULL);
}

/* An agent's final message as an answer: the JSON object it holds (also
 * inside a ``` fence, as models often write it), else {"proposal": it}. */
static json_t *agent_answer(json_t *out) {
  json_t *msg = json_object_get(out, "message"), *j;
  const char *text = json_string_value(msg), *open, *close;

  if (text == NULL)
    return json_pack("{s:O}", "proposal", msg != NULL ? msg : json_null());
  j = json_loads(text, JSON_DECODE_ANY, NULL);
  if (j == NULL && (open = strstr(text, "```")) != NULL) {
    open += 3;
    while (*open != '\0' && *open != '\n' && *open != '{')
      open++; /* a language tag */
    if ((close = strstr(open, "```")) != NULL)
      j = json_loadb(open, (size_t)(close - open), JSON_DECODE_ANY, NULL);
  }
  if (json_is_object(j))
    return j;
  json_decref(j);
  return json_pack("{s:O}", "proposal", msg);
}

static void on_agent(void *data, const ice__call_res_t *res) {
  json_t *answer = NULL;

  if (res->ok && (answer = agent_answer(res->output)) == NULL) {
    ice__call_res_t oom = {0, NULL, ICE__KIND_INTERNAL, "out of memory", -1};
    slot_done(data, &oom, NULL);
    return;
  }
  slot_done(data, res, answer);
}

/* ---- phases ---------------------------------------------------------------
 */

/* The object a call gets: {"task", "role", "round", "phase", "proposals",
 * [extra_key: extra], ...config_overrides}. New reference. */
static json_t *call_object(swarm_t *s, size_t member, json_t *task,
                           const char *extra_key, json_t *extra) {
  json_t *o =
      json_pack("{s:O,s:s,s:I,s:s,s:O}", "task", task, "role",
                s->c->members[member].role, "round", (json_int_t)s->round,
                "phase", s->phase, "proposals", s->proposals);

  if (o == NULL)
    return NULL;
  if ((extra_key != NULL && json_object_set(o, extra_key, extra) != 0) ||
      (s->overrides[member] != NULL &&
       json_object_update(o, s->overrides[member]) != 0)) {
    json_decref(o);
    return NULL;
  }
  return o;
}

/* Starts one call of slot i with the call object o (borrowed). 0, or -1
 * with the phase failed (the call never started). */
static int ask(swarm_t *s, size_t i, json_t *o) {
  slot_t *sl = &s->slots[i];
  const member_t *m = &s->c->members[sl->member];
  ice__err_t err;
  char *text;

  if (o == NULL) {
    round_fail(s, ICE__KIND_INTERNAL, "out of memory");
    return -1;
  }
  if (m->tool != NULL) {
    sl->call = ice__tool_call(s->t, m->tool, o, on_tool, sl);
    if (sl->call == NULL) {
      round_fail(s, ICE__KIND_INTERNAL, "out of memory");
      return -1;
    }
  } else {
    text = ice_json_format(o, 0);
    if (text == NULL) {
      round_fail(s, ICE__KIND_INTERNAL, "out of memory");
      return -1;
    }
    if (ice__agent_run(s->t, m->agent, text, MEMBER_MAX_ITERATIONS, on_agent,
                       sl, &sl->run, &err) != 0) {
      ice__free(text);
      round_fail(s, err.kind, "member '%s' failed in round %ld (phase %s): %s",
                 m->role, s->round, s->phase, err.msg);
      return -1;
    }
    ice__free(text);
  }
  s->pending++;
  return 0;
}

/* Starts a phase of n calls: members[i] gets tasks[i] (or the swarm's
 * task when tasks is NULL) and extra. Returns after starting them; the
 * last callback moves on. */
static void phase_start(swarm_t *s, const char *phase, const size_t *members,
                        size_t n, json_t *const *tasks, const char *extra_key,
                        json_t *extra) {
  slots_clear(s);
  s->phase = phase;
  s->slots = ice__calloc(n + 1, sizeof(*s->slots));
  if (s->slots == NULL) {
    round_fail(s, ICE__KIND_INTERNAL, "out of memory");
    finish_fail(s);
    return;
  }
  s->nslots = n;
  for (size_t i = 0; i < n; i++) {
    s->slots[i].s = s;
    s->slots[i].member = members[i];
  }
  for (size_t i = 0; i < n; i++) {
    json_t *o = call_object(s, members[i], tasks != NULL ? tasks[i] : s->task,
                            extra_key, extra);
    int rc = ask(s, i, o);
    json_decref(o);
    if (rc != 0)
      break;
  }
  if (s->pending == 0)
    phase_end(s); /* nothing started: the failure ends the attempt now */
}

/* Every member at once, in order. */
static void phase_all(swarm_t *s, const char *phase, const char *extra_key,
                      json_t *extra) {
  size_t *all = ice__calloc(s->c->n + 1, sizeof(*all));

  if (all == NULL) {
    round_fail(s, ICE__KIND_INTERNAL, "out of memory");
    finish_fail(s);
    return;
  }
  for (size_t i = 0; i < s->c->n; i++)
    all[i] = i;
  phase_start(s, phase, all, s->c->n, NULL, extra_key, extra);
  ice__free(all);
}

static void plan(swarm_t *s) {
  size_t leader = 0;

  phase_start(s, "plan", &leader, 1, NULL, NULL, NULL);
}

/* swarm.round {round, phase, ...fields} (fields taken; NULL when no one
 * listens). */
static void emit_round(swarm_t *s, json_t *fields) {
  json_t *ev = NULL;

  if (fields != NULL &&
      (ev = json_pack("{s:I}", "round", (json_int_t)s->round)) != NULL &&
      json_object_update(ev, fields) != 0) {
    json_decref(ev);
    ev = NULL;
  }
  json_decref(fields);
  ice__task_emit(s->t, ICE__EV_SWARM_ROUND, ev);
}

/* The proposals of the phase's answers as [{"role", "proposal"}], or NULL
 * with the phase failed (an answer without one). */
static json_t *collect_proposals(swarm_t *s) {
  json_t *list = json_array();

  for (size_t i = 0; list != NULL && i < s->nslots; i++) {
    json_t *p = json_object_get(s->slots[i].answer, "proposal");
    if (p == NULL) {
      bad_answer(s, i, "without a \"proposal\"");
      json_decref(list);
      return NULL;
    }
    if (json_array_append_new(list, json_pack("{s:s,s:O}", "role",
                                              role_of(s, i), "proposal", p)) !=
        0) {
      json_decref(list);
      list = NULL;
    }
  }
  if (list == NULL)
    round_fail(s, ICE__KIND_INTERNAL, "out of memory");
  return list;
}

static void consensus_end(swarm_t *s) {
  json_t *props = collect_proposals(s), *result, *out;
  size_t n = s->c->n, best = 0, best_count = 0;
  double support;
  int reached;

  if (props == NULL) {
    finish_fail(s);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    json_t *p = json_object_get(json_array_get(props, i), "proposal");
    size_t count = 0;
    for (size_t j = 0; j < n; j++)
      count += ice__json_equal(p, json_object_get(json_array_get(props, j),
                                                  "proposal")) != 0;
    if (count > best_count) { /* ties: the earlier member */
      best = i;
      best_count = count;
    }
  }
  support = (double)best_count / (double)n;
  reached = support >= s->c->threshold - 1e-12;
  result = json_object_get(json_array_get(props, best), "proposal");
  emit_round(s, ice__task_wants(s->t, ICE__EV_SWARM_ROUND)
                    ? json_pack("{s:s,s:O,s:b,s:O,s:f}", "phase", s->phase,
                                "proposals", props, "consensus", reached,
                                "result", result, "support", support)
                    : NULL);
  if (reached || s->round >= s->c->max_rounds) {
    out = json_pack("{s:s,s:I,s:b,s:O,s:f,s:o}", "strategy", "consensus",
                    "rounds", (json_int_t)s->round, "consensus", reached,
                    "result", result, "support", support, "proposals", props);
    finish_ok(s, out);
    return;
  }
  json_decref(s->proposals);
  s->proposals = props;
  s->round++;
  phase_all(s, "propose", NULL, NULL);
}

/* The leader's plan: checks it and starts the work phase. */
static void plan_end(swarm_t *s) {
  json_t *list = json_object_get(s->slots[0].answer, "subtasks"), *e;
  size_t n = json_array_size(list), i, *members;
  json_t **tasks;

  if (!json_is_array(list)) {
    bad_answer(s, 0, "without a \"subtasks\" list");
    finish_fail(s);
    return;
  }
  members = ice__calloc(n + 1, sizeof(*members));
  tasks = ice__calloc(n + 1, sizeof(*tasks));
  json_decref(s->subtasks);
  s->subtasks = json_array();
  if (members == NULL || tasks == NULL || s->subtasks == NULL) {
    ice__free(members);
    ice__free(tasks);
    round_fail(s, ICE__KIND_INTERNAL, "out of memory");
    finish_fail(s);
    return;
  }
  json_array_foreach(list, i, e) {
    const char *role = json_string_value(json_object_get(e, "role"));
    json_t *task = json_object_get(e, "task");
    size_t m;
    for (m = 0; role != NULL && m < s->c->n; m++) {
      if (strcmp(s->c->members[m].role, role) == 0)
        break;
    }
    if (role == NULL || m == s->c->n) {
      char what[160];
      if (role == NULL)
        snprintf(what, sizeof(what), "subtasks[%zu] without a \"role\"", i);
      else
        snprintf(what, sizeof(what),
                 "subtasks[%zu] for '%.60s', which is not a member", i, role);
      bad_answer(s, 0, what);
      ice__free(members);
      ice__free(tasks);
      finish_fail(s);
      return;
    }
    members[i] = m;
    tasks[i] = task != NULL ? task : s->task;
    if (json_array_append_new(s->subtasks, json_pack("{s:s,s:O}", "role", role,
                                                     "task", tasks[i])) != 0) {
      ice__free(members);
      ice__free(tasks);
      round_fail(s, ICE__KIND_INTERNAL, "out of memory");
      finish_fail(s);
      return;
    }
  }
  /* The plan is kept in s->subtasks, which holds tasks[] alive. */
  for (i = 0; i < n; i++)
    tasks[i] = json_object_get(json_array_get(s->subtasks, i), "task");
  if (n == 0) {
    json_t *none = json_array();
    json_decref(s->results);
    s->results = none;
    ice__free(members);
    ice__free(tasks);
    if (none == NULL) {
      round_fail(s, ICE__KIND_INTERNAL, "out of memory");
      finish_fail(s);
      return;
    }
    phase_start(s, "aggregate", (size_t[]){0}, 1, NULL, "results", none);
    return;
  }
  phase_start(s, "work", members, n, tasks, NULL, NULL);
  ice__free(members);
  ice__free(tasks);
}

static void work_end(swarm_t *s) {
  json_t *results = collect_proposals(s);

  if (results == NULL) {
    finish_fail(s);
    return;
  }
  json_decref(s->results);
  s->results = results;
  phase_start(s, "aggregate", (size_t[]){0}, 1, NULL, "results", results);
}

static void aggregate_end(swarm_t *s) {
  json_t *answer = s->slots[0].answer, *proposal, *assignments, *out, *next, *x;
  int done;
  size_t i;

  proposal = json_object_get(answer, "proposal");
  if (proposal == NULL) {
    bad_answer(s, 0, "without a \"proposal\"");
    finish_fail(s);
    return;
  }
  x = json_object_get(answer, "done");
  done = x != NULL && ice__json_truthy(x);
  /* Each subtask with the proposal it got. */
  assignments = json_array();
  for (i = 0; assignments != NULL && i < json_array_size(s->subtasks); i++) {
    json_t *a = json_copy(json_array_get(s->subtasks, i));
    if (a == NULL ||
        json_object_set(
            a, "proposal",
            json_object_get(json_array_get(s->results, i), "proposal")) != 0 ||
        json_array_append_new(assignments, a) != 0) {
      json_decref(assignments);
      assignments = NULL;
    }
  }
  if (assignments == NULL) {
    round_fail(s, ICE__KIND_INTERNAL, "out of memory");
    finish_fail(s);
    return;
  }
  emit_round(s, ice__task_wants(s->t, ICE__EV_SWARM_ROUND)
                    ? json_pack("{s:s,s:O,s:O,s:b}", "phase", s->phase,
                                "assignments", assignments, "proposal",
                                proposal, "done", done)
                    : NULL);
  if (done || s->round >= s->c->max_rounds) {
    out = json_pack("{s:s,s:I,s:O,s:o}", "strategy", "hierarchical", "rounds",
                    (json_int_t)s->round, "result", proposal, "assignments",
                    assignments);
    finish_ok(s, out);
    return;
  }
  json_decref(assignments);
  /* The next round sees this one's work and the leader's aggregate. */
  next = json_copy(s->results);
  if (next == NULL ||
      json_array_append_new(next, json_pack("{s:s,s:O}", "role",
                                            s->c->members[0].role, "proposal",
                                            proposal)) != 0) {
    json_decref(next);
    round_fail(s, ICE__KIND_INTERNAL, "out of memory");
    finish_fail(s);
    return;
  }
  json_decref(s->proposals);
  s->proposals = next;
  s->round++;
  plan(s);
}

static void bid_end(swarm_t *s) {
  size_t winner = 0;
  double low = 0;

  json_decref(s->bids);
  s->bids = json_object();
  if (s->bids == NULL) {
    round_fail(s, ICE__KIND_INTERNAL, "out of memory");
    finish_fail(s);
    return;
  }
  for (size_t i = 0; i < s->nslots; i++) {
    json_t *b = json_object_get(s->slots[i].answer, "bid");
    if (!json_is_number(b)) {
      bad_answer(s, i, "without a number as \"bid\"");
      finish_fail(s);
      return;
    }
    if (json_object_set(s->bids, role_of(s, i), b) != 0) {
      round_fail(s, ICE__KIND_INTERNAL, "out of memory");
      finish_fail(s);
      return;
    }
    if (i == 0 || json_number_value(b) < low) { /* ties: the earlier */
      winner = i;
      low = json_number_value(b);
    }
  }
  winner = s->slots[winner].member;
  phase_start(s, "execute", &winner, 1, NULL, "bids", s->bids);
}

static void execute_end(swarm_t *s) {
  json_t *proposal = json_object_get(s->slots[0].answer, "proposal"), *out;
  const char *winner = role_of(s, 0);

  if (proposal == NULL) {
    bad_answer(s, 0, "without a \"proposal\"");
    finish_fail(s);
    return;
  }
  emit_round(s, ice__task_wants(s->t, ICE__EV_SWARM_ROUND)
                    ? json_pack("{s:s,s:O,s:s,s:O}", "phase", s->phase, "bids",
                                s->bids, "winner", winner, "result", proposal)
                    : NULL);
  out = json_pack("{s:s,s:s,s:O,s:O}", "strategy", "marketplace", "winner",
                  winner, "bids", s->bids, "result", proposal);
  finish_ok(s, out);
}

/* Every call of the phase reported: fail, or move on. */
static void phase_end(swarm_t *s) {
  const char *p = s->phase;

  if (s->failed) {
    finish_fail(s);
    return;
  }
  if (strcmp(p, "propose") == 0)
    consensus_end(s);
  else if (strcmp(p, "plan") == 0)
    plan_end(s);
  else if (strcmp(p, "work") == 0)
    work_end(s);
  else if (strcmp(p, "aggregate") == 0)
    aggregate_end(s);
  else if (strcmp(p, "bid") == 0)
    bid_end(s);
  else
    execute_end(s);
}

/* ---- the executor ----------------------------------------------------------
 */

static void swarm_start(ice_task_t *t) {
  const swarm_conf_t *c = ice_task_compiled(t);
  const ice__node_t *n = ice__task_node(t);
  swarm_t *s;
  ice__err_t err;

  if (c == NULL || c->n < 2) {
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "swarm not compiled");
    return;
  }
  s = ice__calloc(1, sizeof(*s));
  if (s == NULL ||
      (s->overrides = ice__calloc(c->n, sizeof(json_t *))) == NULL ||
      (s->proposals = json_array()) == NULL) {
    if (s != NULL)
      ice__free(s->overrides);
    ice__free(s);
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    return;
  }
  s->t = t;
  s->c = c;
  s->round = 1;
  if (c->task == NULL)
    s->task = ice_task_context(t);
  else if (ice__tmpl_render_or_share(c->task_tmpl, c->task, ice__task_lookup, t,
                                     &s->task, &err) != 0) {
    swarm_free(s);
    ice__task_fail_kind(t, err.kind == 0 ? ICE__KIND_TEMPLATE : err.kind,
                        "task: %s", err.msg);
    return;
  }
  for (size_t i = 0; i < c->n; i++) {
    const member_t *m = &c->members[i];
    if (m->overrides != NULL &&
        ice__tmpl_render_or_share(m->overrides_tmpl, m->overrides,
                                  ice__task_lookup, t, &s->overrides[i],
                                  &err) != 0) {
      swarm_free(s);
      ice__task_fail_kind(t, err.kind == 0 ? ICE__KIND_TEMPLATE : err.kind,
                          "agents[%zu].config_overrides: %s", i, err.msg);
      return;
    }
  }
  if (s->task == NULL) {
    swarm_free(s);
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    return;
  }
  if (n->in_schema != NULL && ice__schema_check(n->in_schema, s->task, &err)) {
    swarm_free(s);
    ice__task_fail_kind(t, ICE__KIND_INPUT_VALIDATION, "%s", err.msg);
    return;
  }
  ice_task_set_data(t, s);
  if (c->strategy == STRAT_CONSENSUS)
    phase_all(s, "propose", NULL, NULL);
  else if (c->strategy == STRAT_HIERARCHICAL)
    plan(s);
  else
    phase_all(s, "bid", NULL, NULL);
}

static void swarm_cancel(ice_task_t *t) {
  swarm_t *s = ice_task_data(t);

  if (s == NULL || s->failed)
    return;
  round_fail(s, ICE__KIND_CANCELLED, "swarm stopped in round %ld (phase %s)",
             s->round, s->phase);
}

const ice_executor_t ice__exec_swarm = {
    .abi = ICE_EXECUTOR_ABI,
    .type = "swarm",
    .fields = swarm_fields,
    .start = swarm_start,
    .cancel = swarm_cancel,
    /* SPEC §2.1: no default; members' own calls are bounded only by the
     * node's timeout_seconds when one is given. */
    .default_timeout = 0,
    .compile = compile,
    .free_compiled = conf_free,
};
