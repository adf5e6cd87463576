"""Two builds of `ice` side by side on the load-path workloads of issue 13
(docs/performance.md, "After item 1"): W1 at 1,000, 10,000 and 100,000
nodes, W2 at 1,000 and 10,000, W5, and the one-node W6, each through
`ice run FILE --no-store`, forked by bench/runone.c.

    /usr/bin/python3 bench/compare.py BEFORE/ice AFTER/ice [ROUNDS]

The rounds are interleaved (each round runs every case on both builds),
so that load from elsewhere falls on both alike. Printed per case and
build: the median wall time, the time per node ((median - median of W6)
/ N) by wall and by CPU time, and the peak RSS (the largest of the
rounds). Nothing is asserted.
"""
import json
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workloads as wl  # noqa: E402

CASES = [("W6 one node", 1), ("W1 chain", 1000), ("W1 chain", 10000),
         ("W1 chain", 100000), ("W2 fan", 1000), ("W2 fan", 10000),
         ("W5 lattice", 10000)]


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    bins = {"before": os.path.abspath(argv[1]),
            "after": os.path.abspath(argv[2])}
    rounds = int(argv[3]) if len(argv) > 3 else 5
    tmp = tempfile.mkdtemp(prefix="ice-compare-")
    try:
        wl.build_helpers(tmp)
        paths = {}
        for name, n in CASES:
            paths[(name, n)] = os.path.join(
                tmp, "%s_%d.json" % (name.split()[0], n))
            with open(paths[(name, n)], "w") as f:
                json.dump(wl.workflow(name, n), f)
        res, loads = {}, []
        for _ in range(rounds):
            loads.append(wl.load())
            for name, n in CASES:
                for b, ice in bins.items():
                    res.setdefault((b, name, n), []).append(wl.run_once(
                        [ice, "run", paths[(name, n)], "--no-store"]))
    finally:
        shutil.rmtree(tmp)
    print(wl.machine())
    print("%d rounds, load %.1f to %.1f" % (rounds, min(loads), max(loads)))
    print()
    print("| workload | N | build | median ms | us/node | CPU us/node "
          "| peak MB |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for name, n in CASES:
        for b in bins:
            s = res[(b, name, n)]
            one = res[(b, "W6 one node", 1)]
            w = statistics.median(x[0] for x in s)
            c = statistics.median(x[1] for x in s)
            w1 = statistics.median(x[0] for x in one)
            c1 = statistics.median(x[1] for x in one)
            per = ("%.2f" % ((w - w1) / wl.units(name, n) * 1e6), "%.2f" % (
                (c - c1) / wl.units(name, n) * 1e6)) if n > 1 else ("-", "-")
            print("| %s | %s | %s | %.1f | %s | %s | %.1f |" % (
                name, "{:,}".format(n), b, w * 1e3, per[0], per[1],
                max(x[2] for x in s) / 1024))


if __name__ == "__main__":
    main(sys.argv)
