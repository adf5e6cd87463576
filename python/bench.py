"""Figures for docs/python.md: what a Python executor or tool costs.

    PYTHONPATH=python python3 python/bench.py [ICE_BINARY]

Prints, per node, the time of a run of N independent nodes of each kind
(run from Python, in one process, no store), and a 10,000-node workflow
run by `ice run` and by Workflow.load(...).run() as whole processes.
"""

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time

import ice


@ice.register_node("bench_sync")
def bench_sync(workflow, cfg, ctx):
    return {"i": cfg.i}


@ice.register_node("bench_async")
async def bench_async(workflow, cfg, ctx):
    return {"i": cfg.i}


@ice.register_tool("bench_tool")
def bench_tool(i):
    return {"i": i}


@ice.register_tool("bench_atool")
async def bench_atool(i):
    return {"i": i}


def nodes(kind, n):
    out = []
    for i in range(n):
        if kind in ("bench_sync", "bench_async"):
            out.append({"id": "n%d" % i, "type": kind, "i": i})
        elif kind == "cat":
            out.append({"id": "n%d" % i, "type": "tool", "tool_name": "cat",
                        "tool_args": {"i": i}})
        elif kind == "python3":
            out.append({"id": "n%d" % i, "type": "tool", "tool_name": "py",
                        "tool_args": {"i": i}})
        else:
            out.append({"id": "n%d" % i, "type": "tool", "tool_name": kind,
                        "tool_args": {"i": i}})
    return out


TOOLS = {
    "cat": {"command": ["cat"]},
    "py": {"command": [sys.executable, "-c",
                       "import json,sys; print(json.dumps(json.load(sys.stdin)))"]},
}


def per_node_us(kind, n, max_parallel=5, reps=3):
    wf = ice.Workflow(nodes(kind, n), name="bench", tools=TOOLS,
                      max_parallel=max_parallel)
    wf.validate()
    best = None
    for _ in range(reps):
        t0 = time.perf_counter()
        r = wf.run(store=False)
        dt = time.perf_counter() - t0
        assert r.success, r.errors[:3]
        best = dt if best is None else min(best, dt)
    return best / n * 1e6


def wall(cmd, reps=3, env=None):
    best = None
    for _ in range(reps):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return best


def ticker_gap(wf):
    """The longest stall of a 1 ms asyncio ticker while wf runs."""
    async def run():
        gaps = []
        stop = asyncio.Event()

        async def tick():
            last = time.perf_counter()
            while not stop.is_set():
                await asyncio.sleep(0.001)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        t = asyncio.ensure_future(tick())
        await asyncio.sleep(0.01)
        await wf.execute(store=False)
        stop.set()
        await t
        return max(gaps)

    return asyncio.run(run())


def main():
    ice_bin = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "build", "ice")
    n = 5000
    print("per node, %d independent nodes, best of 3 (us):" % n)
    rows = [
        ("tool node, C tool echo (C executor, C tool)", "echo", n),
        ("Python executor, plain function", "bench_sync", n),
        ("Python executor, coroutine", "bench_async", n),
        ("tool node, Python tool, plain function", "bench_tool", n),
        ("tool node, Python tool, coroutine", "bench_atool", n),
        ("tool node, process tool `cat`", "cat", 500),
        ("tool node, process tool `python3 -c`", "python3", 100),
    ]
    for label, kind, count in rows:
        print("  %-48s %9.1f" % (label, per_node_us(kind, count)))

    big = 10000
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "big.json")
        with open(path, "w") as f:
            json.dump({"name": "big", "nodes": [
                {"id": "n%d" % i, "type": "tool", "tool_name": "echo",
                 "tool_args": {"i": i},
                 "dependencies": ["n%d" % (i - 1)] if i else []}
                for i in range(big)]}, f)
        env = dict(os.environ)
        t_cli = wall([ice_bin, "run", path, "--no-store", "--quiet"], env=env)
        t_py = wall([sys.executable, "-c",
                     "import ice,sys; r=ice.Workflow.load(sys.argv[1]).run(store=False);"
                     "assert r.success", path], env=env)
        t_py0 = wall([sys.executable, "-c", "import ice"], env=env)
        wf = ice.Workflow.load(path)
        wf.validate()
        t0 = time.perf_counter()
        wf.run(store=False)
        t_in = time.perf_counter() - t0
        gap = ticker_gap(wf)
    print("a chain of %d echo nodes, whole process, best of 3 (ms):" % big)
    print("  %-48s %9.1f" % ("ice run --no-store --quiet", t_cli * 1e3))
    print("  %-48s %9.1f" % ("python3: Workflow.load(f).run(store=False)", t_py * 1e3))
    print("  %-48s %9.1f" % ("python3 -c 'import ice' alone", t_py0 * 1e3))
    print("  %-48s %9.1f" % ("in process, run() of a validated workflow", t_in * 1e3))
    print("  %-48s %9.1f" % ("longest stall of a 1 ms asyncio ticker", gap * 1e3))


if __name__ == "__main__":
    main()
