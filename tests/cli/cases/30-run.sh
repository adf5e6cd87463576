# `ice run` (SPEC §3, §4.2-§4.3, §11): the result, inputs, scheduling,
# failure policies, trigger rules, run_if, templates, input_mappings and
# the built-in tools (§5.3).

t_begin "run: hello prints the §11.1 result on one line and exits 0"
ice run "$ROOT/examples/hello.json"
expect_rc 0
[ "$(wc -l <"$W/out")" = 1 ] || fail "stdout is not one line on a non-tty"
expect_json \
  'sorted(r) == sorted(["run_id", "workflow", "status", "success", "output", "nodes", "errors", "metrics"])' \
  'isinstance(r["run_id"], str) and r["run_id"] != ""' \
  'r["workflow"] == "hello" and r["status"] == "completed" and r["success"] is True' \
  'r["output"] == {"hello": {"msg": "hi"}} and r["errors"] == []' \
  'r["nodes"]["hello"]["status"] == "completed" and r["nodes"]["hello"]["attempts"] == 1' \
  'isinstance(r["nodes"]["hello"]["duration_ms"], (int, float))' \
  'sorted(r["metrics"]) == sorted(["duration_ms", "nodes_completed", "nodes_failed", "nodes_skipped", "nodes_cancelled", "retries", "tokens", "cost_usd"])' \
  'r["metrics"]["nodes_completed"] == 1 and r["metrics"]["nodes_failed"] == 0'
t_end

t_begin "run: two runs get different run ids"
ice run "$ROOT/examples/hello.json"
id1=$(python3 -I -S -c 'import json,sys; print(json.load(sys.stdin)["run_id"])' <"$W/out")
ice run "$ROOT/examples/hello.json"
expect_json "r['run_id'] != '$id1'"
t_end

t_begin "run: --output-only prints just the output object"
ice run "$ROOT/examples/hello.json" --output-only
expect_rc 0
expect_json 'r == {"hello": {"msg": "hi"}}'
t_end

t_begin "run: workflow name defaults (draft_name, blueprint_id, file stem)"
wf name-a.json <<'J'
{"metadata": {"draft_name": "drafty"}, "blueprint_id": "bp",
 "nodes": [{"id": "a", "type": "tool", "tool_name": "echo"}]}
J
wf name-b.json <<'J'
{"blueprint_id": "bp", "nodes": [{"id": "a", "type": "tool", "tool_name": "echo"}]}
J
wf my-stem.json <<'J'
{"nodes": [{"id": "a", "type": "tool", "tool_name": "echo"}]}
J
ice run "$W/name-a.json"; expect_json 'r["workflow"] == "drafty"'
ice run "$W/name-b.json"; expect_json 'r["workflow"] == "bp"'
ice run "$W/my-stem.json"; expect_json 'r["workflow"] == "my-stem"'
t_end

# A workflow echoing its inputs, with a simple-form input_schema.
wf inputs.json <<'J'
{"name": "inputs",
 "input_schema": {"type": "object", "required": ["topic", "n"],
                  "properties": {"topic": {"type": "string"}, "n": {"type": "integer"}}},
 "nodes": [{"id": "e", "type": "tool", "tool_name": "echo",
            "tool_args": {"topic": "{{ topic }}", "n": "{{ inputs.n }}",
                          "extra": "{{ inputs.extra if exists(inputs.extra) else 'none' }}"}}]}
J

t_begin "run: --input K=V takes JSON values and plain strings"
ice run "$W/inputs.json" --input topic=agents --input n=42 --input 'extra=[1,{"a":true}]'
expect_rc 0
expect_json 'r["output"]["e"] == {"topic": "agents", "n": 42, "extra": [1, {"a": True}]}'
ice run "$W/inputs.json" --input 'topic="42"' --input n=1 --input 'extra=not json{'
expect_json 'r["output"]["e"]["topic"] == "42" and r["output"]["e"]["extra"] == "not json{"'
t_end

t_begin "run: --inputs JSON and --inputs @file; --input wins over --inputs"
ice run "$W/inputs.json" --inputs '{"topic": "t1", "n": 5}'
expect_rc 0
expect_json 'r["output"]["e"]["topic"] == "t1" and r["output"]["e"]["n"] == 5'
printf '{"topic": "from-file", "n": 7, "extra": {"k": "v"}}\n' >"$W/in.json"
ice run "$W/inputs.json" --inputs "@$W/in.json"
expect_json 'r["output"]["e"] == {"topic": "from-file", "n": 7, "extra": {"k": "v"}}'
ice run "$W/inputs.json" --inputs "@$W/in.json" --input n=8
expect_json 'r["output"]["e"]["n"] == 8'
t_end

t_begin "run: inputs violating input_schema exit 2 and nothing runs"
ice run "$W/inputs.json" --input topic=x --input n=notanint --events "$W/ev-schema"
expect_rc 2
expect_out_empty
expect_err_has "n"
[ -s "$W/ev-schema" ] && grep -q node.started "$W/ev-schema" && fail "a node started"
ice run "$W/inputs.json" --input topic=x
expect_rc 2
expect_out_empty
t_end

t_begin "run: JSON-Schema input_schema is enforced (minimum, required)"
wf jsonschema.json <<'J'
{"input_schema": {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}},
                  "required": ["n"]},
 "nodes": [{"id": "a", "type": "tool", "tool_name": "echo", "tool_args": {"n": "{{ n }}"}}]}
J
ice run "$W/jsonschema.json" --input n=0
expect_rc 2
expect_out_empty
ice run "$W/jsonschema.json" --input n=3
expect_rc 0
expect_json 'r["output"]["a"]["n"] == 3'
t_end

t_begin "run: a failing node -> exit 1, errors 'Node ID failed: MESSAGE'"
wf fail1.json <<'J'
{"nodes": [{"id": "ok", "type": "tool", "tool_name": "echo", "tool_args": {"v": 1}},
           {"id": "broken", "type": "tool", "tool_name": "fail", "tool_args": {"message": "disk on fire"}}]}
J
ice run "$W/fail1.json"
expect_rc 1
expect_json 'r["status"] == "failed" and r["success"] is False' \
  'r["errors"] == ["Node broken failed: disk on fire"]' \
  'r["nodes"]["broken"]["error"] == {"kind": "tool_error", "message": "disk on fire"}' \
  'r["output"] == {"ok": {"v": 1}}' \
  'r["metrics"]["nodes_failed"] == 1 and r["metrics"]["nodes_completed"] == 1'
t_end

# The diamond a -> (bad, slow) -> join -> after, with `bad` failing under
# each failure policy. `slow` is a process tool (`sleep 30.MARK`) so that
# under halt the engine must kill a running child.
diamond() {
  cat >"$W/diamond-$1.json" <<J
{"name": "diamond", "failure_policy": "$1",
 "tools": {"slowfail": {"command": ["sh", "-c", "cat >/dev/null; sleep 0.3; echo about to fail >&2; exit 3"]},
           "slow": {"command": ["sh", "-c", "sleep $2; echo '{\\"slept\\": true}'"]}},
 "nodes": [
  {"id": "a", "type": "tool", "tool_name": "echo", "tool_args": {"v": 1}},
  {"id": "bad", "type": "tool", "tool_name": "slowfail", "dependencies": ["a"]},
  {"id": "slow", "type": "tool", "tool_name": "slow", "dependencies": ["a"]},
  {"id": "join", "type": "tool", "tool_name": "echo", "dependencies": ["bad", "slow"]},
  {"id": "after", "type": "tool", "tool_name": "echo", "dependencies": ["join"]},
  {"id": "other", "type": "tool", "tool_name": "echo", "dependencies": ["a"]}
 ]}
J
}

t_begin "failure policy halt: running sibling killed, pending nodes cancelled"
diamond halt "30.$MARK"
ice run "$W/diamond-halt.json"
expect_rc 1
expect_json 'r["status"] == "failed"' \
  'r["nodes"]["bad"]["status"] == "failed" and r["nodes"]["bad"]["error"]["kind"] == "tool_error"' \
  '"about to fail" in r["nodes"]["bad"]["error"]["message"]' \
  'r["nodes"]["slow"]["status"] == "cancelled" and r["nodes"]["slow"]["attempts"] == 1' \
  'r["nodes"]["slow"]["duration_ms"] < 10000' \
  'r["nodes"]["join"]["status"] == "cancelled" and r["nodes"]["after"]["status"] == "cancelled"' \
  'r["errors"] == ["Node bad failed: " + r["nodes"]["bad"]["error"]["message"]]' \
  'r["metrics"]["nodes_cancelled"] == 3 and r["metrics"]["nodes_failed"] == 1'
no_proc "sleep 30\\.$MARK"
t_end

t_begin "failure policy continue_possible: dependents skipped upstream_failed"
diamond continue_possible 0.5
ice run "$W/diamond-continue_possible.json"
expect_rc 1
expect_json 'r["status"] == "failed"' \
  'r["nodes"]["slow"]["status"] == "completed" and r["nodes"]["other"]["status"] == "completed"' \
  'r["nodes"]["join"]["status"] == "skipped" and r["nodes"]["join"]["reason"] == "upstream_failed"' \
  'r["nodes"]["after"]["status"] == "skipped"' \
  'r["metrics"]["nodes_skipped"] == 2'
t_end

t_begin "failure policy always: all_success behaves like all_done"
diamond always 0.2
ice run "$W/diamond-always.json"
expect_rc 1
expect_json 'r["status"] == "failed" and r["errors"] == ["Node bad failed: " + r["nodes"]["bad"]["error"]["message"]]' \
  'r["nodes"]["join"]["status"] == "completed" and r["nodes"]["after"]["status"] == "completed"' \
  'r["nodes"]["slow"]["status"] == "completed" and r["output"]["join"] == {}'
t_end

t_begin "failure policy aliases (HALT, continue_if_possible, always_continue) validate"
for p in HALT CONTINUE_POSSIBLE ALWAYS halt_on_first_error continue_if_possible always_continue; do
  printf '{"failure_policy": "%s", "nodes": [{"id": "a", "type": "tool", "tool_name": "echo"}]}\n' "$p" >"$W/alias.json"
  ice validate "$W/alias.json"
  [ "$RC" = 0 ] || fail "failure_policy $p rejected: $(cat "$W/err")"
done
t_end

t_begin "trigger rules and their skip reasons (§4.2)"
wf trig.json <<'J'
{"nodes": [
 {"id": "ok", "type": "tool", "tool_name": "echo", "tool_args": {"v": 1}},
 {"id": "bad", "type": "tool", "tool_name": "fail"},
 {"id": "skp", "type": "tool", "tool_name": "echo", "run_if": "false"},
 {"id": "fs_all_success", "type": "tool", "tool_name": "echo", "dependencies": ["ok", "bad"]},
 {"id": "fs_all_done", "type": "tool", "tool_name": "echo", "dependencies": ["ok", "bad"], "trigger_rule": "all_done", "tool_args": {"ran": true}},
 {"id": "fs_one_success", "type": "tool", "tool_name": "echo", "dependencies": ["ok", "bad"], "trigger_rule": "one_success"},
 {"id": "fs_none_failed", "type": "tool", "tool_name": "echo", "dependencies": ["ok", "bad"], "trigger_rule": "none_failed"},
 {"id": "ss_all_success", "type": "tool", "tool_name": "echo", "dependencies": ["ok", "skp"]},
 {"id": "ss_none_failed", "type": "tool", "tool_name": "echo", "dependencies": ["ok", "skp"], "trigger_rule": "none_failed"},
 {"id": "s_one_success", "type": "tool", "tool_name": "echo", "dependencies": ["skp"], "trigger_rule": "one_success"},
 {"id": "fsk_one_success", "type": "tool", "tool_name": "echo", "dependencies": ["bad", "skp"], "trigger_rule": "one_success"},
 {"id": "f_all_done", "type": "tool", "tool_name": "echo", "dependencies": ["bad"], "trigger_rule": "all_done"}
]}
J
ice run "$W/trig.json"
expect_rc 1
expect_json \
  'r["nodes"]["skp"]["status"] == "skipped" and r["nodes"]["skp"]["reason"] == "run_if"' \
  'r["nodes"]["fs_all_success"]["reason"] == "upstream_failed"' \
  'r["nodes"]["fs_all_done"]["status"] == "completed" and r["output"]["fs_all_done"]["ran"] is True' \
  'r["nodes"]["fs_one_success"]["status"] == "completed"' \
  'r["nodes"]["fs_none_failed"]["status"] == "skipped" and r["nodes"]["fs_none_failed"]["reason"] == "upstream_failed"' \
  'r["nodes"]["ss_all_success"]["status"] == "skipped" and r["nodes"]["ss_all_success"]["reason"] == "upstream_skipped"' \
  'r["nodes"]["ss_none_failed"]["status"] == "completed"' \
  'r["nodes"]["s_one_success"]["reason"] == "upstream_skipped"' \
  'r["nodes"]["fsk_one_success"]["reason"] == "upstream_failed"' \
  'r["nodes"]["f_all_done"]["status"] == "completed"' \
  'r["errors"] == ["Node bad failed: fail called"]'
t_end

t_begin "run_if: true runs, false skips with reason run_if; skipped nodes do not fail the run"
wf runif.json <<'J'
{"nodes": [
 {"id": "a", "type": "tool", "tool_name": "echo", "tool_args": {"n": "{{ n }}"}},
 {"id": "big", "type": "tool", "tool_name": "echo", "dependencies": ["a"], "run_if": "a.n > 10"},
 {"id": "small", "type": "tool", "tool_name": "echo", "dependencies": ["a"], "run_if": "a.n <= 10 and inputs.mode in ['x', 'y']", "tool_args": {"n": "{{ a.n }}"}},
 {"id": "after_big", "type": "tool", "tool_name": "echo", "dependencies": ["big"]}
]}
J
ice run "$W/runif.json" --input n=3 --input mode=y
expect_rc 0
expect_json 'r["status"] == "completed" and r["success"] is True' \
  'r["nodes"]["big"]["status"] == "skipped" and r["nodes"]["big"]["reason"] == "run_if"' \
  'r["nodes"]["after_big"]["reason"] == "upstream_skipped"' \
  'r["output"]["small"] == {"n": 3} and "big" not in r["output"]' \
  'r["metrics"]["nodes_skipped"] == 2'
t_end

t_begin "run_if: an expression error fails the node with kind expression"
wf runif-err.json <<'J'
{"nodes": [{"id": "a", "type": "tool", "tool_name": "echo", "run_if": "inputs.nope > 1"}]}
J
ice run "$W/runif-err.json"
expect_rc 1
expect_json 'r["nodes"]["a"]["status"] == "failed" and r["nodes"]["a"]["error"]["kind"] == "expression"' \
  '"inputs.nope" in r["nodes"]["a"]["error"]["message"]'
t_end

t_begin "templates: whole-string keeps the JSON type, mixed text renders (§3.3)"
wf tmpl.json <<'J'
{"nodes": [
 {"id": "a", "type": "tool", "tool_name": "echo",
  "tool_args": {"count": 3, "list": [1, 2], "obj": {"k": 1}, "f": 0.5, "s": "hi"}},
 {"id": "b", "type": "tool", "tool_name": "echo", "dependencies": ["a"],
  "tool_args": {"n": "{{ a.count }}", "l": "{{ a.list }}", "o": "{{ a.obj }}", "t": "{{ true }}",
                "z": "{{ null }}", "calc": "{{ a.count * 2 + 1 }}",
                "text": "n={{ a.count }} l={{ a.list }} o={{ a.obj }} t={{ true }} z={{ null }} f={{ a.f }} s={{ a.s }}",
                "nested": {"deep": ["{{ a.s | upper }}"]},
                "brace": "{{ '}}' }}", "default": "{{ inputs.x or 'dflt' }}",
                "fn": "{{ upper(a.s) + str(len(a.list)) }}"}}
]}
J
ice validate "$W/tmpl.json"
# `a.s | upper` is not an expression of §3.2: the file must be rejected.
[ "$RC" = 2 ] || fail "a '|' filter should be a template syntax error, exit $RC"
sed 's/{{ a.s | upper }}/{{ upper(a.s) }}/' "$W/tmpl.json" >"$W/tmpl2.json"
ice run "$W/tmpl2.json"
expect_rc 0
expect_json 'r["output"]["b"]["n"] == 3 and type(r["output"]["b"]["n"]) is int' \
  'r["output"]["b"]["l"] == [1, 2] and r["output"]["b"]["o"] == {"k": 1}' \
  'r["output"]["b"]["t"] is True and r["output"]["b"]["z"] is None and r["output"]["b"]["calc"] == 7' \
  'r["output"]["b"]["text"] == "n=3 l=[1,2] o={\"k\":1} t=true z=null f=0.5 s=hi"' \
  'r["output"]["b"]["nested"] == {"deep": ["HI"]}' \
  'r["output"]["b"]["brace"] == "}}" and r["output"]["b"]["default"] == "dflt"' \
  'r["output"]["b"]["fn"] == "HI2"'
t_end

t_begin "templates: runtime expression errors fail the node with kind expression"
wf tmpl-err.json <<'J'
{"nodes": [
 {"id": "undef", "type": "tool", "tool_name": "echo", "tool_args": {"v": "{{ inputs.model }}"}},
 {"id": "typ", "type": "tool", "tool_name": "echo", "tool_args": {"v": "{{ 1 + 'a' }}"}},
 {"id": "div", "type": "tool", "tool_name": "echo", "tool_args": {"v": "x{{ 1 // 0 }}"}}
]}
J
ice run "$W/tmpl-err.json"
expect_rc 1
expect_json 'all(r["nodes"][k]["error"]["kind"] == "expression" for k in ("undef", "typ", "div"))' \
  '"undefined: inputs.model" in r["nodes"]["undef"]["error"]["message"]' \
  'len(r["errors"]) == 3'
t_end

t_begin "input_mappings: paths into a dependency's output, '.' and literals"
wf maps.json <<'J'
{"nodes": [
 {"id": "src", "type": "tool", "tool_name": "echo",
  "tool_args": {"items": [{"name": "first"}, {"name": "second"}], "meta": {"n": 2}}},
 {"id": "use", "type": "tool", "tool_name": "echo", "dependencies": ["src"],
  "input_mappings": {"second": {"source_node_id": "src", "source_output_key": "items.1.name"},
                     "whole": {"source_node_id": "src", "source_output_key": "."},
                     "empty": {"source_node_id": "src", "source_output_key": ""},
                     "lit": 42},
  "tool_args": {"second": "{{ second }}", "n": "{{ whole.meta.n }}", "e": "{{ empty.meta }}", "lit": "{{ lit }}"}}
]}
J
ice run "$W/maps.json"
expect_rc 0
expect_json 'r["output"]["use"] == {"second": "second", "n": 2, "e": {"n": 2}, "lit": 42}'
t_end

t_begin "input_mappings: an unresolvable path fails with kind input_mapping"
wf maps-bad.json <<'J'
{"nodes": [
 {"id": "src", "type": "tool", "tool_name": "echo", "tool_args": {"a": [1]}},
 {"id": "use", "type": "tool", "tool_name": "echo", "dependencies": ["src"],
  "input_mappings": {"x": {"source_node_id": "src", "source_output_key": "a.5"}}}
]}
J
ice run "$W/maps-bad.json"
expect_rc 1
expect_json 'r["nodes"]["use"]["status"] == "failed"' \
  'r["nodes"]["use"]["error"]["kind"] == "input_mapping"' \
  'r["errors"][0].startswith("Node use failed: ")'
t_end

t_begin "context: dependency outputs by id; failed and skipped deps are absent"
wf ctx.json <<'J'
{"nodes": [
 {"id": "ok", "type": "tool", "tool_name": "echo", "tool_args": {"v": 1}},
 {"id": "bad", "type": "tool", "tool_name": "fail"},
 {"id": "j", "type": "tool", "tool_name": "echo", "dependencies": ["ok", "bad"], "trigger_rule": "all_done",
  "tool_args": {"ok": "{{ ok.v }}", "bad_present": "{{ exists(bad) }}", "unrelated": "{{ exists(other) }}"}},
 {"id": "other", "type": "tool", "tool_name": "echo"}
]}
J
ice run "$W/ctx.json"
expect_json 'r["output"]["j"] == {"ok": 1, "bad_present": False, "unrelated": False}'
t_end

t_begin "built-in tools: echo, sleep, fail (kind, default message), flaky"
wf builtins.json <<'J'
{"nodes": [
 {"id": "e", "type": "tool", "tool_name": "echo", "tool_args": {"a": [1, {"b": null}]}},
 {"id": "e0", "type": "tool", "tool_name": "echo"},
 {"id": "s", "type": "tool", "tool_name": "sleep", "tool_args": {"seconds": 0.05}},
 {"id": "f0", "type": "tool", "tool_name": "fail"},
 {"id": "fk", "type": "tool", "tool_name": "fail", "tool_args": {"message": "m1", "kind": "resource_limit"}},
 {"id": "fl1", "type": "tool", "tool_name": "flaky", "tool_args": {"failures": 1}},
 {"id": "fl2", "type": "tool", "tool_name": "flaky", "tool_args": {"failures": 2}, "retry_policy": {"max_attempts": 3, "backoff_seconds": 0.01}},
 {"id": "fl0", "type": "tool", "tool_name": "flaky", "tool_args": {"failures": 0}}
]}
J
ice run "$W/builtins.json"
expect_rc 1
expect_json 'r["output"]["e"] == {"a": [1, {"b": None}]} and r["output"]["e0"] == {}' \
  'r["output"]["s"] == {"slept": 0.05} and r["nodes"]["s"]["duration_ms"] >= 45' \
  'r["nodes"]["f0"]["error"] == {"kind": "tool_error", "message": "fail called"}' \
  'r["nodes"]["fk"]["error"] == {"kind": "resource_limit", "message": "m1"}' \
  'r["nodes"]["fl1"]["status"] == "failed" and r["nodes"]["fl1"]["error"]["kind"] == "transient"' \
  'r["output"]["fl2"] == {"attempts": 3} and r["nodes"]["fl2"]["attempts"] == 3' \
  'r["output"]["fl0"] == {"attempts": 1}' \
  'r["metrics"]["retries"] == 2'
t_end

t_begin "retries: retry_on and non-retryable kinds are not retried"
wf noretry.json <<'J'
{"nodes": [
 {"id": "nr", "type": "tool", "tool_name": "fail", "tool_args": {"kind": "non_retryable"}, "retry_policy": {"max_attempts": 3, "backoff_seconds": 0.01}},
 {"id": "iv", "type": "tool", "tool_name": "fail", "tool_args": {"kind": "input_validation"}, "retry_policy": {"max_attempts": 3, "backoff_seconds": 0.01}},
 {"id": "ro", "type": "tool", "tool_name": "fail", "tool_args": {"kind": "tool_error"}, "retry_policy": {"max_attempts": 3, "backoff_seconds": 0.01, "retry_on": ["transient"]}},
 {"id": "te", "type": "tool", "tool_name": "fail", "tool_args": {"kind": "tool_error"}, "retry_policy": {"max_attempts": 3, "backoff_seconds": 0.01}}
]}
J
ice run "$W/noretry.json"
expect_rc 1
expect_json 'r["nodes"]["nr"]["attempts"] == 1 and r["nodes"]["iv"]["attempts"] == 1' \
  'r["nodes"]["ro"]["attempts"] == 1 and r["nodes"]["te"]["attempts"] == 3'
t_end

t_begin "schemas: node input_schema / output_schema fail with their kinds and a JSON path"
wf nodeschema.json <<'J'
{"nodes": [
 {"id": "in", "type": "tool", "tool_name": "echo", "tool_args": {"count": "3"}, "input_schema": {"count": "int"}},
 {"id": "out", "type": "tool", "tool_name": "echo", "tool_args": {"count": 3}, "output_schema": {"count": "str"}},
 {"id": "fine", "type": "tool", "tool_name": "echo", "tool_args": {"count": 3}, "output_schema": {"type": "object", "required": ["count"]}}
]}
J
ice run "$W/nodeschema.json"
expect_rc 1
expect_json 'r["nodes"]["in"]["error"]["kind"] == "input_validation" and "$.count" in r["nodes"]["in"]["error"]["message"]' \
  'r["nodes"]["out"]["error"]["kind"] == "output_validation" and "$.count" in r["nodes"]["out"]["error"]["message"]' \
  'r["nodes"]["fine"]["status"] == "completed"'
t_end

t_begin "scheduling: --max-parallel 1 serialises, default max_parallel runs 4 sleeps together"
wf par.json <<'J'
{"nodes": [
 {"id": "a", "type": "tool", "tool_name": "sleep", "tool_args": {"seconds": 0.1}},
 {"id": "b", "type": "tool", "tool_name": "sleep", "tool_args": {"seconds": 0.1}},
 {"id": "c", "type": "tool", "tool_name": "sleep", "tool_args": {"seconds": 0.1}},
 {"id": "d", "type": "tool", "tool_name": "sleep", "tool_args": {"seconds": 0.1}}
]}
J
# The largest number of nodes running at once, from the events.
MAXRUN='max(__import__("itertools").accumulate(1 if e["type"] == "node.started" else -1 for e in ev if e["type"] in ("node.started", "node.completed", "node.failed")))'
ice run "$W/par.json" --max-parallel 1 --events "$W/ev-par1"
expect_rc 0
expect_json 'r["metrics"]["duration_ms"] >= 380'
expect_events "$W/ev-par1" "$MAXRUN == 1"
ice run "$W/par.json" --max-parallel 2 --events "$W/ev-par2"
expect_events "$W/ev-par2" "$MAXRUN == 2"
ice run "$W/par.json" --events "$W/ev-par5"
expect_json 'r["metrics"]["duration_ms"] < 380'
expect_events "$W/ev-par5" "$MAXRUN == 4"
t_end

t_begin "scheduling: workflow max_parallel is honoured"
sed 's/^{"nodes"/{"max_parallel": 1, "nodes"/' "$W/par.json" >"$W/par-wf.json"
ice run "$W/par-wf.json" --events "$W/ev-parwf"
expect_rc 0
expect_events "$W/ev-parwf" "$MAXRUN == 1"
t_end

t_begin "scheduling: dataflow, a slow branch does not delay an unrelated one"
wf dataflow.json <<'J'
{"nodes": [
 {"id": "slow", "type": "tool", "tool_name": "sleep", "tool_args": {"seconds": 0.4}},
 {"id": "slow2", "type": "tool", "tool_name": "echo", "dependencies": ["slow"]},
 {"id": "fast", "type": "tool", "tool_name": "sleep", "tool_args": {"seconds": 0.01}},
 {"id": "fast2", "type": "tool", "tool_name": "sleep", "dependencies": ["fast"], "tool_args": {"seconds": 0.01}}
]}
J
ice run "$W/dataflow.json" --events "$W/ev-df"
expect_rc 0
expect_events "$W/ev-df" \
  '[e["node_id"] for e in of(ev, "node.completed")] == ["fast", "fast2", "slow", "slow2"]'
t_end

t_begin "run: the result is indented on a terminal (via script(1))"
if command -v script >/dev/null 2>&1; then
  timeout 20 script -qec "'$ICE' run '$ROOT/examples/hello.json' --quiet" /dev/null \
    </dev/null >"$W/tty-out" 2>&1
  tr -d '\r' <"$W/tty-out" >"$W/out"
  [ "$(wc -l <"$W/out")" -gt 5 ] || fail "not indented: $(head -c 300 "$W/out")"
  expect_json 'r["status"] == "completed"'
else
  T_NAME="$T_NAME # SKIP script(1) not installed"
fi
t_end
