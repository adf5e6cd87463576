"""The workloads of issue 13 and the harness that times them.

Shared by bench/suite.py (`make bench`: ice alone, with and without the
store) and bench/peers/peers.py (the same shapes on other systems). This
file writes the workflow files and times one process at a time; what is
compared with what, and how it is printed, is left to those two.

Every figure is of a whole process, forked by bench/runone.c and reaped
with wait4(2): wall time from fork to exit, CPU time, and the peak RSS the
kernel reports for it (ru_maxrss). The engine time per node of a workload
is (median of its runs - median of the one-node workflow W6 of the same
system) / N, so process start-up is taken out and everything that grows
with the graph (parse, validation, the run, the printed result) stays in.
"""
import json
import os
import statistics
import subprocess
import tempfile

# W4's command. /bin/true writes nothing, which a process tool reports as
# `tool output is not JSON`, so every node would fail; /bin/echo null is
# the cheapest exec that writes a JSON value (ice wraps it as
# {"result": null}). Every peer runs the same command. GNU make and xargs
# exec it directly (no shell metacharacters); ninja always goes through
# /bin/sh -c, whose dash execs the last command in place.
W4_COMMAND = ["/bin/echo", "null"]
W4_COUNT = 1000
W5_WIDTH = 100
W5_DEPTH = 100

# (name, N): the rows of every table, in order. The time per node is
# divided by units(name, N): the nodes of the chain, the fan's N middle
# nodes plus root and join, the loop's iterations, the lattice's nodes,
# W4's processes.
SIZES = [
    ("W1 chain", 1000), ("W1 chain", 10000), ("W1 chain", 100000),
    ("W2 fan", 1000), ("W2 fan", 10000),
    ("W3 loop", 10000), ("W3 loop", 100000),
    ("W4 procs", W4_COUNT),
    ("W5 lattice", W5_WIDTH * W5_DEPTH),
    ("W6 one node", 1),
]


def units(name, n):
    """The N that a workload's time per node is divided by."""
    return n + 2 if name == "W2 fan" else n


def echo(node_id, args, deps=None):
    node = {"id": node_id, "type": "tool", "tool_name": "echo",
            "tool_args": args}
    if deps:
        node["dependencies"] = deps
    return node


def workflow(name, n):
    """The ice workflow (a JSON-able dict) of one row of SIZES."""
    if name in ("W1 chain", "W6 one node"):
        nodes = [echo(f"n{i}", {"x": i}, [f"n{i - 1}"] if i else None)
                 for i in range(n)]
    elif name == "W2 fan":
        # The join reads every middle node's output: its result is the
        # list of the N values.
        nodes = [echo("root", {"x": 0})]
        nodes += [echo(f"n{i}", {"x": i}, ["root"]) for i in range(n)]
        nodes.append(echo("join", {"all": [f"{{{{ n{i}.x }}}}"
                                           for i in range(n)]},
                          [f"n{i}" for i in range(n)]))
    elif name == "W3 loop":
        nodes = [echo("a", {"items": list(range(n))}),
                 {"id": "L", "type": "loop", "dependencies": ["a"],
                  "items_source": "a.items",
                  "body": [echo("b", {"i": "{{ item }}"})]}]
    elif name == "W4 procs":
        return {"name": "procs", "max_parallel": 2,
                "tools": {"cmd": {"command": W4_COMMAND}},
                "nodes": [{"id": f"p{i}", "type": "tool", "tool_name": "cmd"}
                          for i in range(n)]}
    elif name == "W5 lattice":
        # Layer 0 are roots; node (l, i) waits for (l-1, i) and
        # (l-1, i+1 mod width).
        nodes = []
        for layer in range(W5_DEPTH):
            for i in range(W5_WIDTH):
                deps = None
                if layer:
                    deps = [f"l{layer - 1}_{i}",
                            f"l{layer - 1}_{(i + 1) % W5_WIDTH}"]
                nodes.append(echo(f"l{layer}_{i}", {"x": i}, deps))
    else:
        raise ValueError(name)
    return {"name": name.split()[1], "nodes": nodes}


# The test hook that runs a `strict: false` tool with no sandbox at all
# (docs/security.md): W4 "sandbox off", the engine's own cost.
SANDBOX_OFF = {"ICE_SANDBOX_REFUSE": "sandbox"}


def write_w4(path, n, strict):
    """Writes W4 with n tools to path; strict=False lets the test hooks
    (SANDBOX_OFF, or refused namespaces) run the tools with less."""
    doc = workflow("W4 procs", n)
    if not strict:
        doc["tools"]["cmd"]["sandbox"] = {"strict": False}
    with open(path, "w") as f:
        json.dump(doc, f)


def write_workflows(directory):
    """Writes one file per row of SIZES; returns {(name, n): path}."""
    paths = {}
    for name, n in SIZES:
        path = os.path.join(directory, "%s-%d.json" % (name.split()[0], n))
        with open(path, "w") as f:
            json.dump(workflow(name, n), f)
        paths[(name, n)] = path
    return paths


def build_helpers(bindir):
    """Compiles into bindir, with cc rather than CMake (the start-up
    programs must link nothing but their libraries): bench/runone.c;
    bench/startup.c as `startup` (libuv, jansson, libfyaml) and as
    `startup-ice-libs` (the libraries of the `ice` command)."""
    here = os.path.dirname(os.path.abspath(__file__))

    def pkg(*names):
        return subprocess.run(["pkg-config", "--cflags", "--libs"] +
                              list(names), capture_output=True, text=True,
                              check=True).stdout.split()

    base = pkg("libuv", "jansson", "libfyaml")
    builds = [("runone", "runone.c", []), ("startup", "startup.c", base),
              ("startup-ice-libs", "startup.c",
               ["-DICE_LIBS"] + pkg("libuv", "jansson", "libfyaml",
                                    "libcurl", "sqlite3", "libseccomp") +
               ["-Wl,--no-as-needed", "-lstdc++"])]
    for name, src, extra in builds:
        subprocess.run(["cc", "-O2", "-o", os.path.join(bindir, name),
                        os.path.join(here, src)] + extra, check=True)
    global RUNONE
    RUNONE = os.path.join(bindir, "runone")


RUNONE = None


def run_once(argv, stdout=os.devnull, cwd=None, env=None):
    """Runs argv to completion under bench/runone: (wall seconds, CPU
    seconds, peak RSS in KiB). stdin is /dev/null, stdout goes to the
    named file; a status other than 0 raises, with the end of the
    command's stderr."""
    fd, report = tempfile.mkstemp(prefix="ice-bench-")
    os.close(fd)
    try:
        p = subprocess.run([RUNONE, report, stdout] + list(argv), cwd=cwd,
                           env=env, stderr=subprocess.PIPE)
        with open(report) as f:
            fields = f.read().split()
    finally:
        os.unlink(report)
    if p.returncode != 0 or len(fields) != 4 or fields[3] != "0":
        raise RuntimeError("%s: exit %s\n%s" % (
            " ".join(argv), fields[3] if len(fields) == 4 else "?",
            p.stderr.decode(errors="replace")[-2000:]))
    return int(fields[0]) / 1e9, int(fields[1]) / 1e9, int(fields[2])


def load():
    """The 1-minute load average, as `uptime` shows it."""
    return os.getloadavg()[0]


class Sample:
    """The runs of one (workload, system) cell."""

    def __init__(self):
        self.walls, self.cpus, self.rss, self.loads = [], [], [], []

    def add(self, wall, cpu, rss):
        self.walls.append(wall)
        self.cpus.append(cpu)
        self.rss.append(rss)
        self.loads.append(load())

    @property
    def wall(self):
        return statistics.median(self.walls)

    @property
    def cpu(self):
        """Median CPU time (user + system): what load from other
        processes disturbs least, for a single-threaded program."""
        return statistics.median(self.cpus)

    @property
    def peak_mb(self):
        return max(self.rss) / 1024

    @property
    def spread(self):
        """(max - min) / median of the walls: how noisy the cell was."""
        return (max(self.walls) - min(self.walls)) / self.wall


def per_node_us(sample, one_node, n, cpu=False):
    """Engine time per node in microseconds, start-up taken out: of the
    wall times, or of the CPU times."""
    if cpu:
        return (sample.cpu - one_node.cpu) * 1e6 / n
    return (sample.wall - one_node.wall) * 1e6 / n


def machine():
    """One line: cores, CPU model, kernel."""
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return "%d cores, %s, Linux %s" % (os.cpu_count(), model,
                                       os.uname().release)


def write_w4_peers(directory):
    """W4 for make, ninja and xargs: the same W4_COUNT commands, two at a
    time. Returns {system: (argv, cwd)}."""
    cmd = " ".join(W4_COMMAND)
    names = ["p%d" % i for i in range(W4_COUNT)]
    with open(os.path.join(directory, "w4.mk"), "w") as f:
        f.write(".PHONY: all %s\nall: %s\n" % (" ".join(names),
                                               " ".join(names)))
        for name in names:
            f.write("%s:\n\t@%s\n" % (name, cmd))
    ninja_dir = os.path.join(directory, "w4-ninja")
    os.makedirs(ninja_dir, exist_ok=True)
    with open(os.path.join(ninja_dir, "build.ninja"), "w") as f:
        f.write("rule r\n  command = %s\n" % cmd)
        for name in names:
            f.write("build %s: r\n" % name)
        f.write("build all: phony %s\ndefault all\n" % " ".join(names))
    with open(os.path.join(directory, "w4.args"), "w") as f:
        f.write("\n".join(W4_COMMAND[1:] * W4_COUNT) + "\n")
    return {
        "make -j2": (["make", "-s", "-j2", "-f",
                      os.path.join(directory, "w4.mk")], None),
        "ninja -j2": (["ninja", "-j2", "--quiet"], ninja_dir),
        "xargs -P2": (["xargs", "-P2", "-n1", "-a",
                       os.path.join(directory, "w4.args"), W4_COMMAND[0]],
                      None),
    }
