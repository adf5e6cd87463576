#!/bin/sh
# `make bench`: engine benchmarks, then `ice run` of a one-node workflow
# end to end (process start to exit), best of 50.
set -eu
BUILD=${1:-build}
"$BUILD/bench_sched" 10000
python3 - "$BUILD/ice" <<'PY'
import subprocess, sys, time
ice = sys.argv[1]
best = 1e9
for _ in range(50):
    t = time.perf_counter()
    subprocess.run([ice, "run", "examples/hello.json", "--no-store"],
                   stdout=subprocess.DEVNULL, check=True)
    best = min(best, time.perf_counter() - t)
print(f"{'ice run (one node)':26} end to end {best * 1e3:8.3f} ms (best of 50)")
PY
# The same 10,000-node chain through the command: load + validate + run +
# print, per node.
python3 - "$BUILD/ice" <<'PY'
import json, os, subprocess, sys, tempfile, time
ice = sys.argv[1]
n = 10000
nodes = [{"id": f"n{i}", "type": "tool", "tool_name": "echo",
          "tool_args": {"x": i}, **({"dependencies": [f"n{i-1}"]} if i else {})}
         for i in range(n)]
with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
    json.dump({"name": "chain", "nodes": nodes}, f)
best = 1e9
for _ in range(5):
    t = time.perf_counter()
    subprocess.run([ice, "run", f.name, "--no-store"], stdout=subprocess.DEVNULL,
                   check=True)
    best = min(best, time.perf_counter() - t)
os.unlink(f.name)
print(f"{'ice run (10,000 chain)':26} end to end {best * 1e3:8.3f} ms "
      f"({best * 1e6 / n:.3f} us/node incl. parse, validate, print)")
PY
