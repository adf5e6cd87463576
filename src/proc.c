/* Child processes on the libuv loop (see proc.h). A proc owns five handles
 * (process, three pipes, a drain timer); it calls on_exit and frees itself
 * only once every one of them has closed, so nothing outlives it and the
 * loop can be closed right after. The sandbox wraps this from outside by
 * choosing argv/env/cwd; nothing here knows about limits or tools. */
#include "proc.h"

#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <string.h>

/* stderr is split into lines of at most this many bytes: a child that
 * writes megabytes without a newline gets it back in chunks instead of
 * making us buffer it all. */
#define LINE_CAP (64 * 1024)
/* Bytes of stderr kept for error messages. */
#define TAIL_CAP 2048
/* stdout is read straight into the result buffer; keep this much free. */
#define READ_CHUNK (64 * 1024)
/* After the child has exited and its group was killed, EOF normally comes
 * at once. Only a descendant that left the group (setsid) can hold a pipe
 * open; we stop waiting for it after this long. */
#define DRAIN_MS 1000

struct ice__proc_s {
  uv_process_t process;
  uv_pipe_t in;
  uv_pipe_t out;
  uv_pipe_t err;
  uv_timer_t drain;
  uv_write_t write_req;
  int open_handles; /* initialised and not yet closed */
  int spawned;      /* uv_spawn succeeded: on_exit is owed */
  int exited;       /* exit_cb has run */
  int pid;
  size_t max_output;
  void (*on_stderr_line)(void *data, const char *line, size_t len);
  void (*on_exit)(void *data, const ice__proc_result_t *res);
  void *data;
  char *stdin_buf; /* our copy: the caller's buffer may go away */
  char *out_buf;   /* stdout, always with room for a final NUL */
  size_t out_len;
  size_t out_cap;
  char *line; /* partial stderr line, LINE_CAP bytes when allocated */
  size_t line_len;
  char tail[TAIL_CAP + 1];
  size_t tail_len;
  ice__proc_result_t res;
};

/* A write to a pipe whose reader is gone raises SIGPIPE, whose default
 * action would kill the whole engine. Ignore it unless the embedding
 * program installed its own handler. Children get SIG_DFL back: libuv
 * resets every signal between fork and exec. */
static void ignore_sigpipe(void) {
  struct sigaction sa;

  if (sigaction(SIGPIPE, NULL, &sa) != 0)
    return;
  if ((sa.sa_flags & SA_SIGINFO) || sa.sa_handler != SIG_DFL)
    return;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = SIG_IGN;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGPIPE, &sa, NULL);
}

static void finish(ice__proc_t *p) {
  static char empty[1];

  if (p->spawned && p->on_exit != NULL) {
    if (p->out_buf != NULL)
      p->out_buf[p->out_len] = '\0'; /* allocated, maybe never filled */
    p->res.out = p->out_buf != NULL ? p->out_buf : empty;
    p->res.out_len = p->out_len;
    p->tail[p->tail_len] = '\0';
    p->res.stderr_tail = p->tail;
    p->on_exit(p->data, &p->res);
  }
  ice__free(p->stdin_buf);
  ice__free(p->out_buf);
  ice__free(p->line);
  ice__free(p);
}

static void on_close(uv_handle_t *h) {
  ice__proc_t *p = h->data;

  if (--p->open_handles == 0)
    finish(p);
}

static void close_handle(uv_handle_t *h) {
  if (!uv_is_closing(h))
    uv_close(h, on_close);
}

/* Once the child has exited and both output pipes are closed (or closing)
 * the drain timer has nothing left to guard. */
static void maybe_done(ice__proc_t *p) {
  if (p->exited && uv_is_closing((uv_handle_t *)&p->out) &&
      uv_is_closing((uv_handle_t *)&p->err))
    close_handle((uv_handle_t *)&p->drain);
}

/* SIGKILL to the group, not just the child: a grandchild still holding the
 * pipes would otherwise keep us waiting for EOF. ESRCH (group already
 * gone) is fine. */
static void kill_group(ice__proc_t *p) {
  if (p->pid > 0)
    kill(-p->pid, SIGKILL);
}

/* Keeps the last TAIL_CAP bytes of stderr, lines joined by '\n'. The cut
 * goes at a line start when that loses less than half the buffer, so the
 * tail is whole lines unless the lines are very long. */
static void append_tail(ice__proc_t *p, const char *s, size_t len) {
  size_t sep = p->tail_len > 0 ? 1 : 0;
  size_t total = p->tail_len + sep + len;

  if (len >= TAIL_CAP) {
    memcpy(p->tail, s + len - TAIL_CAP, TAIL_CAP);
    p->tail_len = TAIL_CAP;
    return;
  }
  if (total > TAIL_CAP) {
    size_t excess = total - TAIL_CAP; /* <= tail_len, as len < TAIL_CAP */
    size_t from = excess > 0 ? excess - 1 : 0;
    char *nl = memchr(p->tail + from, '\n', p->tail_len - from);
    size_t drop = excess;

    if (nl != NULL && (size_t)(nl - p->tail) + 1 - excess < TAIL_CAP / 2) {
      drop = (size_t)(nl - p->tail) + 1;
    } else if (nl == NULL && p->tail_len + 1 - excess < TAIL_CAP / 2) {
      drop = p->tail_len; /* the new line starts the tail */
      sep = 0;
    }
    memmove(p->tail, p->tail + drop, p->tail_len - drop);
    p->tail_len -= drop;
  }
  if (sep)
    p->tail[p->tail_len++] = '\n';
  memcpy(p->tail + p->tail_len, s, len);
  p->tail_len += len;
}

static void emit_line(ice__proc_t *p, const char *s, size_t len, int strip) {
  if (strip && len > 0 && s[len - 1] == '\r')
    len--;
  append_tail(p, s, len);
  if (p->on_stderr_line != NULL)
    p->on_stderr_line(p->data, s, len);
}

/* Delivers every complete line in p->line[0..line_len), keeping the
 * unterminated rest; a full buffer without a newline goes out as a chunk
 * (holding back a final '\r' so a CRLF split across reads still strips). */
static void split_lines(ice__proc_t *p, size_t scan_from) {
  size_t start = 0;
  size_t i;

  for (i = scan_from; i < p->line_len; i++) {
    if (p->line[i] == '\n') {
      emit_line(p, p->line + start, i - start, 1);
      start = i + 1;
    }
  }
  if (start == 0 && p->line_len == LINE_CAP) {
    size_t n = p->line[LINE_CAP - 1] == '\r' ? LINE_CAP - 1 : LINE_CAP;

    emit_line(p, p->line, n, 0);
    start = n;
  }
  memmove(p->line, p->line + start, p->line_len - start);
  p->line_len -= start;
}

static void err_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  ice__proc_t *p = h->data;

  if (p->line == NULL)
    p->line = ice__malloc(LINE_CAP);
  if (p->line == NULL) {
    *buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
    return;
  }
  *buf = uv_buf_init(p->line + p->line_len, LINE_CAP - p->line_len);
}

static void err_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  ice__proc_t *p = s->data;

  if (nread > 0) {
    size_t old = p->line_len;

    p->line_len += (size_t)nread;
    split_lines(p, old);
    return;
  }
  if (nread == 0)
    return; /* EAGAIN */
  /* EOF or an error: flush the unterminated last line. */
  if (p->line_len > 0) {
    emit_line(p, p->line, p->line_len, 1);
    p->line_len = 0;
  }
  close_handle((uv_handle_t *)s);
  maybe_done(p);
}

static void out_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  ice__proc_t *p = h->data;
  size_t avail;

  /* +1 keeps room for the NUL that on_exit promises. */
  if (p->out_cap - p->out_len < READ_CHUNK + 1) {
    size_t cap = p->out_cap * 2;
    char *nb;

    if (cap < p->out_len + READ_CHUNK + 1)
      cap = p->out_len + READ_CHUNK + 1;
    /* Never grow much past the cap: the memory bound is the point. */
    if (p->max_output > 0 && cap > p->max_output + READ_CHUNK + 1)
      cap = p->max_output + READ_CHUNK + 1;
    nb = ice__realloc(p->out_buf, cap);
    if (nb == NULL) {
      *buf = uv_buf_init(NULL, 0);
      return;
    }
    p->out_buf = nb;
    p->out_cap = cap;
  }
  avail = p->out_cap - p->out_len - 1;
  if (avail > (1u << 30)) /* uv_buf_t lengths are unsigned int */
    avail = 1u << 30;
  *buf = uv_buf_init(p->out_buf + p->out_len, (unsigned int)avail);
}

static void out_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  ice__proc_t *p = s->data;

  if (nread > 0) {
    p->out_len += (size_t)nread;
    p->out_buf[p->out_len] = '\0';
    if (p->max_output == 0 || p->out_len <= p->max_output)
      return;
    /* Over the cap: keep exactly max_output bytes and stop the child. The
     * engine asked for that kill, so killed = 1 as well. */
    p->res.output_exceeded = 1;
    p->out_len = p->max_output;
    p->out_buf[p->out_len] = '\0';
    ice__proc_kill(p);
  } else if (nread == 0) {
    return;
  } else if (nread == UV_ENOBUFS) {
    /* No memory for the output: the result would be wrong, so the child
     * is killed (killed = 1) rather than left writing into nothing. */
    ice__proc_kill(p);
  }
  close_handle((uv_handle_t *)s);
  maybe_done(p);
}

/* Any error here (EPIPE, ECONNRESET, ECANCELED when the child exited
 * first) only means the child did not want all of its input. */
static void on_write(uv_write_t *req, int status) {
  ice__proc_t *p = req->data;

  close_handle((uv_handle_t *)&p->in);
}

static void on_drain_timeout(uv_timer_t *t) {
  ice__proc_t *p = t->data;

  if (!uv_is_closing((uv_handle_t *)&p->err) && p->line_len > 0) {
    emit_line(p, p->line, p->line_len, 1);
    p->line_len = 0;
  }
  close_handle((uv_handle_t *)&p->out);
  close_handle((uv_handle_t *)&p->err);
  close_handle((uv_handle_t *)&p->drain);
}

/* libuv has already reaped the child here (its own waitpid), which is why
 * cpu_seconds and max_rss_kb stay 0: the rusage is gone and racing libuv
 * for it with our own wait would break its bookkeeping. */
static void on_process_exit(uv_process_t *proc, int64_t status, int sig) {
  ice__proc_t *p = proc->data;

  p->exited = 1;
  p->res.exit_status = status;
  p->res.term_signal = sig;
  kill_group(p);
  /* Nobody is left to read stdin; this cancels a pending write. */
  close_handle((uv_handle_t *)&p->in);
  close_handle((uv_handle_t *)proc);
  if (!uv_is_closing((uv_handle_t *)&p->out) ||
      !uv_is_closing((uv_handle_t *)&p->err))
    uv_timer_start(&p->drain, on_drain_timeout, DRAIN_MS, 0);
  maybe_done(p);
}

static void init_handles(uv_loop_t *loop, ice__proc_t *p) {
  uv_pipe_init(loop, &p->in, 0);
  uv_pipe_init(loop, &p->out, 0);
  uv_pipe_init(loop, &p->err, 0);
  uv_timer_init(loop, &p->drain);
  p->in.data = p;
  p->out.data = p;
  p->err.data = p;
  p->drain.data = p;
  p->process.data = p;
  p->write_req.data = p;
  p->open_handles = 5; /* uv_spawn initialises the process handle too */
}

/* After a failed uv_spawn every handle still has to go through uv_close;
 * the proc then frees itself from the last close callback (on_exit is not
 * called because spawned == 0). The caller only has to keep running the
 * loop, as it would anyway, before uv_loop_close. */
static void close_all(ice__proc_t *p) {
  close_handle((uv_handle_t *)&p->process);
  close_handle((uv_handle_t *)&p->in);
  close_handle((uv_handle_t *)&p->out);
  close_handle((uv_handle_t *)&p->err);
  close_handle((uv_handle_t *)&p->drain);
}

int ice__proc_start(uv_loop_t *loop, const ice__proc_opts_t *opts,
                    ice__proc_t **out) {
  uv_process_options_t po;
  uv_stdio_container_t stdio[3];
  ice__proc_t *p;
  int r;

  *out = NULL;
  /* uv_buf_t lengths are unsigned int. */
  if (opts->argv == NULL || opts->argv[0] == NULL || opts->stdin_len > UINT_MAX)
    return UV_EINVAL;
  ignore_sigpipe();
  p = ice__calloc(1, sizeof(*p));
  if (p == NULL)
    return UV_ENOMEM;
  if (opts->stdin_len > 0) {
    p->stdin_buf = ice__malloc(opts->stdin_len);
    if (p->stdin_buf == NULL) {
      ice__free(p);
      return UV_ENOMEM;
    }
    memcpy(p->stdin_buf, opts->stdin_data, opts->stdin_len);
  }
  p->max_output = opts->max_output_bytes;
  p->on_stderr_line = opts->on_stderr_line;
  p->on_exit = opts->on_exit;
  p->data = opts->data;
  init_handles(loop, p);

  stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
  stdio[0].data.stream = (uv_stream_t *)&p->in;
  stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[1].data.stream = (uv_stream_t *)&p->out;
  stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[2].data.stream = (uv_stream_t *)&p->err;
  memset(&po, 0, sizeof(po));
  po.exit_cb = on_process_exit;
  po.file = opts->argv[0];
  /* libuv only reads these during uv_spawn (fork + exec happen inside),
   * so the caller's arrays need not outlive this call. */
  po.args = (char **)opts->argv;
  po.env = (char **)opts->env;
  po.cwd = opts->cwd;
  po.flags = UV_PROCESS_DETACHED; /* setsid: the child leads its group */
  po.stdio_count = 3;
  po.stdio = stdio;

  r = uv_spawn(loop, &p->process, &po);
  if (r != 0) {
    close_all(p);
    return r;
  }
  p->spawned = 1;
  p->pid = p->process.pid;
  /* Reading cannot fail on freshly opened pipes; if it did, the pipe would
   * just never deliver and the drain timer would close it after exit. */
  uv_read_start((uv_stream_t *)&p->out, out_alloc, out_read);
  uv_read_start((uv_stream_t *)&p->err, err_alloc, err_read);
  if (p->stdin_buf != NULL) {
    uv_buf_t b = uv_buf_init(p->stdin_buf, (unsigned int)opts->stdin_len);

    if (uv_write(&p->write_req, (uv_stream_t *)&p->in, &b, 1, on_write) != 0)
      close_handle((uv_handle_t *)&p->in);
  } else {
    close_handle((uv_handle_t *)&p->in); /* the child sees EOF at once */
  }
  *out = p;
  return 0;
}

void ice__proc_kill(ice__proc_t *p) {
  /* After exit the group was already killed, and the pid may soon belong
   * to someone else: do nothing. */
  if (p == NULL || p->exited)
    return;
  p->res.killed = 1;
  kill_group(p);
}

int ice__proc_pid(const ice__proc_t *p) {
  return p->pid;
}
