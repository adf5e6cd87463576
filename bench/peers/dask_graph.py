"""The workloads of issue 13 on dask (bench/peers/run), as low-level task
graphs built in code (a dict of key -> task) and run by dask's synchronous
or threaded scheduler. Each task is the no-op echo: it returns its
argument. Debian's python3-dask, so run with /usr/bin/python3.

    dask_graph.py sync|threaded chain N | fan N | loop M | lattice W D
    dask_graph.py threaded procs N CMD [ARG]...

W3 (loop) is M independent body tasks and one task that gathers their
outputs: dask has no sequential loop node, and its schedulers order
independent tasks themselves. procs runs N copies of CMD as tasks on the
threaded scheduler with 2 workers, the peer of ice's W4.
"""
import subprocess
import sys

import dask
import dask.local
import dask.threaded


def echo(x):
    return x


def gather(*xs):
    return len(xs)


def run_cmd(cmd):
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    return 0


def main(argv):
    scheduler, shape, n = argv[0], argv[1], int(argv[2])
    if shape == "chain":
        graph = {"n0": (echo, 0)}
        graph.update({f"n{i}": (echo, f"n{i - 1}") for i in range(1, n)})
        target = f"n{n - 1}"
    elif shape == "fan":
        graph = {"root": (echo, 0)}
        graph.update({f"n{i}": (echo, "root") for i in range(n)})
        graph["join"] = (gather,) + tuple(f"n{i}" for i in range(n))
        target = "join"
    elif shape == "loop":
        graph = {f"b{i}": (echo, i) for i in range(n)}
        graph["L"] = (gather,) + tuple(f"b{i}" for i in range(n))
        target = "L"
    elif shape == "lattice":
        w, d = n, int(argv[3])
        graph = {f"l0_{i}": (echo, i) for i in range(w)}
        for layer in range(1, d):
            for i in range(w):
                graph[f"l{layer}_{i}"] = (gather, f"l{layer - 1}_{i}",
                                          f"l{layer - 1}_{(i + 1) % w}")
        target = [f"l{d - 1}_{i}" for i in range(w)]
    elif shape == "procs":
        cmd = argv[3:]
        graph = {f"p{i}": (run_cmd, cmd) for i in range(n)}
        target = list(graph)
    else:
        sys.exit("dask_graph: unknown shape " + shape)
    if scheduler == "sync":
        dask.local.get_sync(graph, target)
    else:
        dask.threaded.get(graph, target, num_workers=2)


if __name__ == "__main__":
    main(sys.argv[1:])
