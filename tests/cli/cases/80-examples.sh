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

# The control-flow examples (SPEC §7): each succeeds with the values its
# header comment promises.

t_begin "examples: map-reduce.yaml counts 5 documents 3 at a time and sums them"
ex_run map-reduce.yaml 0 --events "$W/ev-ex-mr"
expect_json 'r["success"] is True' \
  '[c["title"] for c in r["output"]["count"]] == ["intro", "agents", "retries", "sandbox", "loops"]' \
  '[c["words"] for c in r["output"]["count"]] == [9, 9, 6, 11, 11]' \
  'r["output"]["total"] == {"documents": 5, "words": 46, "lines": 6, "chars": 241, "longest": "sandbox"}' \
  'r["output"]["report"]["line"] == "5 documents, 46 words, longest: sandbox"' \
  'r["output"]["report"]["per_document"] == 9.2'
expect_events "$W/ev-ex-mr" 'len(of(ev, "loop.iteration", "count")) == 5' \
  'len(of(ev, "node.completed", "count_one")) == 5' \
  'all(e["parent_id"] == "count" for e in of(ev, "node.started", "count_one"))'
t_end

t_begin "examples: negotiation.yaml converges in round 5 and settles halfway"
ex_run negotiation.yaml 0 --events "$W/ev-ex-neg"
expect_json 'r["output"]["negotiate"]["converged"] is True and r["output"]["negotiate"]["reason"] == "condition_met"' \
  'r["output"]["negotiate"]["iterations"] == 5' \
  '[h["buyer"]["offer"] for h in r["output"]["negotiate"]["final_context"]["history"]] == [60, 78.0, 85.56, 88.73, 90.06]' \
  '[h["seller"]["ask"] for h in r["output"]["negotiate"]["final_context"]["history"]] == [120, 103.2, 96.14, 93.18, 91.93]' \
  'r["output"]["deal"] == {"rounds": 5, "price": 91.0, "summary": "agreed at 91.0 after 5 rounds", "offers": [60, 90.06]}'
expect_events "$W/ev-ex-neg" \
  '[(e["iteration"], e["converged"]) for e in of(ev, "recursive.iteration", "negotiate")] == [(1, False), (2, False), (3, False), (4, False), (5, True)]' \
  'len(of(ev, "node.started", "buyer")) == 5 and len(of(ev, "node.started", "deal")) == 1'
t_end

t_begin "examples: if-else.yaml takes the review path for a large order"
ex_run if-else.yaml 0 --input amount=250 --input customer=ada --events "$W/ev-ex-ifa"
expect_json 'r["output"]["check"]["result"] is True and r["output"]["check"]["branch"] == "true"' \
  'r["output"]["check"]["branch_outputs"]["review_note"] == {"note": "ada in manual-review"}' \
  'r["output"]["escalate"] == {"decision": "escalated", "note": "ada in manual-review"}' \
  'r["nodes"]["fast_receipt"]["reason"] == "run_if"' \
  'r["output"]["done"] == {"decision": "escalated", "customer": "ada"}'
t_end

t_begin "examples: if-else.yaml approves a small order at once"
ex_run if-else.yaml 0 --input amount=40 --input customer=bob --events "$W/ev-ex-ifb"
expect_json 'r["output"]["check"]["branch"] == "false"' \
  'r["output"]["check"]["branch_outputs"] == {"approve": {"approved": True, "customer": "bob", "amount": 40}}' \
  'r["output"]["fast_receipt"]["note"] == "receipt for bob: 40"' \
  'r["nodes"]["escalate"]["reason"] == "run_if"' \
  'r["output"]["done"] == {"decision": "approved", "customer": "bob"}'
t_end

t_begin "examples: parallel-any.yaml answers from the fast branch in well under a second"
ex_run parallel-any.yaml 0 --events "$W/ev-ex-any"
expect_json 'r["output"]["use_quote"] == {"winner": [0], "source": "cache", "price": 42.5}' \
  'r["output"]["quote"]["strategy"] == "any" and r["output"]["quote"]["completed_branches"] == [0]' \
  'set(r["output"]["quote"]["merged"]) == {"cache_wait", "cache"}' \
  'r["metrics"]["duration_ms"] < 5000'
expect_events "$W/ev-ex-any" 'len(of(ev, "node.cancelled", "slow_source")) == 1' \
  'of(ev, "node.failed") == []'
t_end

t_begin "examples: subworkflow.yaml runs subworkflows/summarize.yaml with overrides"
ex_run subworkflow.yaml 0 --events "$W/ev-ex-sub"
expect_json 'r["output"]["summarize"] == {"line": "RELEASE NOTES: ice 1.0 ships condition, ... (10 words)", "words": 10, "style": "headline"}' \
  'r["output"]["publish"] == {"post": "RELEASE NOTES: ice 1.0 ships condition, ... (10 words)", "long_enough": True}'
expect_events "$W/ev-ex-sub" \
  'len({e["run_id"] for e in of(ev, "workflow.started")}) == 2' \
  '[e["workflow"] for e in of(ev, "workflow.started")] == ["subworkflow", "summarize"]'
t_end

t_begin "examples: subworkflows/summarize.yaml validates and runs on its own"
ice validate "$ROOT/examples/subworkflows/summarize.yaml"
expect_rc 0
ex_run subworkflows/summarize.yaml 0 --input title=notes --input 'text=one two three four' \
  --input preview_words=2 --input style=plain
expect_json 'r["output"]["summary"] == {"style": "plain", "line": "notes: one two ... (4 words)"}'
t_end

t_begin "examples: cost-monitor.yaml aborts on its retry budget"
ex_run cost-monitor.yaml 1 --no-store
expect_json 'r["status"] == "aborted"' 'r["output"]["budget"]["action_taken"] == "abort"' \
  'r["nodes"]["unreliable"]["status"] == "cancelled" and r["nodes"]["report"]["status"] == "cancelled"'
t_end

t_begin "examples: approval.yaml with the answer given ahead publishes"
ex_run approval.yaml 0 --no-store --input title=Q3 --answer approve=approve:go
expect_json 'r["output"]["publish"] == {"published": "Q3", "note": "go"}'
t_end

t_begin "examples: approval.yaml without an answer stops as waiting (exit 3)"
ex_run approval.yaml 3 --input title=Q3 --no-interactive
expect_json 'r["status"] == "waiting"' 'r["nodes"]["approve"]["status"] == "waiting"'
expect_err_has "ice resume"
t_end
