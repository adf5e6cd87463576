/* The `ice` command (SPEC §11): run, validate, graph, help, --version. It
 * uses only the public API of <ice.h>; printing, exit codes, signals and
 * the progress line live here, never in the library. */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const usage_main =
    "ice " ICE_VERSION_STRING " - a workflow engine for LLM and agent apps\n"
    "\n"
    "usage:\n"
    "  ice run FILE [--input K=V]... [--inputs JSON|@FILE] [--max-parallel N]\n"
    "               [--events FILE] [--no-store] [--output-only] [--quiet]\n"
    "  ice validate FILE...\n"
    "  ice graph FILE [--format dot|mermaid]\n"
    "  ice --version\n"
    "  ice help [COMMAND]\n"
    "\n"
    "exit status: 0 success, 1 the run failed, 2 bad usage or invalid\n"
    "workflow, 3 paused or waiting, 130 cancelled by a signal.\n";

static const char *const usage_run =
    "usage: ice run FILE [options]\n"
    "\n"
    "Validates FILE, runs it and prints the result as JSON on stdout.\n"
    "\n"
    "  --input K=V         a run input; V is JSON when it parses, else a "
    "string\n"
    "  --inputs JSON|@FILE all run inputs as one JSON object\n"
    "  --max-parallel N    most top-level nodes running at once\n"
    "  --events FILE       write events as JSON lines (- = stderr)\n"
    "  --no-store          keep the run in memory (the only mode for now)\n"
    "  --output-only       print only the outputs of the nodes\n"
    "  --quiet             no progress line on stderr\n";

static const char *const usage_validate =
    "usage: ice validate FILE...\n"
    "\n"
    "Checks each workflow file and prints every problem as\n"
    "FILE:LINE:COL: error: MESSAGE on stderr. Exit 0 when all are valid,\n"
    "else 2. Prints nothing on stdout.\n";

static const char *const usage_graph =
    "usage: ice graph FILE [--format dot|mermaid]\n"
    "\n"
    "Prints the workflow's dependency graph (default: dot).\n";

int cli_usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "ice: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\nTry 'ice help'.\n");
  return 2;
}

void cli_print_diags(const ice_diags_t *d) {
  for (size_t i = 0; i < d->count; i++) {
    char *s = ice_diag_format(&d->items[i]);
    if (s != NULL) {
      fprintf(stderr, "%s\n", s);
      free(s);
    }
  }
}

static int cmd_help(int argc, char **argv) {
  const char *topic = argc > 2 ? argv[2] : NULL;

  if (topic == NULL)
    fputs(usage_main, stdout);
  else if (strcmp(topic, "run") == 0)
    fputs(usage_run, stdout);
  else if (strcmp(topic, "validate") == 0)
    fputs(usage_validate, stdout);
  else if (strcmp(topic, "graph") == 0)
    fputs(usage_graph, stdout);
  else
    return cli_usage_error("no help for '%s'", topic);
  return 0;
}

static int cmd_validate(int argc, char **argv) {
  ice_engine_t *e;
  int bad = 0, files = 0;

  if (ice_engine_new(&e, NULL, NULL) != 0)
    return 2;
  for (int i = 2; i < argc; i++) {
    ice_workflow_t *wf = NULL;
    ice_diags_t d = {0};
    if (strcmp(argv[i], "--help") == 0) {
      fputs(usage_validate, stdout);
      ice_engine_free(e);
      return 0;
    }
    files++;
    if (ice_workflow_load(e, argv[i], &wf, &d) != 0)
      bad = 1;
    cli_print_diags(&d);
    ice_diags_free(&d);
    ice_workflow_free(wf);
  }
  ice_engine_free(e);
  if (files == 0)
    return cli_usage_error("%s", "validate needs at least one FILE");
  return bad ? 2 : 0;
}

static int cmd_graph(int argc, char **argv) {
  const char *file = NULL, *format = "dot";
  ice_engine_t *e;
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};
  char *out = NULL;
  int rc;

  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--format") == 0 && i + 1 < argc)
      format = argv[++i];
    else if (strncmp(argv[i], "--format=", 9) == 0)
      format = argv[i] + 9;
    else if (strcmp(argv[i], "--help") == 0) {
      fputs(usage_graph, stdout);
      return 0;
    } else if (argv[i][0] == '-' && argv[i][1] != '\0')
      return cli_usage_error("unknown option '%s'", argv[i]);
    else if (file == NULL)
      file = argv[i];
    else
      return cli_usage_error("unexpected argument '%s'", argv[i]);
  }
  if (file == NULL)
    return cli_usage_error("%s", "graph needs a FILE");
  if (strcmp(format, "dot") != 0 && strcmp(format, "mermaid") != 0)
    return cli_usage_error("unknown graph format '%s' (use dot or mermaid)",
                           format);
  if (ice_engine_new(&e, NULL, NULL) != 0)
    return 2;
  rc = ice_workflow_load(e, file, &wf, &d);
  cli_print_diags(&d);
  ice_diags_free(&d);
  if (rc == 0 && ice_workflow_graph(wf, format, &out) == 0) {
    fputs(out, stdout);
    free(out);
  } else {
    rc = 2;
  }
  ice_workflow_free(wf);
  ice_engine_free(e);
  return rc == 0 ? 0 : 2;
}

int main(int argc, char **argv) {
  const char *cmd;

  if (argc < 2) {
    fputs(usage_main, stderr);
    return 2;
  }
  cmd = argv[1];
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
    printf("ice %s\n", ICE_VERSION_STRING);
    return 0;
  }
  if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
      strcmp(cmd, "-h") == 0)
    return cmd_help(argc, argv);
  if (strcmp(cmd, "run") == 0)
    return cli_run(argc, argv);
  if (strcmp(cmd, "validate") == 0)
    return cmd_validate(argc, argv);
  if (strcmp(cmd, "graph") == 0)
    return cmd_graph(argc, argv);
  if (strcmp(cmd, "resume") == 0 || strcmp(cmd, "runs") == 0 ||
      strcmp(cmd, "show") == 0 || strcmp(cmd, "events") == 0) {
    fprintf(stderr,
            "ice: '%s' needs the run store, which is not supported yet\n", cmd);
    return 2;
  }
  return cli_usage_error("unknown command '%s'", cmd);
}

const char *cli_run_usage(void) {
  return usage_run;
}
