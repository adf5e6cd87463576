# Regression cases for control-flow bugs found and fixed during development.

wf cond-in-loop.yaml <<'EOF'
name: cond-in-loop
nodes:
  - id: L
    type: loop
    items_source: "[1, 2]"
    body:
      - id: c
        type: condition
        expression: "item > 1"
        true_path: [{id: t, type: tool, tool_name: echo}]
        false_path: [{id: f, type: tool, tool_name: echo}]
EOF

# SPEC §10: nested nodes inside loops carry `index`, the untaken path's
# node.skipped events included.
t_begin "regression: node.skipped (branch_not_taken) inside a loop carries index"
ice run "$W/cond-in-loop.yaml" --events "$W/ev-cil"
expect_rc 0
expect_events "$W/ev-cil" \
  '[(e["node_id"], e.get("index")) for e in of(ev, "node.skipped")] == [("t", 0), ("f", 1)]'
t_end

wf race-limit.yaml <<'EOF'
name: race-limit
nodes:
  - id: R
    type: parallel
    wait_strategy: race
    max_concurrency: 1
    branches:
      - [{id: r1, type: tool, tool_name: sleep, tool_args: {seconds: 0.1}}]
      - [{id: r2, type: tool, tool_name: echo, tool_args: {}}]
EOF

# SPEC §2.2 (every node of a finished run ends terminal) and §4.3 ("Nodes
# stopped because another branch won are cancelled"): r2's branch never
# starts (max_concurrency 1, r1 wins the race) and no event ever says what
# became of r2, whereas a pending node of a started losing branch gets
# node.cancelled (see examples/parallel-any.yaml: slow).
t_begin "regression: a parallel branch that never started because another won is reported cancelled"
ice run "$W/race-limit.yaml" --events "$W/ev-race"
expect_rc 0
expect_events "$W/ev-race" 'len(of(ev, "node.cancelled", "r2")) + len(of(ev, "node.skipped", "r2")) == 1'
t_end

# SPEC §10: "Exactly one node.started per attempt." The recursive node's
# single attempt (nodes.count.attempts == 1) emits one node.started per
# iteration (three here) and one node.completed.
t_begin "regression: a recursive node emits one node.started per attempt, not per iteration"
ice run "$FIX/flow/recursive.yaml" --events "$W/ev-rec"
expect_rc 0
expect_json 'r["nodes"]["count"]["attempts"] == 1'
expect_events "$W/ev-rec" 'len(of(ev, "node.started", "count")) == len(of(ev, "node.completed", "count")) + len(of(ev, "node.failed", "count"))'
t_end

wf mermaid-ids.yaml <<'EOF'
name: mermaid-ids
nodes:
  - id: c
    type: condition
    expression: "true"
    true_path: [{id: t1, type: tool, tool_name: echo, tool_args: {}}]
    false_path: [{id: f1, type: tool, tool_name: echo, tool_args: {}}]
  - {id: c_0, type: tool, tool_name: echo, tool_args: {}, dependencies: [c]}
EOF

# `ice graph --format mermaid` names the subgraph of c's first path `c_0`,
# the id of another node of the file: Mermaid then treats node c_0 and the
# subgraph as one thing (edge c --> c_0 points at the subgraph, or the
# diagram fails to render). Subgraph ids must not collide with node ids.
t_begin "regression: mermaid subgraph ids never collide with node ids"
ice graph "$W/mermaid-ids.yaml" --format mermaid
expect_rc 0
python3 -I -S - "$W/out" >"$W/chk" 2>&1 <<'EOF' || fail "$(cat "$W/chk")"
import re, sys
text = open(sys.argv[1]).read()
subs = set(re.findall(r"^\s*subgraph\s+([A-Za-z0-9_-]+)", text, re.M))
nodes = set(re.findall(r"^\s*([A-Za-z0-9_-]+)\[", text, re.M))
assert not subs & nodes, "ids used for both: %s\n%s" % (sorted(subs & nodes), text)
EOF
t_end

