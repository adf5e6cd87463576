/* What every command of `ice` shares: the standard fds made safe, writes
 * to stdout checked to the final close, usage errors and diagnostics on
 * stderr. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Bit fd is set when fd 0, 1 or 2 was closed at start-up and now holds
 * /dev/null: what is written there is lost. */
static unsigned closed_fds;
/* A write to stdout failed and was reported. */
static int out_failed;

/* libuv asserts that the fds it opens are above 2, so a closed 0, 1 or 2
 * must be filled before the engine exists. */
int cli_fill_std_fds(void) {
  for (int fd = 0; fd <= 2; fd++) {
    int nfd;
    if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
      continue;
    nfd = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
    if (nfd < 0)
      return -1;
    if (nfd != fd) {
      /* Only when a lower fd was closed meanwhile; kept for safety. */
      if (dup2(nfd, fd) < 0) {
        close(nfd);
        return -1;
      }
      close(nfd);
    }
    closed_fds |= 1u << fd;
  }
  return 0;
}

int cli_fd_was_closed(int fd) {
  return (closed_fds >> fd) & 1u;
}

int cli_write_out(const char *s, int newline, const char *what) {
  const char *why;

  if (cli_fd_was_closed(STDOUT_FILENO)) {
    why = "standard output is closed";
  } else if (s == NULL) {
    why = strerror(ENOMEM);
  } else {
    errno = 0;
    if (fputs(s, stdout) != EOF && (!newline || putchar('\n') != EOF) &&
        fflush(stdout) == 0 && !ferror(stdout))
      return 0;
    why = strerror(errno != 0 ? errno : EIO);
  }
  fprintf(stderr, "ice: cannot write %s: %s\n", what, why);
  out_failed = 1;
  return -1;
}

/* The last buffered bytes and the close itself can fail too (a full disk,
 * NFS); a success becomes a failure then. */
int cli_close_stdout(int rc) {
  if (fclose(stdout) != 0 && !out_failed) {
    fprintf(stderr, "ice: cannot write to standard output: %s\n",
            strerror(errno));
    return rc == 0 ? 1 : rc;
  }
  return rc == 0 && out_failed ? 1 : rc;
}

static int write_stdout(const char *buf, size_t len, void *data) {
  (void)data;
  return fwrite(buf, 1, len, stdout) == len ? 0 : -1;
}

/* Drops the text: stdout was closed at start-up (cli_print_run reports
 * it once the size is known, as cli_print_result does). */
static int write_nowhere(const char *buf, size_t len, void *data) {
  (void)buf;
  (void)len;
  (void)data;
  return 0;
}

/* After a JSON text was written (rc: 0, or -1 when it was cut): its
 * newline and the flush; 0, or -1 after saying why. */
static int json_written(int rc, const char *what) {
  const char *why;

  if (cli_fd_was_closed(STDOUT_FILENO)) {
    why = "standard output is closed";
  } else {
    if (rc == 0 && putchar('\n') != EOF && fflush(stdout) == 0 &&
        !ferror(stdout))
      return 0;
    why = strerror(errno != 0 ? errno : ferror(stdout) ? EIO : ENOMEM);
  }
  fprintf(stderr, "ice: cannot write %s: %s\n", what, why);
  out_failed = 1;
  return -1;
}

int cli_write_json(const json_t *v, int indent, const char *what) {
  int rc = -1;

  errno = 0;
  /* Written a piece at a time: a large result is never held as text. */
  if (!cli_fd_was_closed(STDOUT_FILENO))
    rc = ice_json_write(v, indent, write_stdout, NULL);
  return json_written(rc, what);
}

int cli_write_run_result(ice_run_t *run, int output_only, int indent,
                         size_t cap) {
  int closed = cli_fd_was_closed(STDOUT_FILENO), rc;

  errno = 0;
  rc = ice_run_write_result(run, output_only, indent, cap,
                            closed ? write_nowhere : write_stdout, NULL);
  if (rc == 1)
    return 1;
  return json_written(rc == 0 ? 0 : -1, "the result");
}

int cli_free_at_exit(void) {
#if defined(__SANITIZE_ADDRESS__) || defined(ICE_CLI_FREE_AT_EXIT)
  return 1;
#else
  return getenv("ICE_FREE_AT_EXIT") != NULL;
#endif
}

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

/* Tool files (SPEC §1.1): each --tools FILE in order, then each entry of
 * $ICE_TOOLS (':'-separated; empty entries are skipped). Every diagnostic
 * is printed; 0 when all loaded, else 2. */
int cli_add_tool_files(ice_engine_t *e, json_t *files) {
  const char *env = getenv("ICE_TOOLS");
  int bad = 0;
  size_t i;
  json_t *f;

  json_array_foreach(files, i, f) {
    ice_diags_t d = {0};
    if (ice_engine_add_tool_file(e, json_string_value(f), &d) != 0)
      bad = 1;
    cli_print_diags(&d);
    ice_diags_free(&d);
  }
  while (env != NULL && *env != '\0') {
    const char *end = strchr(env, ':');
    size_t len = end != NULL ? (size_t)(end - env) : strlen(env);
    if (len > 0) {
      ice_diags_t d = {0};
      char *path = strndup(env, len);
      if (path == NULL) {
        fprintf(stderr, "ice: ICE_TOOLS: %s\n", strerror(ENOMEM));
        return 2;
      }
      if (ice_engine_add_tool_file(e, path, &d) != 0)
        bad = 1;
      cli_print_diags(&d);
      ice_diags_free(&d);
      free(path);
    }
    env = end != NULL ? end + 1 : NULL;
  }
  return bad ? 2 : 0;
}

/* Options that the SPEC lists but that need parts not built yet: they are
 * refused rather than ignored, so a script never silently gets less. */
int cli_unsupported(const char *opt) {
  fprintf(stderr, "ice: %s is not supported yet\n", opt);
  return 2;
}
