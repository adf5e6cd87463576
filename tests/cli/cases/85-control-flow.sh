# Control-flow nodes (SPEC §7.1-§7.5): condition, loop, parallel, recursive
# and workflow, as a user sees them: exit status, result JSON, events and
# diagnostics. Static workflows are in tests/cli/fixtures/flow/; the big
# or marker-carrying ones are generated into $W.

F=$FIX/flow

# ---- condition ------------------------------------------------------------

t_begin "condition: the untaken path never starts, the one_success join runs once"
ice run "$ROOT/examples/if-else.yaml" --input amount=40 --input customer=bob --events "$W/ev-if"
expect_rc 0
expect_json 'r["output"]["check"]["branch"] == "false"' \
  'r["nodes"]["escalate"]["status"] == "skipped" and r["nodes"]["escalate"]["reason"] == "run_if"' \
  'r["output"]["done"]["decision"] == "approved"'
expect_events "$W/ev-if" \
  'of(ev, "node.started", "review") == [] and of(ev, "node.started", "review_note") == []' \
  'of(ev, "node.started", "escalate") == []' \
  'sorted(e["node_id"] for e in of(ev, "node.skipped") if e.get("reason") == "branch_not_taken") == ["review", "review_note"]' \
  'all(e.get("parent_id") == "check" for e in of(ev, "node.skipped") if e.get("reason") == "branch_not_taken")' \
  'len(of(ev, "node.started", "done")) == 1 and len(of(ev, "node.completed", "done")) == 1' \
  'of(ev, "node.started", "approve")[0]["parent_id"] == "check"'
t_end

t_begin "condition: the true path runs in order, the false path never starts"
ice run "$ROOT/examples/if-else.yaml" --input amount=100 --input customer=cy --events "$W/ev-if2"
expect_rc 0
expect_json 'r["output"]["check"]["result"] is True' \
  'list(r["output"]["check"]["branch_outputs"]) == ["review", "review_note"]' \
  '"review" not in r["output"] and "review_note" not in r["output"] and set(r["nodes"]) == {"check", "escalate", "fast_receipt", "done"}'
expect_events "$W/ev-if2" 'of(ev, "node.started", "approve") == []' \
  'of(ev, "node.completed", "review")[0]["seq"] < of(ev, "node.started", "review_note")[0]["seq"]' \
  'len(of(ev, "node.started", "done")) == 1'
t_end

# ---- loop -----------------------------------------------------------------

python3 -I -S - "$W" <<'PY'
import json, sys
d = sys.argv[1]
body = [{"id": "first", "type": "tool", "tool_name": "echo", "tool_args": {"v": "{{ item }}"}},
        {"id": "last", "type": "tool", "tool_name": "echo",
         "tool_args": {"i": "{{ index }}", "v2": "{{ first.v * 2 }}"}}]
json.dump({"name": "loop10k", "nodes": [
    {"id": "items", "type": "tool", "tool_name": "echo",
     "tool_args": {"list": list(range(10000))}},
    {"id": "L", "type": "loop", "dependencies": ["items"], "items_source": "items.list",
     "max_concurrency": 8, "body": body}]}, open(d + "/loop10k.json", "w"))
PY

t_begin "loop: 10,000 items, max_concurrency 8: outputs in item order, at most 8 in flight"
ice run "$W/loop10k.json" --events "$W/ev-10k"
expect_rc 0
expect_json 'len(r["output"]["L"]) == 10000' \
  'r["output"]["L"] == [{"i": i, "v2": 2 * i} for i in range(10000)]' \
  'r["metrics"]["nodes_completed"] == 2'
# In flight = iterations started (loop.iteration) minus iterations finished
# (their last body node `last` completed); it must reach but never pass 8.
expect_events "$W/ev-10k" \
  'sorted(e["index"] for e in of(ev, "loop.iteration", "L")) == list(range(10000))' \
  'len(of(ev, "node.completed", "last")) == 10000' \
  'max(__import__("itertools").accumulate(1 if e["type"] == "loop.iteration" else -1 for e in ev if (e["type"] == "loop.iteration" and e.get("node_id") == "L") or (e["type"] == "node.completed" and e.get("node_id") == "last"))) == 8' \
  'all(e.get("parent_id") == "L" and "index" in e for e in ev if e.get("node_id") in ("first", "last"))'
t_end

t_begin "loop: process-tool body with per-item sleeps, max_concurrency 4: item order kept"
ice run "$F/sleepy-loop.yaml" --events "$W/ev-sleepy"
expect_rc 0
expect_json 'r["output"]["L"] == [{"slept": s, "i": i} for i, s in enumerate([0.4, 0.05, 0.3, 0.0, 0.2, 0.1, 0.25, 0.0])]' \
  'r["output"]["after"] == {"first": 0, "last": 7}'
# The iterations really finished out of order, four at a time at most.
expect_events "$W/ev-sleepy" \
  '[e["index"] for e in of(ev, "node.completed", "nap")] != list(range(8))' \
  'max(__import__("itertools").accumulate(1 if e["type"] == "loop.iteration" else -1 for e in ev if (e["type"] == "loop.iteration" and e.get("node_id") == "L") or (e["type"] == "node.completed" and e.get("node_id") == "nap"))) == 4'
t_end

ice run "$F/items.yaml" --events "$W/ev-items"
cp "$W/out" "$W/items-result"

t_begin "loop: items_source that is not a list fails with kind expression"
expect_rc 1
expect_json 'r["nodes"]["notlist"]["error"] == {"kind": "expression", "message": "items_source '"'src.x'"' did not resolve to a list"}' \
  '"Node notlist failed: items_source '"'src.x'"' did not resolve to a list" in r["errors"]'
expect_events "$W/ev-items" 'of(ev, "node.started", "nl_body") == []'
t_end

t_begin "loop: an empty list gives [] and completes"
cp "$W/items-result" "$W/out"
expect_json 'r["output"]["empty"] == [] and r["nodes"]["empty"]["status"] == "completed"'
expect_events "$W/ev-items" 'of(ev, "loop.iteration", "empty") == [] and of(ev, "node.started", "e_body") == []'
t_end

t_begin "loop: a failed iteration fails the loop naming index and node; continue_on_error fills the slot"
cp "$W/items-result" "$W/out"
expect_json 'r["nodes"]["fails"]["error"]["kind"] == "tool_error"' \
  're.search(r"\b1\b", r["nodes"]["fails"]["error"]["message"]) and "f_body" in r["nodes"]["fails"]["error"]["message"] and "bad item 2" in r["nodes"]["fails"]["error"]["message"]' \
  'r["nodes"]["tolerant"]["status"] == "completed"' \
  'r["output"]["tolerant"][0] is None and r["output"]["tolerant"][2] is None' \
  'r["output"]["tolerant"][1]["success"] is False and r["output"]["tolerant"][1]["error"]["kind"] == "non_retryable" and r["output"]["tolerant"][1]["error"]["message"] == "bad item 2"' \
  'len(r["errors"]) == 2 and r["metrics"]["nodes_failed"] == 2'
# max_concurrency 1: the failure at index 1 stops the loop before index 2.
expect_events "$W/ev-items" '[e["index"] for e in of(ev, "loop.iteration", "fails")] == [0, 1]' \
  '[e["reason"] for e in of(ev, "node.skipped", "t_body")] == ["run_if", "run_if"]'
t_end

t_begin "loop: loops nested three deep run every cell, in order"
ice run "$F/nested3.yaml" --events "$W/ev-n3"
expect_rc 0
expect_json 'r["output"]["outer"] == [[[{"tag": "0.0.0=10"}, {"tag": "0.0.1=20"}], [{"tag": "0.1.0=30"}]], [[{"tag": "1.0.0=40"}, {"tag": "1.0.1=50"}, {"tag": "1.0.2=60"}]], []]' \
  'r["output"]["flat"] == {"first": "0.0.0=10", "last": "1.0.2=60"}' \
  'list(r["output"]) == ["outer", "flat"] or set(r["output"]) == {"outer", "flat"}'
expect_events "$W/ev-n3" 'len(of(ev, "node.completed", "cell")) == 6 and len(of(ev, "node.completed", "tag")) == 6' \
  'len(of(ev, "loop.iteration", "outer")) == 3 and len(of(ev, "loop.iteration", "middle")) == 3 and len(of(ev, "loop.iteration", "inner")) == 6' \
  'all(e["parent_id"] == "inner" for e in of(ev, "node.started", "cell"))' \
  'all(e["parent_id"] == "outer" for e in of(ev, "node.started", "middle"))'
t_end

# ---- nested retries -------------------------------------------------------

t_begin "retries: a failing nested node is retried by its own retry_policy"
ice run "$F/retry.yaml" --events "$W/ev-retry"
expect_rc 0
expect_json 'r["output"]["L"] == [{"attempts": 3}, {"attempts": 3}]' \
  'r["output"]["C"]["branch_outputs"] == {"cflaky": {"attempts": 3}}' \
  'r["output"]["P"]["merged"]["pflaky"] == {"attempts": 2}' \
  'all(r["nodes"][n]["attempts"] == 1 for n in ("L", "C", "P"))'
expect_events "$W/ev-retry" \
  '[(e["index"], e["attempt"], e["parent_id"]) for e in of(ev, "node.retrying", "lflaky")] == [(0, 2, "L"), (0, 3, "L"), (1, 2, "L"), (1, 3, "L")]' \
  '[(e["attempt"], e["parent_id"], e["delay_ms"]) for e in of(ev, "node.retrying", "cflaky")] == [(2, "C", 10), (3, "C", 10)]' \
  '[(e["attempt"], e["parent_id"]) for e in of(ev, "node.retrying", "pflaky")] == [(2, "P")]' \
  '[e["will_retry"] for e in of(ev, "node.failed", "cflaky")] == [True, True]' \
  'len(of(ev, "node.started", "lflaky")) == 6' \
  'all(len(of(ev, "node.started", n)) == 1 for n in ("L", "C", "P")) and of(ev, "node.retrying", "L") == []'
t_end

# ---- parallel -------------------------------------------------------------

cat >"$W/any-proc.json" <<EOF
{"name": "any-proc", "tools": {"nap": {"command": ["sleep", "31.$MARK"]}},
 "nodes": [
  {"id": "P", "type": "parallel", "wait_strategy": "any", "branches": [
    [{"id": "broken", "type": "tool", "tool_name": "fail", "tool_args": {"message": "fast failure"}}],
    [{"id": "slow", "type": "tool", "tool_name": "nap", "tool_args": {}}],
    [{"id": "wait", "type": "tool", "tool_name": "sleep", "tool_args": {"seconds": 1}},
     {"id": "winner", "type": "tool", "tool_name": "echo", "tool_args": {"who": "winner"}}]]},
  {"id": "after", "type": "tool", "tool_name": "echo", "dependencies": ["P"],
   "tool_args": {"m": "{{ P.merged }}"}}]}
EOF

t_begin "parallel: wait_strategy any returns the first success and kills the slow branch's process"
timeout 20 "$ICE" run "$W/any-proc.json" --events "$W/ev-any" >"$W/out" 2>"$W/err" </dev/null &
pid=$!
BGPIDS="$BGPIDS $pid"
wait_proc "sleep 31\\.$MARK"
wait_bounded "$pid"
# Gone at once: ice run does not exit before its children are dead.
if pgrep -f "sleep 31\\.$MARK" >/dev/null 2>&1; then
  fail "the slow branch's 'sleep 31.$MARK' outlived ice run"
fi
no_proc "sleep 31\\.$MARK"
expect_rc 0
expect_json 'r["success"] is True and r["output"]["P"]["completed_branches"] == [2]' \
  'r["output"]["P"]["merged"] == {"wait": {"slept": 1}, "winner": {"who": "winner"}}' \
  'r["output"]["P"]["branch_results"][0] == {} and r["output"]["P"]["branch_results"][1] == {}' \
  'r["output"]["after"]["m"]["winner"] == {"who": "winner"}' \
  'r["metrics"]["duration_ms"] < 10000 and r["errors"] == []'
expect_events "$W/ev-any" 'len(of(ev, "node.cancelled", "slow")) == 1 and of(ev, "node.completed", "slow") == []' \
  '[e["error"]["message"] for e in of(ev, "node.failed")] == ["fast failure"]'
t_end

# ---- recursive ------------------------------------------------------------

t_begin "recursive: converges on the iteration the condition first holds"
ice run "$F/recursive.yaml" --events "$W/ev-rec"
expect_rc 0
expect_json 'r["output"]["count"]["converged"] is True and r["output"]["count"]["reason"] == "condition_met"' \
  'r["output"]["count"]["iterations"] == 3' \
  '[h["step"]["n"] for h in r["output"]["count"]["final_context"]["history"]] == [1, 2, 3]' \
  'r["output"]["count"]["final_context"]["node_id"] == "count" and r["output"]["count"]["final_context"]["iteration"] == 3' \
  'r["output"]["after_count"] == {"iterations": 3, "last": 3}'
expect_events "$W/ev-rec" \
  '[(e["iteration"], e["converged"]) for e in of(ev, "recursive.iteration", "count")] == [(1, False), (2, False), (3, True)]' \
  'len(of(ev, "node.completed", "step")) == 3' \
  'len(of(ev, "node.started", "after_count")) == 1' \
  'of(ev, "node.completed", "count")[0]["seq"] < of(ev, "node.started", "after_count")[0]["seq"]'
t_end

t_begin "recursive: stops at max_iterations when the condition never holds"
expect_json 'r["output"]["never"] == {"converged": False, "reason": "max_iterations_reached", "iterations": 4, "final_context": {}}' \
  'r["output"]["spin"] == {"k": 3}' \
  'r["output"]["after_never"]["r"]["iterations"] == 4'
expect_events "$W/ev-rec" \
  '[(e["iteration"], e["converged"]) for e in of(ev, "recursive.iteration", "never")] == [(1, False), (2, False), (3, False), (4, False)]' \
  'len(of(ev, "node.completed", "spin")) == 4 and len(of(ev, "node.started", "after_never")) == 1'
t_end

t_begin "recursive: sources that are not on a cycle are a validation error"
ice run "$F/not-cycle.yaml"
expect_rc 2
expect_out_empty
expect_diag "$F/not-cycle.yaml" "none of the recursive_sources is on a cycle through 'R'"
ice validate "$F/not-cycle.yaml"
expect_rc 2
expect_diag "$F/not-cycle.yaml" "recursive_sources"
t_end

# ---- workflow (sub-workflow) ----------------------------------------------

t_begin "workflow: a sub-workflow file that does not exist: exit 2, names both files"
ice validate "$F/sub-missing.yaml"
expect_rc 2
expect_diag "$F/sub-missing.yaml" "workflow_ref"
expect_err_has "no-such-child.yaml"
ice run "$F/sub-missing.yaml"
expect_rc 2
expect_out_empty
t_end

t_begin "workflow: an invalid sub-workflow: exit 2, the child's own errors name its file"
ice run "$F/sub-invalid.yaml"
expect_rc 2
expect_out_empty
expect_diag "$F/sub-invalid.yaml" "invalid-child.yaml"
expect_err_has "invalid-child.yaml:"
expect_err_has "duplicate id 'x'"
expect_err_has "unknown dependency 'ghost'"
t_end

t_begin "workflow: a workflow that references itself, directly or through another: exit 2"
ice validate "$F/self-ref.yaml"
expect_rc 2
expect_diag "$F/self-ref.yaml" "references itself"
ice run "$F/mutual-a.yaml"
expect_rc 2
expect_out_empty
expect_diag "$F/mutual-a.yaml" "mutual-b.yaml"
expect_err_has "references itself"
t_end

t_begin "workflow: a failing child fails the node with kind subworkflow naming its node"
ice run "$F/sub-fails.yaml" --events "$W/ev-subf"
expect_rc 1
expect_json 'r["nodes"]["call"]["error"]["kind"] == "subworkflow"' \
  '"broken" in r["nodes"]["call"]["error"]["message"] and "disk full" in r["nodes"]["call"]["error"]["message"]' \
  'r["nodes"]["after"]["reason"] == "upstream_failed"' \
  'list(r["nodes"]) == ["call", "after"] and len(r["errors"]) == 1'
t_end

python3 -I -S - "$W" <<'PY'
import json, os, sys
d = os.path.join(sys.argv[1], "deep")
os.makedirs(d)
n = 18  # w0 -> w1 -> ... -> w17: 17 levels of child runs below w0
for i in range(n):
    if i < n - 1:
        nodes = [{"id": "d%d" % i, "type": "workflow", "workflow_ref": "w%d.json" % (i + 1),
                  "inputs": {"depth": i + 1}}]
    else:
        nodes = [{"id": "leaf", "type": "tool", "tool_name": "echo",
                  "tool_args": {"depth": "{{ depth }}"}}]
    json.dump({"name": "w%d" % i, "nodes": nodes}, open(os.path.join(d, "w%d.json" % i), "w"))
PY

t_begin "workflow: 16 levels of sub-workflows run, 17 fail as nested too deep"
ice run "$W/deep/w1.json"
expect_rc 0
expect_json 'r["output"]["d1"]["d2"]["d3"]["d4"]["d5"]["d6"]["d7"]["d8"]["d9"]["d10"]["d11"]["d12"]["d13"]["d14"]["d15"]["d16"] == {"leaf": {"depth": 17}}'
ice run "$W/deep/w0.json"
expect_rc 1
expect_json 'r["nodes"]["d0"]["error"]["kind"] in ("subworkflow", "non_retryable")' \
  '"deeper than 16" in r["nodes"]["d0"]["error"]["message"]'
t_end

# ---- ice graph --------------------------------------------------------------

t_begin "graph: nested nodes appear inside their parent (mermaid subgraph, dot cluster)"
ice graph "$F/nested3.yaml" --format mermaid
expect_rc 0
grep -qE '^ *subgraph [A-Za-z0-9_]+ *\["?inner' "$W/out" || fail "no mermaid subgraph for inner: $(cat "$W/out")"
python3 -I -S - "$W/out" >"$W/chk" 2>&1 <<'PY' || fail "mermaid nesting: $(cat "$W/chk")"
import re, sys
depth, where = 0, {}
for line in open(sys.argv[1]):
    s = line.strip()
    if s.startswith("subgraph "):
        depth += 1
    elif s == "end":
        depth -= 1
    else:
        m = re.match(r'([A-Za-z0-9_-]+)\[', s)
        if m:
            where[m.group(1)] = depth
want = {"outer": 0, "middle": 1, "inner": 2, "cell": 3, "tag": 3, "flat": 0}
assert where == want, where
PY
ice graph "$F/nested3.yaml" --format dot
expect_rc 0
python3 -I -S - "$W/out" >"$W/chk" 2>&1 <<'PY' || fail "dot clusters: $(cat "$W/chk")"
import re, sys
depth, where = 0, {}
for line in open(sys.argv[1]):
    s = line.strip()
    if re.match(r'subgraph "?cluster', s):
        depth += 1
    elif s == "}":
        depth -= 1
    else:
        m = re.match(r'"([A-Za-z0-9_-]+)" \[', s)
        if m:
            where[m.group(1)] = depth
want = {"outer": 0, "middle": 1, "inner": 2, "cell": 3, "tag": 3, "flat": 0}
assert where == want, where
PY
ice graph "$ROOT/examples/if-else.yaml"
expect_rc 0
grep -q 'subgraph "cluster' "$W/out" || fail "no dot cluster for check's paths: $(cat "$W/out")"
t_end

# ---- cancellation ---------------------------------------------------------

cat >"$W/flow-sig.json" <<EOF
{"name": "flow-sig", "tools": {"nap": {"command": ["sleep", "32.$MARK"]}},
 "nodes": [
  {"id": "L", "type": "loop", "items_source": "[1, 2, 3]", "max_concurrency": 3,
   "body": [{"id": "ln", "type": "tool", "tool_name": "nap", "tool_args": {}}]},
  {"id": "P", "type": "parallel",
   "branches": [[{"id": "pn", "type": "tool", "tool_name": "nap", "tool_args": {}}]]},
  {"id": "C", "type": "condition", "expression": "true",
   "true_path": [{"id": "cn", "type": "tool", "tool_name": "nap", "tool_args": {}}]}]}
EOF

t_begin "cancel: SIGTERM kills the processes of loop, parallel and condition bodies, exit 130"
timeout 20 "$ICE" run "$W/flow-sig.json" --no-store >"$W/out" 2>"$W/err" </dev/null &
pid=$!
BGPIDS="$BGPIDS $pid"
i=0
while [ "$(pgrep -f "sleep 32\\.$MARK" | wc -l)" -lt 5 ] && [ $i -lt 100 ]; do
  i=$((i + 1))
  sleep 0.1
done
[ $i -lt 100 ] || fail "the 5 nested 'sleep 32.$MARK' processes did not all start"
kill -TERM "$pid"
wait_bounded "$pid"
expect_rc 130
if pgrep -f "sleep 32\\.$MARK" >/dev/null 2>&1; then
  fail "nested 'sleep 32.$MARK' processes outlived ice run"
fi
no_proc "sleep 32\\.$MARK"
expect_json 'r["status"] == "cancelled"' \
  'all(r["nodes"][n]["status"] == "cancelled" for n in ("L", "P", "C"))' \
  'r["metrics"]["nodes_failed"] == 0'
t_end
