# The scheduler under a long run of synchronous nodes (issue 6, items 3 and
# 7): the drain loop gives the event loop a turn after a bounded slice, so
# timers, signals and other nodes stay on time; recursive history grows in
# linear time.

# An outer loop over xs with an inner loop over xs: len(xs)^2 echo nodes.
wf starve.yaml <<'Y'
nodes:
  - id: big
    type: loop
    items_source: xs
    body:
      - id: inner
        type: loop
        items_source: xs
        body:
          - {id: e, type: tool, tool_name: echo, tool_args: {i: "{{ item }}"}}
  - {id: nap, type: tool, tool_name: sleep, tool_args: {seconds: 0.1}}
Y
python3 -c "import json; print(json.dumps({'xs': list(range(550))}))" >"$W/550.json"
python3 -c "import json; print(json.dumps({'xs': list(range(1000))}))" >"$W/1000.json"

t_begin "sched: a 300,000-node echo loop does not delay an unrelated sleep node"
# --no-store: the scheduler's own behaviour, without the store's cost.
ice run "$W/starve.yaml" --inputs @"$W/550.json" --no-store
expect_rc 0
# Before the fix the sleep ended with the loop (seconds under a sanitizer).
expect_json 'r["nodes"]["nap"]["duration_ms"] < 600' \
  'r["nodes"]["big"]["status"] == "completed"' \
  'len(r["output"]["big"]) == 550 and r["output"]["big"][-1][-1] == {"i": 549}'
t_end

t_begin "sched: SIGTERM during a long echo loop cancels the run at once (exit 130)"
"$ICE" run "$W/starve.yaml" --inputs @"$W/1000.json" --no-store >"$W/out" 2>"$W/err" </dev/null &
pid=$!
BGPIDS="$BGPIDS $pid"
sleep 0.4
t0=$(date +%s%N)
kill -TERM "$pid"
wait_bounded "$pid"
ms=$((($(date +%s%N) - t0) / 1000000))
expect_rc 130
expect_json 'r["status"] == "cancelled"' 'r["nodes"]["big"]["status"] == "cancelled"'
# Generous for sanitizer builds on a loaded machine; it was the whole loop.
[ "$ms" -lt 3000 ] || fail "SIGTERM took $ms ms to end the run"
t_end

wf spin.yaml <<'Y'
nodes:
  - {id: step, type: tool, tool_name: echo, tool_args: {v: 1}, dependencies: [r]}
  - id: r
    type: recursive
    dependencies: [step]
    recursive_sources: [step]
    convergence_condition: "false"
    max_iterations: 1000000
Y

t_begin "sched: SIGTERM during a 1,000,000-iteration recursive node ends the run"
"$ICE" run "$W/spin.yaml" --no-store >"$W/out" 2>"$W/err" </dev/null &
pid=$!
BGPIDS="$BGPIDS $pid"
sleep 0.4
kill -TERM "$pid"
wait_bounded "$pid"
expect_rc 130
# A body node is in output exactly when nodes lists it as completed.
expect_json 'r["status"] == "cancelled"' 'r["nodes"]["r"]["status"] == "cancelled"' \
  '("step" in r["output"]) == (r["nodes"]["step"]["status"] == "completed")'
t_end

t_begin "sched: preserve_context history is linear (50,000 iterations)"
sed 's/max_iterations: 1000000/max_iterations: 50000/' "$W/spin.yaml" >"$W/spin50k.yaml"
ice run "$W/spin50k.yaml" --output-only --no-store
expect_rc 0
expect_json 'r["r"]["iterations"] == 50000' \
  'len(r["r"]["final_context"]["history"]) == 50000' \
  'r["r"]["final_context"]["history"][49999] == {"iteration": 50000, "step": {"v": 1}}'
t_end

t_begin "sched: a body node that keeps the history sees it as it was"
wf keep.yaml <<'Y'
nodes:
  - id: step
    type: tool
    tool_name: echo
    dependencies: [r]
    tool_args:
      n: "{{ len(r.recursive_context.history) if exists(r) else 0 }}"
      h: "{{ r.recursive_context.history if exists(r) else [] }}"
  - id: r
    type: recursive
    dependencies: [step]
    recursive_sources: [step]
    convergence_condition: "false"
    max_iterations: 4
  - id: after
    type: tool
    tool_name: echo
    dependencies: [r, step]
    tool_args:
      n: "{{ step.n }}"
      kept: "{{ len(step.h) }}"
      final: "{{ len(r.final_context.history) }}"
Y
ice run "$W/keep.yaml" --output-only
expect_rc 0
expect_json 'r["after"] == {"n": 3, "kept": 3, "final": 4}' \
  '[len(h["step"]["h"]) for h in r["r"]["final_context"]["history"]] == [0, 1, 2, 3]'
t_end

t_begin "sched: a recursive body node cancelled by SIGTERM is not in output"
wf spin-sleep.yaml <<'Y'
nodes:
  - {id: step, type: tool, tool_name: sleep, tool_args: {seconds: 0.05}, dependencies: [r]}
  - id: r
    type: recursive
    dependencies: [step]
    recursive_sources: [step]
    convergence_condition: "false"
    max_iterations: 1000
Y
"$ICE" run "$W/spin-sleep.yaml" >"$W/out" 2>"$W/err" </dev/null &
pid=$!
BGPIDS="$BGPIDS $pid"
sleep 0.33
kill -TERM "$pid"
wait_bounded "$pid"
expect_rc 130
# The sleep takes nearly all of each iteration, so it is almost always the
# node that is cancelled; either way output and nodes must agree.
expect_json 'r["nodes"]["r"]["status"] == "cancelled"' \
  '("step" in r["output"]) == (r["nodes"]["step"]["status"] == "completed")'
t_end

# Nested parallel nodes (issue 6, item 12): each level holds its child in
# branch_results and in merged, shared in memory; the text doubles per level.
python3 - "$W" <<'PY'
import json, sys
def nest(d):
    node = {"id": "leaf", "type": "tool", "tool_name": "echo", "tool_args": {"x": "y"}}
    for i in range(d):
        node = {"id": "p%d" % i, "type": "parallel", "branches": [[node]]}
    return {"nodes": [node]}
for d in (8, 50):
    json.dump(nest(d), open("%s/nest%d.json" % (sys.argv[1], d), "w"))
PY

t_begin "sched: nested parallel output shares values (depth 8)"
ice run "$W/nest8.json" --output-only
expect_rc 0
expect_json 'r["p7"]["merged"]["p6"] == r["p7"]["branch_results"][0]["p6"]' \
  'r["p7"]["merged"]["p6"]["merged"]["p5"]["merged"]["p4"]["merged"]["p3"]["merged"]["p2"]["merged"]["p1"]["merged"]["p0"]["merged"]["leaf"] == {"x": "y"}'
t_end

t_begin "sched: nested parallel 50 deep fails clearly instead of hanging"
# Without the store: with it, every level below the cut is recorded with
# its whole output (hundreds of MB of text in all), which is the store's
# cost, not the scheduler's (docs/durability.md).
ice run "$W/nest50.json" --no-store
expect_rc 1
expect_json 'r["status"] == "failed"' \
  'r["nodes"]["p49"]["error"]["kind"] == "resource_limit"' \
  '"over 256 MiB" in r["nodes"]["p49"]["error"]["message"]'
t_end
