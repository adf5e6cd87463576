# Scale: a 2,000-node chain and a 2,000-wide fan-out/fan-in of echo.

python3 -I -S - "$W" <<'PY'
import json, sys
d, n = sys.argv[1], 2000
nodes = [{"id": "n0", "type": "tool", "tool_name": "echo", "tool_args": {"i": 0}}]
for i in range(1, n):
    nodes.append({"id": "n%d" % i, "type": "tool", "tool_name": "echo",
                  "dependencies": ["n%d" % (i - 1)],
                  "tool_args": {"i": "{{ n%d.i + 1 }}" % (i - 1)}})
json.dump({"name": "chain", "nodes": nodes}, open(d + "/chain.json", "w"))
nodes = [{"id": "src", "type": "tool", "tool_name": "echo", "tool_args": {"v": 1}}]
for i in range(n):
    nodes.append({"id": "w%d" % i, "type": "tool", "tool_name": "echo",
                  "dependencies": ["src"], "tool_args": {"i": i, "v": "{{ src.v }}"}})
nodes.append({"id": "sink", "type": "tool", "tool_name": "echo",
              "dependencies": ["w%d" % i for i in range(n)],
              "tool_args": {"first": "{{ w0.i }}", "last": "{{ w%d.i }}" % (n - 1),
                            "all_there": "{{ exists(w1234) and w1234.v == 1 }}"}})
json.dump({"name": "fan", "nodes": nodes}, open(d + "/fan.json", "w"))
PY

t_begin "scale: a 2,000-node chain passes values down the whole chain"
ice run "$W/chain.json"
expect_rc 0
expect_json 'r["status"] == "completed" and r["metrics"]["nodes_completed"] == 2000' \
  'r["output"]["n1999"] == {"i": 1999} and len(r["nodes"]) == 2000'
t_end

t_begin "scale: a 2,000-wide fan-out/fan-in"
ice run "$W/fan.json" --events "$W/ev-fan"
expect_rc 0
expect_json 'r["metrics"]["nodes_completed"] == 2002' \
  'r["output"]["sink"] == {"first": 0, "last": 1999, "all_there": True}'
expect_events "$W/ev-fan" 'len(of(ev, "node.started")) == 2002' \
  '[e["seq"] for e in ev] == list(range(1, len(ev) + 1))' \
  'of(ev, "node.completed")[-1]["node_id"] == "sink"'
t_end

t_begin "scale: validate of the 2,000-node files is clean"
ice validate "$W/chain.json" "$W/fan.json"
expect_rc 0
expect_out_empty
t_end
