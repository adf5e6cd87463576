/* ice: a workflow execution engine for LLM and agent applications.
 *
 * The one public header. Values that flow between nodes are jansson json_t
 * values: refcounted and treated as immutable once produced, so the engine
 * shares them instead of copying. Ownership is stated on every call:
 * "borrowed" (do not decref), "new reference" (you decref) or "takes" (the
 * callee owns the reference you pass).
 *
 * Threading: one loop thread owns an engine and everything under it. No
 * call is thread-safe unless its comment says so.
 *
 * Errors: calls that can fail return 0 or a negative ICE_E* code. A node
 * that fails is data, not an API error: read it from ice_run_result(). */
#ifndef ICE_H
#define ICE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(ICE_BUILDING_SHARED)
#define ICE_EXTERN __attribute__((visibility("default")))
#else
#define ICE_EXTERN
#endif

#define ICE_VERSION_MAJOR 0
#define ICE_VERSION_MINOR 1
#define ICE_VERSION_PATCH 0
#define ICE_VERSION_STRING "0.1.0"

/* Error codes: append-only. */
#define ICE_ERRNO_MAP(XX)                                                      \
  XX(ENOMEM, -12, "out of memory")                                             \
  XX(EINVAL, -22, "invalid argument")                                          \
  XX(ENOENT, -2, "no such file or directory")                                  \
  XX(EEXIST, -17, "already exists")                                            \
  XX(EBUSY, -16, "resource busy")                                              \
  XX(EIO, -5, "input/output error")                                            \
  XX(ECANCELED, -125, "operation cancelled")                                   \
  XX(EWORKFLOW, -4001, "invalid workflow")                                     \
  XX(EINPUT, -4002, "run inputs do not match the input schema")                \
  XX(EABI, -4003, "executor built for another ABI version")

typedef enum {
  ICE_OK = 0,
#define XX(name, val, msg) ICE_##name = (val),
  ICE_ERRNO_MAP(XX)
#undef XX
} ice_errno_t;

/* A readable message for an ICE_E* code (static string). */
ICE_EXTERN const char *ice_strerror(int err);

typedef struct ice_engine_s ice_engine_t;
typedef struct ice_workflow_s ice_workflow_t;
typedef struct ice_run_s ice_run_t;
typedef struct ice_task_s ice_task_t;
typedef struct ice_sub_s ice_sub_t;

/* ---- Diagnostics -------------------------------------------------------- */

/* The severity of a diagnostic. A load that finds only warnings succeeds
 * and leaves them in diags (SPEC §1.1: fields ice accepts but does not act
 * on); any error fails it. */
enum { ICE_DIAG_ERROR = 0, ICE_DIAG_WARNING = 1 };

/* One problem found while loading or validating: `file:line:col: error:
 * message` (or `warning:`). line and col are 1-based, 0 when unknown.
 * severity is ICE_DIAG_ERROR or ICE_DIAG_WARNING; it is the last member so
 * that `{file, line, col, message}` initialisers still make an error. */
typedef struct {
  char *file;
  int line;
  int col;
  char *message;
  int severity;
} ice_diag_t;

typedef struct {
  ice_diag_t *items;
  size_t count;
  size_t cap;
} ice_diags_t;

/* Formats diagnostic i as `FILE:LINE:COL: error: MESSAGE`, or `warning:`
 * for a warning (LINE:COL left out when unknown). Returns a malloc'd string,
 * or NULL on ENOMEM. */
ICE_EXTERN char *ice_diag_format(const ice_diag_t *d);
/* Frees every diagnostic and resets the list; the struct itself is the
 * caller's. */
ICE_EXTERN void ice_diags_free(ice_diags_t *diags);

/* ---- Engine ------------------------------------------------------------- */

typedef struct {
  /* When non-zero, delay timers (retry back-off, the `sleep` tool) fire at
   * once and the engine's clock jumps by the delay instead. Timeouts stay
   * real. For tests that check back-off delays without sleeping. */
  int virtual_clock;
} ice_engine_opts_t;

#define ICE_ENGINE_OPTS_INIT                                                   \
  { 0 }

/* Creates an engine on `loop`, or on a loop of its own when loop is NULL.
 * Ignores SIGPIPE process-wide (writes to a tool that closed its stdin must
 * not kill the program). opts may be NULL. */
ICE_EXTERN int ice_engine_new(ice_engine_t **out, uv_loop_t *loop,
                              const ice_engine_opts_t *opts);
/* Returns ICE_EBUSY (and frees nothing) while runs are alive. */
ICE_EXTERN int ice_engine_free(ice_engine_t *e);
/* Borrowed. */
ICE_EXTERN uv_loop_t *ice_engine_loop(ice_engine_t *e);
/* Milliseconds since the epoch on the engine's clock: real time, plus the
 * delays skipped under a virtual clock. Deadlines kept as absolute times
 * (ice_task_wait) use it. */
ICE_EXTERN double ice_engine_now_ms(const ice_engine_t *e);
/* The milliseconds to arm a uv timer with for a delay of `ms`: `ms`, or 0
 * under a virtual clock, which then jumps by `ms`. For executors' own
 * delays (back-off, sleeps), so that tests need not wait. */
ICE_EXTERN uint64_t ice_engine_delay(ice_engine_t *e, uint64_t ms);

/* ---- Custom node types and tools ---------------------------------------- */

#define ICE_EXECUTOR_ABI 2

/* JSON type bits for field declarations. */
enum {
  ICE_T_NULL = 1 << 0,
  ICE_T_BOOL = 1 << 1,
  ICE_T_INT = 1 << 2,
  ICE_T_REAL = 1 << 3,
  ICE_T_NUMBER = (1 << 2) | (1 << 3),
  ICE_T_STRING = 1 << 4,
  ICE_T_ARRAY = 1 << 5,
  ICE_T_OBJECT = 1 << 6,
  ICE_T_ANY = 0x7f,
  /* A list of nodes (a loop's body, a condition's path), and a list of
   * such lists (a parallel's branches): the loader collects their nodes,
   * which then run in child frames the executor opens. */
  ICE_T_NODES = 1 << 7,
  ICE_T_NODE_LISTS = 1 << 8
};

/* A field a node type accepts besides the common ones of SPEC §2.1. */
typedef struct {
  const char *name;
  unsigned types; /* ICE_T_* bits */
  int required;   /* 1 = validation error when missing */
  int templated;  /* 1 = strings inside may hold {{ templates }} */
} ice_field_t;

/* One node being validated, as a compile hook sees it. */
typedef struct ice_compile_s ice_compile_t;
/* The node's object as written (borrowed), its id, the executor's data,
 * and the directory relative paths start from. */
ICE_EXTERN json_t *ice_compile_config(const ice_compile_t *c);
ICE_EXTERN const char *ice_compile_node_id(const ice_compile_t *c);
ICE_EXTERN void *ice_compile_executor_data(const ice_compile_t *c);
ICE_EXTERN const char *ice_compile_dir(const ice_compile_t *c);
/* Reports a validation error at the position of `field` in the node (the
 * node itself when field is NULL), as `FILE:LINE:COL: error: node 'ID':
 * MESSAGE`. */
ICE_EXTERN void ice_compile_error(ice_compile_t *c, const char *field,
                                  const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A node type: a const table that must outlive the engine. */
typedef struct ice_executor_s {
  int abi;          /* ICE_EXECUTOR_ABI */
  const char *type; /* the node `type` it runs */
  /* Fields the type accepts, ended by {NULL}. Unknown fields are errors.
   * NULL accepts any field. */
  const ice_field_t *fields;
  /* Optional: more checks of one node's config (borrowed), called during
   * validation. Return 0, or a negative code with a message in msg. */
  int (*validate)(json_t *config, char *msg, size_t msglen);
  /* Starts one attempt. The executor must call ice_task_done() or
   * ice_task_fail() exactly once, now or later, on the loop thread. */
  void (*start)(ice_task_t *task);
  /* Optional: asks the executor to stop (a timeout, a cancel). It must
   * still complete the task, usually with ice_task_fail(). */
  void (*cancel)(ice_task_t *task);
  /* Default timeout_seconds per attempt; 0 = none. */
  double default_timeout;
  /* ---- ABI 2 ---- */
  /* Handed back to every attempt by ice_task_executor_data(). */
  void *data;
  /* Optional: compiles one node's config once, at validation (parse
   * fields, resolve references); the result is kept with the node and
   * handed to every attempt by ice_task_compiled(). Problems are reported
   * with ice_compile_error(), at the field's position. */
  void *(*compile)(ice_compile_t *c);
  /* Frees what compile returned, when the workflow is freed. */
  void (*free_compiled)(void *compiled, void *data);
  /* ICE_EX_* bits. */
  unsigned flags;
} ice_executor_t;

/* A node of this type closes cycles (SPEC §7.4's recursive node): a cycle
 * through it is its body, run again each iteration, not an error. */
#define ICE_EX_CLOSES_CYCLES 1u
/* A node of this type runs other nodes (nested lists, a child run) rather
 * than doing work of its own: it takes no `pool`, and while its nested
 * nodes are parked it does not keep the run from stopping as waiting. */
#define ICE_EX_CONTROL_FLOW 2u

/* Registers a node type (the C form of iceOS's @register_node). EEXIST if
 * the type is taken, EABI if the table was built for another ABI. */
ICE_EXTERN int ice_register_node(ice_engine_t *e, const ice_executor_t *ex);

/* A tool implemented in C. start must complete the task exactly once; args
 * are borrowed (the rendered `tool_args`). cancel may be NULL. */
typedef struct {
  const char *name;
  void (*start)(ice_task_t *task, json_t *args, void *data);
  void (*cancel)(ice_task_t *task, void *data);
  void *data;
} ice_tool_t;

/* Registers a tool; the struct is copied (the name too). EEXIST when a
 * tool of that name is registered already. */
ICE_EXTERN int ice_register_tool(ice_engine_t *e, const ice_tool_t *tool);

/* ---- Tasks: one attempt of one node, as seen by an executor ------------- */

ICE_EXTERN const char *ice_task_node_id(const ice_task_t *t);
/* The node's config object (borrowed). */
ICE_EXTERN json_t *ice_task_config(const ice_task_t *t);
/* 1-based attempt number. */
ICE_EXTERN int ice_task_attempt(const ice_task_t *t);
/* The loop index inside a loop body, else -1. */
ICE_EXTERN long ice_task_index(const ice_task_t *t);
ICE_EXTERN uv_loop_t *ice_task_loop(const ice_task_t *t);
ICE_EXTERN ice_engine_t *ice_task_engine(const ice_task_t *t);
/* The node's context (SPEC §3.1) as a new object (new reference). */
ICE_EXTERN json_t *ice_task_context(ice_task_t *t);
/* One name of the context, or NULL (borrowed). */
ICE_EXTERN json_t *ice_task_lookup(ice_task_t *t, const char *name);
/* Renders {{ templates }} in value against the context (new reference in
 * *out). On error fails nothing: returns -1 and a message in msg. */
ICE_EXTERN int ice_task_render(ice_task_t *t, json_t *value, json_t **out,
                               char *msg, size_t msglen);
/* Emits a node.log event. */
ICE_EXTERN void ice_task_log(ice_task_t *t, const char *stream,
                             const char *line, size_t len);
ICE_EXTERN void ice_task_set_data(ice_task_t *t, void *data);
ICE_EXTERN void *ice_task_data(const ice_task_t *t);
/* Completes the attempt successfully; takes the reference to output (an
 * object; any other value v becomes {"result": v}). NULL, what json_pack()
 * returns when memory runs out, fails the attempt instead (kind
 * "internal"), and the run with it: pass json_object() for no output. */
ICE_EXTERN void ice_task_done(ice_task_t *t, json_t *output);
/* Completes the attempt as failed, with an error kind name of SPEC §4.4
 * ("tool_error", "transient", ...; unknown names become "internal"). */
ICE_EXTERN void ice_task_fail(ice_task_t *t, const char *kind, const char *fmt,
                              ...) __attribute__((format(printf, 3, 4)));

/* Parks the attempt: the node goes `waiting` (SPEC §2.2) until the
 * executor completes it with ice_task_done or ice_task_fail. A parked node
 * holds no max_parallel place and its timeout stops. `state` (taken; may
 * be NULL) is committed with the change; when a run stopped as waiting is
 * restored, the executor's start is called again for the same attempt and
 * ice_task_saved_state() hands it back. wake_at_ms (epoch ms on the
 * engine's clock, 0 = never) says when the executor will complete the
 * attempt by itself (a timer of its own): a run that can go no further
 * keeps waiting in-process while the soonest wake-up falls within its
 * suspend_after (ice_run_opts_t); otherwise it stops as `waiting`, and the
 * parked attempt's cancel is called with ICE_STOP_SUSPEND (it must then
 * complete the task; the node stays waiting). ICE_EINVAL if the attempt
 * already completed or is parked. */
ICE_EXTERN int ice_task_wait(ice_task_t *t, json_t *state, double wake_at_ms);
/* The state saved by ice_task_wait (borrowed), or NULL. */
ICE_EXTERN json_t *ice_task_saved_state(const ice_task_t *t);
/* Marks the attempt as background work (a monitor): it does not hold its
 * list of nodes open. Once every other node of that list is terminal, its
 * cancel is called with ICE_STOP_FINISH and it completes as it chooses. */
ICE_EXTERN void ice_task_set_background(ice_task_t *t);

/* Why the engine called an attempt's cancel hook. */
enum {
  ICE_STOP_NONE = 0,
  ICE_STOP_TIMEOUT, /* its timeout_seconds passed */
  ICE_STOP_CANCEL,  /* the run, a halt or a winning branch cancelled it */
  ICE_STOP_SUSPEND, /* the run stops as waiting; the node stays waiting */
  ICE_STOP_FINISH   /* background work: everything else is done */
};
ICE_EXTERN int ice_task_stop_reason(const ice_task_t *t);

/* Reports usage of the attempt (an LLM call's tokens and cost). It is
 * summed into the node, every enclosing control-flow node, and the run's
 * metrics.tokens and metrics.cost_usd (a child run's into its parent). */
ICE_EXTERN void ice_task_usage(ice_task_t *t, long long tokens,
                               double cost_usd);
/* The executor's user data (ice_executor_t.data) and the result of its
 * compile hook for this node (NULL without one). */
ICE_EXTERN void *ice_task_executor_data(const ice_task_t *t);
ICE_EXTERN void *ice_task_compiled(const ice_task_t *t);
/* The node instance's key: stable across a restore (see ice_commit_t). */
ICE_EXTERN const char *ice_task_key(ice_task_t *t);

/* ---- Tool files (SPEC §1.1) --------------------------------------------- */

/* Loads a tool file (.json, .yaml, .yml: top-level `tools` and `agents`,
 * in the forms of a workflow's own) into the engine, checks it as a
 * workflow's `tools` are checked, and keeps it. Every workflow loaded
 * afterwards by this engine, sub-workflows included, resolves a tool or
 * agent name in its own definitions first, then in the tool files in the
 * order they were added, then among registered and built-in tools.
 * Relative paths inside a tool file start at its directory, where its
 * process tools run by default. Problems go to diags as `FILE:LINE:COL:
 * error: MESSAGE`; returns ICE_EWORKFLOW when there is any (an iceOS
 * plugin manifest is refused so), ICE_ENOENT / ICE_EIO when the file
 * cannot be read. Add tool files before loading the workflows. */
ICE_EXTERN int ice_engine_add_tool_file(ice_engine_t *e, const char *path,
                                        ice_diags_t *diags);
/* The same from text in memory: `path` names it in messages, picks the
 * syntax by its suffix and gives the directory of its relative paths. */
ICE_EXTERN int ice_engine_add_tool_text(ice_engine_t *e, const char *path,
                                        const char *text, size_t len,
                                        ice_diags_t *diags);
/* The tool files added, in order, as a new reference to an array of
 * {"path": absolute path, "content": text}: what a store records so that a
 * resumed run uses the definitions it started with (give each back to
 * ice_engine_add_tool_text). NULL on ENOMEM. */
ICE_EXTERN json_t *ice_engine_tool_files(const ice_engine_t *e);

/* ---- Workflows ---------------------------------------------------------- */

/* Loads and validates a workflow file (.json, .yaml, .yml). Every problem
 * is appended to diags (may be NULL); returns ICE_EWORKFLOW when there is
 * any, ICE_ENOENT/ICE_EIO when the file cannot be read. */
ICE_EXTERN int ice_workflow_load(ice_engine_t *e, const char *path,
                                 ice_workflow_t **out, ice_diags_t *diags);
/* The same from text in memory; `name` is used in messages and as the base
 * for relative paths (its directory); is_yaml selects the syntax. */
ICE_EXTERN int ice_workflow_parse(ice_engine_t *e, const char *name,
                                  const char *text, size_t len, int is_yaml,
                                  ice_workflow_t **out, ice_diags_t *diags);
/* The same from a JSON document built in C (borrowed). */
ICE_EXTERN int ice_workflow_from_json(ice_engine_t *e, const char *name,
                                      json_t *doc, ice_workflow_t **out,
                                      ice_diags_t *diags);
ICE_EXTERN void ice_workflow_free(ice_workflow_t *wf);
ICE_EXTERN const char *ice_workflow_name(const ice_workflow_t *wf);
ICE_EXTERN size_t ice_workflow_node_count(const ice_workflow_t *wf);
/* The graph as Graphviz dot (format "dot") or Mermaid ("mermaid"); a
 * malloc'd string in *out. */
ICE_EXTERN int ice_workflow_graph(const ice_workflow_t *wf, const char *format,
                                  char **out);

/* ---- Runs --------------------------------------------------------------- */

/* One change of a node instance's state, handed to the commit hook before
 * the engine releases any node that depends on it (the place where a
 * store writes; SPEC §9). Strings and values are borrowed for the call. */
typedef struct {
  const char *run_id;
  /* The node instance: its id, preceded by the keys of its enclosing
   * control-flow nodes with their loop index or branch in brackets, and
   * followed by @N for the N-th iteration of a recursive loop (N > 1):
   * `a`, `map[3]/summarise`, `outer[0]/inner[2]/e`, `step@2`. */
  const char *key;
  const char *node_id;
  /* "running" (an attempt started), "waiting" (parked), "retrying" (an
   * attempt failed; the next is due at wake_at_ms), "iterated" (a
   * recursive node runs its body again), "completed", "failed",
   * "skipped", "cancelled". */
  const char *change;
  int attempt;
  json_t *output; /* completed, iterated */
  /* waiting: the executor's saved state. iterated: the carried context
   * as a delta (history_from, history_tail, output_carry_key; the output
   * leaves the carry out), to be replayed in order (docs/durability.md). */
  json_t *state;
  const char *error_kind; /* failed, retrying */
  const char *error_message;
  const char *reason;     /* skipped */
  double at_ms;           /* when, epoch ms on the engine's clock */
  double wake_at_ms;      /* retrying, waiting: absolute time, or 0 */
  unsigned long long seq; /* the run's last event seq */
} ice_commit_t;

/* Returns 0, or non-zero with a message in msg: the run then stops
 * (status failed, an `errors` line `Commit: MESSAGE`), since work whose
 * record cannot be kept must not go on. */
typedef int (*ice_commit_cb)(const ice_commit_t *c, void *data, char *msg,
                             size_t msglen);
/* The record as a JSON object (new reference): what ice_run_opts_t.restore
 * takes back. */
ICE_EXTERN json_t *ice_commit_to_json(const ice_commit_t *c);

typedef struct {
  json_t *inputs;   /* borrowed; NULL = {} */
  int max_parallel; /* 0 = the workflow's max_parallel */
  /* Called for every change of every node instance, child runs included
   * (their run_id differs). NULL = none. */
  ice_commit_cb commit;
  void *commit_data;
  /* Rebuilds an earlier run of the same workflow from its commit records
   * (ice_commit_to_json), in commit order, its child runs' included (each
   * record names its run), or from an object run_id -> such an array. The
   * run keeps run_id below, or else the run id of the first record.
   * Completed, failed and skipped instances are not run again; running and
   * cancelled ones are; waiting ones start again with their saved state;
   * retries wait what is left of their back-off. Borrowed. NULL = a new
   * run. */
  json_t *restore;
  /* The run id to keep (a restored run), and the last event seq it had. */
  const char *run_id;
  unsigned long long seq;
  /* When the run can go no further and only parked attempts remain: stop
   * as `waiting` unless one of them wakes within this many seconds. < 0 =
   * never stop: wait in-process (an embedding server). */
  double suspend_after;
  /* Answers for parked nodes given ahead (`ice run --answer`, `ice resume
   * --answer`): an object node id -> answer string, borrowed; executors
   * read theirs (a human node). Child runs see their parent's. */
  json_t *answers;
  /* The memo of `use_cache` nodes (SPEC §2.1), across runs: get returns a
   * new reference to the output kept under key, no older than max_age_ms
   * (0 = any age), or NULL; put keeps output (borrowed) under key. The key
   * hashes the node's definition and its context (its resolved input). A
   * hit completes the attempt at once; node.completed says cache_hit. The
   * store provides both (ice_store_cache_get, ice_store_cache_put; data =
   * the store). Child runs use their parent's. NULL = no cache. */
  json_t *(*cache_get)(void *data, const char *key, double max_age_ms);
  int (*cache_put)(void *data, const char *key, json_t *output);
  void *cache_data;
} ice_run_opts_t;

#define ICE_RUN_OPTS_INIT                                                      \
  { NULL, 0, NULL, NULL, NULL, NULL, 0, -1, NULL, NULL, NULL, NULL }

typedef void (*ice_run_done_cb)(ice_run_t *run, void *data);

/* Creates a run (it holds a reference to wf). Inputs are checked against
 * the workflow's input_schema: ICE_EINPUT with a message in diags. */
ICE_EXTERN int ice_run_new(ice_engine_t *e, ice_workflow_t *wf,
                           const ice_run_opts_t *opts, ice_run_t **out,
                           ice_diags_t *diags);
/* Starts the run on the engine's loop; done fires exactly once, from the
 * loop, when every node is terminal, or when the run stopped as `paused`
 * or `waiting` (see ice_run_opts_t.suspend_after). */
ICE_EXTERN int ice_run_start(ice_run_t *run, ice_run_done_cb done, void *data);
/* Starts the run and runs the loop until it is done. */
ICE_EXTERN int ice_run_execute(ice_run_t *run);
/* Cancels a running run: running nodes are cancelled (their processes
 * killed), pending ones become cancelled; status "cancelled". */
ICE_EXTERN int ice_run_cancel(ice_run_t *run);
/* Pauses a running run: nothing new starts, running nodes finish, then it
 * stops with status `paused` (restore it to go on). */
ICE_EXTERN int ice_run_pause(ice_run_t *run);
/* Aborts a running run (a monitor's `abort`, SPEC §8.2): as a cancel, but
 * the run ends with status `aborted`. */
ICE_EXTERN int ice_run_abort(ice_run_t *run);
/* Cancels one running or pending top-level node. ENOENT if unknown. */
ICE_EXTERN int ice_run_cancel_node(ice_run_t *run, const char *node_id);
ICE_EXTERN const char *ice_run_id(const ice_run_t *run);
/* 1 once done has fired. */
ICE_EXTERN int ice_run_finished(const ice_run_t *run);
/* The result of SPEC §11.1 (borrowed; valid until ice_run_free). NULL
 * before the run finished. */
ICE_EXTERN json_t *ice_run_result(ice_run_t *run);
/* The status of the finished run's result ("completed", "failed"...),
 * without building it; NULL before the run finished. Static or borrowed. */
ICE_EXTERN const char *ice_run_status(ice_run_t *run);
/* Before ice_run_start: the result is built when ice_run_result first asks
 * for it instead of when the run ends, so that a run whose result is only
 * printed (ice_run_write_result) never builds it. ICE_EINVAL once started. */
ICE_EXTERN int ice_run_defer_result(ice_run_t *run);
/* Writes the text of the finished run's result (output_only: of its
 * `output`) as ice_json_write(ice_run_result(run), indent, ...) would,
 * without building the result when it was deferred and not built yet.
 * Returns 0; 1 when its compact text would be over cap bytes (nothing is
 * written); -1 when write stopped it or memory ran out; ICE_EINVAL before
 * the run finished. */
ICE_EXTERN int
ice_run_write_result(ice_run_t *run, int output_only, int indent, size_t cap,
                     int (*write)(const char *buf, size_t len, void *data),
                     void *data);
/* The output of a completed top-level node, or NULL (borrowed). */
ICE_EXTERN json_t *ice_run_output(ice_run_t *run, const char *node_id);
/* Frees the run; when it is still executing the free is deferred until
 * the run has finished and its handles are closed. */
ICE_EXTERN void ice_run_free(ice_run_t *run);

/* ---- Events (SPEC §10) -------------------------------------------------- */

/* ev is the event object, borrowed for the call. */
typedef void (*ice_event_cb)(json_t *ev, void *data);

/* Subscribes to events whose type equals `filter` or starts with it when it
 * ends in '.' ("node." gets every node event); NULL or "" gets all. Safe to
 * call during delivery. */
ICE_EXTERN int ice_subscribe(ice_engine_t *e, const char *filter,
                             ice_event_cb cb, void *data, ice_sub_t **out);
/* Safe during delivery, including from the subscriber's own callback. */
ICE_EXTERN void ice_unsubscribe(ice_engine_t *e, ice_sub_t *sub);
/* While a node.completed event is being delivered: the node's output
 * (borrowed, valid during the callback), so a C subscriber can read it
 * without the event carrying it. NULL during any other event. */
ICE_EXTERN json_t *ice_event_output(const ice_engine_t *e);

/* ---- The run store (SPEC §9) --------------------------------------------
 *
 * A SQLite file (WAL mode, a busy timeout, versioned schema) that keeps
 * runs, the commit records of every node instance (child runs' too),
 * events, and results, so that a run can be resumed after a crash, a
 * cancel, a pause or a wait. It plugs into a run through the public seam:
 * ice_store_commit as the run's commit hook, and ice_store_attach for the
 * events and for writing commits grouped, one transaction per loop turn,
 * flushed before the loop waits. */

typedef struct ice_store_s ice_store_t;

/* Opens (creating it and its directories) the store at path; NULL = the
 * default path: $ICE_HOME/runs.db, ICE_HOME defaulting to
 * $XDG_STATE_HOME/ice, else ~/.local/state/ice. 0, or ICE_EIO / ICE_ENOMEM
 * with a message naming the path in msg. */
ICE_EXTERN int ice_store_open(ice_store_t **out, const char *path, char *msg,
                              size_t msglen);
/* Flushes what is pending and closes. 0, or ICE_EIO with msg. */
ICE_EXTERN int ice_store_close(ice_store_t *s, char *msg, size_t msglen);
ICE_EXTERN const char *ice_store_path(const ice_store_t *s);
/* Writes every event of e's runs (by run_id) to the store, and flushes the
 * pending transaction once per loop turn, before the loop waits. */
ICE_EXTERN int ice_store_attach(ice_store_t *s, ice_engine_t *e);
ICE_EXTERN void ice_store_detach(ice_store_t *s, ice_engine_t *e);
/* A commit hook (ice_run_opts_t.commit, with commit_data = the store). */
ICE_EXTERN int ice_store_commit(const ice_commit_t *c, void *store, char *msg,
                                size_t msglen);
/* Records a run as started (or resumed): its workflow's path, a hash of
 * the file's content, its inputs (borrowed), the owning process. */
ICE_EXTERN int ice_store_begin(ice_store_t *s, const char *run_id,
                               const char *workflow, const char *path,
                               const char *hash, json_t *inputs, char *msg,
                               size_t msglen);
/* ice_store_begin that also keeps the run's tool files (an array as
 * ice_engine_tool_files returns, borrowed), so that a resumed run uses
 * the definitions it started with, whatever became of the files. NULL
 * keeps what the run's row has (a resumed run). */
ICE_EXTERN int ice_store_begin_tools(ice_store_t *s, const char *run_id,
                                     const char *workflow, const char *path,
                                     const char *hash, json_t *inputs,
                                     json_t *tools, char *msg, size_t msglen);
/* Records a run's end or stop: its result (borrowed; status and times).
 * Refused (ICE_EIO) when a failed write lost some of the run's rows (a full
 * disk): the run stays `running`, to be resumed from what was committed. */
ICE_EXTERN int ice_store_finish(ice_store_t *s, const char *run_id,
                                json_t *result, char *msg, size_t msglen);
/* What the store knows of a run (new reference in *out): {"run_id",
 * "workflow", "path", "hash", "inputs", "status", "started", "finished",
 * "result" (or null), "owner_alive" (bool), "last_seq", "tools" (its tool
 * files, ice_store_begin_tools, or null), "records": [the commit records
 * of the run and its child runs, in commit order]}.
 * ICE_ENOENT when there is no such run. */
ICE_EXTERN int ice_store_load(ice_store_t *s, const char *run_id, json_t **out,
                              char *msg, size_t msglen);
/* The newest runs first, at most limit (0 = all): [{"run_id", "status",
 * "workflow", "started"}]. */
ICE_EXTERN int ice_store_runs(ice_store_t *s, size_t limit, json_t **out,
                              char *msg, size_t msglen);
/* Calls cb for each event of the run and its child runs, in order. */
ICE_EXTERN int ice_store_events(ice_store_t *s, const char *run_id,
                                ice_event_cb cb, void *data, char *msg,
                                size_t msglen);
/* The store's memo of use_cache outputs, for ice_run_opts_t.cache_get and
 * cache_put (data = the store). */
ICE_EXTERN json_t *ice_store_cache_get(void *store, const char *key,
                                       double max_age_ms);
ICE_EXTERN int ice_store_cache_put(void *store, const char *key,
                                   json_t *output);
/* A content hash for ice_store_begin ("fnv1a64:HEX"), malloc'd. */
ICE_EXTERN char *ice_store_hash(const char *text, size_t len);

/* ---- Human answers ------------------------------------------------------- */

/* Checks an answer for node `node_id` of wf before anything runs (SPEC
 * §8.1): 0, or ICE_EINVAL with a message when the node is unknown, is not
 * a `human` node, or its approval_type refuses the value. */
ICE_EXTERN int ice_workflow_check_answer(const ice_workflow_t *wf,
                                         const char *node_id, const char *value,
                                         char *msg, size_t msglen);

/* ---- JSON text ---------------------------------------------------------- */

/* Serialises v with keys in their order and reals in shortest round-trip
 * form; indent 0 = one line with no spaces. malloc'd, NULL on ENOMEM. */
ICE_EXTERN char *ice_json_format(const json_t *v, int indent);
/* The same text handed to write(buf, len, data) a piece at a time (at
 * most 64 KiB each, not NUL-terminated), so that a large value is never
 * held whole as text. write returns 0, or non-zero to stop. Returns 0, or
 * -1 when write stopped it or memory ran out (the text is then cut). */
ICE_EXTERN int ice_json_write(const json_t *v, int indent,
                              int (*write)(const char *buf, size_t len,
                                           void *data),
                              void *data);
/* The length of v's compact text (ice_json_format(v, 0)), or SIZE_MAX when
 * it is over cap. Outputs share values instead of copying them, so a value
 * can hold one object many times and have a text far larger than its
 * memory (nested parallel outputs, a custom executor's): check before
 * printing what you did not build. Shared containers are counted once, so
 * this takes time linear in the distinct content. */
ICE_EXTERN size_t ice_json_size(const json_t *v, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
