#!/bin/sh
# `make bench` (not part of `make test`; about 5 minutes on 2 cores): the
# scheduler alone (bench_sched), then the workloads of issue 13 through the
# `ice` command with and without the store (bench/suite.py, which includes
# the one-node start-up and the 10,000-node chain from the file), the
# store's own figures, resume start-up, and the LLM path (bench/llm.sh).
# The same workloads on other systems: bench/peers/run. What the figures
# mean: docs/performance.md.
set -eu
BUILD=${1:-build}
"$BUILD/bench_sched" 10000
# Debian's python3: the workloads need only the standard library, and a
# pyenv python3 first on PATH may be any version.
/usr/bin/python3 bench/suite.py "$BUILD"
# The run store's cost (docs/durability.md): engine time per node with the
# store on against --no-store (the result's metrics.duration_ms), for a
# 10,000-node chain and a 100,000-item loop, each in a fresh store.
python3 - "$BUILD/ice" <<'PY'
import json, os, shutil, subprocess, sys, tempfile
ice = sys.argv[1]
tmp = tempfile.mkdtemp()
chain = [{"id": f"n{i}", "type": "tool", "tool_name": "echo",
          "tool_args": {"x": i}, **({"dependencies": [f"n{i-1}"]} if i else {})}
         for i in range(10000)]
loop = [{"id": "a", "type": "tool", "tool_name": "echo",
         "tool_args": {"items": list(range(100000))}},
        {"id": "L", "type": "loop", "dependencies": ["a"],
         "items_source": "a.items",
         "body": [{"id": "b", "type": "tool", "tool_name": "echo",
                   "tool_args": {"i": "{{ item }}"}}]}]
for name, nodes, n in (("chain", chain, 10000), ("loop", loop, 100000)):
    wf = os.path.join(tmp, name + ".json")
    with open(wf, "w") as f:
        json.dump({"name": name, "nodes": nodes}, f)
    times = {}
    for mode in ("--no-store", "--store"):
        best = 1e9
        for _ in range(3):
            db = os.path.join(tmp, "runs.db")
            for ext in ("", "-wal", "-shm"):
                if os.path.exists(db + ext):
                    os.unlink(db + ext)
            args = [ice, "run", wf, mode] + ([db] if mode == "--store" else [])
            out = subprocess.run(args, capture_output=True, check=True).stdout
            best = min(best, json.loads(out)["metrics"]["duration_ms"])
        times[mode] = best
    size = sum(os.path.getsize(os.path.join(tmp, "runs.db" + ext))
               for ext in ("", "-wal")
               if os.path.exists(os.path.join(tmp, "runs.db" + ext)))
    print(f"{'store, ' + name:26} engine {times['--store'] * 1e3 / n:7.2f} us/node "
          f"(no store {times['--no-store'] * 1e3 / n:.2f}), "
          f"{size / n:.0f} bytes/node")
shutil.rmtree(tmp)
PY
# `ice resume` start-up on a store holding 1,000 runs (a finished run: it
# is read back and printed), and `ice runs` listing them. Best of 5.
python3 - "$BUILD/ice" <<'PY'
import json, os, shutil, subprocess, sys, tempfile, time
ice = sys.argv[1]
tmp = tempfile.mkdtemp()
db = os.path.join(tmp, "runs.db")
first = None
for i in range(1000):
    out = subprocess.run([ice, "run", "examples/hello.json", "--store", db],
                         capture_output=True, check=True).stdout
    first = first or json.loads(out)["run_id"]
for label, args in (("ice resume (1,000 runs)", ["resume", first]),
                    ("ice runs (1,000 runs)", ["runs"])):
    best = 1e9
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run([ice] + args + ["--store", db], stdout=subprocess.DEVNULL,
                       check=True)
        best = min(best, time.perf_counter() - t)
    print(f"{label:26} end to end {best * 1e3:8.3f} ms")
shutil.rmtree(tmp)
PY
sh bench/llm.sh "$BUILD"
