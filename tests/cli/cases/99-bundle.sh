# Bundle workflows (SPEC §1.1): declared `inputs`, rendered `outputs`, tool
# files (--tools, ICE_TOOLS) and their resolution order, tool files kept by
# the store for `ice resume`, and warnings. Every case uses a private store.

B=$W/bundle
BS=$B/store.db
mkdir -p "$B"

cat >"$B/greet.yaml" <<'EOF'
name: greet
inputs:
  required: [topic]
  optional: [tone]
outputs:
  summary: "{{ say.text }}"
  details:
    topic: "{{ inputs.topic }}"
    tone: "{{ tone if exists(tone) else 'plain' }}"
    list: ["{{ topic }}", 2, "{{ len(topic) }}"]
  fixed: 42
nodes:
  - id: say
    type: tool
    tool_name: echo
    tool_args: {text: "hello {{ topic }}", extra: "{{ inputs.extra if exists(inputs.extra) else none_given if exists(none_given) else 0 }}"}
EOF

t_begin "bundle: required and optional inputs; outputs rendered (nested, node fields, inputs)"
ice run "$B/greet.yaml" --store "$BS" --input topic=ice --input tone=dry
expect_rc 0
expect_json 'r["status"] == "completed" and r["success"] is True' \
  'r["output"] == {"summary": "hello ice", "details": {"topic": "ice", "tone": "dry", "list": ["ice", 2, 3]}, "fixed": 42}' \
  'list(r["nodes"]) == ["say"] and r["nodes"]["say"]["status"] == "completed"'
gid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$W/out")
cp "$W/out" "$B/greet-result"
ice show "$gid" --store "$BS"
expect_rc 0
expect_json 'r["output"]["summary"] == "hello ice" and r["output"]["fixed"] == 42'
cmp -s "$W/out" "$B/greet-result" || fail "show differs from run: $(cat "$W/out")"
ice run "$B/greet.yaml" --no-store --input topic=ice --output-only
expect_rc 0
expect_json 'r == {"summary": "hello ice", "details": {"topic": "ice", "tone": "plain", "list": ["ice", 2, 3]}, "fixed": 42}'
t_end

t_begin "bundle: a missing required input is exit 2 naming it and the declared ones; nothing runs"
n_before=$($ICE runs --store "$BS" | wc -l)
ice run "$B/greet.yaml" --store "$BS" --input tone=dry --events "$B/ev-missing"
expect_rc 2
expect_out_empty
expect_err_has "missing required input 'topic' (the workflow declares: topic, tone (optional))"
[ -s "$B/ev-missing" ] && fail "events were written: $(cat "$B/ev-missing")"
[ "$($ICE runs --store "$BS" | wc -l)" = "$n_before" ] || fail "a refused run was stored"
t_end

t_begin "bundle: an undeclared input nothing reads is exit 2; one that a template reads is fine"
ice run "$B/greet.yaml" --store "$BS" --input topic=ice --input colour=red
expect_rc 2
expect_out_empty
expect_err_has "input 'colour' is not declared and nothing in the workflow reads it (the workflow declares: topic, tone (optional))"
# `extra` is read as inputs.extra, `none_given` as a bare name.
ice run "$B/greet.yaml" --no-store --input topic=ice --input extra=7 --input none_given=1
expect_rc 0
expect_json 'r["output"]["summary"] == "hello ice"'
t_end

t_begin "bundle: inputs as a bare list are required; with input_schema both apply"
cat >"$B/list.yaml" <<'EOF'
inputs: [a, b]
input_schema: {type: object, properties: {a: {type: integer}}}
nodes:
  - {id: n, type: tool, tool_name: echo, tool_args: {a: "{{ a }}", b: "{{ b }}"}}
EOF
ice run "$B/list.yaml" --no-store --input a=1
expect_rc 2
expect_err_has "missing required input 'b' (the workflow declares: a, b)"
ice run "$B/list.yaml" --no-store --input a=x --input b=2
expect_rc 2
expect_err_has "inputs do not match input_schema"
ice run "$B/list.yaml" --no-store --input a=1 --input b=2 --output-only
expect_rc 0
expect_json 'r == {"n": {"a": 1, "b": 2}}'
t_end

t_begin "bundle: inputs and outputs of the wrong shape are errors with their position"
cat >"$B/shape.yaml" <<'EOF'
inputs:
  required: [a, 3]
  optional: b
  defaults: {a: 1}
outputs:
  bad: "{{ a. }}"
  open: ["x", {y: "{{ a"}]
nodes:
  - {id: n, type: tool, tool_name: echo}
EOF
ice validate "$B/shape.yaml"
expect_rc 2
expect_diag "$B/shape.yaml" "inputs.required[1] must be an input name" 2
expect_diag "$B/shape.yaml" "inputs.optional must be an array of input names" 3
expect_diag "$B/shape.yaml" "inputs: unknown field 'defaults'" 4
expect_diag "$B/shape.yaml" "outputs.bad: " 6
expect_diag "$B/shape.yaml" "outputs.open[1].y: unterminated '{{'" 7
cat >"$B/shape2.yaml" <<'EOF'
inputs: {required: [a, a]}
outputs: [x]
nodes:
  - {id: n, type: tool, tool_name: echo}
EOF
ice validate "$B/shape2.yaml"
expect_rc 2
expect_diag "$B/shape2.yaml" "input 'a' is declared twice" 1
expect_diag "$B/shape2.yaml" "field 'outputs' must be" 2
t_end

t_begin "bundle: a failing output template fails the run (exit 1) and keeps the node map"
cat >"$B/badout.yaml" <<'EOF'
outputs:
  good: "{{ a.x }}"
  broken: "{{ a.missing }}"
  worse: "{{ 1 + 'a' }}"
nodes:
  - {id: a, type: tool, tool_name: echo, tool_args: {x: 1}}
EOF
ice run "$B/badout.yaml" --store "$BS"
expect_rc 1
expect_json 'r["status"] == "failed" and r["success"] is False' \
  'r["output"] == {"a": {"x": 1}} and r["nodes"]["a"]["status"] == "completed"' \
  '"Output broken: undefined: a.missing" in r["errors"]' \
  'len([e for e in r["errors"] if e.startswith("Output worse: ")]) == 1 and len(r["errors"]) == 2'
bid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$W/out")
ice show "$bid" --store "$BS"
expect_json 'r["status"] == "failed" and "Output broken: undefined: a.missing" in r["errors"]'
t_end

t_begin "bundle: a run that fails keeps the node map as output; outputs are not rendered"
cat >"$B/failrun.yaml" <<'EOF'
outputs: {never: "{{ b.x }}"}
nodes:
  - {id: a, type: tool, tool_name: echo, tool_args: {x: 1}}
  - {id: b, type: tool, tool_name: fail, tool_args: {message: boom}}
EOF
ice run "$B/failrun.yaml" --no-store
expect_rc 1
expect_json 'r["status"] == "failed" and r["output"] == {"a": {"x": 1}}' \
  'r["errors"] == ["Node b failed: boom"]'
t_end

t_begin "bundle: a workflow node sees its child's outputs; the child's inputs fail it as input_validation"
cat >"$B/child.yaml" <<'EOF'
inputs: {required: [n], optional: [label]}
outputs:
  doubled: "{{ calc.v * 2 }}"
  label: "{{ label if exists(label) else 'none' }}"
nodes:
  - {id: calc, type: tool, tool_name: echo, tool_args: {v: "{{ n }}"}}
EOF
cat >"$B/parent.yaml" <<'EOF'
nodes:
  - {id: whole, type: workflow, workflow_ref: child.yaml, inputs: {n: 4}}
  - {id: some, type: workflow, workflow_ref: child.yaml, inputs: {n: 5, label: x}, exposed_outputs: {d: doubled}}
  - {id: missing, type: workflow, workflow_ref: child.yaml, inputs: {label: x}}
  - {id: extra, type: workflow, workflow_ref: child.yaml, inputs: {n: 1, colour: red}}
EOF
ice run "$B/parent.yaml" --no-store
expect_rc 1
expect_json 'r["output"]["whole"] == {"doubled": 8, "label": "none"}' \
  'r["output"]["some"] == {"d": 10}' \
  'r["nodes"]["missing"]["error"]["kind"] == "input_validation"' \
  '"missing required input '"'"'n'"'"'" in r["nodes"]["missing"]["error"]["message"]' \
  'r["nodes"]["extra"]["error"]["kind"] == "input_validation"' \
  '"input '"'"'colour'"'"' is not declared" in r["nodes"]["extra"]["error"]["message"]'
t_end

t_begin "bundle: a recursive node hands a child that declares inputs only those"
# The child converges when it got exactly `a` and `iteration`; R's whole
# context (with `inputs`) would make three names.
cat >"$B/judge.yaml" <<'EOF'
inputs: {required: [a], optional: [iteration]}
outputs:
  names: "{{ len(inputs) }}"
  ok: "{{ len(inputs) == 2 and a.v * iteration >= 6 }}"
nodes:
  - {id: j, type: tool, tool_name: echo}
EOF
cat >"$B/loop.yaml" <<'EOF'
nodes:
  - {id: a, type: tool, tool_name: echo, tool_args: {v: 2}, dependencies: [R]}
  - {id: R, type: recursive, dependencies: [a], recursive_sources: [a],
     workflow_ref: judge.yaml, convergence_condition: result.ok, max_iterations: 5}
EOF
ice run "$B/loop.yaml" --no-store --events "$B/ev-loop" --output-only
expect_rc 0
expect_json 'r["R"]["converged"] is True and r["R"]["iterations"] == 3'
expect_events "$B/ev-loop" \
  'len(of(ev, "workflow.completed")) == 4' \
  'all(e["success"] for e in of(ev, "workflow.completed"))'
t_end

# --- tool files ---------------------------------------------------------------

mkdir -p "$B/t1/bin" "$B/t2" "$B/wd"
cat >"$B/t1/tools.yaml" <<'EOF'
tools:
  where:
    command: [sh, bin/where.sh]
  shared:
    command: [sh, -c, 'cat >/dev/null; echo "{\"from\": \"file1\"}"']
  mine:
    command: [sh, -c, 'cat >/dev/null; echo "{\"from\": \"file1\"}"']
  echo:
    command: [sh, -c, 'cat >/dev/null; echo "{\"from\": \"file1-echo\"}"']
  sub:
    command: [sh, -c, 'cat >/dev/null; echo "{\"from\": \"file1\", \"cwd\": \"$(pwd)\"}"']
    cwd: ../wd
agents:
  helper: {system_prompt: "You help."}
x-note: ignored
EOF
cat >"$B/t1/bin/where.sh" <<'EOF'
cat >/dev/null
echo "{\"script\": true, \"cwd\": \"$(pwd)\"}"
EOF
cat >"$B/t2/tools.json" <<'EOF'
{"tools": {"shared": {"command": ["sh", "-c", "cat >/dev/null; echo '{\"from\": \"file2\"}'"]},
           "only2": {"command": ["sh", "-c", "cat >/dev/null; echo '{\"from\": \"file2\"}'"]},
           "echo": {"command": ["sh", "-c", "cat >/dev/null; echo '{\"from\": \"file2-echo\"}'"]}}}
EOF
cat >"$B/uses.yaml" <<'EOF'
tools:
  mine:
    command: [sh, -c, 'cat >/dev/null; echo "{\"from\": \"workflow\"}"']
nodes:
  - {id: mine, type: tool, tool_name: mine}
  - {id: shared, type: tool, tool_name: shared}
  - {id: only2, type: tool, tool_name: only2}
  - {id: echo, type: tool, tool_name: echo, tool_args: {x: 1}}
  - {id: where, type: tool, tool_name: where}
  - {id: sub, type: tool, tool_name: sub}
EOF

t_begin "tool files: workflow wins over file 1 over file 2 over the built-in echo"
ice run "$B/uses.yaml" --no-store --tools "$B/t1/tools.yaml" --tools="$B/t2/tools.json" --output-only
expect_rc 0
expect_json 'r["mine"] == {"from": "workflow"} and r["shared"] == {"from": "file1"}' \
  'r["only2"] == {"from": "file2"} and r["echo"] == {"from": "file1-echo"}'
ice run "$B/uses.yaml" --no-store --tools "$B/t2/tools.json" --tools "$B/t1/tools.yaml" --output-only
expect_rc 0
expect_json 'r["mine"] == {"from": "workflow"} and r["shared"] == {"from": "file2"}' \
  'r["echo"] == {"from": "file2-echo"}'
t_end

t_begin "tool files: ICE_TOOLS (':'-separated, empty entries skipped) after --tools"
ICE_TOOLS=":$B/t2/tools.json::$B/t1/tools.yaml:" ice run "$B/uses.yaml" --no-store --output-only
expect_rc 0
expect_json 'r["shared"] == {"from": "file2"} and r["echo"] == {"from": "file2-echo"} and r["mine"] == {"from": "workflow"}'
ICE_TOOLS="$B/t2/tools.json" ice run "$B/uses.yaml" --no-store --tools "$B/t1/tools.yaml" --output-only
expect_rc 0
expect_json 'r["shared"] == {"from": "file1"} and r["only2"] == {"from": "file2"} and r["echo"] == {"from": "file1-echo"}'
t_end

t_begin "tool files: relative command paths and cwd start at the tool file's directory"
(cd "$B/wd" && ICE_HOME=$W/ice-home timeout 20 "$ICE" run ../uses.yaml --no-store \
  --tools ../t1/tools.yaml --tools ../t2/tools.json --output-only) >"$W/out" 2>"$W/err"
RC=$?
expect_rc 0
real_t1=$(cd "$B/t1" && pwd -P)
real_wd=$(cd "$B/wd" && pwd -P)
expect_json "r['where'] == {'script': True, 'cwd': '$real_t1'}" \
  "r['sub'] == {'from': 'file1', 'cwd': '$real_wd'}"
t_end

t_begin "tool files: without them the tools are unknown; echo is the built-in"
ice validate "$B/uses.yaml"
expect_rc 2
expect_diag "$B/uses.yaml" "node 'shared': unknown tool 'shared'" 6
cat >"$B/builtin.yaml" <<'EOF'
nodes:
  - {id: echo, type: tool, tool_name: echo, tool_args: {x: 1}}
EOF
ice run "$B/builtin.yaml" --no-store --output-only
expect_rc 0
expect_json 'r == {"echo": {"x": 1}}'
t_end

t_begin "tool files: validate and graph accept --tools (and ICE_TOOLS)"
ice validate --tools "$B/t1/tools.yaml" --tools "$B/t2/tools.json" "$B/uses.yaml"
expect_rc 0
expect_out_empty
ICE_TOOLS="$B/t1/tools.yaml:$B/t2/tools.json" ice validate "$B/uses.yaml"
expect_rc 0
ice graph "$B/uses.yaml" --tools "$B/t1/tools.yaml" --tools="$B/t2/tools.json" --format mermaid
expect_rc 0
grep -q "only2" "$W/out" || fail "graph: $(cat "$W/out")"
ice graph "$B/uses.yaml" --tools "$B/t1/tools.yaml"
expect_rc 2
expect_diag "$B/uses.yaml" "unknown tool 'only2'"
t_end

t_begin "tool files: a sub-workflow sees them too"
cat >"$B/usechild.yaml" <<'EOF'
nodes:
  - {id: c, type: tool, tool_name: only2}
EOF
cat >"$B/useparent.yaml" <<'EOF'
nodes:
  - {id: w, type: workflow, workflow_ref: usechild.yaml}
EOF
ice run "$B/useparent.yaml" --no-store --tools "$B/t2/tools.json" --output-only
expect_rc 0
expect_json 'r == {"w": {"c": {"from": "file2"}}}'
t_end

t_begin "tool files: unknown keys and bad definitions are errors with their position"
cat >"$B/badtools.yaml" <<'EOF'
tools:
  t: {command: [sh], colour: red}
  u: {env: {A: 1}}
workflows: {a: b.yaml}
agents: {x: 3}
EOF
ice validate --tools "$B/badtools.yaml" "$B/builtin.yaml"
expect_rc 2
expect_diag "$B/badtools.yaml" "tools.t: unknown field 'colour'" 2
expect_diag "$B/badtools.yaml" "tools.u: missing required field 'command'" 3
expect_diag "$B/badtools.yaml" "unknown field 'workflows' at the top level of a tool file" 4
expect_diag "$B/badtools.yaml" "agents.x must be an object" 5
ice run "$B/builtin.yaml" --no-store --tools "$B/badtools.yaml"
expect_rc 2
expect_out_empty
expect_diag "$B/badtools.yaml" "unknown field 'workflows'" 4
printf 'tools: [\n' >"$B/syntax.yaml"
ice graph "$B/builtin.yaml" --tools "$B/syntax.yaml"
expect_rc 2
expect_out_empty
grep -q "^$B/syntax.yaml:[0-9]*:[0-9]*: error: " "$W/err" || fail "stderr: $(cat "$W/err")"
t_end

t_begin "tool files: an iceOS plugin manifest is refused (exit 2), asking for process tools"
cat >"$B/plugins.v0.yaml" <<'EOF'
schema_version: plugins.v0
components:
  - node_type: tool
    name: csv_reader
    import: Plugins.kits.tools.csv.reader:CSVReaderTool
EOF
ice run "$B/builtin.yaml" --no-store --tools "$B/plugins.v0.yaml"
expect_rc 2
expect_out_empty
expect_diag "$B/plugins.v0.yaml" "iceOS plugin manifest" 1
expect_err_has "Python components"
expect_err_has "process tool"
ICE_TOOLS="$B/plugins.v0.yaml" ice validate "$B/builtin.yaml"
expect_rc 2
expect_diag "$B/plugins.v0.yaml" "iceOS plugin manifest" 1
t_end

t_begin "tool files: a resumed run uses the definitions it started with (file changed, then deleted)"
mkdir -p "$B/rt"
cat >"$B/rt/tools.yaml" <<'EOF'
tools:
  ver:
    command: [sh, -c, 'cat >/dev/null; echo "{\"version\": 1, \"cwd\": \"$(pwd)\"}"']
EOF
cat >"$B/rt/flow.yaml" <<'EOF'
nodes:
  - {id: before, type: tool, tool_name: ver}
  - {id: ok, type: human, prompt_message: "Go on?", dependencies: [before]}
  - {id: after, type: tool, tool_name: ver, dependencies: [ok]}
EOF
ice run "$B/rt/flow.yaml" --store "$BS" --tools "$B/rt/tools.yaml" --no-interactive
expect_rc 3
expect_json 'r["output"]["before"]["version"] == 1'
rid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$W/out")
sed 's/"version\\": 1/"version\\": 2/' "$B/rt/tools.yaml" >"$B/rt/tools.new"
mv "$B/rt/tools.new" "$B/rt/tools.yaml"
grep -q 'version\\": 2' "$B/rt/tools.yaml" || fail "the tool file was not changed: $(cat "$B/rt/tools.yaml")"
# A changed file: a new run sees version 2, the resumed one still 1.
ice run "$B/rt/flow.yaml" --no-store --tools "$B/rt/tools.yaml" --answer ok=approve --output-only
expect_rc 0
expect_json 'r["after"]["version"] == 2'
rm "$B/rt/tools.yaml"
ice resume "$rid" --store "$BS" --answer ok=approve
expect_rc 0
expect_json 'r["status"] == "completed"' \
  'r["output"]["before"]["version"] == 1 and r["output"]["after"]["version"] == 1'
real_rt=$(cd "$B/rt" && pwd -P)
expect_json "r['output']['after']['cwd'] == '$real_rt'"
ice resume "$rid" --store "$BS" --tools "$B/t1/tools.yaml"
expect_rc 2
t_end

t_begin "tool files: the run's row keeps their path and content"
sqlite3 "$BS" "SELECT tools FROM runs WHERE run_id = '$rid'" >"$W/out" 2>"$W/err" ||
  fail "sqlite3: $(cat "$W/err")"
expect_json 'len(r) == 1 and r[0]["path"].endswith("/rt/tools.yaml")' \
  're.search("version.{0,3}: 1", r[0]["content"])'
t_end

t_begin "warnings: printed by run (even --quiet) and validate; exit status unchanged"
cat >"$B/warn.yaml" <<'EOF'
inputs: [topic]
outputs: {t: "{{ n.topic }}"}
nodes:
  - id: n
    type: tool
    tool_name: echo
    tool_args: {topic: "{{ topic }}"}
    output_mappings: {a: b}
EOF
ice validate "$B/warn.yaml"
expect_rc 0
expect_out_empty
grep -qE "^$B/warn.yaml:8:5: warning: node 'n': 'output_mappings' is accepted" "$W/err" ||
  fail "stderr: $(cat "$W/err")"
ice run "$B/warn.yaml" --no-store --quiet --input topic=x --output-only
expect_rc 0
expect_json 'r == {"t": "x"}'
grep -qE "^$B/warn.yaml:8:5: warning: " "$W/err" || fail "stderr: $(cat "$W/err")"
ice run "$B/warn.yaml" --no-store --quiet
expect_rc 2
grep -qE "^$B/warn.yaml:8:5: warning: " "$W/err" || fail "stderr: $(cat "$W/err")"
expect_err_has "missing required input 'topic'"
t_end
