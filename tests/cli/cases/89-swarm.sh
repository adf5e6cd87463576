# The swarm node (SPEC §6.3) with process-tool members: the scripted member
# tests/cli/tools/swarm_member.py (its config_overrides say what it answers;
# each call logs "call PHASE ROLE ROUND" on stderr, a node.log event), sh
# members for timing and cancellation, and agent members on the echo LLM
# provider. Workflows are generated into $W with the member's path.

MEMBER=$HERE/tools/swarm_member.py

# swarm_wf NAME: writes a workflow whose `tools` define `member` (the
# script) before the nodes given on stdin.
swarm_wf() {
  {
    printf 'tools:\n  member: {command: [python3, "%s"]}\n' "$MEMBER"
    cat
  } >"$W/$1"
}

t_begin "swarm: consensus reached in round 2, with the support of 2 of 3"
swarm_wf sw-consensus.yaml <<'Y'
nodes:
  - id: s
    type: swarm
    coordination_strategy: consensus
    consensus_threshold: 0.6
    task: pick a colour
    agents:
      - {role: a, tool: member, config_overrides: {answers: [red]}}
      - {role: b, tool: member, config_overrides: {answers: [blue, red]}}
      - {role: c, tool: member, config_overrides: {answers: [green]}}
Y
ice run "$W/sw-consensus.yaml" --events "$W/ev-sw-cons"
expect_rc 0
expect_json 'r["output"]["s"]["strategy"] == "consensus" and r["output"]["s"]["rounds"] == 2' \
  'r["output"]["s"]["consensus"] is True and r["output"]["s"]["result"] == "red"' \
  'abs(r["output"]["s"]["support"] - 2 / 3) < 1e-9' \
  'r["output"]["s"]["proposals"] == [{"role": "a", "proposal": "red"}, {"role": "b", "proposal": "red"}, {"role": "c", "proposal": "green"}]' \
  'sorted(r["output"]["s"]) == ["consensus", "proposals", "result", "rounds", "strategy", "support"]'
expect_events "$W/ev-sw-cons" \
  '[(e["round"], e["phase"], e["consensus"]) for e in of(ev, "swarm.round", "s")] == [(1, "propose", False), (2, "propose", True)]' \
  '[p["proposal"] for p in of(ev, "swarm.round", "s")[0]["proposals"]] == ["red", "blue", "green"]' \
  'sorted(e["line"] for e in of(ev, "node.log", "s")) == sorted("call propose %s %d" % (m, k) for m in "abc" for k in (1, 2))'
t_end

t_begin "swarm: no consensus after max_rounds: the best-supported value, ties to the earlier member"
swarm_wf sw-nocons.yaml <<'Y'
nodes:
  - id: s
    type: swarm
    max_rounds: 3
    agents:
      - {role: a, tool: member, config_overrides: {answers: [p]}}
      - {role: b, tool: member, config_overrides: {answers: [q]}}
      - {role: c, tool: member, config_overrides: {answers: [p]}}
      - {role: d, tool: member, config_overrides: {answers: [q]}}
Y
ice run "$W/sw-nocons.yaml" --events "$W/ev-sw-nocons"
expect_rc 0
expect_json 'r["output"]["s"]["consensus"] is False and r["output"]["s"]["rounds"] == 3' \
  'r["output"]["s"]["result"] == "p" and r["output"]["s"]["support"] == 0.5'
expect_events "$W/ev-sw-nocons" \
  '[e["round"] for e in of(ev, "swarm.round", "s")] == [1, 2, 3]' \
  'len(of(ev, "node.log", "s")) == 12'
t_end

t_begin "swarm: hierarchical plan -> work -> aggregate, twice, until done"
swarm_wf sw-hier.yaml <<'Y'
nodes:
  - id: s
    type: swarm
    coordination_strategy: hierarchical
    task: write a report
    agents:
      - role: lead
        tool: member
        config_overrides:
          done_round: 2
          plan: [{role: w2, task: facts}, {role: w1, task: prose}]
      - {role: w1, tool: member}
      - {role: w2, tool: member}
      - {role: idle, tool: member}
Y
ice run "$W/sw-hier.yaml" --events "$W/ev-sw-hier"
expect_rc 0
expect_json 'r["output"]["s"] == {"strategy": "hierarchical", "rounds": 2, "result": "round 2: w2: w2 did facts; w1: w1 did prose", "assignments": [{"role": "w2", "task": "facts", "proposal": "w2 did facts"}, {"role": "w1", "task": "prose", "proposal": "w1 did prose"}]}'
# The order of the calls, from their stderr lines; the two work calls of a
# round may log in either order.
expect_events "$W/ev-sw-hier" \
  '[e["line"] for e in of(ev, "node.log", "s")][0::4] == ["call plan lead 1", "call plan lead 2"]' \
  '[e["line"] for e in of(ev, "node.log", "s")][3::4] == ["call aggregate lead 1", "call aggregate lead 2"]' \
  'sorted(e["line"] for e in of(ev, "node.log", "s")[1:3]) == ["call work w1 1", "call work w2 1"]' \
  'sorted(e["line"] for e in of(ev, "node.log", "s")[5:7]) == ["call work w1 2", "call work w2 2"]' \
  'len(of(ev, "node.log", "s")) == 8' \
  '[(e["round"], e["phase"], e["done"]) for e in of(ev, "swarm.round", "s")] == [(1, "aggregate", False), (2, "aggregate", True)]' \
  'of(ev, "swarm.round", "s")[0]["seq"] < [e for e in of(ev, "node.log", "s") if e["line"] == "call plan lead 2"][0]["seq"]'
t_end

t_begin "swarm: marketplace: the lowest bid executes, a tie goes to the earlier member"
swarm_wf sw-market.yaml <<'Y'
nodes:
  - id: s
    type: swarm
    coordination_strategy: marketplace
    task: deliver
    agents:
      - {role: a, tool: member, config_overrides: {bid: 5}}
      - {role: b, tool: member, config_overrides: {bid: 2}}
      - {role: c, tool: member, config_overrides: {bid: 2}}
Y
ice run "$W/sw-market.yaml" --events "$W/ev-sw-market"
expect_rc 0
expect_json 'r["output"]["s"] == {"strategy": "marketplace", "winner": "b", "bids": {"a": 5, "b": 2, "c": 2}, "result": {"by": "b", "task": "deliver", "bids": {"a": 5, "b": 2, "c": 2}}}'
expect_events "$W/ev-sw-market" \
  'sorted(e["line"] for e in of(ev, "node.log", "s")[:3]) == ["call bid a 1", "call bid b 1", "call bid c 1"]' \
  '[e["line"] for e in of(ev, "node.log", "s")[3:]] == ["call execute b 1"]' \
  '[(e["round"], e["phase"], e["winner"]) for e in of(ev, "swarm.round", "s")] == [(1, "execute", "b")]'
t_end

t_begin "swarm: the calls of a round run concurrently (3 x 0.3 s in well under 0.9 s)"
wf sw-conc.yaml <<'Y'
tools:
  nap:
    command: [sh, -c, 'cat >/dev/null; sleep 0.3; echo "{\"proposal\": 1}"']
nodes:
  - id: s
    type: swarm
    agents:
      - {role: a, tool: nap}
      - {role: b, tool: nap}
      - {role: c, tool: nap}
Y
ice run "$W/sw-conc.yaml"
expect_rc 0
expect_json 'r["output"]["s"]["rounds"] == 1 and r["output"]["s"]["result"] == 1' \
  '300 <= r["nodes"]["s"]["duration_ms"] < 800'
t_end

t_begin "swarm: a failing member fails the node, naming its role; the others are stopped"
swarm_wf sw-fail.yaml <<'Y'
nodes:
  - id: s
    type: swarm
    agents:
      - {role: slow, tool: member, config_overrides: {sleep: 10}}
      - {role: broken, tool: member, config_overrides: {fail: disk on fire}}
  - id: after
    type: tool
    tool_name: echo
    dependencies: [s]
Y
ice run "$W/sw-fail.yaml"
expect_rc 1
expect_json 'r["nodes"]["s"]["error"]["kind"] == "tool_error"' \
  'r["nodes"]["s"]["error"]["message"].startswith("member '"'"'broken'"'"' failed in round 1 (phase propose): exit status 1")' \
  '"disk on fire" in r["nodes"]["s"]["error"]["message"]' \
  'r["nodes"]["s"]["duration_ms"] < 5000 and r["nodes"]["after"]["reason"] == "upstream_failed"'
t_end

t_begin "swarm: an answer without a proposal fails the node with tool_error"
swarm_wf sw-bad.yaml <<'Y'
nodes:
  - id: s
    type: swarm
    agents:
      - {role: a, tool: member}
      - {role: mute, tool: member, config_overrides: {bad: true}}
Y
ice run "$W/sw-bad.yaml"
expect_rc 1
expect_json 'r["nodes"]["s"]["error"] == {"kind": "tool_error", "message": "member '"'"'mute'"'"' answered without a \"proposal\" in round 1 (phase propose)"}'
t_end

t_begin "swarm: agent members on the echo provider answer with their final message"
swarm_wf sw-agent.yaml <<'Y'
agents:
  voice:
    system_prompt: You are one voice of a swarm.
    llm_config: {provider: echo}
nodes:
  - id: s
    type: swarm
    task: name a fruit
    agents:
      # The echo provider answers the user message (the call object), so
      # the agent's final message is the call's `message`.
      - {role: json, agent: voice, config_overrides: {message: '{"proposal": "fig"}'}}
      - {role: text, agent: voice, config_overrides: {message: fig}}
      - {role: tool, tool: member, config_overrides: {answers: [fig]}}
Y
ice run "$W/sw-agent.yaml"
expect_rc 0
expect_json 'r["output"]["s"]["consensus"] is True and r["output"]["s"]["rounds"] == 1' \
  'r["output"]["s"]["support"] == 1.0 and r["output"]["s"]["result"] == "fig"' \
  'r["metrics"]["tokens"] > 0'
t_end

t_begin "swarm: timeout_seconds stops a swarm whose member sleeps; no process is left"
wf sw-timeout.yaml <<Y
tools:
  long: {command: [sh, -c, 'cat >/dev/null; exec sleep 37.$MARK']}
nodes:
  - id: s
    type: swarm
    timeout_seconds: 0.5
    agents:
      - {role: a, tool: long}
      - {role: b, tool: echo, config_overrides: {proposal: 1}}
Y
ice run "$W/sw-timeout.yaml"
expect_rc 1
expect_json 'r["nodes"]["s"]["error"]["kind"] == "timeout"' \
  '500 <= r["nodes"]["s"]["duration_ms"] < 5000'
no_proc "sleep 37\\.$MARK"
t_end

t_begin "swarm: SIGINT cancels a running swarm -> exit 130, member process gone"
wf sw-sigint.yaml <<Y
tools:
  long: {command: [sh, -c, 'cat >/dev/null; exec sleep 38.$MARK']}
nodes:
  - id: s
    type: swarm
    agents:
      - {role: a, tool: long}
      - {role: b, tool: long}
Y
"$ICE" run "$W/sw-sigint.yaml" >"$W/out" 2>"$W/err" </dev/null &
pid=$!
BGPIDS="$BGPIDS $pid"
if wait_proc "sleep 38\\.$MARK"; then
  kill -INT "$pid"
fi
wait_bounded "$pid"
expect_rc 130
expect_json 'r["status"] == "cancelled" and r["nodes"]["s"]["status"] == "cancelled"'
no_proc "sleep 38\\.$MARK"
t_end

t_begin "swarm: validation names each problem at its place"
wf sw-invalid.yaml <<'Y'
nodes:
  - id: one
    type: swarm
    agents:
      - {role: a, tool: echo}
  - id: s
    type: swarm
    coordination_strategy: voting
    agents:
      - {role: a, tool: echo}
      - {role: a, tool: echo}
      - {role: b, tool: echo, agent: x}
      - {role: c, tool: ech}
Y
ice validate "$W/sw-invalid.yaml"
expect_rc 2
expect_out_empty
expect_all_diags "$W/sw-invalid.yaml"
expect_diag "$W/sw-invalid.yaml" "node 'one': a swarm needs at least two members in agents (got 1)" 5
expect_diag "$W/sw-invalid.yaml" "node 's': coordination_strategy 'voting' is not one of consensus, hierarchical, marketplace" 8
expect_diag "$W/sw-invalid.yaml" "node 's': agents[1]: duplicate role 'a': roles must be unique" 11
expect_diag "$W/sw-invalid.yaml" "node 's': agents[2] (role 'b'): give either \"agent\" or \"tool\", not both" 12
expect_diag "$W/sw-invalid.yaml" "node 's': unknown tool 'ech' (did you mean 'echo'?)" 13
t_end

t_begin "swarm: examples/swarm-consensus.yaml agrees on 8 points in round 3"
(cd "$ROOT" && timeout 20 "$ICE" run examples/swarm-consensus.yaml --events "$W/ev-sw-ex" >"$W/out" 2>"$W/err" </dev/null)
RC=$?
expect_rc 0
expect_json 'r["output"]["plan"]["points"] == 8 and r["output"]["plan"]["agreed"] is True' \
  'r["output"]["estimate"]["rounds"] == 3 and r["output"]["estimate"]["support"] == 1.0'
expect_events "$W/ev-sw-ex" \
  '[[p["proposal"] for p in e["proposals"]] for e in of(ev, "swarm.round", "estimate")] == [[3, 8, 13], [5, 8, 8], [8, 8, 8]]'
t_end
