/* The floor for bench/peers/run: the workloads of issue 13 as a bare C
 * program. The graph is built in code as arrays (successor lists in one
 * block, a count of unfinished dependencies per node), then run from a
 * FIFO ready queue; each node is a no-op "echo" that copies a value into
 * its output slot. Nothing is parsed, validated, allocated per node or
 * printed but one checksum, so it shows what the shapes cost when the
 * engine costs nothing.
 *
 *   floor chain N | fan N | loop M | lattice W D | procs N CMD [ARG]...
 *
 * procs runs N copies of CMD, two at a time (posix_spawn + waitpid), with
 * the child's stdout inherited: the floor of W4. */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

struct graph {
  uint32_t n;
  uint32_t *pending;  /* unfinished dependencies */
  uint32_t *succ_off; /* successors of i: succ[succ_off[i] .. [i + 1]) */
  uint32_t *succ;
  int64_t *out;
};

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n == 0 ? 1 : n, size);

  if (p == NULL) {
    perror("floor");
    exit(1);
  }
  return p;
}

/* Builds the successor lists from an edge list (src[k] -> dst[k]). */
static void graph_init(struct graph *g, uint32_t n, const uint32_t *src,
                       const uint32_t *dst, uint32_t edges) {
  uint32_t *fill;

  g->n = n;
  g->pending = xcalloc(n, sizeof(*g->pending));
  g->succ_off = xcalloc(n + 1, sizeof(*g->succ_off));
  g->succ = xcalloc(edges, sizeof(*g->succ));
  g->out = xcalloc(n, sizeof(*g->out));
  for (uint32_t k = 0; k < edges; k++) {
    g->succ_off[src[k] + 1]++;
    g->pending[dst[k]]++;
  }
  for (uint32_t i = 0; i < n; i++)
    g->succ_off[i + 1] += g->succ_off[i];
  fill = xcalloc(n, sizeof(*fill));
  for (uint32_t k = 0; k < edges; k++)
    g->succ[g->succ_off[src[k]] + fill[src[k]]++] = dst[k];
  free(fill);
}

/* Runs every node once its dependencies are done; returns how many ran.
 * The node body is the no-op echo: its output is its own index. */
static uint32_t graph_run(struct graph *g) {
  uint32_t *queue = xcalloc(g->n, sizeof(*queue));
  uint32_t head = 0, tail = 0;

  for (uint32_t i = 0; i < g->n; i++) {
    if (g->pending[i] == 0)
      queue[tail++] = i;
  }
  while (head < tail) {
    uint32_t id = queue[head++];

    g->out[id] = id;
    for (uint32_t k = g->succ_off[id]; k < g->succ_off[id + 1]; k++) {
      if (--g->pending[g->succ[k]] == 0)
        queue[tail++] = g->succ[k];
    }
  }
  free(queue);
  return head;
}

static void graph_free(struct graph *g) {
  free(g->pending);
  free(g->succ_off);
  free(g->succ);
  free(g->out);
}

static int procs(uint32_t n, char **argv) {
  uint32_t started = 0, running = 0;
  int status;

  while (started < n || running > 0) {
    if (started < n && running < 2) {
      pid_t pid;

      if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0) {
        perror(argv[0]);
        return 1;
      }
      started++;
      running++;
      continue;
    }
    if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
      return 1;
    running--;
  }
  return 0;
}

int main(int argc, char **argv) {
  struct graph g;
  uint32_t n, edges = 0, *src, *dst, ran;
  int64_t sum = 0;

  if (argc < 3)
    goto usage;
  n = (uint32_t)strtoul(argv[2], NULL, 10);
  if (strcmp(argv[1], "procs") == 0 && argc > 3)
    return procs(n, argv + 3);
  if (strcmp(argv[1], "chain") == 0) {
    src = xcalloc(n, sizeof(*src));
    dst = xcalloc(n, sizeof(*dst));
    for (uint32_t i = 1; i < n; i++) {
      src[edges] = i - 1;
      dst[edges++] = i;
    }
    graph_init(&g, n, src, dst, edges);
  } else if (strcmp(argv[1], "fan") == 0) {
    /* 0 is the root, 1..n the middle, n + 1 the join. */
    src = xcalloc(2 * n, sizeof(*src));
    dst = xcalloc(2 * n, sizeof(*dst));
    for (uint32_t i = 1; i <= n; i++) {
      src[edges] = 0;
      dst[edges++] = i;
      src[edges] = i;
      dst[edges++] = n + 1;
    }
    graph_init(&g, n + 2, src, dst, edges);
  } else if (strcmp(argv[1], "loop") == 0) {
    /* One iteration at a time, as ice's loop runs by default: iteration
     * i + 1 is ready when i is done. The join takes the M outputs. */
    src = xcalloc(n, sizeof(*src));
    dst = xcalloc(n, sizeof(*dst));
    for (uint32_t i = 1; i < n; i++) {
      src[edges] = i - 1;
      dst[edges++] = i;
    }
    graph_init(&g, n, src, dst, edges);
  } else if (strcmp(argv[1], "lattice") == 0 && argc > 3) {
    uint32_t w = n, d = (uint32_t)strtoul(argv[3], NULL, 10);

    n = w * d;
    src = xcalloc(2 * n, sizeof(*src));
    dst = xcalloc(2 * n, sizeof(*dst));
    for (uint32_t l = 1; l < d; l++) {
      for (uint32_t i = 0; i < w; i++) {
        src[edges] = (l - 1) * w + i;
        dst[edges++] = l * w + i;
        src[edges] = (l - 1) * w + (i + 1) % w;
        dst[edges++] = l * w + i;
      }
    }
    graph_init(&g, n, src, dst, edges);
  } else {
    goto usage;
  }
  free(src);
  free(dst);
  ran = graph_run(&g);
  for (uint32_t i = 0; i < g.n; i++)
    sum += g.out[i];
  printf("%u nodes ran, checksum %lld\n", ran, (long long)sum);
  graph_free(&g);
  return ran == g.n ? 0 : 1;
usage:
  fprintf(stderr, "usage: floor chain N | fan N | loop M | lattice W D | "
                  "procs N CMD [ARG]...\n");
  return 2;
}
