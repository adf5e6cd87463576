// The workloads of issue 13 on oneTBB's flow_graph (bench/peers/run), with
// the graph built in code. W1, W2 and W5 are dependency graphs of
// continue_node: a node runs once every predecessor has signalled, and its
// body is the no-op echo (it writes a value to its output slot). W3 is one
// serial function_node fed M items, which it runs one at a time in order,
// as ice's loop does by default. TBB's own scheduler, one worker per core.
//
//   tbb_flow chain N | fan N | loop M | lattice W D
//
// Prints one checksum of the outputs, so that no body can be dropped.
#include <oneapi/tbb/flow_graph.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

using namespace oneapi::tbb::flow;
using node_t = continue_node<continue_msg>;

int main(int argc, char **argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: tbb_flow chain N | fan N | loop M | "
                         "lattice W D\n");
    return 2;
  }
  const char *shape = argv[1];
  long n = std::strtol(argv[2], nullptr, 10);
  graph g;
  std::vector<long> out;
  std::vector<std::unique_ptr<node_t>> nodes;

  if (std::strcmp(shape, "chain") == 0) {
    out.resize(n);
    for (long i = 0; i < n; i++) {
      nodes.emplace_back(new node_t(g, [&out, i](const continue_msg &) {
        out[i] = i > 0 ? out[i - 1] + 1 : 0;
      }));
      if (i > 0)
        make_edge(*nodes[i - 1], *nodes[i]);
    }
    nodes[0]->try_put(continue_msg());
  } else if (std::strcmp(shape, "fan") == 0) {
    // nodes[0] is the root, 1..n the middle, n + 1 the join, which reads
    // every middle output.
    out.resize(n + 2);
    nodes.emplace_back(new node_t(g, [&out](const continue_msg &) {
      out[0] = 0;
    }));
    for (long i = 1; i <= n; i++) {
      nodes.emplace_back(new node_t(g, [&out, i](const continue_msg &) {
        out[i] = i;
      }));
      make_edge(*nodes[0], *nodes[i]);
    }
    nodes.emplace_back(new node_t(g, [&out, n](const continue_msg &) {
      long sum = 0;
      for (long i = 1; i <= n; i++)
        sum += out[i];
      out[n + 1] = sum;
    }));
    for (long i = 1; i <= n; i++)
      make_edge(*nodes[i], *nodes[n + 1]);
    nodes[0]->try_put(continue_msg());
  } else if (std::strcmp(shape, "loop") == 0) {
    out.resize(n);
    function_node<long, continue_msg> body(
        g, serial, [&out](long item) {
          out[item] = item;
          return continue_msg();
        });
    for (long i = 0; i < n; i++)
      body.try_put(i);
    g.wait_for_all();
  } else if (std::strcmp(shape, "lattice") == 0 && argc > 3) {
    long w = n, d = std::strtol(argv[3], nullptr, 10);
    n = w * d;
    out.resize(n);
    for (long l = 0; l < d; l++) {
      for (long i = 0; i < w; i++) {
        long id = l * w + i;
        nodes.emplace_back(new node_t(g, [&out, id, w](const continue_msg &) {
          out[id] = id >= w ? out[id - w] + 1 : 0;
        }));
        if (l > 0) {
          make_edge(*nodes[(l - 1) * w + i], *nodes[id]);
          make_edge(*nodes[(l - 1) * w + (i + 1) % w], *nodes[id]);
        }
      }
    }
    for (long i = 0; i < w; i++)
      nodes[i]->try_put(continue_msg());
  } else {
    std::fprintf(stderr, "tbb_flow: unknown shape %s\n", shape);
    return 2;
  }
  g.wait_for_all();
  long sum = 0;
  for (long v : out)
    sum += v;
  std::printf("%zu outputs, checksum %ld\n", out.size(), sum);
  return 0;
}
