# Sub-workflow references as a hostile user writes them (issue 6, item 6
# and the smaller items of the same area): files that never end, the same
# file referenced thousands of times, reference cycles, odd paths; the
# cycle message of a long cycle, Mermaid keywords as ids, and lower()/
# upper() beyond ASCII.

HR=$FIX/hostile-refs

t_begin "hostile-refs: workflow_ref to /dev/zero, /dev/urandom or a directory is refused at once"
# They used to be read for ever (300 MB/s growth) or as './'.
ice validate "$HR/odd.yaml"
expect_rc 2
expect_diag "$HR/odd.yaml" "node 'zero': workflow_ref '/dev/zero': cannot read '/dev/zero': not a regular file"
expect_diag "$HR/odd.yaml" "node 'rand': workflow_ref '/dev/urandom': cannot read '/dev/urandom': not a regular file"
expect_diag "$HR/odd.yaml" "node 'dir': workflow_ref 'sub': cannot read '$HR/sub': Is a directory"
t_end

t_begin "hostile-refs: an empty reference, an empty name, a missing name target and a trailing '/' say what is wrong"
ice validate "$HR/odd.yaml"
expect_rc 2
expect_diag "$HR/odd.yaml" "node 'empty': workflow_ref is empty" 4
expect_diag "$HR/odd.yaml" "node 'blank_name': workflow_ref 'blank': workflows.blank is an empty path" 5
expect_diag "$HR/odd.yaml" "node 'gone_name': workflow_ref 'gone': cannot read '$HR/missing.yaml': No such file or directory" 6
expect_diag "$HR/odd.yaml" "node 'slash': workflow_ref 'leaf.yaml/': 'leaf.yaml/' ends with '/'" 7
grep -q "'\./'" "$W/err" && fail "the empty reference still reads './': $(cat "$W/err")"
[ "$(wc -l <"$W/err")" -eq 7 ] || fail "expected 7 diagnostics: $(cat "$W/err")"
t_end

mkfifo "$W/fifo.yaml"
printf 'nodes:\n  - {id: f, type: workflow, workflow_ref: fifo.yaml}\n' >"$W/fifo-ref.yaml"
t_begin "hostile-refs: workflow_ref to a FIFO with no writer does not wait for one"
ice validate "$W/fifo-ref.yaml"
expect_rc 2
expect_diag "$W/fifo-ref.yaml" "workflow_ref 'fifo.yaml': cannot read '$W/fifo.yaml': not a regular file"
t_end

ln -s loop-b "$W/loop-a"
ln -s loop-a "$W/loop-b"
printf 'nodes:\n  - {id: s, type: workflow, workflow_ref: loop-a}\n' >"$W/symloop.yaml"
t_begin "hostile-refs: a symlink loop is reported, not followed"
ice validate "$W/symloop.yaml"
expect_rc 2
expect_diag "$W/symloop.yaml" "node 's': workflow_ref 'loop-a': cannot read '$W/loop-a': Too many levels of symbolic links"
t_end

if [ "$(id -u)" != 0 ]; then
  printf 'nodes:\n  - {id: t, type: tool, tool_name: echo}\n' >"$W/secret.yaml"
  chmod 000 "$W/secret.yaml"
  printf 'nodes:\n  - {id: u, type: workflow, workflow_ref: secret.yaml}\n' >"$W/unread.yaml"
  t_begin "hostile-refs: an unreadable child is named with the reason"
  ice validate "$W/unread.yaml"
  expect_rc 2
  expect_diag "$W/unread.yaml" "workflow_ref 'secret.yaml': cannot read '$W/secret.yaml': Permission denied"
  t_end
fi

t_begin "hostile-refs: relative references start from the referring file's directory, at every level"
ice run "$HR/top.yaml"
expect_rc 0
expect_json 'r["output"] == {"via_mid": {"down": {"where": {"dir": "sub"}}}, "direct": {"where": {"dir": "top"}}}'
t_end

t_begin "hostile-refs: a reference cycle through three files is one clear error"
ice validate "$HR/cycle-a.yaml"
expect_rc 2
expect_diag "$HR/sub/cycle-c.yaml" "node 'to_a': workflow_ref '../cycle-a.yaml' references itself"
[ "$(grep -c 'references itself' "$W/err")" -eq 1 ] || fail "the cycle is reported more than once: $(cat "$W/err")"
t_end

python3 -I -S - "$W" <<'PY'
import json, os, sys
w = sys.argv[1]
# top refers to mid 400 times, mid to leaf 400 times: 160,400 loads before.
d = os.path.join(w, "wide")
os.makedirs(d)
def dump(name, doc):
    json.dump(doc, open(os.path.join(d, name), "w"))
for tool, sfx in (("echo", ""), ("nope", "-bad")):
    dump("leaf%s.json" % sfx, {"nodes": [{"id": "t", "type": "tool", "tool_name": tool}]})
    dump("mid%s.json" % sfx, {"nodes": [{"id": "m%d" % i, "type": "workflow",
                                        "workflow_ref": "leaf%s.json" % sfx} for i in range(400)]})
    dump("top%s.json" % sfx, {"nodes": [{"id": "t%d" % i, "type": "workflow",
                                        "workflow_ref": "mid%s.json" % sfx} for i in range(400)]})
# l0 -> l1 (twice) -> ... -> l20: 2^20 loads before, doubling per level.
d = os.path.join(w, "tree")
os.makedirs(d)
for k in range(21):
    if k == 20:
        nodes = [{"id": "leaf", "type": "tool", "tool_name": "echo"}]
    else:
        nodes = [{"id": x, "type": "workflow", "workflow_ref": "l%d.yaml" % (k + 1)} for x in "ab"]
    with open(os.path.join(d, "l%d.yaml" % k), "w") as f:
        json.dump({"nodes": nodes}, f)
PY

t_begin "hostile-refs: 400 x 400 references and a 20-level binary tree of files validate at once"
t0=$(date +%s%N)
ice validate "$W/wide/top.json"
expect_rc 0
ice validate "$W/tree/l0.yaml"
expect_rc 0
ms=$((($(date +%s%N) - t0) / 1000000))
# Milliseconds in fact; generous for a sanitizer build on a busy machine.
[ "$ms" -lt 5000 ] || fail "validation took $ms ms"
t_end

t_begin "hostile-refs: a child shared by 400 x 400 references reports its error once"
ice validate "$W/wide/top-bad.json"
expect_rc 2
expect_diag "$W/wide/leaf-bad.json" "node 't': unknown tool 'nope'"
[ "$(grep -c "unknown tool 'nope'" "$W/err")" -eq 1 ] || fail "the leaf's error is repeated: $(grep -c "unknown tool" "$W/err") times"
[ "$(grep -c "^$W/wide/top-bad.json:.*'$W/wide/mid-bad.json' is not a valid workflow" "$W/err")" -eq 400 ] ||
  fail "each reference of top-bad.json should say its child is invalid"
[ "$(wc -l <"$W/err")" -eq 801 ] || fail "expected 801 diagnostics, got $(wc -l <"$W/err")"
t_end

python3 -I -S - "$W" <<'PY'
import json, os, sys
ids = ["step_%03d_of_a_long_cycle" % i for i in range(500)]
nodes = [{"id": ids[i], "type": "tool", "tool_name": "echo", "dependencies": [ids[i - 1]]}
         for i in range(500)]
json.dump({"nodes": nodes}, open(os.path.join(sys.argv[1], "cycle500.json"), "w"))
PY

t_begin "hostile-refs: a 500-node cycle is cut at an id boundary with '...', and closes on its first id"
ice validate "$W/cycle500.json"
expect_rc 2
python3 -I -S - "$W/err" >"$W/chk" 2>&1 <<'PY' || fail "cycle message: $(cat "$W/chk")"
import re, sys
lines = [l.rstrip("\n") for l in open(sys.argv[1]) if "cycle: " in l]
assert len(lines) == 1, lines
line = lines[0]
assert len(line) < 1000, len(line)
path = line.split("cycle: ", 1)[1]
parts = path.split(" -> ")
ok = re.compile(r"^step_\d{3}_of_a_long_cycle$")
m = [p for p in parts if p.startswith("... (")]
assert len(m) == 1 and re.match(r"^\.\.\. \((\d+) more\)$", m[0]), path
shown = [p for p in parts if not p.startswith("... (")]
assert all(ok.match(p) for p in shown), path
assert shown[0] == shown[-1], path
more = int(re.match(r"^\.\.\. \((\d+) more\)$", m[0]).group(1))
assert more + len(shown) - 1 == 500, (more, len(shown))
PY
t_end

t_begin "hostile-refs: Mermaid keywords and misread ids as node ids give valid Mermaid, labels keep the ids"
ice graph "$HR/keywords.yaml" --format mermaid
expect_rc 0
python3 -I -S - "$W/out" >"$W/chk" 2>&1 <<'PY' || fail "mermaid: $(cat "$W/chk")"
import re, sys
# Words of Mermaid's flowchart grammar where a node id is read (any case),
# and what its lexer misreads: '--' (an edge), a trailing '-', KEYWORD-x.
words = {w.lower() for w in """end subgraph style class classDef click linkStyle graph
flowchart call href interpolate default direction callback accTitle accDescr title
TB TD BT RL LR _self _blank _parent _top""".split()}
def plain(i):
    return (re.match(r"^[A-Za-z_][A-Za-z0-9_-]*$", i) and "--" not in i
            and not i.endswith("-") and i.split("-")[0].lower() not in words)
lines = open(sys.argv[1]).read().splitlines()
assert lines[0] == "flowchart TD", lines[0]
decl, labels, edges, depth = {}, set(), [], 0
for l in lines[1:]:
    s = l.strip()
    if s.startswith("subgraph "):
        depth += 1
        assert plain(s.split()[1]), s
    elif s == "end":
        depth -= 1
    elif " --> " in s:
        a, b = s.split(" --> ")
        edges.append((a, b))
    else:
        m = re.match(r'^(\S+)\["(\S+) \((?:tool|loop)\)"\]$', s)
        assert m, "not a node line: %r" % s
        assert plain(m.group(1)), "id Mermaid misreads: %r" % s
        decl[m.group(1)] = m.group(2)
        labels.add(m.group(2))
assert depth == 0
want = {"end", "subgraph", "style", "class", "classDef", "click", "graph", "flowchart",
        "linkStyle", "end-x", "a--b", "ox", "node", "L", "direction", "href"}
assert labels == want, labels ^ want
assert len(decl) == len(want)
for a, b in edges:
    assert a in decl and b in decl, (a, b)
assert (next(k for k, v in decl.items() if v == "end"), next(k for k, v in decl.items() if v == "subgraph")) in edges
assert len(edges) == 14, edges
PY
ice graph "$HR/keywords.yaml" --format dot
expect_rc 0
grep -q '^  "end" -> "subgraph";$' "$W/out" || fail "dot: $(cat "$W/out")"
grep -q '^  "a--b" \[label="a--b\\n(tool)"\];$' "$W/out" || fail "dot: $(cat "$W/out")"
t_end

t_begin "hostile-refs: lower() and upper() map Latin, Greek and Cyrillic letters, not only ASCII"
ice run "$HR/case.yaml"
expect_rc 0
expect_json 'r["output"]["t"] == {"fr": "école des beaux-arts", "el": "ΩΜΈΓΑ", "ru": "привет, мир", "ja": "日本語 ABC"}'
t_end

# The top-level file goes through the same reader (src/workflow.c calls
# readfile.c): a capped read, a FIFO open that does not wait.
t_begin "hostile-refs: ice validate /dev/zero stops at the 64 MiB cap; a FIFO with no writer reads as empty"
ice validate /dev/zero
expect_rc 2
expect_err_has "/dev/zero: error: cannot read the workflow: larger than the 64 MiB limit of workflow files"
ice validate "$W/fifo.yaml"
expect_rc 2
expect_err_has "$W/fifo.yaml"
t_end

t_begin "hostile-refs: an unused entry of 'workflows' that names no file is an error"
ice validate "$HR/unused-name.yaml"
expect_rc 2
expect_diag "$HR/unused-name.yaml" "workflows.spare: cannot read '$HR/no-such-file.yaml': No such file or directory" 2
[ "$(wc -l <"$W/err")" -eq 1 ] || fail "expected 1 diagnostic: $(cat "$W/err")"
t_end
