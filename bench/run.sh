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
