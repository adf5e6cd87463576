# Events (SPEC §10) through `ice run --events FILE`, and retries/back-off
# (§4.4) as seen in node.retrying. ICE_VIRTUAL_CLOCK=1 makes back-off
# delays instant while events still show them.

# Common shape: type/seq/ts/run_id on every event, seq +1 each, RFC 3339
# UTC timestamps with milliseconds, one run id, workflow.started first and
# workflow.completed last.
EV_SHAPE='all(set(["type", "seq", "ts", "run_id"]) <= set(e) for e in ev)'
EV_SEQ='[e["seq"] for e in ev] == list(range(ev[0]["seq"], ev[0]["seq"] + len(ev)))'
EV_TS='all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["ts"]) for e in ev)'
EV_ENDS='ev[0]["type"] == "workflow.started" and ev[-1]["type"] == "workflow.completed" and len(set(e["run_id"] for e in ev)) == 1'

t_begin "events: --events FILE writes well-formed JSON lines"
ice run "$ROOT/examples/hello.json" --events "$W/ev-hello"
expect_rc 0
expect_events "$W/ev-hello" "$EV_SHAPE" "$EV_SEQ" "$EV_TS" "$EV_ENDS" \
  'ev[0]["workflow"] == "hello" and ev[0]["nodes"] == 1' \
  'of(ev, "node.started")[0]["node_id"] == "hello" and of(ev, "node.started")[0]["node_type"] == "tool" and of(ev, "node.started")[0]["attempt"] == 1' \
  'of(ev, "node.completed")[0]["attempt"] == 1 and of(ev, "node.completed")[0]["cache_hit"] is False and "duration_ms" in of(ev, "node.completed")[0]' \
  'ev[-1]["status"] == "completed" and ev[-1]["success"] is True and "duration_ms" in ev[-1]'
expect_json "r['run_id'] == '$(python3 -I -S -c 'import json,sys; print(json.loads(sys.stdin.readline())["run_id"])' <"$W/ev-hello")'"
t_end

t_begin "events: --events - writes them to stderr, result still on stdout"
ice run "$ROOT/examples/hello.json" --events -
expect_rc 0
expect_json 'r["status"] == "completed"'
cp "$W/err" "$W/ev-stderr"
expect_events "$W/ev-stderr" "$EV_SHAPE" "$EV_ENDS"
t_end

t_begin "events: an unwritable events file is bad usage (exit 2)"
ice run "$ROOT/examples/hello.json" --events "$W/no/such/dir/ev"
expect_rc 2
expect_out_empty
t_end

t_begin "events: failed, skipped and cancelled nodes"
wf ev-mix.json <<'J'
{"failure_policy": "halt", "nodes": [
 {"id": "s", "type": "tool", "tool_name": "echo", "run_if": "false"},
 {"id": "f", "type": "tool", "tool_name": "fail", "tool_args": {"message": "m", "kind": "tool_error"}, "dependencies": ["s"], "trigger_rule": "all_done"},
 {"id": "c", "type": "tool", "tool_name": "echo", "dependencies": ["f"]}
]}
J
ice run "$W/ev-mix.json" --events "$W/ev-mix"
expect_rc 1
expect_events "$W/ev-mix" "$EV_SHAPE" "$EV_SEQ" "$EV_ENDS" \
  'of(ev, "node.skipped", "s")[0]["reason"] == "run_if"' \
  'of(ev, "node.failed", "f")[0]["error"] == {"kind": "tool_error", "message": "m"} and of(ev, "node.failed", "f")[0]["will_retry"] is False and of(ev, "node.failed", "f")[0]["attempt"] == 1' \
  'len(of(ev, "node.cancelled", "c")) == 1 and not of(ev, "node.started", "c")' \
  'ev[-1]["status"] == "failed" and ev[-1]["success"] is False'
t_end

# Retry schedules of §4.4, with the virtual clock.
wf retry.json <<'J'
{"nodes": [
 {"id": "ex", "type": "tool", "tool_name": "flaky", "tool_args": {"failures": 2},
  "retry_policy": {"max_attempts": 3, "backoff_strategy": "exponential", "backoff_seconds": 1.5}},
 {"id": "dflt", "type": "tool", "tool_name": "flaky", "tool_args": {"failures": 2}, "retry_policy": {}},
 {"id": "lin", "type": "tool", "tool_name": "flaky", "tool_args": {"failures": 3},
  "retry_policy": {"max_attempts": 4, "backoff_strategy": "linear", "backoff_seconds": 2}},
 {"id": "fix", "type": "tool", "tool_name": "flaky", "tool_args": {"failures": 2},
  "retry_policy": {"backoff_strategy": "fixed", "backoff_seconds": 0.25}},
 {"id": "cap", "type": "tool", "tool_name": "flaky", "tool_args": {"failures": 3},
  "retry_policy": {"max_attempts": 4, "backoff_seconds": 10, "max_backoff_seconds": 15}},
 {"id": "jit", "type": "tool", "tool_name": "flaky", "tool_args": {"failures": 3},
  "retry_policy": {"max_attempts": 4, "backoff_seconds": 1, "jitter": true}},
 {"id": "leg", "type": "tool", "tool_name": "flaky", "tool_args": {"failures": 2}, "retries": 2, "backoff_seconds": 0.5},
 {"id": "short", "type": "tool", "tool_name": "flaky", "tool_args": {"failures": 5}, "retries": 1, "backoff_seconds": 0.5}
]}
J
DELAYS='(lambda n: [e["delay_ms"] for e in of(ev, "node.retrying", n)])'

t_begin "retries: node.retrying delay_ms follows §4.4 (exponential, default, linear, fixed, cap)"
ICE_VIRTUAL_CLOCK=1 ice run "$W/retry.json" --events "$W/ev-retry"
expect_rc 1
expect_events "$W/ev-retry" "$EV_SHAPE" "$EV_SEQ" \
  "$DELAYS(\"ex\") == [1500, 3000]" \
  "$DELAYS(\"dflt\") == [1000, 2000]" \
  "$DELAYS(\"lin\") == [2000, 4000, 6000]" \
  "$DELAYS(\"fix\") == [250, 250]" \
  "$DELAYS(\"cap\") == [10000, 15000, 15000]" \
  "len($DELAYS(\"jit\")) == 3 and all(0 <= d <= c for d, c in zip($DELAYS(\"jit\"), [1000, 2000, 4000]))" \
  'all(e["attempt"] >= 2 for e in of(ev, "node.retrying"))'
expect_json 'r["output"]["ex"] == {"attempts": 3} and r["nodes"]["ex"]["attempts"] == 3' \
  'r["output"]["lin"] == {"attempts": 4} and r["output"]["fix"] == {"attempts": 3}' \
  'r["output"]["dflt"] == {"attempts": 3}'
t_end

t_begin "retries: legacy retries/backoff_seconds = max_attempts r+1, exponential"
expect_events "$W/ev-retry" "$DELAYS(\"leg\") == [500, 1000]" "$DELAYS(\"short\") == [500]"
expect_json 'r["output"]["leg"] == {"attempts": 3}' \
  'r["nodes"]["short"]["status"] == "failed" and r["nodes"]["short"]["attempts"] == 2' \
  'r["errors"] == ["Node short failed: " + r["nodes"]["short"]["error"]["message"]]' \
  'r["nodes"]["short"]["error"]["kind"] == "transient"'
t_end

t_begin "retries: exactly one node.started per attempt, will_retry flags, metrics.retries"
expect_events "$W/ev-retry" \
  'all(len(of(ev, "node.started", n)) == a for n, a in [("ex", 3), ("lin", 4), ("leg", 3), ("short", 2), ("cap", 4)])' \
  '[e["attempt"] for e in of(ev, "node.started", "lin")] == [1, 2, 3, 4]' \
  '[e["will_retry"] for e in of(ev, "node.failed", "ex")] == [True, True]' \
  '[e["will_retry"] for e in of(ev, "node.failed", "short")] == [True, False]'
expect_json 'r["metrics"]["retries"] == 2 + 2 + 3 + 2 + 3 + 3 + 2 + 1'
t_end

t_begin "retries: the virtual clock keeps the run fast; timestamps show the delays"
expect_json 'r["nodes"]["ex"]["duration_ms"] >= 4500'
expect_events "$W/ev-retry" \
  '__import__("datetime").datetime.fromisoformat(ev[-1]["ts"].replace("Z", "+00:00")) - __import__("datetime").datetime.fromisoformat(ev[0]["ts"].replace("Z", "+00:00")) >= __import__("datetime").timedelta(seconds=4.5)'
t_end

t_begin "retries: real back-off delays are waited for (no virtual clock)"
wf retry-real.json <<'J'
{"nodes": [{"id": "fl", "type": "tool", "tool_name": "flaky", "tool_args": {"failures": 2},
            "retry_policy": {"backoff_strategy": "fixed", "backoff_seconds": 0.2}}]}
J
ice run "$W/retry-real.json"
expect_rc 0
expect_json 'r["output"]["fl"] == {"attempts": 3} and r["metrics"]["duration_ms"] >= 380'
t_end

t_begin "retries: retry_policy with max_attempts 0 is a validation error"
wf retry-bad.json <<'J'
{"nodes": [{"id": "fl", "type": "tool", "tool_name": "flaky",
            "retry_policy": {"max_attempts": 0, "backoff_strategy": "quadratic"}}]}
J
ice validate "$W/retry-bad.json"
expect_rc 2
expect_diag "$W/retry-bad.json" "max_attempts"
expect_diag "$W/retry-bad.json" "quadratic"
t_end
