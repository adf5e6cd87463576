/* The engine: the loop it runs on, the registry of node types and tools,
 * the event bus and the clock. Everything a run needs that is not per
 * workflow or per run. */
#ifndef ICE_ENGINE_H
#define ICE_ENGINE_H

#include "workflow.h"

#include <ice.h>
#include <sys/types.h>
#include <time.h>

#define ICE__MAX_LOADING 32

/* A sub-workflow file loaded during the current outermost validation
 * (subwf_load.c): every reference to the same file shares it. The
 * file's identity is checked on each use, so a file changed meanwhile is
 * loaded again. */
typedef struct {
  char *real; /* realpath(): the key */
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtim;
  ice_workflow_t *wf; /* one reference; NULL: the file is not valid */
} ice__subwf_entry_t;

/* The loader's hooks for the files a workflow references (subwf_load.c),
 * set by engine_new.c. Loading is recursive (a file loads the files it
 * references), so the loader calls that module through these, without
 * naming it: a seam, not a circle of calls. */
typedef struct {
  void (*begin)(ice__vctx_t *v);      /* a build starts */
  int (*check_names)(ice__vctx_t *v); /* the file's `workflows` entries */
  void (*clear)(ice_engine_t *e);     /* drop the last validation's files */
} ice__refs_hooks_t;
extern const ice__refs_hooks_t ice__refs_hooks;

typedef struct ice__type_entry_s {
  const ice_executor_t *ex;
} ice__type_entry_t;

typedef struct ice__tool_entry_s {
  ice_tool_t tool; /* name owned (copied) */
} ice__tool_entry_t;

struct ice_sub_s {
  struct ice_sub_s *next;
  char *filter; /* NULL = everything */
  size_t flen;
  int prefix; /* filter ends in '.' */
  int dead;   /* unsubscribed during delivery; swept afterwards */
  ice_event_cb cb;
  void *data;
};

struct ice_engine_s {
  uv_loop_t *loop;
  uv_loop_t own_loop;
  int owns_loop;
  ice__type_entry_t *types;
  size_t ntypes;
  ice__tool_entry_t *tools;
  size_t ntools;
  struct ice_sub_s *subs;
  int delivering;
  int nsubs;
  uint32_t wants; /* bit per ice__event_t some subscriber matches (bus.c) */
  const ice_tool_t *builtin_tools; /* SPEC §5.3's, after registered ones */
  const ice__refs_hooks_t *refs;   /* NULL: references load nothing */
  size_t nbuiltin_tools;
  json_t *ev_output; /* the output of the node.completed being delivered */
  int runs;          /* live runs */
  int virtual_clock;
  uint64_t clock_offset_ms; /* added by virtual delays */
  uint64_t run_counter;
  /* Real paths of the workflow files being loaded, outermost first: a
   * sub-workflow that is already on this stack references itself. */
  char *loading[ICE__MAX_LOADING];
  int nloading;
  /* Sub-workflow files loaded during the outermost validation now going on
   * (or the last one): one load per distinct file, however many
   * references (subwf_load.c). */
  ice__subwf_entry_t *subwf_cache;
  size_t nsubwf, subwf_cap;
  json_t *subwf_index;             /* real path -> index in subwf_cache */
  int subwf_nest;                  /* child files being loaded */
  const ice_workflow_t *subwf_top; /* the outermost workflow being built */
  ice_diags_t *subwf_sink;         /* ...and where its diagnostics go */
  uint64_t subwf_loads;            /* child files read (tests count them) */
  struct ice__httpc_s *httpc;      /* the LLM HTTP client, made on first use */
  /* Tool files (SPEC §1.1, toolfile.c), the first added first. */
  struct ice__toolfile_s *toolfiles;
  size_t ntoolfiles;
};

/* Finds a node type; NULL when unknown. */
const ice__type_entry_t *ice__engine_type(const ice_engine_t *e,
                                          const char *type);
/* A tool registered by the embedding program, then a built-in one. */
const ice_tool_t *ice__engine_tool(const ice_engine_t *e, const char *name);
/* The built-in tools of SPEC §5.3 (tools/builtin.c), looked up last. */
const ice_tool_t *ice__builtin_tools(size_t *n);

/* Tool files (toolfile.c). The definition of `name` in the `section`
 * ("tools" or "agents") of the first tool file that has one, with its
 * file's directory in *dir (may be NULL); NULL when none has it.
 * Borrowed. And freeing them all, with the engine. */
typedef struct ice__toolfile_s ice__toolfile_t;
json_t *ice__toolfile_def(const ice_engine_t *e, const char *section,
                          const char *name, const char **dir);
void ice__toolfiles_free(ice_engine_t *e);

/* Milliseconds since the epoch on the engine's clock (real time plus any
 * virtual delays). */
double ice__engine_now_ms(const ice_engine_t *e);

/* Monotonic milliseconds (plus virtual delays), for durations. */
double ice__engine_mono_ms(const ice_engine_t *e);

/* 1 when some subscriber would receive an event of this type: events are
 * built only then. */
int ice__bus_wants(const ice_engine_t *e, const char *type);
/* Delivers ev (borrowed) to the matching subscribers, in subscription
 * order. */
void ice__bus_emit(ice_engine_t *e, const char *type, json_t *ev);

/* Built-in node types (one file each under src/exec/). */
extern const ice_executor_t ice__exec_tool, ice__exec_condition, ice__exec_loop,
    ice__exec_parallel, ice__exec_recursive, ice__exec_workflow;
extern const ice_executor_t ice__exec_llm, ice__exec_agent, ice__exec_swarm,
    ice__exec_code, ice__exec_human, ice__exec_monitor;

#endif
