# Out of file descriptors (or processes) when a tool starts: the node fails
# as `transient`, so that a retry policy retries it, and once fds are free
# again the retries succeed.

t_begin "scarce: a tool that cannot start for want of fds is transient, and retries succeed"
python3 - "$W" <<'P'
import json, sys
w = sys.argv[1]
say = {"t": {"command": ["/bin/echo", "{\"ok\": 1}"]}}
plain = [{"id": "p%d" % i, "type": "tool", "tool_name": "t"} for i in range(30)]
retried = [dict(n, retry_policy={"max_attempts": 200, "backoff_seconds": 0.01,
                                  "backoff_strategy": "fixed"}) for n in plain]
json.dump({"tools": say, "nodes": plain, "max_parallel": 30},
          open(w + "/plain.json", "w"))
json.dump({"tools": say, "nodes": retried, "max_parallel": 30},
          open(w + "/retried.json", "w"))
P
# 30 tools at once, with room for about two: most cannot get their pipes.
(ulimit -n 40 && exec timeout 20 "$ICE" run --no-store "$W/plain.json") \
  >"$W/out" 2>"$W/err" </dev/null
RC=$?
expect_rc 1
expect_json 'any(n["status"] == "failed" and n["error"]["kind"] == "transient" and "Too many open files" in n["error"]["message"] for n in r["nodes"].values())' \
  'all(n["status"] == "completed" or n["error"]["kind"] == "transient" for n in r["nodes"].values())'
(ulimit -n 40 && exec timeout 60 "$ICE" run --no-store "$W/retried.json") \
  >"$W/out" 2>"$W/err" </dev/null
RC=$?
expect_rc 0
expect_json 'r["status"] == "completed"' 'r["metrics"]["retries"] > 0' \
  'all(r["output"]["p%d" % i] == {"ok": 1} for i in range(30))'
t_end
