# The example workflows in examples/: every file validates; each runs with
# the outcome its header comment promises.

t_begin "examples: every examples/*.json|yaml|yml validates"
n=0
for f in "$ROOT"/examples/*.json "$ROOT"/examples/*.yaml "$ROOT"/examples/*.yml; do
  [ -e "$f" ] || continue
  n=$((n + 1))
  ice validate "$f"
  [ "$RC" = 0 ] || fail "$f: exit $RC: $(cat "$W/err")"
done
[ "$n" -ge 6 ] || fail "expected at least 6 examples, found $n"
t_end

# ex_run NAME EXPECTED_EXIT ARGS...: runs examples/NAME from the repository
# root, the way `make demo` does.
ex_run() {
  name=$1 want=$2
  shift 2
  (cd "$ROOT" && timeout 20 "$ICE" run "examples/$name" "$@" >"$W/out" 2>"$W/err" </dev/null)
  RC=$?
  expect_rc "$want"
}

t_begin "examples: hello.json succeeds"
ex_run hello.json 0
expect_json 'r["output"]["hello"] == {"msg": "hi"}'
t_end

t_begin "examples: pipeline.yaml --input topic=agents (make demo) succeeds"
ex_run pipeline.yaml 0 --input topic=agents
expect_json 'r["success"] is True and r["errors"] == []' \
  'r["nodes"]["brief"]["reason"] == "run_if" and r["nodes"]["detailed"]["status"] == "completed"' \
  'r["output"]["report"]["bullet_count"] == len(r["output"]["report"]["bullets"]) >= 3' \
  '"agents" in r["output"]["report"]["title"] and "words" in r["output"]["report"]["summary"]'
t_end

t_begin "examples: pipeline.yaml takes the brief branch for an unknown topic"
ex_run pipeline.yaml 0 --input topic=Gardening
expect_json 'r["nodes"]["detailed"]["reason"] == "run_if" and r["nodes"]["report"]["status"] == "completed"' \
  'r["output"]["report"]["title"].startswith("Notes on gardening")'
t_end

t_begin "examples: pipeline.yaml without its input is bad usage"
ex_run pipeline.yaml 2
expect_out_empty
t_end

t_begin "examples: retries.yaml succeeds after retries"
ex_run retries.yaml 0 --events "$W/ev-ex-retries"
expect_json 'r["output"]["summary"]["attempts_needed"] == {"exponential": 3, "linear": 4, "fixed_capped": 3, "jittered": 3, "legacy": 3, "only_transient": 2}'
expect_events "$W/ev-ex-retries" \
  '[e["delay_ms"] for e in of(ev, "node.retrying", "linear")] == [100, 200, 300]' \
  '[e["delay_ms"] for e in of(ev, "node.retrying", "fixed_capped")] == [150, 150]'
t_end

t_begin "examples: failure-policies.json fails on purpose as its description says"
ex_run failure-policies.json 1
expect_json 'r["errors"] == ["Node charge failed: card declined for order 1042"]' \
  'r["nodes"]["ship"]["reason"] == "upstream_failed" and r["nodes"]["audit"]["reason"] == "upstream_failed"' \
  'r["output"]["refund"] == {"refund": 99.5, "charged": False}' \
  'r["nodes"]["newsletter"]["status"] == "completed"'
t_end

t_begin "examples: timeouts.yaml fails on purpose with a timeout, cleanup runs"
ex_run timeouts.yaml 1
expect_json 'r["nodes"]["too_slow"]["error"]["kind"] == "timeout" and r["nodes"]["too_slow"]["attempts"] == 2' \
  'r["output"]["cleanup"]["slow_step_done"] is False and r["nodes"]["in_time"]["status"] == "completed"'
t_end

t_begin "examples: templates.json succeeds"
ex_run templates.json 0 --input user=ada --input 'scores=[3, 9, 4]'
expect_json 'r["output"]["text"]["line"] == "ADA has 3 scores [3,9,4], best 9, mean 5.33"' \
  'r["output"]["typed"]["count"] == 3 and r["output"]["typed"]["object"] == {"who": "ADA", "ok": True}' \
  'r["output"]["text"]["literal_braces"] == "{{ not a template }}"'
t_end
