/* Per-run state. A run executes frames: the top-level frame runs the
 * workflow's top-level nodes; control-flow nodes open child frames for
 * their nested lists (a loop iteration, a branch, a chosen path). Every
 * frame is driven by the same scheduler (sched.c), so nested nodes get
 * retries, timeouts, schemas and events like any other. */
#ifndef ICE_RUN_H
#define ICE_RUN_H

#include "engine.h"

typedef enum {
  ICE__ST_PENDING,
  ICE__ST_READY,
  ICE__ST_RUNNING,
  ICE__ST_COMPLETED,
  ICE__ST_FAILED,
  ICE__ST_SKIPPED,
  ICE__ST_CANCELLED
} ice__state_t;

#define ICE__TERMINAL(s) ((s) >= ICE__ST_COMPLETED)

typedef enum {
  ICE__SKIP_NONE,
  ICE__SKIP_UPSTREAM_FAILED,
  ICE__SKIP_UPSTREAM_SKIPPED,
  ICE__SKIP_RUN_IF,
  ICE__SKIP_BRANCH /* the untaken path of a condition */
} ice__skip_t;

typedef enum {
  ICE__CANCEL_NONE,
  ICE__CANCEL_TIMEOUT, /* the attempt's timeout fired */
  ICE__CANCEL_STOP     /* the run, a halt or a winning branch stopped it */
} ice__cancel_t;

typedef struct ice__frame_s ice__frame_t;

/* One node of one frame. */
typedef struct {
  uint8_t state;
  uint8_t skip;
  uint32_t pending; /* dependencies not yet terminal */
  uint32_t attempts;
  json_t *output; /* completed: the output (owned reference) */
  int err_kind;
  char *err_msg;
  double t_start_ms;
  double duration_ms;
  ice_task_t *task; /* while running */
  uint32_t iter;    /* recursive nodes: iterations run so far */
  json_t *carry;    /* recursive nodes: the context carried across them */
  uint8_t rerun;    /* ran again for a recursive iteration */
} ice__slot_t;

typedef void (*ice__frame_done_cb)(ice__frame_t *f);

struct ice__frame_s {
  ice_run_t *run;
  const ice__scope_t *scope;
  ice_task_t *parent; /* control-flow task that opened it; NULL at top */
  json_t *extras;     /* names added to the context (item, index...) */
  long index;         /* loop index, else -1 */
  uint32_t n;
  uint32_t remaining; /* nodes not yet terminal */
  uint32_t running;
  uint32_t limit; /* most nodes running at once; 0 = no limit */
  int stopping;   /* halt/cancel: start nothing more */
  ice__slot_t *slots;
  uint32_t *heap; /* ready local indices, by (depth, position) */
  uint32_t nheap;
  uint32_t *work; /* nodes whose dependents must be released */
  uint32_t nwork;
  int in_ready_list;
  ice__frame_t *next_ready, *prev_ready; /* the run's ready list */
  ice__frame_done_cb on_done;
  void *data; /* for on_done */
};

struct ice_task_s {
  ice_run_t *run;
  ice__frame_t *frame;
  const ice__node_t *node;
  uint32_t local;
  int attempt;
  int done; /* this attempt completed */
  int ok;
  int restart;    /* queued to start its next attempt */
  int in_exec;    /* inside executor start() */
  int in_backoff; /* waiting for its next attempt */
  int abandoned;  /* its executor could not be stopped; the node moved on */
  ice__cancel_t cancel;
  json_t *output;
  int err_kind;
  char *err_msg;
  json_t *mapped; /* input_mappings resolved, or NULL */
  json_t *input;  /* the attempt's resolved input (tool args), or NULL */
  void *data;     /* executor's */
  void *xstate;   /* built-in executor state */
  uv_timer_t timer;
  int timer_init;
  int timer_armed;
  ice_task_t *next_done;
};

struct ice_run_s {
  ice_engine_t *engine;
  ice_workflow_t *wf;
  char id[40];
  json_t *inputs;
  json_t *output; /* top-level outputs by id */
  json_t *result;
  json_t *flaky; /* built-in `flaky` attempt counters */
  ice__frame_t *top;
  ice_task_t *dq_head, *dq_tail; /* completed attempts to process */
  ice__frame_t *ready_head;      /* frames that may start nodes, FIFO */
  ice__frame_t *ready_tail;
  uv_idle_t kick;
  int kick_init;
  int in_drain;
  int started;
  int finished;
  int cancelled;
  int halted;
  int free_requested;
  int live_tasks; /* tasks not yet freed (timers closing) */
  int closing;    /* the kick handle is closing */
  int depth;      /* 0 for a run started by the caller, +1 per sub-workflow */
  /* A sub-workflow's run: the run and node that started it, named in its
   * workflow.* events so that a trace can be stitched together. */
  char parent_run_id[40];
  const char *parent_node_id;
  uint64_t seq;
  double t0_ms;
  double duration_ms;
  uint64_t retries;
  ice_run_done_cb done;
  void *done_data;
};

/* The name of a skip reason, as events and the result show it. */
const char *ice__skip_name(int skip);

/* ---- sched.c ------------------------------------------------------------ */

/* Opens a frame over scope s (of the run's workflow). parent is the task
 * that owns it (NULL for the top frame). on_done fires once, from the
 * scheduler, when every node of the frame is terminal. */
int ice__frame_new(ice_run_t *r, uint32_t scope, ice_task_t *parent,
                   json_t *extras, long index, uint32_t limit,
                   ice__frame_done_cb on_done, void *data, ice__frame_t **out);
void ice__frame_free(ice__frame_t *f);
/* Makes the frame's root nodes ready; work starts on the next drain. */
void ice__frame_start(ice__frame_t *f);
/* Stops a frame: nothing more starts, running nodes are cancelled. */
void ice__frame_stop(ice__frame_t *f);
/* Cancels node k of f: a pending or ready node becomes cancelled at once
 * (its dependents follow their trigger rules), a running one is stopped. */
int ice__frame_cancel_node(ice__frame_t *f, uint32_t k);
/* Processes completions and starts ready nodes until there is nothing left
 * to do now. Never re-enters itself. */
void ice__sched_drain(ice_run_t *r);
/* Asks the loop to drain soon (from callbacks outside the scheduler). */
void ice__sched_kick(ice_run_t *r);

/* Gives up on an attempt whose executor cannot be interrupted (no cancel
 * hook): the node goes on at once with a fresh task, as if the attempt had
 * been cancelled; the old task is freed, unseen, when its executor
 * completes it. Accessors on an abandoned task return nothing. */
void ice__task_abandon(ice_task_t *t);

/* Completes with any JSON value as the output (built-in executors whose
 * output is not an object, such as loop's list). Takes output. */
void ice__task_done_raw(ice_task_t *t, json_t *output);

/* Completes a recursive node's attempt without ending the node: `output`
 * (taken) becomes what its body sees of it, and the body runs again. */
void ice__task_iterate(ice_task_t *t, json_t *output);

/* ---- task.c ------------------------------------------------------------- */

/* Context name resolution for a task (SPEC §3.1). */
json_t *ice__task_lookup(void *task, const char *name, size_t len);
/* Resolves input_mappings into t->mapped; fills err on failure. */
int ice__task_map_inputs(ice_task_t *t, ice__err_t *err);
/* Fails the attempt with an internal kind. */
void ice__task_fail_kind(ice_task_t *t, int kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Follows a dotted path ("a.b.0") into v; "" is v. Borrowed or NULL. */
json_t *ice__json_follow(json_t *v, const char *path);

/* ---- run.c -------------------------------------------------------------- */

/* Emits an event of `type` for the run; `fields` (taken) is merged into the
 * event object. When t is given, node_id (and parent_id, index for nested
 * nodes) are added. Builds nothing when no one listens. */
void ice__emit_now(ice_run_t *r, const char *type, ice_task_t *t,
                   const ice__node_t *n, ice__frame_t *f, json_t *fields);
/* The form to call: the fields expression is not even evaluated when no
 * subscriber wants the type (a hot path emits several events per node),
 * but the run's seq still advances so that numbering has no gaps. */
#define ICE__EMIT(r, type, t, n, f, fields)                                    \
  do {                                                                         \
    if (ice__bus_wants((r)->engine, (type)))                                   \
      ice__emit_now((r), (type), (t), (n), (f), (fields));                     \
    else                                                                       \
      (r)->seq++;                                                              \
  } while (0)
/* Called by the scheduler when the top frame is done. */
void ice__run_finish(ice_run_t *r);
/* The run-scoped counter behind the built-in `flaky` tool. */
json_int_t ice__run_flaky_attempt(ice_run_t *r, const char *key);

#endif
