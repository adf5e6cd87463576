#!/usr/bin/env python3
"""JSON assertions for the CLI suite (tests/cli/*.sh).

    check.py json   FILE EXPR...   r  = the JSON document in FILE
    check.py events FILE EXPR...   ev = the list of JSON lines in FILE
    check.py diag   FILE PATH MSG [LINE]
        FILE (captured stderr) has a line `PATH:LINE:COL: error: ...MSG...`
        (LINE and COL must be present; LINE checked when given).

Each EXPR is a Python expression that must be true. Helpers usable in it:
    of(ev, type, node=None)  events of that type (and node_id)
    re                       the re module
Exit 0 when every EXPR holds; else print the first failing one with
context and exit 1.
"""
import json
import re
import sys


def of(ev, typ, node=None):
    return [e for e in ev if e.get("type") == typ
            and (node is None or e.get("node_id") == node)]


def short(text, n=700):
    text = text if isinstance(text, str) else json.dumps(text)
    return text if len(text) <= n else text[:n] + "...(%d chars)" % len(text)


def main():
    mode, path, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    with open(path, "rb") as f:
        raw = f.read().decode("utf-8", "replace")
    if mode == "diag":
        want_path, msg = args[0], args[1]
        line = args[2] if len(args) > 2 else r"\d+"
        pat = re.compile("^%s:%s:\\d+: error: .*%s" % (
            re.escape(want_path), line, re.escape(msg)), re.M)
        if not pat.search(raw):
            print("no stderr line %s:%s:COL: error: ...%s...; stderr was: %s"
                  % (want_path, line, msg, short(raw)))
            return 1
        return 0
    env = {"of": of, "re": re}
    try:
        if mode == "json":
            env["r"] = json.loads(raw)
        else:
            env["ev"] = [json.loads(l) for l in raw.splitlines() if l.strip()]
    except ValueError as e:
        print("not JSON (%s): %s" % (e, short(raw)))
        return 1
    for expr in args:
        try:
            ok = eval(expr, env)  # test-suite helper: trusted input
        except Exception as e:  # a KeyError etc. is a failed check
            ok, expr = False, "%s  [raised %s: %s]" % (expr, type(e).__name__, e)
        if not ok:
            print("check failed: %s\n    # in: %s" % (expr, short(raw)))
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
