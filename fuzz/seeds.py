#!/usr/bin/env python3
"""Seeds the fuzz corpora (fuzz/corpus/TARGET/seed-*, git-ignored) and the
dictionaries (fuzz/corpus/TARGET.dict) from examples/ and the tests.

    python3 fuzz/seeds.py [--ice PATH]

Run from anywhere; fuzz/run.sh runs it before fuzzing. --ice names an ice
command to record real run stores with (the store target's seeds); without
it the store target gets only its cell seeds. Seeds are named by a hash of
their bytes, so running it again adds nothing twice. Each target's input
format is described at the top of its fuzz/fuzz_TARGET.c.

Sources: the workflow files under examples/ and tests/cli/fixtures/, the
workflows written inline by the CLI cases (tests/cli/cases/*.sh here-docs)
and the unit tests (C string literals in tests/unit/*.c), the expressions,
templates and schemas found in all of those, and hand-written answers of an
LLM and outputs of tools. PyYAML, when installed, finds expressions and
schemas inside YAML files too."""

import argparse
import glob
import hashlib
import json
import os
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile

try:
    import yaml  # optional: only to look inside YAML files
except ImportError:
    yaml = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
MAX_SEED = 60000  # below run.sh's -max_len

seeds = {}  # target -> set of bytes


def add(target, data):
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    if 0 < len(data) <= MAX_SEED:
        seeds.setdefault(target, set()).add(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


# ---- sources ----------------------------------------------------------------

def c_literals(path):
    """The string literals of a C file, adjacent ones joined, unescaped."""
    text = read(path).decode("utf-8", "replace")
    # Drop comments and character literals, which may hold quotes.
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r"'(\\.|[^'\\])'", " ", text)
    out = []
    for group in re.finditer(r'"(?:\\.|[^"\\\n])*"(?:\s*"(?:\\.|[^"\\\n])*")*',
                             text):
        parts = re.findall(r'"((?:\\.|[^"\\\n])*)"', group.group(0))
        raw = "".join(parts).encode("utf-8")
        try:
            out.append(raw.decode("unicode_escape").encode("latin-1"))
        except (UnicodeDecodeError, UnicodeEncodeError):
            out.append(raw)
    return out


def heredocs(path):
    """Bodies of `wf NAME <<'EOF'` here-docs (and other quoted ones) in a
    shell file, with NAME when there is one."""
    lines = read(path).decode("utf-8", "replace").split("\n")
    out = []
    i = 0
    while i < len(lines):
        m = re.search(r"<<-?\s*'?([A-Z_]+)'?\s*$", lines[i])
        if m:
            name = re.search(r"\bwf\s+(\S+)", lines[i])
            end = m.group(1)
            body = []
            i += 1
            while i < len(lines) and lines[i].strip() != end:
                body.append(lines[i])
                i += 1
            out.append((name.group(1) if name else "", "\n".join(body) + "\n"))
        i += 1
    return out


def parse_doc(data, is_yaml):
    try:
        if is_yaml:
            return yaml.safe_load(data) if yaml is not None else None
        return json.loads(data)
    except Exception:
        return None


def walk(v, key=None):
    """(key, value) for every value inside v."""
    yield key, v
    if isinstance(v, dict):
        for k, x in v.items():
            yield from walk(x, k)
    elif isinstance(v, list):
        for x in v:
            yield from walk(x, key)


EXPR_KEYS = {"run_if", "condition", "expression", "until", "while", "when",
             "if", "filter", "items", "over", "input_mappings", "max_iterations",
             "break_if", "continue_if", "converged"}


def jsonable(v):
    try:
        return json.dumps(v)
    except (TypeError, ValueError):
        return None


def harvest(doc):
    """Expressions, templates and schemas found inside a parsed document."""
    for key, v in walk(doc):
        if isinstance(v, str):
            for m in re.finditer(r"\{\{(.*?)\}\}", v, flags=re.S):
                add("expr", m.group(1).strip())
            if "{{" in v:
                add("template", json.dumps(v))
            elif key in EXPR_KEYS:
                add("expr", v)
        elif isinstance(v, (dict, list)) and "{{" in (jsonable(v) or ""):
            s = jsonable(v)
            if s is not None and len(s) < 2000:
                add("template", s)
        if isinstance(key, str) and key.endswith("schema") and \
                isinstance(v, dict):
            s = jsonable(v)
            if s is not None:
                add("schema", s)
                add("schema", s + "\0{}")


def workflow_seed(data, is_yaml, doc):
    """A workflow, or a tool file (tools/agents and no nodes) with the
    example bundle's workflow after it."""
    if isinstance(doc, dict) and "nodes" not in doc and \
            ("tools" in doc or "agents" in doc):
        mode = 2 | (4 if is_yaml else 0) | 1
        add("workflow", bytes([mode]) + data + b"\0" + BUNDLE_WF)
        add("workflow", bytes([mode]) + data)
    else:
        add("workflow", bytes([1 if is_yaml else 0]) + data)


def looks_yaml(data):
    return not data.lstrip().startswith((b"{", b"["))


def from_files():
    files = []
    for pat in ("examples/**/*.json", "examples/**/*.yaml",
                "examples/**/*.yml", "tests/cli/fixtures/**/*.json",
                "tests/cli/fixtures/**/*.yaml", "tests/cli/fixtures/**/*.yml"):
        files += glob.glob(os.path.join(ROOT, pat), recursive=True)
    for f in sorted(files):
        data = read(f)
        is_yaml = not f.endswith(".json")
        doc = parse_doc(data, is_yaml)
        workflow_seed(data, is_yaml, doc)
        harvest(doc)
    for f in sorted(glob.glob(os.path.join(ROOT, "tests/cli/cases/*.sh"))):
        for name, body in heredocs(f):
            data = body.encode("utf-8", "surrogateescape")
            is_yaml = not name.endswith(".json") and looks_yaml(data)
            doc = parse_doc(data, is_yaml)
            if isinstance(doc, dict) and ("nodes" in doc or "tools" in doc):
                workflow_seed(data, is_yaml, doc)
            harvest(doc)


def from_unit_tests():
    for f in sorted(glob.glob(os.path.join(ROOT, "tests/unit/*.c"))):
        base = os.path.basename(f)
        lits = c_literals(f)
        docs = []
        for lit in lits:
            doc = parse_doc(lit, False)
            if doc is None and yaml is not None and b":" in lit:
                ydoc = parse_doc(lit, True)
                if isinstance(ydoc, dict) and ("nodes" in ydoc or
                                               "tools" in ydoc):
                    workflow_seed(lit, True, ydoc)
                    harvest(ydoc)
                continue
            docs.append((lit, doc))
            if isinstance(doc, dict) and ("nodes" in doc or "tools" in doc):
                workflow_seed(lit, False, doc)
            harvest(doc)
        if base == "test_expr.c":
            for lit in lits:
                add("expr", lit)
        if base == "test_template.c":
            for lit, _ in docs:
                add("template", lit)
        if base == "test_schema.c":
            # A schema, then the value the test checks against it.
            for i, (lit, doc) in enumerate(docs):
                if isinstance(doc, dict):
                    nxt = docs[i + 1][0] if i + 1 < len(docs) else b"{}"
                    add("schema", lit + b"\0" + nxt)
        if base == "test_misc.c" or base == "test_tooldefs.c":
            for lit, doc in docs:
                add("toolout", lit)


# ---- hand-written -----------------------------------------------------------

def toolout_seeds():
    for s in [b'{"text": "hi"}\n', b"[1, 2, 3]", b'"a string"', b"42", b"null",
              b"  \n", b"", b'{"n": 123456789012345678901234567890}',
              b'{"n": -99999999999999999999, "m": [18446744073709551616]}',
              b"1e400", b'{"bad": "\xff\xfe latin-1 \xe9"}',
              b'{"nul": "a\\u0000b"}', b'{"raw": "a\x00b"}', b'{"a": 1} {"b": 2}',
              b'{"deep": ' + b"[" * 300 + b"]" * 300 + b"}",
              b"\xef\xbb\xbf{}", b'{"t": "\xed\xa0\x80"}', b'{"x": 1.5e-320}']:
        add("toolout", s)


def llm_seeds():
    base = {"id": "chatcmpl-1", "object": "chat.completion",
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant",
                                                 "content": "echo: hi"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2,
                      "total_tokens": 5}}
    add("llm", json.dumps(base))
    variants = [
        lambda b: b["usage"].update(cost=0.25),
        lambda b: b["usage"].update(cost=-1, prompt_tokens=-5),
        lambda b: b["usage"].update(prompt_tokens=2 ** 63 - 1,
                                    completion_tokens=2 ** 63 - 1),
        lambda b: b.pop("model"),
        lambda b: b.pop("usage"),
        lambda b: b.update(choices=[]),
        lambda b: b["choices"][0]["message"].update(content=None),
        lambda b: b["choices"][0]["message"].update(content='{"a": [1]}'),
        lambda b: b["choices"][0]["message"].update(content="h\u00e9 \U0001f600"),
        lambda b: b.update(model=7),
        lambda b: b.update(error={"message": "rate limited"}),
    ]
    for f in variants:
        b = json.loads(json.dumps(base))
        f(b)
        add("llm", json.dumps(b))
    for s in [b"this is not JSON {", b'{"id": "chatcmpl-truncated", "choices": [',
              b"[]", b"null", b'{"choices": {"0": 1}}']:
        add("llm", s)


def cell(kind, arg=b""):
    return bytes([kind]) + arg


def dict_cell(i):
    return cell(5, bytes([i]))


def text_cell(s):
    s = s.encode() if isinstance(s, str) else s
    return cell(3, bytes([len(s)]) + s)


def store_cell_seeds():
    # Tables: 0 runs, 1 records, 2 events, 3 cache (fuzz_store.c).
    run = (b"\x00" + dict_cell(0) + text_cell("r") + text_cell("/w/r.json") +
           text_cell("fnv1a64:0") + dict_cell(8) + dict_cell(3) +
           dict_cell(13) + cell(0) + dict_cell(19) + cell(6 + 7 * 9) + cell(0) +
           dict_cell(20))
    rec = lambda i: (b"\x01" + dict_cell(0) + dict_cell(11) + dict_cell(4) +
                     cell(6 + 7 * 11) + dict_cell(i))
    ev = b"\x02" + dict_cell(0) + cell(6 + 7 * 11) + text_cell("x") + \
        dict_cell(18)
    child = (b"\x00" + dict_cell(1) + text_cell("c") + cell(0) + cell(0) +
             cell(4, b"\x03{}\xff") + dict_cell(4) + cell(1, b"\x01") +
             cell(2, struct.pack("<d", 1.5)) + text_cell("{") + cell(0) +
             cell(0) + cell(0))
    cache = b"\x03" + text_cell("k") + dict_cell(10) + cell(1, b"\x01")
    for mode in (1, 3):
        add("store", bytes([mode]) + run + rec(14) + rec(15) + ev)
        add("store", bytes([mode]) + run + rec(14) + rec(16) + rec(17) + ev +
            child + cache)
        add("store", bytes([mode]) + run)


def record_stores(ice):
    """Real stores: examples run by ice, shrunk (512-byte pages, no WAL).
    Written as seed-db-*, and only when there is none yet: the runs take
    seconds (back-off delays), and the store's schema changes rarely."""
    d = os.path.join(CORPUS, "store")
    if glob.glob(os.path.join(d, "seed-db-*")):
        return
    recorded = set()
    # Built-in tools only: no process to wait for. The last two are a
    # parent and its child run (run ids "R" and "R.x"), written below.
    runs = [["examples/hello.json"],
            ["examples/templates.json", "--input", "user=ada",
             "--input", "scores=[1, 2]"],
            ["examples/failure-policies.json"],
            ["examples/if-else.yaml", "--input", "amount=5"],
            ["examples/negotiation.yaml"], ["examples/retries.yaml"],
            ["examples/cost-monitor.yaml"],
            ["examples/approval.yaml", "--input", "title=t", "--max-wait", "0"],
            ["{tmp}/parent.yaml"]]
    tmp = tempfile.mkdtemp(prefix="ice-seeds-")
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    with open(os.path.join(tmp, "parent.yaml"), "w") as f:
        f.write("name: parent\nworkflows: {child: child.yaml}\nnodes:\n"
                "  - {id: a, type: tool, tool_name: echo, tool_args: {x: 1}}\n"
                "  - {id: c, type: workflow, workflow_ref: child,"
                " dependencies: [a], inputs: {x: '{{ a.x }}'}}\n")
    with open(os.path.join(tmp, "child.yaml"), "w") as f:
        f.write("name: child\nnodes:\n"
                "  - {id: b, type: tool, tool_name: echo,"
                " tool_args: {y: '{{ x }}'}}\n")
    try:
        all_db = os.path.join(tmp, "all.db")
        for i, args in enumerate(runs):
            args = [a.replace("{tmp}", tmp) for a in args]
            one = os.path.join(tmp, "%d.db" % i)
            # A store of several runs, child runs among them.
            for db in (one, all_db) if i in (0, 2, 8) else (one,):
                subprocess.run([ice, "run"] + args + ["--store", db],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=60)
        for db in sorted(glob.glob(os.path.join(tmp, "*.db"))):
            con = sqlite3.connect(db)
            con.execute("PRAGMA journal_mode=DELETE")
            con.execute("PRAGMA page_size=512")
            con.execute("VACUUM")
            con.close()
            recorded.add(b"\x00" + read(db))
    except (OSError, subprocess.SubprocessError, sqlite3.Error) as e:
        print("seeds: no recorded stores: %s" % e, file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(d, exist_ok=True)
    for data in recorded:
        name = "seed-db-" + hashlib.sha1(data).hexdigest()[:16]
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    print("seeds: store     %5d recorded" % len(recorded))


# ---- dictionaries -----------------------------------------------------------

JSON_TOKENS = ['{', '}', '[', ']', ':', ',', '"', 'true', 'false', 'null',
               '\\u0000', '\\ud800', '\\"', '1e308', '-0', '0.1',
               '9223372036854775808', '-9223372036854775809']
EXPR_TOKENS = ['and', 'or', 'not', 'in', 'not in', 'if', 'else', 'True',
               'False', 'None', 'null', '==', '!=', '<=', '>=', '//', '**',
               '%', '(', ')', '[', ']', '.', ',', ':', '"', "'", 'len(',
               'exists(', 'str(', 'int(', 'float(', 'lower(', 'upper(',
               'abs(', 'min(', 'max(', 'round(', 'inputs', 'inputs.', '{{',
               '}}', '\\u', '\\n']
SCHEMA_TOKENS = ['"type"', '"properties"', '"required"', '"items"',
                 '"enum"', '"const"', '"minimum"', '"maximum"',
                 '"exclusiveMinimum"', '"exclusiveMaximum"', '"minLength"',
                 '"maxLength"', '"pattern"', '"minItems"', '"maxItems"',
                 '"uniqueItems"', '"additionalProperties"', '"anyOf"',
                 '"oneOf"', '"allOf"', '"not"', '"$ref"', '"#/$defs/"',
                 '"$defs"', '"definitions"', '"format"', '"string"',
                 '"integer"', '"number"', '"boolean"', '"object"', '"array"',
                 '"null"', '"str"', '"int"', '"float"', '"bool"', '"list"',
                 '"dict"', '"any"', '"#"']
LLM_TOKENS = ['"choices"', '"message"', '"content"', '"usage"',
              '"prompt_tokens"', '"completion_tokens"', '"cost"', '"model"',
              '"role"', '"assistant"']


def dict_line(tok):
    b = tok.encode("utf-8") if isinstance(tok, str) else tok
    return '"' + "".join(chr(c) if 32 <= c < 127 and c not in (34, 92)
                         else "\\x%02x" % c for c in b) + '"'


def workflow_tokens():
    """The keys and short string values that several workflow seeds use:
    field names, node types, tool names, policies."""
    count = {}
    for s in seeds.get("workflow", ()):
        doc = parse_doc(s[1:].split(b"\0")[0], bool(s[0] & 1))
        seen = set()
        for key, v in walk(doc):
            if isinstance(key, str) and len(key) < 30:
                seen.add(key)
            if isinstance(v, str) and len(v) < 20:
                seen.add(v)
        for t in seen:
            count[t] = count.get(t, 0) + 1
    return sorted(t for t, n in count.items() if n >= 3)


def write_dicts():
    dicts = {
        "workflow": JSON_TOKENS + [t for k in workflow_tokens()
                                   for t in (k, k + ":", '"%s":' % k)],
        "expr": EXPR_TOKENS,
        "template": JSON_TOKENS + EXPR_TOKENS,
        "schema": JSON_TOKENS + SCHEMA_TOKENS,
        "toolout": JSON_TOKENS + ['\\xff', '\\xc3', '\\xed\\xa0\\x80'],
        "llm": JSON_TOKENS + LLM_TOKENS,
    }
    for t, toks in dicts.items():
        with open(os.path.join(CORPUS, t + ".dict"), "w") as f:
            for tok in sorted(set(toks) - {""}):
                f.write(dict_line(tok) + "\n")


# ---- main -------------------------------------------------------------------

BUNDLE_WF = b""


def main():
    global BUNDLE_WF
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ice", help="an ice command, to record stores")
    args = ap.parse_args()
    BUNDLE_WF = read(os.path.join(ROOT, "examples/bundle/workflows/ask.yaml"))
    from_files()
    from_unit_tests()
    toolout_seeds()
    llm_seeds()
    store_cell_seeds()
    if args.ice:
        record_stores(os.path.abspath(args.ice))
    os.makedirs(CORPUS, exist_ok=True)
    for t, datas in sorted(seeds.items()):
        d = os.path.join(CORPUS, t)
        os.makedirs(d, exist_ok=True)
        for data in datas:
            name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        print("seeds: %-8s %5d" % (t, len(datas)))
    write_dicts()


if __name__ == "__main__":
    main()
