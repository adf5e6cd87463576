# Regression cases for bugs found and fixed during development.
t_begin "regression: --events FILE is written as events happen (flushed), not only at exit"
# A user tailing the events file (tail -f) sees nothing until the run ends,
# and a run killed with SIGKILL leaves an empty events file.
wf live.json <<'J'
{"nodes": [{"id": "a", "type": "tool", "tool_name": "echo"},
           {"id": "s", "type": "tool", "tool_name": "sleep", "tool_args": {"seconds": 1.5},
            "dependencies": ["a"]}]}
J
"$ICE" run "$W/live.json" --events "$W/ev-live" >"$W/out" 2>"$W/err" </dev/null &
pid=$!
BGPIDS="$BGPIDS $pid"
sleep 0.7
cp "$W/ev-live" "$W/ev-live-mid" 2>/dev/null || : >"$W/ev-live-mid"
wait_bounded "$pid"
expect_rc 0
expect_events "$W/ev-live-mid" 'len(of(ev, "workflow.started")) == 1' \
  'len(of(ev, "node.completed", "a")) == 1 and len(of(ev, "node.started", "s")) == 1'
t_end

t_begin "regression: binary garbage in a .json file is not reported as 'empty root content'"
ice validate "$FIX/validate/garbage.json"
expect_rc 2
grep -q "empty root content" "$W/err" && fail "misleading message: $(cat "$W/err")"
t_end

t_begin "regression: --inputs @missing-file names the file without a bogus -1:-1 position"
ice run "$ROOT/examples/hello.json" --inputs "@$W/missing.json"
expect_rc 2
expect_err_has "$W/missing.json"
grep -q -- "-1:-1" "$W/err" && fail "stderr: $(cat "$W/err")"
t_end


t_begin "regression: a JSON file nested 300 deep is refused like a YAML one (limit 256)"
python3 -c "
import json
v = 1
for _ in range(300):
    v = [v]
print(json.dumps({'nodes': [{'id': 'a', 'type': 'tool', 'tool_name': 'echo',
                             'tool_args': {'deep': v}}]}))" > "$W/deep300.json"
ice validate "$W/deep300.json"
expect_rc 2
expect_err_has "nesting deeper than 256 levels"
t_end

t_begin "regression: input_mappings on a node with no dependencies is a clean validation error"
# Found by fuzz/fuzz_workflow: bsearch over an empty dependency list.
wf map-nodeps.json <<'EOF'
{"nodes": [{"id": "a", "type": "tool", "tool_name": "echo"},
           {"id": "b", "type": "tool", "tool_name": "echo",
            "input_mappings": {"x": {"source_node_id": "a"}}}]}
EOF
ice validate "$W/map-nodeps.json"
expect_rc 2
expect_err_has "input_mappings.x: source 'a' is not a dependency of this node"
t_end

t_begin "workflow node: its input_schema checks the inputs handed to the child"
mkdir -p "$W/pin"
cat > "$W/pin/child.yaml" <<'EOF'
nodes:
  - {id: c, type: tool, tool_name: echo, tool_args: {x: "{{ x }}"}}
EOF
cat > "$W/pin/parent.yaml" <<'EOF'
nodes:
  - id: w
    type: workflow
    workflow_ref: child.yaml
    inputs: {x: "21"}
    input_schema: {type: object, properties: {x: {type: integer}}}
EOF
ice run "$W/pin/parent.yaml"
expect_rc 1
expect_json 'r["nodes"]["w"]["error"]["kind"] == "input_validation"' \
  '"$.x: expected integer, got string" in r["nodes"]["w"]["error"]["message"]'
t_end

t_begin "sub-workflow runs name their parent run and node in workflow.* events"
ice run "$ROOT/examples/subworkflow.yaml" --events "$W/ev-parent"
expect_rc 0
expect_events "$W/ev-parent" \
  'len(of(ev, "workflow.started")) == 2' \
  'of(ev, "workflow.started")[1]["parent_run_id"] == of(ev, "workflow.started")[0]["run_id"]' \
  'of(ev, "workflow.started")[1]["parent_node_id"] == "summarize"' \
  '"parent_run_id" not in of(ev, "workflow.started")[0]' \
  'of(ev, "workflow.completed")[0]["parent_node_id"] == "summarize"'
t_end

t_begin "validate on a directory says why it cannot be read"
ice validate "$W"
expect_rc 2
expect_err_has "cannot read the workflow: Is a directory"
t_end

t_begin "validate suggests the name a typo was probably meant to be"
wf typo.yaml <<'EOF'
nmae: typo
nodes:
  - {id: fetch, type: tool, tool_name: ecko}
  - {id: b, type: tool, tool_name: echo, dependencies: [fecth], timout_seconds: 3}
  - {id: c, type: tol, tool_name: echo, dependencies: [b]}
  - {id: d, type: tool, tool_name: echo, dependencies: [zzzzzz]}
EOF
ice validate "$W/typo.yaml"
expect_rc 2
expect_err_has "unknown field 'nmae' at the top level (did you mean 'name'?)"
expect_err_has "unknown tool 'ecko' (did you mean 'echo'?)"
expect_err_has "unknown dependency 'fecth' (did you mean 'fetch'?)"
expect_err_has "unknown field 'timout_seconds' (did you mean 'timeout_seconds'?)"
expect_err_has "unknown node type 'tol' (did you mean 'tool'?)"
# Nothing close: no guess.
expect_err_has "unknown dependency 'zzzzzz'"
if grep -q "zzzzzz' (did you mean" "$W/err"; then fail "guessed for a far-off name"; fi
t_end
