/* The `ice` command (SPEC §11): run, resume, runs, show, events, validate,
 * graph, help, --version. It uses only the public API of <ice.h>;
 * printing, exit codes, signals and the progress line live here, never in
 * the library. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const usage_main =
    "ice " ICE_VERSION_STRING " - a workflow engine for LLM and agent apps\n"
    "\n"
    "usage:\n"
    "  ice run FILE [--input K=V]... [--inputs JSON|@FILE] [--answer "
    "NODE=V]...\n"
    "               [--max-parallel N] [--events FILE] [--store PATH | "
    "--no-store]\n"
    "               [--tools FILE]... [--output-only] [--quiet]\n"
    "               [--no-interactive] [--max-wait SECONDS]\n"
    "  ice resume RUN [--answer NODE=V]... [--events FILE] [--output-only]\n"
    "               [--quiet] [--max-wait SECONDS] [--store PATH] [--force]\n"
    "               [--no-interactive]\n"
    "  ice runs [--limit N] [--store PATH]\n"
    "  ice show RUN [--store PATH]\n"
    "  ice events RUN [--store PATH]\n"
    "  ice validate [--tools FILE]... FILE...\n"
    "  ice graph FILE [--tools FILE]... [--format dot|mermaid]\n"
    "  ice --version\n"
    "  ice help [COMMAND]\n"
    "\n"
    "exit status: 0 success, 1 the run failed or the output could not be\n"
    "written, 2 bad usage or invalid workflow, 3 paused or waiting, 130\n"
    "cancelled by a signal.\n";

static const char *const usage_validate =
    "usage: ice validate [--tools FILE]... FILE...\n"
    "\n"
    "Checks each workflow file and prints every problem as\n"
    "FILE:LINE:COL: error: MESSAGE on stderr, and every warning as\n"
    "FILE:LINE:COL: warning: MESSAGE. Exit 0 when all are valid (warnings\n"
    "or not), else 2. Prints nothing on stdout.\n"
    "\n"
    "  --tools FILE   a tool file (tools and agents the workflows use);\n"
    "                 repeatable, the first named wins; then the files of\n"
    "                 $ICE_TOOLS (a ':'-separated list)\n";

static const char *const usage_graph =
    "usage: ice graph FILE [--tools FILE]... [--format dot|mermaid]\n"
    "\n"
    "Prints the workflow's dependency graph (default: dot).\n"
    "\n"
    "  --tools FILE   a tool file the workflow's tools resolve in\n"
    "                 (repeatable; then the files of $ICE_TOOLS)\n";

static int cmd_help(int argc, char **argv) {
  const char *topic = argc > 2 ? argv[2] : NULL;
  const char *text;

  if (topic == NULL)
    text = usage_main;
  else if (strcmp(topic, "run") == 0)
    text = cli_run_usage();
  else if (strcmp(topic, "resume") == 0)
    text = cli_resume_usage();
  else if (strcmp(topic, "runs") == 0)
    text = cli_runs_usage();
  else if (strcmp(topic, "show") == 0)
    text = cli_show_usage();
  else if (strcmp(topic, "events") == 0)
    text = cli_events_usage();
  else if (strcmp(topic, "validate") == 0)
    text = usage_validate;
  else if (strcmp(topic, "graph") == 0)
    text = usage_graph;
  else
    return cli_usage_error("no help for '%s'", topic);
  return cli_write_out(text, 0, "the help") == 0 ? 0 : 1;
}

/* --tools FILE and --tools=FILE (SPEC §1.1) at argv[*i]: appends FILE to
 * tools and returns 1 (advancing *i past a separate value), 0 when
 * argv[*i] is not --tools, or 2 after a usage error. */
static int tools_opt(int argc, char **argv, int *i, json_t *tools) {
  const char *a = argv[*i], *val;

  if (strncmp(a, "--tools=", 8) == 0)
    val = a + 8;
  else if (strcmp(a, "--tools") == 0)
    val = *i + 1 < argc ? argv[++*i] : NULL;
  else
    return 0;
  if (val == NULL || val[0] == '\0')
    return cli_usage_error("%s needs a FILE", "--tools");
  if (json_array_append_new(tools, json_string(val)) != 0) {
    fprintf(stderr, "ice: --tools: %s\n", strerror(ENOMEM));
    return 2;
  }
  return 1;
}

static int cmd_validate(int argc, char **argv) {
  ice_engine_t *e;
  json_t *tools = json_array(), *files = json_array(), *f;
  ice_workflow_t *kept = NULL;
  int bad = 0, opts_done = 0, rc = 0;
  size_t i;

  /* Options first, so that a bad one is reported before any file is read
   * and `--help` prints only the help. */
  for (int k = 2; k < argc && rc == 0; k++) {
    const char *a = argv[k];
    if (opts_done || a[0] != '-' || a[1] == '\0') {
      if (a[0] == '\0')
        rc = cli_usage_error("%s", "a FILE is an empty string");
      else if (json_array_append_new(files, json_string(a)) != 0)
        rc = cli_usage_error("%s", "out of memory");
    } else if (strcmp(a, "--") == 0) {
      opts_done = 1;
    } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      rc = cli_write_out(usage_validate, 0, "the help") == 0 ? -1 : 1;
    } else if ((rc = tools_opt(argc, argv, &k, tools)) == 1) {
      rc = 0;
    } else if (rc == 0) {
      rc = cli_usage_error("unknown option '%s'", a);
    }
  }
  if (rc == 0 && json_array_size(files) == 0)
    rc = cli_usage_error("%s", "validate needs at least one FILE");
  if (rc != 0 || ice_engine_new(&e, NULL, NULL) != 0) {
    if (rc == 0) {
      fprintf(stderr, "ice: cannot create the engine\n");
      rc = 2;
    }
    json_decref(tools);
    json_decref(files);
    return rc < 0 ? 0 : rc;
  }
  /* Tool files first: the workflows resolve names in them. A bad one is
   * reported, and the workflows are still checked. */
  if (cli_add_tool_files(e, tools) != 0)
    bad = 1;
  json_array_foreach(files, i, f) {
    ice_workflow_t *wf = NULL;
    ice_diags_t d = {0};
    if (ice_workflow_load(e, json_string_value(f), &wf, &d) != 0)
      bad = 1;
    cli_print_diags(&d);
    ice_diags_free(&d);
    /* The last workflow is left to the exit, as `ice run` leaves its run
     * (cli_free_at_exit): freeing a large one value by value was a fifth
     * of `ice validate`. */
    if (wf != NULL && i + 1 == json_array_size(files) && !cli_free_at_exit())
      kept = wf;
    else
      ice_workflow_free(wf);
  }
  if (kept == NULL)
    ice_engine_free(e);
  json_decref(tools);
  json_decref(files);
  return bad ? 2 : 0;
}

/* The arguments of `ice graph`: 0, -1 after printing the help, or 2
 * after a usage error. */
static int graph_args(int argc, char **argv, const char **file,
                      const char **format, json_t *tools) {
  int opts_done = 0, rc;

  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (opts_done || a[0] != '-' || a[1] == '\0') {
      if (*file != NULL)
        return cli_usage_error("unexpected argument '%s'", a);
      if (a[0] == '\0')
        return cli_usage_error("%s", "the workflow FILE is an empty string");
      *file = a;
    } else if (strcmp(a, "--") == 0) {
      opts_done = 1;
    } else if (strcmp(a, "--format") == 0) {
      if (i + 1 >= argc)
        return cli_usage_error("%s needs dot or mermaid", a);
      *format = argv[++i];
    } else if (strncmp(a, "--format=", 9) == 0) {
      *format = a + 9;
    } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      return cli_write_out(usage_graph, 0, "the help") == 0 ? -1 : 1;
    } else if ((rc = tools_opt(argc, argv, &i, tools)) != 0) {
      if (rc != 1)
        return rc;
    } else {
      return cli_usage_error("unknown option '%s'", a);
    }
  }
  if (*file == NULL)
    return cli_usage_error("%s", "graph needs a FILE");
  if (strcmp(*format, "dot") != 0 && strcmp(*format, "mermaid") != 0)
    return cli_usage_error("unknown graph format '%s' (use dot or mermaid)",
                           *format);
  return 0;
}

static int cmd_graph(int argc, char **argv) {
  const char *file = NULL, *format = "dot";
  ice_engine_t *e;
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};
  char *out = NULL;
  int rc;
  json_t *tools = json_array();

  rc = graph_args(argc, argv, &file, &format, tools);
  if (rc != 0) {
    json_decref(tools);
    return rc < 0 ? 0 : rc;
  }
  if (ice_engine_new(&e, NULL, NULL) != 0) {
    fprintf(stderr, "ice: cannot create the engine\n");
    json_decref(tools);
    return 2;
  }
  if (cli_add_tool_files(e, tools) != 0) {
    json_decref(tools);
    ice_engine_free(e);
    return 2;
  }
  json_decref(tools);
  rc = ice_workflow_load(e, file, &wf, &d);
  /* Warnings of a valid file too, before the graph. */
  cli_print_diags(&d);
  ice_diags_free(&d);
  if (rc == 0 && ice_workflow_graph(wf, format, &out) == 0) {
    rc = cli_write_out(out, 0, "the graph") == 0 ? 0 : 1;
    free(out);
  } else {
    rc = 2;
  }
  if (wf == NULL || cli_free_at_exit()) { /* else left to the exit */
    ice_workflow_free(wf);
    ice_engine_free(e);
  }
  return rc;
}

static int dispatch(int argc, char **argv) {
  const char *cmd;

  if (argc < 2) {
    fputs(usage_main, stderr);
    return 2;
  }
  cmd = argv[1];
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0)
    return cli_write_out("ice " ICE_VERSION_STRING "\n", 0, "the version") == 0
               ? 0
               : 1;
  if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
      strcmp(cmd, "-h") == 0)
    return cmd_help(argc, argv);
  if (strcmp(cmd, "run") == 0)
    return cli_run(argc, argv);
  if (strcmp(cmd, "validate") == 0)
    return cmd_validate(argc, argv);
  if (strcmp(cmd, "graph") == 0)
    return cmd_graph(argc, argv);
  if (strcmp(cmd, "resume") == 0)
    return cli_resume(argc, argv);
  if (strcmp(cmd, "runs") == 0)
    return cli_runs(argc, argv);
  if (strcmp(cmd, "show") == 0)
    return cli_show(argc, argv);
  if (strcmp(cmd, "events") == 0)
    return cli_events(argc, argv);
  return cli_usage_error("unknown command '%s'", cmd);
}

int main(int argc, char **argv) {
  if (cli_fill_std_fds() != 0)
    return 2; /* no /dev/null: nowhere to say so either */
  /* A reader that went away (`ice help | head -1`) is a write error that
   * we report, not a silent death. */
  signal(SIGPIPE, SIG_IGN);
  /* A file-size limit (ulimit -f) reached by the store must be an error
   * the store reports ("the run store is full"), not a death by SIGXFSZ.
   * Tools get the default back (proc.c resets every signal). */
  signal(SIGXFSZ, SIG_IGN);
  /* libuv's thread pool runs WASM calls (and blocking HTTP): with its
   * default of 4 threads, a fifth module would wait for one of the first
   * four to end. libuv reads this once, at its first use; a value the user
   * set wins. */
  setenv("UV_THREADPOOL_SIZE", "16", 0);
  return cli_close_stdout(dispatch(argc, argv));
}
