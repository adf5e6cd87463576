# Process tools (SPEC §5.1): the stdin/stdout JSON protocol, exit codes,
# stderr as node.log, output limit, env, cwd, TMPDIR and timeouts. The
# workflow is tests/cli/fixtures/run/process.json (one node per behaviour).

P=$FIX/run/process.json
# 4 MB of tool_args (a pipe holds 64 KiB): tools that never read stdin or
# exit at once must not block or kill the engine (SIGPIPE/EPIPE ignored).
python3 -I -S -c 'import json; print(json.dumps({"big": "x" * 4000000}))' >"$W/big.json"
ICE_T_KEEP=kept ICE_T_REMOVE=should-go ice run "$P" --inputs "@$W/big.json" --events "$W/ev-proc"
cp "$W/out" "$W/proc-result"

t_begin "process: the whole run finishes, failing nodes make exit 1"
expect_rc 1
expect_json 'r["status"] == "failed" and len(r["nodes"]) == 14'
t_end

t_begin "process: args arrive on stdin as JSON, stdout object is the output"
expect_json 'r["output"]["introspect"]["args"] == {"x": [1, "two"], "n": 2}'
t_end

t_begin "process: env adds and removes (null) variables, the rest is inherited"
expect_json 'r["output"]["introspect"]["env_set"] == "set-by-workflow"' \
  'r["output"]["introspect"]["env_removed"] is None' \
  'r["output"]["introspect"]["env_kept"] == "kept"'
t_end

t_begin "process: cwd defaults to the workflow's directory, relative cwd from it"
expect_json "r['output']['introspect']['cwd'] == '$FIX/run'" \
  "r['output']['in_sub']['cwd'] == '$FIX/run/sub'"
t_end

t_begin "process: TMPDIR is a private writable directory under the engine's TMPDIR, removed after"
expect_json 'r["output"]["introspect"]["tmpdir_is_dir"] is True and r["output"]["introspect"]["tmpdir_writable"] is True' \
  "r['output']['introspect']['tmpdir'].startswith('$TMPDIR/')" \
  'r["output"]["introspect"]["tmpdir"] != r["output"]["in_sub"]["tmpdir"]'
left=$(ls -A "$TMPDIR")
[ -z "$left" ] || fail "left in TMPDIR: $left"
t_end

t_begin "process: non-object JSON output is wrapped as {\"result\": v}"
expect_json 'r["output"]["number"] == {"result": 42}' \
  'r["output"]["list"] == {"result": [1, "two"]}' \
  'r["output"]["string"] == {"result": "s"}'
t_end

t_begin "process: exit 75 is kind transient and is retried"
expect_json 'r["nodes"]["transient"]["error"]["kind"] == "transient"' \
  'r["nodes"]["transient"]["attempts"] == 2' \
  '"try again later" in r["nodes"]["transient"]["error"]["message"]'
t_end

t_begin "process: other exit status is tool_error with the stderr tail"
expect_json 'r["nodes"]["exit3"]["error"]["kind"] == "tool_error"' \
  '"the real reason" in r["nodes"]["exit3"]["error"]["message"]' \
  '"Node exit3 failed: " + r["nodes"]["exit3"]["error"]["message"] in r["errors"]'
t_end

t_begin "process: stdout that is not JSON fails with 'tool output is not JSON'"
expect_json 'r["nodes"]["notjson"]["error"]["kind"] == "tool_error"' \
  '"tool output is not JSON" in r["nodes"]["notjson"]["error"]["message"]' \
  '"tool output is not JSON" in r["nodes"]["trailing"]["error"]["message"]'
t_end

t_begin "process: 100 MB on stdout fails with resource_limit, no hang"
expect_json 'r["nodes"]["flood"]["error"]["kind"] == "resource_limit"' \
  '"output" in r["nodes"]["flood"]["error"]["message"]' \
  'r["nodes"]["flood"]["duration_ms"] < 10000'
t_end

t_begin "process: big tool_args to tools that never read stdin or exit at once"
expect_json 'r["output"]["noread"] == {"ok": True}' 'r["output"]["exitnow"] == {"ok": 1}'
t_end

t_begin "process: a command that cannot start, a child killed by a signal: tool_error"
expect_json 'r["nodes"]["missing"]["error"]["kind"] == "tool_error"' \
  '"program-ice-test" in r["nodes"]["missing"]["error"]["message"]' \
  'r["nodes"]["killed"]["error"]["kind"] == "tool_error"' \
  '"signal" in r["nodes"]["killed"]["error"]["message"]'
t_end

t_begin "process: stderr lines become node.log events"
expect_events "$W/ev-proc" \
  '{"node_id": "exit3", "stream": "stderr", "line": "first line"} in [{k: e[k] for k in ("node_id", "stream", "line")} for e in of(ev, "node.log")]' \
  '[e["line"] for e in of(ev, "node.log", "exit3")] == ["first line", "the real reason"]' \
  '[e["line"] for e in of(ev, "node.log", "introspect")] == ["introspect: got 2 keys"]' \
  'len(of(ev, "node.log", "transient")) == 2' \
  'len(of(ev, "node.started", "transient")) == 2'
t_end

t_begin "process: a tool with a custom max_output_bytes"
wf maxout.json <<'J'
{"tools": {"chatty": {"command": ["sh", "-c", "printf '{\"pad\": \"%0200d\"}' 0"], "sandbox": {"max_output_bytes": 100}},
           "quiet": {"command": ["sh", "-c", "printf '{\"pad\": \"%050d\"}' 0"], "sandbox": {"max_output_bytes": 100}}},
 "nodes": [{"id": "chatty", "type": "tool", "tool_name": "chatty"},
           {"id": "quiet", "type": "tool", "tool_name": "quiet"}]}
J
ice run "$W/maxout.json"
expect_rc 1
expect_json 'r["nodes"]["chatty"]["error"]["kind"] == "resource_limit"' \
  'r["nodes"]["quiet"]["status"] == "completed"'
t_end

t_begin "timeouts: sleep 30 with timeout_seconds 0.5 fails with kind timeout, process gone"
cat >"$W/timeout.json" <<J
{"tools": {"nap": {"command": ["sleep", "31.$MARK"]},
           "shnap": {"command": ["sh", "-c", "sleep 32.$MARK; echo {}"]}},
 "nodes": [{"id": "nap", "type": "tool", "tool_name": "nap", "timeout_seconds": 0.5},
           {"id": "shnap", "type": "tool", "tool_name": "shnap", "timeout_seconds": 0.3,
            "retry_policy": {"max_attempts": 2, "backoff_seconds": 0.01}}]}
J
ice run "$W/timeout.json" --events "$W/ev-timeout"
expect_rc 1
expect_json 'r["nodes"]["nap"]["error"]["kind"] == "timeout"' \
  '450 <= r["nodes"]["nap"]["duration_ms"] < 5000' \
  'r["nodes"]["shnap"]["error"]["kind"] == "timeout" and r["nodes"]["shnap"]["attempts"] == 2'
expect_events "$W/ev-timeout" 'len(of(ev, "node.started", "shnap")) == 2' \
  'of(ev, "node.retrying", "shnap")[0]["delay_ms"] == 10'
no_proc "sleep 3[12]\\.$MARK"
t_end

t_begin "timeouts: the built-in sleep honours timeout_seconds"
wf sleep-timeout.json <<'J'
{"nodes": [{"id": "s", "type": "tool", "tool_name": "sleep", "tool_args": {"seconds": 20}, "timeout_seconds": 0.2}]}
J
ice run "$W/sleep-timeout.json"
expect_rc 1
expect_json 'r["nodes"]["s"]["error"]["kind"] == "timeout" and r["metrics"]["duration_ms"] < 5000'
t_end

t_begin "process: a tool's TMPDIR is empty when it starts, even when the tool before it used the same directory"
# An ended tool leaves its emptied TMPDIR to the next one (creating and
# removing a directory cost a short tool a fifth of its time), but only
# when nothing it started can still write there: with a pid namespace, or
# no sandbox at all; not when the kernel refused the pid namespace.
cat >"$W/tmpreuse.json" <<'EOF'
{"max_parallel": 1,
 "tools": {
  "fill": {"command": ["/bin/sh", "-c", "mkdir -p \"$TMPDIR/d/e\" && echo x >\"$TMPDIR/d/e/f\" && echo x >\"$TMPDIR/.h\" && printf '{\"tmp\": \"%s\", \"n\": %d}\\n' \"$TMPDIR\" \"$(ls -A \"$TMPDIR\" | wc -l)\""],
           "sandbox": {"strict": false}},
  "look": {"command": ["/bin/sh", "-c", "printf '{\"tmp\": \"%s\", \"n\": %d}\\n' \"$TMPDIR\" \"$(ls -A \"$TMPDIR\" | wc -l)\""],
           "sandbox": {"strict": false}}},
 "nodes": [
  {"id": "a", "type": "tool", "tool_name": "fill"},
  {"id": "b", "type": "tool", "tool_name": "look", "dependencies": ["a"]},
  {"id": "c", "type": "tool", "tool_name": "fill", "dependencies": ["b"]},
  {"id": "d", "type": "tool", "tool_name": "look", "dependencies": ["c"]}]}
EOF
for refuse in "" sandbox pid; do
  ICE_SANDBOX_REFUSE=$refuse ice run "$W/tmpreuse.json" --no-store
  expect_rc 0
  expect_json 'r["output"]["a"]["n"] == 2 and r["output"]["c"]["n"] == 2' \
    'r["output"]["b"]["n"] == 0 and r["output"]["d"]["n"] == 0' \
    "all(r['output'][k]['tmp'].startswith('$TMPDIR/') for k in 'abcd')"
  if [ "$refuse" = pid ]; then
    expect_json 'len({r["output"][k]["tmp"] for k in "abcd"}) == 4'
  else
    expect_json 'len({r["output"][k]["tmp"] for k in "abcd"}) == 1'
  fi
  left=$(ls -A "$TMPDIR")
  [ -z "$left" ] || fail "ICE_SANDBOX_REFUSE=$refuse: left in TMPDIR: $left"
done
t_end
