"""Where `ice run` spends its time (docs/performance.md): perf record of one
`ice run --no-store` of a workload of bench/workloads.py, with DWARF call
graphs, summarised as one table: each sample is put in the phase of the
run it was taken in (by the functions on its stack) and in the kind of
code it was executing (its leaf frame).

    /usr/bin/python3 bench/profile.py BUILD "W1 chain" 100000 ["W2 fan" 10000]
    /usr/bin/python3 bench/profile.py --memory BUILD "W1 chain" 100000
    /usr/bin/python3 bench/profile.py --instructions BUILD "W1 chain" 10000
    /usr/bin/python3 bench/profile.py --procs BUILD "W4 procs" 300

Needs perf (Debian's linux-perf) and root or a perf_event_paranoid <= 1.
Reads the samples of the `ice` process only; jansson's static functions
have no symbols in Debian's build, so they count as jansson, by library.

--memory runs valgrind's massif instead (Debian's valgrind) and shows the
heap at its peak by owner: each allocation is charged to the nearest
function of ice on its stack (jansson's parser to ice_workflow_parse, for
instance), plus malloc's own overhead.

--procs profiles W4 (N process-tool nodes, two at a time) instead, and
splits the CPU time of the engine and of its children, before and after
their exec, by step: fork, the private temporary directory, the child's
set-up, execve, the command itself.

--instructions runs valgrind's callgrind and counts the instructions per
node of each phase (inclusive, from the functions in STEPS): exact, and
the same however loaded the machine is, where times are not.
"""
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workloads as wl  # noqa: E402

# (phase, functions): a sample belongs to the first phase one of whose
# functions is on its stack. Inner phases come before the outer ones that
# call them (the result object is built inside uv_run, for instance).
PHASES = [
    ("start-up: dynamic loader", {"_dl_start", "_dl_init", "_dl_start_user",
                                  "_dl_fini", "_dl_relocate_object"}),
    ("exit: fclose(stdout)", {"cli_close_stdout"}),
    ("load: read the file", {"ice__file_read_diag"}),
    ("load: parse JSON (jansson)", {"json_loadb"}),
    ("load: parse JSON (quick reader)", {"ice__json_fast_parse"}),
    ("load: depth check", {"ice__json_too_deep"}),
    ("validate: dependency graph", {"ice__graph_check"}),
    ("validate: tool definitions", {"ice__tool_defs_check"}),
    ("validate: node fields", {"ice__check_node"}),
    ("stream: compile a plain node", {"ice__tool_compile"}),
    ("validate: compile hooks", {"compile"}),
    ("stream: read plain nodes", {"take"}),
    ("stream: read other nodes", {"on_node"}),
    ("stream: read the rest", {"ice__json_fast_stream"}),
    ("validate: ids, types, rest", {"finish", "ice_workflow_parse",
                                    "ice__load_finish"}),
    ("run: result object", {"build_result", "ice_run_result"}),
    ("print: text from the run's state", {"write_result",
                                          "ice_run_write_result"}),
    ("run: scheduler, nodes, events", {"uv_run"}),
    ("run: create", {"ice_run_new"}),
    ("print: size pass", {"ice__json_size"}),
    ("print: format", {"ice_json_format", "ice_json_write"}),
    ("print: write", {"cli_print_result", "cli_print_run"}),
    ("free: the run", {"really_free", "ice_run_free"}),
    ("free: the workflow", {"ice_workflow_free"}),
    ("free: the engine", {"ice_engine_free"}),
]
KINDS = ["malloc/free", "kernel", "jansson", "libc, other", "ice", "other"]
ALLOC = ("malloc", "free", "_int_", "unlink_chunk", "realloc", "calloc",
         "tcache", "sysmalloc", "cfree")


def samples(script_text, heads=False):
    """perf script's text -> [[(symbol, dso), ...] leaf first], the
    samples with a stack; with heads, [(header fields, stack)] for every
    sample (the header is the line before the stack: COMM [PID])."""
    out, cur, head = [], None, None
    for line in script_text.splitlines() + [""]:
        if not line.strip() or not line[0].isspace():
            if cur is not None:
                out.append((head, cur))
            cur, head = None, None
            if line.strip():
                cur, head = [], line.split()
        elif cur is not None:
            parts = line.strip().split(None, 1)
            if len(parts) == 2 and " (" in parts[1]:
                sym, dso = parts[1].rsplit(" (", 1)
                cur.append((sym, dso.rstrip(")")))
    # A frame inlined into a function is printed before that function's
    # own frame, with "(inlined)" for its library: give it the library of
    # the function it was inlined into.
    for _, st in out:
        for i in range(len(st) - 2, -1, -1):
            if st[i][1] == "inlined":
                st[i] = (st[i][0], st[i + 1][1])
    if heads:
        return out
    return [st for _, st in out if st]


def phase(stack):
    names = {sym for sym, _ in stack}
    for name, funcs in PHASES:
        if names & funcs:
            return name
    return "other"


def kind(stack):
    sym, dso = stack[0]
    if "kernel" in dso:
        return "kernel"
    # jansson is linked into the command (CMakeLists.txt): by its names.
    if "libjansson" in dso or sym.startswith(("json_", "jsonp_",
                                              "hashtable_")):
        return "jansson"
    if "libc" in dso and any(a in sym for a in ALLOC):
        return "malloc/free"
    if "libc" in dso:
        return "libc, other"
    if os.path.basename(dso) == "ice":
        return "ice"
    return "other"


def profile(ice, name, n, tmp):
    path = os.path.join(tmp, "wf.json")
    with open(path, "w") as f:
        json.dump(wl.workflow(name, n), f)
    data = os.path.join(tmp, "perf.data")
    subprocess.run(["perf", "record", "-q", "-F", "4000", "--call-graph",
                    "dwarf,16384", "-o", data, ice, "run", path,
                    "--no-store"], stdout=subprocess.DEVNULL, check=True)
    text = subprocess.run(["perf", "script", "-i", data, "--comm", "ice",
                           "-F", "comm,ip,sym,dso"], capture_output=True,
                          text=True, check=True).stdout
    table = collections.defaultdict(collections.Counter)
    ss = samples(text)
    for st in ss:
        if st:
            table[phase(st)][kind(st)] += 1
    total = len(ss)
    nodes = wl.units(name, n)
    print()
    print("%s %s: %d samples at 4 kHz (%.2f s of CPU), load %.2f" % (
        name, "{:,}".format(n), total, total / 4000, wl.load()))
    print()
    print("| phase | share | us/node | " + " | ".join(KINDS) + " |")
    print("|---|---:|---:|" + "---:|" * len(KINDS))
    order = [p for p, _ in PHASES] + ["other"]
    for p in order:
        c = table.get(p)
        if not c or sum(c.values()) < total * 0.005:
            continue
        k = sum(c.values())
        print("| %s | %.1f%% | %.2f | " % (p, 100 * k / total,
                                           k / 4000 * 1e6 / nodes) +
              " | ".join("%.1f" % (100 * c[x] / total) if c[x] else ""
                         for x in KINDS) + " |")
    print("| all | 100%% | %.2f | " % (total / 4000 * 1e6 / nodes) +
          " | ".join("%.1f" % (100 * sum(table[p][x] for p in table) / total)
                     for x in KINDS) + " |")
    print()
    print("(share and the kinds: % of the samples; us/node: the phase's "
          "CPU time / N)")


def memory(ice, name, n, tmp):
    path = os.path.join(tmp, "wf.json")
    with open(path, "w") as f:
        json.dump(wl.workflow(name, n), f)
    out = os.path.join(tmp, "massif.out")
    subprocess.run(["valgrind", "-q", "--tool=massif", "--threshold=0.1",
                    "--massif-out-file=" + out, ice, "run", path,
                    "--no-store"], stdout=subprocess.DEVNULL, check=True)
    with open(out) as f:
        lines = f.read().split("\n")
    # The snapshot marked peak, then its tree: "n<children>: <bytes> <frame>"
    # lines indented one space per level, allocation functions first.
    start = max(i for i, line in enumerate(lines)
                if line.startswith("heap_tree=peak"))
    extra = int(lines[start - 2].split("=")[1])  # mem_heap_extra_B
    node = re.compile(r"^( *)n(\d+): (\d+) (.*)$")
    owners = collections.Counter()
    path_, total = [], 0
    for line in lines[start + 1:]:
        m = node.match(line)
        if m is None:
            break
        depth, kids, size = len(m.group(1)), int(m.group(2)), int(m.group(3))
        path_ = path_[:depth] + [m.group(4)]
        if depth == 0:
            total = size
        elif kids == 0:
            owner = "other (below the threshold)"
            for frame in path_[1:]:
                f = re.search(r": (\S+) \((\w+\.c):\d+\)", frame)
                if f is not None:
                    owner = "%s (%s)" % (f.group(1), f.group(2))
                    break
            owners[owner] += size
    print()
    print("%s %s: heap at its peak %.1f MB (%.1f MB asked for, %.1f MB "
          "malloc's overhead)" % (name, "{:,}".format(n),
                                  (total + extra) / 1e6, total / 1e6,
                                  extra / 1e6))
    print()
    print("| allocated under | MB | bytes per node |")
    print("|---|---:|---:|")
    for owner, size in owners.most_common():
        if size >= total * 0.005:
            print("| %s | %.1f | %.0f |" % (owner, size / 1e6,
                                            size / wl.units(name, n)))
    print("| malloc's overhead | %.1f | %.0f |" % (
        extra / 1e6, extra / wl.units(name, n)))


# (step, file, function): inclusive instruction counts to show, in the
# order of a run; an indented step is part of the one above it.
STEPS = [
    ("streamed load (a JSON file)", "load_stream.c", "ice__load_stream"),
    ("  plain nodes, read and compiled", "load_stream.c", "take"),
    ("    template and tool of one", "tool.c", "ice__tool_compile"),
    ("  other nodes, read", "load_stream.c", "on_node"),
    ("parse JSON (jansson)", "???", "json_loadb"),
    ("parse JSON (quick reader)", "jsonfast.c", "ice__json_fast_parse"),
    ("depth check", "doc.c", "ice__json_too_deep"),
    ("validate", "load.c", "build"),
    ("validate (build, inlined in finish)", "load.c", "finish"),
    ("  node fields", "fields.c", "ice__check_node"),
    ("  compile hooks (tool)", "tool.c", "compile"),
    ("  dependency graph", "graph.c", "ice__graph_check"),
    ("run (uv_run)", "???", "uv_run"),
    ("  scheduler drain", "sched.c", "ice__sched_drain"),
    ("  result object", "run.c", "run_finish"),
    ("print the result", "run.c", "cli_print_result"),
    ("print the result", "run.c", "ice_run_write_result"),
    ("  size pass", "jsonsize.c", "ice_json_size"),
    ("  size pass", "jsonsize.c", "ice__json_size"),
    ("  text from the run's state", "run.c", "write_result"),
    ("  node entries", "run.c", "write_entry"),
    ("  format pass", "jsonfmt.c", "ice_json_format"),
    ("  format pass, in pieces", "jsonfmt.c", "ice_json_write"),
    ("  reals, both passes", "jsonfmt.c", "ice__format_real"),
    ("free the run", "run.c", "ice_run_free"),
    ("free the workflow", "workflow.c", "ice_workflow_free"),
    ("fclose(stdout)", "io.c", "cli_close_stdout"),
]


def callgrind(ice, path, tmp):
    """Total instructions of `ice run path`, and {(file, function): Ir}."""
    out = os.path.join(tmp, "callgrind.out")
    subprocess.run(["valgrind", "-q", "--tool=callgrind",
                    "--callgrind-out-file=" + out, ice, "run", path,
                    "--no-store"], stdout=subprocess.DEVNULL, check=True)
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes",
                           "--threshold=100", out], capture_output=True,
                          text=True, check=True).stdout
    line = re.compile(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(\S+):(\S+) \[")
    total, found = 0, {}
    for t in text.splitlines():
        if "PROGRAM TOTALS" in t:
            total = int(t.split()[0].replace(",", ""))
        m = line.match(t)
        if m is not None:
            key = (os.path.basename(m.group(2)), m.group(3))
            found.setdefault(key, int(m.group(1).replace(",", "")))
    return total, found


def instructions(ice, name, n, tmp):
    path = os.path.join(tmp, "wf.json")
    with open(path, "w") as f:
        json.dump(wl.workflow(name, n), f)
    total, found = callgrind(ice, path, tmp)
    with open(path, "w") as f:
        json.dump(wl.workflow("W6 one node", 1), f)
    one, _ = callgrind(ice, path, tmp)
    nodes = wl.units(name, n)
    print()
    print("%s %s: %s instructions, %s for the one-node run: %.0f per node" %
          (name, "{:,}".format(n), "{:,}".format(total), "{:,}".format(one),
           (total - one) / nodes))
    print()
    print("| step | instructions per node | share |")
    print("|---|---:|---:|")
    shown = set()
    for step, file, func in STEPS:
        ir = found.get((file, func))
        # A step named twice (its function in one build or another): the
        # first found.
        if ir is not None and step not in shown:
            shown.add(step)
            print("| %s | %.0f | %.1f%% |" % (step.replace("  ", "… "),
                                              ir / nodes,
                                              100 * ir / (total - one)))


# (step, functions) for --procs, as PHASES: the engine's process first,
# then its children before exec (same command name, other pids).
PROC_STEPS = [
    ("engine: fork", {"kernel_clone", "_Fork", "__libc_fork"}),
    ("engine: private temp dir", {"mkdtemp", "nftw", "__mkdir", "mkdir",
                                  "rmdir", "__rmdir", "unlinkat"}),
    ("engine: pipes", {"pipe2"}),
    ("engine: start-up, load, print", {"_dl_start", "ice_workflow_load",
                                       "cli_print_result",
                                       "cli_print_run"}),
    ("engine: event loop, rest", set()),
]


def procs(ice, name, n, tmp):
    path = os.path.join(tmp, "wf.json")
    with open(path, "w") as f:
        json.dump(wl.workflow(name, n), f)
    data = os.path.join(tmp, "perf.data")
    subprocess.run(["perf", "record", "-q", "-F", "4000", "--call-graph",
                    "dwarf,16384", "-o", data, ice, "run", path,
                    "--no-store"], stdout=subprocess.DEVNULL, check=True)
    text = subprocess.run(["perf", "script", "-i", data, "-F",
                           "comm,pid,ip,sym,dso"], capture_output=True,
                          text=True, check=True).stdout
    pairs = samples(text, heads=True)
    pids = collections.Counter(h[-1] for h, _ in pairs if h[0] == "ice")
    engine = pids.most_common(1)[0][0]
    steps = collections.Counter()
    for head, st in pairs:
        names = {sym for sym, _ in st}
        if head[0] != "ice":
            step = "child: the command (%s)" % head[0]
        elif head[-1] != engine:
            if names & {"bprm_execve", "__x64_sys_execve", "load_elf_binary"}:
                step = "child: execve"
            elif "child_main" in names:
                step = "child: setsid, prctl, signals, dup2"
            else:
                step = "child: return from fork"
        else:
            step = next(s for s, funcs in PROC_STEPS
                        if names & funcs or not funcs)
        steps[step] += 1
    print()
    print("%s %s: %d samples at 4 kHz, %.2f ms of CPU per process, load "
          "%.2f" % (name, "{:,}".format(n), len(pairs),
                    len(pairs) / 4000 * 1e3 / n, wl.load()))
    print()
    print("| step | ms of CPU per process | share |")
    print("|---|---:|---:|")
    for step, k in steps.most_common():
        print("| %s | %.3f | %.1f%% |" % (step, k / 4000 * 1e3 / n,
                                          100 * k / len(pairs)))


def main(argv):
    mode = profile
    modes = {"--memory": memory, "--instructions": instructions,
             "--procs": procs}
    if argv[:1] and argv[0] in modes:
        mode = modes[argv[0]]
        argv = argv[1:]
    if len(argv) < 3 or len(argv) % 2 == 0:
        sys.exit(__doc__)
    ice = os.path.abspath(os.path.join(argv[0], "ice"))
    tmp = tempfile.mkdtemp(prefix="ice-profile-")
    try:
        print("machine: %s" % wl.machine())
        for i in range(1, len(argv), 2):
            mode(ice, argv[i], int(argv[i + 1]), tmp)
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main(sys.argv[1:])
