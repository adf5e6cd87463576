# Cancellation (SPEC §4.5): SIGINT/SIGTERM to `ice run` -> exit 130, result
# status cancelled, no child process left behind.

for sig in INT TERM; do
  t_begin "signals: SIG$sig during a long process tool -> exit 130, cancelled, child gone"
  marker="sleep 3$([ $sig = INT ] && echo 3 || echo 4)\\.$MARK"
  cat >"$W/sig.json" <<J
{"name": "sig", "tools": {"long": {"command": ["sh", "-c", "sleep 3$([ $sig = INT ] && echo 3 || echo 4).$MARK; echo {}"]}},
 "nodes": [{"id": "long", "type": "tool", "tool_name": "long"},
           {"id": "after", "type": "tool", "tool_name": "echo", "dependencies": ["long"]},
           {"id": "quick", "type": "tool", "tool_name": "echo"}]}
J
  # Started directly (not under timeout) so the signal reaches ice itself;
  # wait_bounded guards against a hang.
  "$ICE" run "$W/sig.json" >"$W/out" 2>"$W/err" </dev/null &
  pid=$!
  BGPIDS="$BGPIDS $pid"
  if wait_proc "$marker"; then
    kill -$sig "$pid"
  fi
  wait_bounded "$pid"
  expect_rc 130
  expect_json 'r["status"] == "cancelled" and r["success"] is False' \
    'r["nodes"]["long"]["status"] == "cancelled" and r["nodes"]["after"]["status"] == "cancelled"' \
    'r["nodes"]["quick"]["status"] == "completed" and r["errors"] == []' \
    'r["metrics"]["nodes_cancelled"] == 2 and r["metrics"]["nodes_failed"] == 0'
  no_proc "$marker"
  t_end
done

t_begin "signals: SIGINT during a back-off wait cancels at once"
wf sig-backoff.json <<'J'
{"nodes": [{"id": "fl", "type": "tool", "tool_name": "flaky", "tool_args": {"failures": 1},
            "retry_policy": {"backoff_seconds": 30}}]}
J
"$ICE" run "$W/sig-backoff.json" --events "$W/ev-sigb" >"$W/out" 2>"$W/err" </dev/null &
pid=$!
BGPIDS="$BGPIDS $pid"
# flaky fails at once and then waits 30 s; the events file is only
# checked afterwards (see known-bugs.sh: it is not flushed live).
sleep 0.5
kill -INT "$pid"
wait_bounded "$pid"
expect_rc 130
expect_json 'r["status"] == "cancelled" and r["nodes"]["fl"]["status"] == "cancelled"'
expect_events "$W/ev-sigb" 'ev[-1]["type"] == "workflow.completed" and ev[-1]["status"] == "cancelled"' \
  'of(ev, "node.retrying", "fl")[0]["delay_ms"] == 30000 and len(of(ev, "node.started", "fl")) == 1'
t_end
