/* Per-run state, private to the core (sched.c, commit.c, run.c, task.c,
 * events.c, pool.c). A run executes frames: the top frame runs the
 * workflow's top-level nodes; control-flow nodes open child frames for
 * their nested lists (a loop iteration, a branch, a chosen path). Every
 * frame is driven by the same scheduler (sched.c), so nested nodes get
 * retries, timeouts, schemas and events like any other. Executors never
 * see these structures: they use <ice.h> and control.h. */
#ifndef ICE_CORE_H
#define ICE_CORE_H

#include "control.h"
#include "engine.h"
#include "states.h"

typedef enum {
  ICE__CANCEL_NONE,
  ICE__CANCEL_TIMEOUT, /* the attempt's timeout fired */
  ICE__CANCEL_STOP,    /* the run, a halt or a winning branch stopped it */
  ICE__CANCEL_SUSPEND, /* the run stops as waiting; the node stays waiting */
  ICE__CANCEL_FINISH   /* background work: the rest of its frame is done */
} ice__cancel_t;

typedef struct ice__pool_s ice__pool_t;

/* One node instance of one frame: a node, in one loop iteration, branch or
 * recursive iteration. */
typedef struct {
  uint8_t state; /* ice__state_t */
  uint8_t skip;  /* ice__skip_t */
  uint8_t rerun; /* ran again for a recursive iteration */
  uint8_t restored;
  uint32_t pending; /* dependencies not yet terminal */
  uint32_t attempts;
  uint32_t gen; /* times a recursive iteration reset it: instance gen+1 */
  int err_kind;
  /* Entries of carry.history already recorded (32 bits: with err_kind,
   * no padding; a slot is 88 bytes, one per node instance). */
  uint32_t hist_committed;
  json_t *output; /* completed: the output (owned reference) */
  char *err_msg;
  double t_start_ms;
  double duration_ms;
  ice_task_t *task;  /* while running or waiting */
  json_t *carry;     /* recursive nodes: the context carried across them */
  json_int_t tokens; /* usage of every attempt, nested nodes included */
  double cost_usd;
} ice__slot_t;

struct ice__frame_s {
  ice_run_t *run;
  const ice__scope_t *scope;
  ice_task_t *parent; /* control-flow task that opened it; NULL at top */
  json_t *extras;     /* names added to the context (item, index...) */
  long index;         /* loop index, else -1 (events show it) */
  long branch;        /* parallel branch number, else -1 */
  uint32_t n;
  uint32_t remaining;  /* nodes not yet terminal */
  uint32_t running;    /* nodes running or waiting */
  uint32_t background; /* of them, attempts marked background */
  uint32_t limit;      /* most nodes running at once; 0 = no limit */
  int stopping;        /* halt/cancel: start nothing more */
  int done_queued;     /* on the run's queue of finished frames */
  char *key;           /* instance-key prefix, built on first use */
  ice__slot_t *slots;
  uint64_t *heap; /* ready local indices, by (depth, position): keys */
  uint32_t nheap;
  uint32_t *work; /* nodes whose dependents must be released */
  uint32_t nwork;
  int in_ready_list;
  ice__frame_t *next_ready, *prev_ready; /* the run's ready list */
  ice__frame_t *next_done;               /* the run's finished frames */
  ice__frame_cb on_done;
  void *data; /* for on_done */
};

struct ice_task_s {
  ice_run_t *run;
  ice__frame_t *frame;
  const ice__node_t *node;
  uint32_t local;
  int attempt;
  int done;        /* this attempt completed */
  int ok;          /* 1 done, 2 iterated (recursive), 0 failed */
  int restart;     /* queued to start its next attempt */
  int in_exec;     /* inside executor start() */
  int in_backoff;  /* waiting for its next attempt */
  int abandoned;   /* its executor could not be stopped; the node moved on */
  int waiting;     /* parked by ice_task_wait */
  int placed;      /* holds one of its frame's max_parallel places */
  int cache_hit;   /* its output came from the cache */
  char *cache_key; /* use_cache: the key its output is kept under */
  int background;  /* does not hold its frame open */
  int in_pool;     /* holds a slot of node->pool */
  int pool_wait;   /* queued for a slot of node->pool */
  ice__cancel_t cancel;
  json_t *output;
  int err_kind;
  char *err_msg;
  json_t *mapped;     /* input_mappings resolved, or NULL */
  json_t *input;      /* the attempt's resolved input (tool args), or NULL */
  json_t *saved;      /* restored waiting state, or NULL */
  char *key;          /* ice_task_key, built on first use */
  double wake_at_ms;  /* parked: when the executor wakes by itself, or 0 */
  double retry_at_ms; /* in back-off: when the next attempt is due */
  ice_task_t *next_park, *prev_park; /* the run's parked tasks */
  void *data;                        /* executor's */
  void *xstate;                      /* built-in executor state */
  uv_timer_t timer;
  int timer_init;
  int timer_armed;
  ice_task_t *next_done;    /* the run's done queue */
  ice_task_t *next_pool;    /* a pool's wait queue */
  uint32_t pool1;           /* its pool: the node's, or a call's (call.c) */
  double retry_after_ms;    /* the callee's delay before a retry, or < 0 */
  struct ice__call_s *call; /* a call's sub-task (call.h), else NULL */
};

/* What a run does when nothing more can happen now. */
typedef enum {
  ICE__STOP_NONE,
  ICE__STOP_PAUSE,  /* paused: running nodes finish, nothing new starts */
  ICE__STOP_SUSPEND /* waiting: only parked nodes are left */
} ice__stop_t;

struct ice_run_s {
  ice_engine_t *engine;
  ice_workflow_t *wf;
  char *id;
  json_t *inputs;
  /* The result's `output`, id -> output of the completed top-level
   * nodes, without a jansson object (a pair and a copied key per node):
   * out_order holds top-level local indices in the order they joined it,
   * out_pos[k] the position + 1 of k's live entry, 0 when k is not in it.
   * A node that leaves (reset by a recursive iteration) and joins again
   * goes to the end, as with json_object_del and json_object_set; its old
   * entry stays, dead, until the array is compacted. */
  uint32_t *out_order;
  uint32_t *out_pos;
  uint32_t nout, out_cap, out_live;
  json_t *result;
  json_t *tallies; /* run-scoped counters (the `flaky` tool) */
  ice__frame_t *top;
  ice_task_t *dq_head, *dq_tail;   /* completed attempts to process */
  ice__frame_t *fq_head, *fq_tail; /* finished frames to report */
  ice__frame_t *ready_head;        /* frames that may start nodes, FIFO */
  ice__frame_t *ready_tail;
  uv_idle_t kick;
  int kick_init;
  int in_drain;
  int started;
  int finished; /* the top frame is done, or the run stopped */
  int cancelled;
  int aborted; /* a monitor aborted it: status `aborted` */
  int halted;
  int halt_pending; /* the commit hook failed: stop the run from the drain */
  ice__stop_t stop;
  int free_requested;
  int live_tasks;   /* tasks not yet freed (timers closing) */
  int closing;      /* the kick handle is closing */
  int depth;        /* 0 for a run started by the caller, +1 per sub-workflow */
  uint32_t waiting; /* tasks parked, every frame */
  uint32_t active;  /* tasks running, waiting or in back-off, every frame */
  uint32_t idle;    /* of them, parked, queued for a pool, background or
                       control flow (see task_idle in sched.c) */
  ice_task_t *parked;
  int muted; /* stopping as paused or waiting: commit nothing more */
  double suspend_after_ms; /* < 0: never stop as waiting */
  /* A sub-workflow's run: the run and node that started it, named in its
   * workflow.* events so that a trace can be stitched together. */
  ice_run_t *parent;
  char *parent_run_id;
  const char *parent_node_id;
  uint64_t seq;
  double t0_ms;
  double duration_ms;
  uint64_t retries;
  json_int_t tokens;
  double cost_usd;
  long long llm_calls; /* LLM requests sent (llm.c; the budgets) */
  /* The commit hook (SPEC §9's store writes here) and its first error. */
  ice_commit_cb commit;
  void *commit_data;
  char *commit_error;
  /* The first fault that stops the run from the inside, a static string:
   * an allocation failed where no caller could be told (an output or an
   * event would be lost). The run halts and fails, saying so. */
  const char *fault;
  json_t *spare_result; /* the result when building it fails (ENOMEM) */
  /* run_finish ran (done fired); the result may still be unbuilt when
   * defer_result (ice_run_defer_result): ice_run_result builds it on
   * first use, ice_run_write_result writes it without building it. */
  int ended;
  int defer_result;
  /* fault and commit_error as they were when the run ended: what its
   * result says, however late it is built (an event lost after the end
   * sets fault). */
  const char *end_fault;
  const char *end_commit_error;
  json_t *answers; /* node id -> answer given ahead, or NULL */
  /* The memo of use_cache nodes' outputs (ice_run_opts_t.cache_*). */
  json_t *(*cache_get)(void *data, const char *key, double max_age_ms);
  int (*cache_put)(void *data, const char *key, json_t *output);
  void *cache_data;
  /* A restored run: node instance key -> its last committed record. */
  json_t *restore;
  json_t *restore_all; /* every run's records, for child runs */
  /* Pools, parallel to the workflow's pool names (pool.c). */
  ice__pool_t **pools;
  uint32_t npools;
  ice_run_done_cb done;
  void *done_data;
  /* run.c's steps once the drain leaves the run finished, and once the
   * last task of a run whose free was deferred is gone: callbacks, so
   * that the scheduler never calls up into run.c. */
  void (*on_finish)(ice_run_t *r);
  void (*release)(ice_run_t *r);
};

/* ---- run.c: the run's output ------------------------------------------ */

/* Top-level node k (its slot's output) joins the run's output, or keeps
 * its place when it is in it: 0, or ICE_ENOMEM. */
int ice__run_output_add(ice_run_t *r, uint32_t k);
/* k leaves the run's output. */
void ice__run_output_del(ice_run_t *r, uint32_t k);
/* The run's output as a new object; NULL on ENOMEM. */
json_t *ice__run_outputs(const ice_run_t *r);

/* ---- sched.c ------------------------------------------------------------ */

/* Opens a frame over scope s (of the run's workflow). parent is the task
 * that owns it (NULL for the top frame). on_done is queued once, when
 * every node of the frame is terminal; the drain reports it. */
int ice__frame_new(ice_run_t *r, uint32_t scope, ice_task_t *parent,
                   json_t *extras, long index, uint32_t limit,
                   ice__frame_cb on_done, void *data, ice__frame_t **out);
void ice__frame_free(ice__frame_t *f);
/* Makes the frame's root nodes ready; work starts on the next drain. */
void ice__frame_start(ice__frame_t *f);
/* Cancels node k of f: a pending or ready node becomes cancelled at once
 * (its dependents follow their trigger rules), a running one is stopped. */
int ice__frame_cancel_node(ice__frame_t *f, uint32_t k);
/* Processes completions and starts ready nodes for at most one time slice.
 * Returns 1 when there is more to do now (the caller kicks again). */
int ice__sched_drain(ice_run_t *r);
/* Asks the loop to drain soon (from callbacks outside the scheduler). */
void ice__sched_kick(ice_run_t *r);
/* Records a fault (static text) and halts the run: it ends `failed`, the
 * fault among its errors (run.c). */
void ice__run_fault(ice_run_t *r, const char *what);
#define ICE__FAULT_INTERNAL "the run stopped after an internal error"

/* Takes a parked task off the run's list. */
void ice__sched_unpark(ice_task_t *t);

/* ---- commit.c: the one place a node instance changes state --------------
 *
 * Every change (ice__change_t) of node k of frame f goes through
 * ice__commit: it updates the slot, emits the change's event, and calls
 * the run's commit hook, before the caller releases any dependent. t is
 * the attempt (NULL for nodes that never started); fields (taken) are
 * extra event fields. Returns 0, or -1 when the hook failed (the run then
 * stops with the hook's message). */
int ice__commit(ice__frame_t *f, uint32_t k, ice__change_t ch, ice_task_t *t,
                json_t *fields);
/* The stable key of node k's current instance in f (SPEC §9): its id,
 * preceded by its enclosing nodes' keys and loop indexes, and followed by
 * @N for the N-th iteration of a recursive loop (N > 1). `a`,
 * `loop[3]/e`, `outer[0]/inner[2]/e`, `step@2`. malloc'd. */
char *ice__instance_key(ice__frame_t *f, uint32_t k);
/* The record a restored run committed for this instance, or NULL. */
json_t *ice__restored(ice__frame_t *f, uint32_t k);

/* ---- events.c ----------------------------------------------------------- */

/* Emits an event for the run; fields (taken) are merged into it. When f is
 * given, node_id (node k), parent_id and index are added. */
void ice__emit(ice_run_t *r, ice__event_t type, const ice__frame_t *f,
               uint32_t k, json_t *fields);
/* 1 when a subscriber matches the type (bus.c). */
int ice__bus_wants_type(const ice_engine_t *e, int type);
/* The form to call: the fields expression is not even evaluated when no
 * subscriber wants the type (a hot path emits several events per node),
 * but the run's seq still advances so that numbering has no gaps. */
#define ICE__EMIT(r, type, f, k, fields)                                       \
  do {                                                                         \
    if (ice__bus_wants_type((r)->engine, (type)))                              \
      ice__emit((r), (type), (f), (k), (fields));                              \
    else                                                                       \
      (r)->seq++;                                                              \
  } while (0)
/* Adds parent_run_id and parent_node_id for a child run's workflow.*
 * events. */
json_t *ice__with_parent(const ice_run_t *r, json_t *fields);

/* ---- pool.c ------------------------------------------------------------- */

/* Creates the run's pools (a child run shares its parent's by name). */
int ice__pools_open(ice_run_t *r);
void ice__pools_close(ice_run_t *r);
/* Takes a slot of t's pool for its attempt (1: t may start now), or queues
 * t (0). Nodes without a pool always may. */
int ice__pool_acquire(ice_task_t *t);
/* Gives t's slot back, or takes t off its pool's queue. Returns the queued
 * task that now holds the slot (the caller starts it), or NULL. */
ice_task_t *ice__pool_release(ice_task_t *t);

/* ---- task.c ------------------------------------------------------------- */

/* 1 when t is not working now: parked, queued for a pool slot, background,
 * or a control-flow node whose children work. The run counts them
 * (run->idle) to know when it can go no further. */
int ice__task_idle(const ice_task_t *t);
/* Sets one of t's state flags (waiting, pool_wait, background), keeping
 * that count right. */
void ice__task_set_flag(ice_task_t *t, int *flag, int value);
/* Resolves input_mappings into t->mapped; fills err on failure. */
int ice__task_map_inputs(ice_task_t *t, ice__err_t *err);

/* ---- call.c ------------------------------------------------------------- */

/* The drain's step for a call's sub-task: starts it once it holds its
 * pool slot, or hands its outcome to the callback and frees it. */
void ice__call_process(ice_task_t *t);
/* A call's cancel request (timeout or stop of the call). */
void ice__call_request_cancel(ice_task_t *t);

/* ---- sched.c, for call.c ------------------------------------------------- */

/* Queues t for the drain. */
void ice__sched_push_done(ice_task_t *t);
/* Frees a task that no frame holds. */
void ice__task_free(ice_task_t *t);

/* ---- run.c -------------------------------------------------------------- */

/* Called by the scheduler once the top frame is done or the run stopped. */
void ice__run_finish(ice_run_t *r);

#endif
