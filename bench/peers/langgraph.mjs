// The workloads of issue 13 on LangGraph.js (bench/peers/run), with the
// graph built in code as a StateGraph and run by invoke(). Each node is
// the no-op echo: it returns a state update. Pinned by package-lock.json
// beside this file (`npm ci`).
//
//   node langgraph.mjs chain N | fan N | loop M | lattice W D
//
// chain: n0 -> n1 -> ... (one superstep per node). fan: root -> N nodes ->
// join, the join waiting on all N (a waiting edge) and reading their N
// outputs from a list channel. loop: one body node with a conditional edge
// back to itself, one item per superstep, as ice's loop runs by default.
// lattice: node (l, i) waits on (l-1, i) and (l-1, i+1 mod W). The
// recursion limit is raised to the number of supersteps.
import { Annotation, END, START, StateGraph } from "@langchain/langgraph";

const [shape, nArg, dArg] = process.argv.slice(2);
const n = Number(nArg);

const State = Annotation.Root({
  last: Annotation({ reducer: (_, b) => b, default: () => 0 }),
  outs: Annotation({
    reducer: (a, b) => a.concat(b),
    default: () => [],
  }),
  sum: Annotation({ reducer: (_, b) => b, default: () => 0 }),
});

const g = new StateGraph(State);
let steps = n + 10;
let input = {};
if (shape === "chain") {
  for (let i = 0; i < n; i++) g.addNode(`n${i}`, () => ({ last: i }));
  g.addEdge(START, "n0");
  for (let i = 1; i < n; i++) g.addEdge(`n${i - 1}`, `n${i}`);
  g.addEdge(`n${n - 1}`, END);
} else if (shape === "fan") {
  const mids = [];
  g.addNode("root", () => ({ last: 0 }));
  for (let i = 0; i < n; i++) {
    g.addNode(`n${i}`, () => ({ outs: [i] }));
    g.addEdge("root", `n${i}`);
    mids.push(`n${i}`);
  }
  g.addNode("join", (s) => ({ sum: s.outs.reduce((a, b) => a + b, 0) }));
  g.addEdge(START, "root");
  g.addEdge(mids, "join");
  g.addEdge("join", END);
  steps = 10;
} else if (shape === "loop") {
  const items = Array.from({ length: n }, (_, i) => i);
  g.addNode("body", (s) => ({ last: s.last + 1, outs: [items[s.last]] }));
  g.addEdge(START, "body");
  g.addConditionalEdges("body", (s) => (s.last < n ? "body" : END));
} else if (shape === "lattice") {
  const w = n;
  const d = Number(dArg);
  for (let l = 0; l < d; l++) {
    for (let i = 0; i < w; i++) {
      g.addNode(`l${l}_${i}`, () => ({ last: i }));
      if (l === 0) g.addEdge(START, `l0_${i}`);
      else {
        const prev = [`l${l - 1}_${i}`, `l${l - 1}_${(i + 1) % w}`];
        g.addEdge(prev, `l${l}_${i}`);
      }
    }
  }
  for (let i = 0; i < w; i++) g.addEdge(`l${d - 1}_${i}`, END);
  steps = d + 10;
} else {
  console.error(`langgraph.mjs: unknown shape ${shape}`);
  process.exit(2);
}
input = { last: 0 };
const out = await g.compile().invoke(input, { recursionLimit: steps });
console.log(
  JSON.stringify({ last: out.last, outs: out.outs.length, sum: out.sum }),
);
