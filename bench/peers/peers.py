"""bench/peers/run's driver: the workloads of issue 13 on ice and its peers,
one table. Run it through bench/peers/run, which installs what it needs.

    /usr/bin/python3 bench/peers/peers.py BUILD [--rounds R] [--quick]

Every cell is whole processes, timed by bench/runone (bench/workloads.py):
ice runs the workflow file with --no-store; the peers build the same shape
in code (floor.c, tbb_flow.cc, dask_graph.py, langgraph.mjs). Rounds are
interleaved: each round runs every cell once, so load from elsewhere falls
on all systems alike, and every ratio compares figures of the same
rounds. Time per node is (median - median of the same system's one-node
run W6) / N, as in `make bench`. LangGraph.js takes 1 to 8 ms per node
and grows with the graph, so its rows of 10,000 nodes run in the first
round only (about 5 minutes in all; --quick leaves them out) and its
100,000 rows never.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import workloads as wl  # noqa: E402

SYSTEMS = ["ice", "C floor", "oneTBB", "dask sync", "dask threaded",
           "LangGraph.js", "make -j2", "ninja -j2", "xargs -P2"]
PY = "/usr/bin/python3"  # Debian's, which has python3-dask


def shape_args(name, n):
    """The shape arguments of floor, tbb_flow, dask_graph, langgraph."""
    return {"W1 chain": ["chain", str(n)], "W2 fan": ["fan", str(n)],
            "W3 loop": ["loop", str(n)],
            "W5 lattice": ["lattice", str(wl.W5_WIDTH), str(wl.W5_DEPTH)],
            "W6 one node": ["chain", "1"]}.get(name)


def cells(ice, paths, w4, tmp, quick):
    """{(name, n, system): (argv, cwd, first round only)}"""
    out = {}
    floor = os.path.join(tmp, "floor")
    tbb = os.path.join(tmp, "tbb_flow")
    dask = [PY, os.path.join(HERE, "dask_graph.py")]
    lg = ["node", os.path.join(HERE, "langgraph.mjs")]
    for name, n in wl.SIZES:
        out[(name, n, "ice")] = ([ice, "run", paths[(name, n)],
                                  "--no-store"], None, False)
        if name == "W4 procs":
            out[(name, n, "C floor")] = (
                [floor, "procs", str(n)] + wl.W4_COMMAND, None, False)
            out[(name, n, "dask threaded")] = (
                dask + ["threaded", "procs", str(n)] + wl.W4_COMMAND, None,
                False)
            for system, (argv, cwd) in w4.items():
                out[(name, n, system)] = (argv, cwd, False)
            continue
        args = shape_args(name, n)
        out[(name, n, "C floor")] = ([floor] + args, None, False)
        out[(name, n, "oneTBB")] = ([tbb] + args, None, False)
        out[(name, n, "dask sync")] = (dask + ["sync"] + args, None, False)
        out[(name, n, "dask threaded")] = (dask + ["threaded"] + args, None,
                                           False)
        if n <= 1000 or name == "W3 loop" and n <= 10000:
            out[(name, n, "LangGraph.js")] = (lg + args, HERE, False)
        elif n <= 10000 and not quick:
            out[(name, n, "LangGraph.js")] = (lg + args, HERE, True)
    return out


def build(tmp):
    wl.build_helpers(tmp)
    subprocess.run(["cc", "-O2", "-o", os.path.join(tmp, "floor"),
                    os.path.join(HERE, "floor.c")], check=True)
    subprocess.run(["g++", "-O2", "-std=c++17", "-o",
                    os.path.join(tmp, "tbb_flow"),
                    os.path.join(HERE, "tbb_flow.cc"), "-ltbb"], check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true",
                    help="leave out LangGraph.js at 10,000 nodes")
    args = ap.parse_args()
    ice = os.path.abspath(os.path.join(args.build, "ice"))
    tmp = tempfile.mkdtemp(prefix="ice-peers-")
    try:
        build(tmp)
        paths = wl.write_workflows(tmp)
        todo = cells(ice, paths, wl.write_w4_peers(tmp), tmp, args.quick)
        print("ice: %s" % ice)
        print("machine: %s" % wl.machine())
        print("load average at start: %.2f; %d rounds, medians" %
              (wl.load(), args.rounds))
        samples = {key: wl.Sample() for key in todo}
        for r in range(args.rounds):
            for key, (argv, cwd, once) in todo.items():
                if once and r > 0:
                    continue
                samples[key].add(*wl.run_once(argv, cwd=cwd))
            print("round %d done, load %.2f" % (r + 1, wl.load()),
                  flush=True)
        table(samples, todo)
        print("load average at end: %.2f" % wl.load())
    finally:
        shutil.rmtree(tmp)


def fmt(v):
    return ("%.3g" % v) if abs(v) < 1000 else "%.0f" % v


def table(s, todo):
    def value(name, n, system):
        """(figure, unit) of one cell, or None."""
        c = s.get((name, n, system))
        if c is None:
            return None
        if name in ("W4 procs", "W6 one node"):
            return c.wall * 1e3
        return wl.per_node_us(c, s[("W6 one node", 1, system)],
                              wl.units(name, n))

    print()
    print("| workload | unit | " + " | ".join(SYSTEMS) + " |")
    print("|---|---|" + "---:|" * len(SYSTEMS))
    for name, n in wl.SIZES:
        unit = "ms" if name in ("W4 procs", "W6 one node") else "us/node"
        ice = value(name, n, "ice")
        row = "| %s %s | %s |" % (name, "{:,}".format(n), unit)
        for system in SYSTEMS:
            v = value(name, n, system)
            if v is None:
                row += " |"
                continue
            # A floor whose whole run is within the noise of its one-node
            # run has no time per node to show.
            cell = fmt(v) if v > 0 else "~0"
            if system != "ice":
                cell += " (%s×)" % fmt(ice / v) if v > 0 else ""
            if todo[(name, n, system)][2]:
                cell += " ¹"
            row += " %s |" % cell
        print(row)
    print()
    print("(ice / peer in brackets: above 1, ice is slower. ~0: the run is "
          "within the noise of\nthe one-node run. ¹ one run, not a median. "
          "An empty cell: not run, see docs/performance.md.)")
    print()
    print("Peak RSS, MB (largest of the runs):")
    print()
    print("| workload | " + " | ".join(SYSTEMS) + " |")
    print("|---|" + "---:|" * len(SYSTEMS))
    for name, n in wl.SIZES:
        row = "| %s %s |" % (name, "{:,}".format(n))
        for system in SYSTEMS:
            c = s.get((name, n, system))
            row += " %s |" % ("" if c is None else "%.0f" % c.peak_mb)
        print(row)
    print()
    print("Spread of each cell, (max - min) / median, and load (1 min):")
    for name, n in wl.SIZES:
        parts = []
        for system in SYSTEMS:
            c = s.get((name, n, system))
            if c is not None and len(c.walls) > 1:
                parts.append("%s %.0f%%" % (system, c.spread * 100))
        loads = [x for system in SYSTEMS
                 for x in (s[(name, n, system)].loads
                           if (name, n, system) in s else [])]
        print("  %s %s: %s; load %.1f-%.1f" % (
            name, "{:,}".format(n), ", ".join(parts), min(loads), max(loads)))


if __name__ == "__main__":
    main()
