"""W4 and W6 alone, in every sandbox configuration, interleaved.

    /usr/bin/python3 bench/procs.py BUILD [--rounds R] [--count N]
                                          [--before OTHER_BUILD]

W4 (N process-tool nodes running /bin/echo null, max_parallel 2) is run
by `ice run --no-store` three ways, next to `make -j2` running the same N
commands:

- default: the whole sandbox (namespaces, rlimits, seccomp, no privileges);
- rlimits + seccomp: `strict: false` and every namespace refused through
  the test hook (ICE_SANDBOX_REFUSE=user,pid,net,mount,ipc,uts,readonly,
  idmap): rlimits, seccomp, no_new_privs and the capability drop remain;
- off: `strict: false` and ICE_SANDBOX_REFUSE=sandbox, the engine's own
  cost with nothing of the sandbox applied.

W6 (a one-node workflow) is run next to bench/startup.c (libuv, jansson,
libfyaml) and the same program linked with every library the `ice`
command used to link. Each round runs every case once; the medians of
wall and CPU time (user + system, engine and children) are printed. The
figures are printed, never asserted. --before adds the same ice cases for
another build (its `ice`), in the same rounds, to compare two trees.
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workloads as wl  # noqa: E402

NS_REFUSED = "user,pid,net,mount,ipc,uts,readonly,idmap"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--count", type=int, default=wl.W4_COUNT)
    ap.add_argument("--before", default=None,
                    help="another build directory whose ice is run too")
    ap.add_argument("--only", default="",
                    help="comma-separated case names to run")
    args = ap.parse_args()
    ice = os.path.abspath(os.path.join(args.build, "ice"))
    tmp = tempfile.mkdtemp(prefix="ice-bench-")
    # As root without a mount namespace the tool runs as nobody, straight
    # in the workflow's directory (its cwd): nobody must be able to enter.
    os.chmod(tmp, 0o755)
    try:
        run(ice, args, tmp)
    finally:
        shutil.rmtree(tmp)


def run(ice, args, tmp):
    wl.build_helpers(tmp)
    n = args.count
    strict, loose = os.path.join(tmp, "w4.json"), os.path.join(tmp,
                                                              "w4l.json")
    wl.write_w4(strict, n, True)
    wl.write_w4(loose, n, False)
    one = os.path.join(tmp, "w6.json")
    with open(one, "w") as f:
        json.dump(wl.workflow("W6 one node", 1), f)
    saved = wl.W4_COUNT
    wl.W4_COUNT = n
    peers = wl.write_w4_peers(tmp)
    wl.W4_COUNT = saved
    env = dict(os.environ)
    env.pop("ICE_SANDBOX_REFUSE", None)
    env_ns = dict(env, ICE_SANDBOX_REFUSE=NS_REFUSED)
    env_off = dict(env, **wl.SANDBOX_OFF)
    run_args = ["run", "--no-store", "--quiet"]

    def ice_cases(exe, tag):
        return [
            ("W4 %s, sandbox" % tag, [exe] + run_args + [strict], None, env),
            ("W4 %s, rlimits+seccomp" % tag, [exe] + run_args + [loose],
             None, env_ns),
            ("W4 %s, sandbox off" % tag, [exe] + run_args + [loose], None,
             env_off),
            ("W6 %s" % tag, [exe] + run_args + [one], None, env)]

    cases = ice_cases(ice, "ice")
    if args.before:
        cases += ice_cases(os.path.abspath(os.path.join(args.before, "ice")),
                           "before")
    cases += [
        ("W4 make -j2",) + peers["make -j2"] + (env,),
        ("W6 C start-up", [os.path.join(tmp, "startup")], None, env),
        ("W6 C, ice libs", [os.path.join(tmp, "startup-ice-libs")], None,
         env),
    ]
    if args.only:
        keep = args.only.split(",")
        cases = [c for c in cases if any(k in c[0] for k in keep)]
    out = os.path.join(tmp, "out.json")

    def once(argv, cwd, e):
        try:
            return wl.run_once(argv, stdout=out, cwd=cwd, env=e)
        except RuntimeError:
            with open(out) as f:
                sys.stderr.write(f.read()[-3000:] + "\n")
            raise

    # Once, untimed: every case must succeed.
    for name, argv, cwd, e in cases:
        once(argv, cwd, e)
    samples = {c[0]: wl.Sample() for c in cases}
    for _ in range(args.rounds):
        for name, argv, cwd, e in cases:
            samples[name].add(*once(argv, cwd, e))
    print("%s; %d rounds, N = %d, load %.1f-%.1f" % (
        wl.machine(), args.rounds, n,
        min(min(s.loads) for s in samples.values()),
        max(max(s.loads) for s in samples.values())))
    print("%-26s %10s %10s %8s %8s" % ("case", "wall ms", "CPU ms",
                                      "spread", "peak MB"))
    for name, s in samples.items():
        print("%-26s %10.1f %10.1f %7.0f%% %8.1f" % (
            name, s.wall * 1e3, s.cpu * 1e3, s.spread * 100, s.peak_mb))

    def ratio(a, b, what):
        if a in samples and b in samples:
            sa, sb = samples[a], samples[b]
            print("  %s / %s: wall %.2fx, CPU %.2fx  (%s)" % (
                a, b, sa.wall / sb.wall, sa.cpu / sb.cpu, what))
    for tag in ("before", "ice"):
        ratio("W4 %s, sandbox off" % tag, "W4 make -j2", "target <= 1.1x")
        ratio("W4 %s, rlimits+seccomp" % tag, "W4 %s, sandbox off" % tag,
              "target <= 1.3x")
        ratio("W4 %s, sandbox" % tag, "W4 %s, sandbox off" % tag,
              "what namespaces add")
        ratio("W4 %s, sandbox" % tag, "W4 make -j2", "")
        ratio("W6 %s" % tag, "W6 C start-up", "target <= 1.5x")
    if "W6 ice" in samples:
        print("  W4 per process (wall): " + ", ".join(
            "%s %.2f ms" % (k[3:], samples[k].wall * 1e3 / n)
            for k in samples if k.startswith("W4")))


if __name__ == "__main__":
    main()
