# LLM and agent nodes (SPEC §6.1, §6.2, §7.4) against a real HTTP server
# on 127.0.0.1 that speaks Chat Completions (tests/support/chat_server.py,
# started here; its directives in a prompt choose its answer), and offline
# with the `echo` provider.

# shellcheck source=tests/cli/llm-lib.sh
. "$HERE/llm-lib.sh"

start_server main

cat >"$W/llm/basic.yaml" <<'EOF'
llm:
  model: gpt-test
  prices: {"*": {prompt: 1000, completion: 2000}}
nodes:
  - id: summarise
    type: llm
    prompt: "Summarise {{ topic }} briefly"
  - id: write
    type: llm
    llm_config: {system: "You write.", temperature: 0.2, max_tokens: 64}
    prompt: "Write about {{ summarise.response }}"
    dependencies: [summarise]
  - id: priced
    type: llm
    prompt: "[[cost:0.5]] what is it worth"
EOF

t_begin "llm: outputs, usage per node and in the run's metrics, price table"
llm run "$W/llm/basic.yaml" --input topic=agents --no-store
expect_rc 0
expect_json 'r["output"]["summarise"]["response"] == "echo: Summarise agents briefly"' \
  'r["output"]["summarise"]["text"] == r["output"]["summarise"]["response"]' \
  'r["output"]["summarise"]["prompt"] == "Summarise agents briefly"' \
  'r["output"]["summarise"]["model"] == "gpt-test"' \
  'r["output"]["summarise"]["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7, "cost_usd": 0.011}' \
  'r["output"]["write"]["response"] == "echo: Write about echo: Summarise agents briefly"' \
  'r["output"]["priced"]["usage"]["cost_usd"] == 0.5' \
  'r["nodes"]["summarise"]["tokens"] == 7' \
  'r["metrics"]["tokens"] == sum(o["usage"]["total_tokens"] for o in r["output"].values())' \
  'abs(r["metrics"]["cost_usd"] - sum(o["usage"]["cost_usd"] for o in r["output"].values())) < 1e-9'
t_end

t_begin "llm: the request is Chat Completions with the system message, settings and the key"
stats "$URL"
expect_json 'any(b["messages"] == [{"role": "system", "content": "You write."}, {"role": "user", "content": "Write about echo: Summarise agents briefly"}] and b["temperature"] == 0.2 and b["max_tokens"] == 64 and b["model"] == "gpt-test" for b in r["bodies"])' \
  'all(b["temperature"] == 0.7 for b in r["bodies"] if b["messages"][-1]["content"].startswith("Summarise"))' \
  'all(r["auth"])'
t_end

cat >"$W/llm/retry.yaml" <<'EOF'
llm: {model: m}
nodes:
  - id: limited
    type: llm
    prompt: "[[fail_first:1 status:429 retry_after:0.4]] go"
    retry_policy: {max_attempts: 2, backoff_seconds: 30}
  - id: down
    type: llm
    prompt: "[[fail_first:2 status:503]] go"
    retry_policy: {max_attempts: 3, backoff_seconds: 0.05}
  - id: always500
    type: llm
    prompt: "[[status:500]] go"
  - id: denied
    type: llm
    prompt: "[[status:401]] go"
    retry_policy: {max_attempts: 3, backoff_seconds: 0.01, retry_on: [transient]}
EOF

t_begin "llm: 429 waits the server's Retry-After (not the 30 s back-off), 5xx is transient, 401 is llm_error"
t0=$(date +%s%N)
llm run "$W/llm/retry.yaml" --no-store --events "$W/llm/ev-retry"
ms=$((($(date +%s%N) - t0) / 1000000))
expect_rc 1
expect_json 'r["nodes"]["limited"]["status"] == "completed" and r["nodes"]["limited"]["attempts"] == 2' \
  'r["nodes"]["down"]["status"] == "completed" and r["nodes"]["down"]["attempts"] == 3' \
  'r["nodes"]["always500"]["error"]["kind"] == "transient" and "HTTP 500" in r["nodes"]["always500"]["error"]["message"]' \
  'r["nodes"]["denied"]["error"]["kind"] == "llm_error" and r["nodes"]["denied"]["attempts"] == 1 and "HTTP 401" in r["nodes"]["denied"]["error"]["message"]'
expect_events "$W/llm/ev-retry" \
  '[e["delay_ms"] for e in of(ev, "node.retrying", "limited")] == [400]'
[ "$ms" -lt 5000 ] || fail "took $ms ms: the Retry-After delay was not used"
t_end

cat >"$W/llm/bad.yaml" <<'EOF'
llm: {model: m}
nodes:
  - {id: slow, type: llm, prompt: "[[sleep:5]] go", timeout_seconds: 0.5}
  - {id: malformed, type: llm, prompt: "[[malformed]] go"}
  - {id: dropped, type: llm, prompt: "[[drop]] go"}
  - {id: cut, type: llm, prompt: "[[truncate]] go"}
EOF

t_begin "llm: a slow answer times out; malformed JSON, a dropped connection and a body cut short fail clearly"
t0=$(date +%s%N)
llm run "$W/llm/bad.yaml" --no-store
ms=$((($(date +%s%N) - t0) / 1000000))
expect_rc 1
expect_json 'r["nodes"]["slow"]["error"]["kind"] == "timeout"' \
  'r["nodes"]["malformed"]["error"]["kind"] == "llm_error" and "not JSON" in r["nodes"]["malformed"]["error"]["message"]' \
  'r["nodes"]["dropped"]["error"]["kind"] == "transient"' \
  'r["nodes"]["cut"]["error"]["kind"] == "transient"'
[ "$ms" -lt 4000 ] || fail "took $ms ms: the timeout did not stop the request"
t_end

cat >"$W/llm/structured.yaml" <<'EOF'
llm: {model: m}
nodes:
  - id: ok
    type: llm
    prompt: '[[reply:{"name": "Ann", "age": 31}]]'
    output_schema: {name: str, age: int}
  - id: wrong_type
    type: llm
    prompt: '[[reply:{"name": "Ann", "age": "old"}]]'
    output_schema: {name: str, age: int}
  - id: not_json
    type: llm
    prompt: "[[reply:Ann is 31]]"
    output_schema:
      type: object
      properties: {name: {type: string}}
      required: [name]
  - id: plain
    type: llm
    prompt: "[[reply:just text]]"
    output_schema: {text: string}
EOF

t_begin "llm: structured output is requested, parsed, checked and kept as data; refused answers fail output_validation"
llm run "$W/llm/structured.yaml" --no-store
expect_rc 1
expect_json 'r["output"]["ok"]["data"] == {"name": "Ann", "age": 31}' \
  'r["nodes"]["wrong_type"]["error"]["kind"] == "output_validation" and "$.age" in r["nodes"]["wrong_type"]["error"]["message"]' \
  'r["nodes"]["not_json"]["error"]["kind"] == "output_validation" and "not JSON" in r["nodes"]["not_json"]["error"]["message"]' \
  'r["output"]["plain"]["response"] == "just text" and "data" not in r["output"]["plain"]'
stats "$URL"
expect_json 'any(b.get("response_format") == {"type": "json_schema", "json_schema": {"name": "ok", "schema": {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}, "required": ["name", "age"], "additionalProperties": False}}} for b in r["bodies"])' \
  'not any("response_format" in b for b in r["bodies"] if "just text" in b["messages"][-1]["content"])'
t_end

t_begin "llm: the echo provider answers offline with the prompt and counts words"
cat >"$W/llm/echo.yaml" <<'EOF'
nodes:
  - {id: e, type: llm, provider: echo, prompt: "one two  three"}
EOF
ice run "$W/llm/echo.yaml" --no-store
expect_rc 0
expect_json 'r["output"]["e"]["response"] == "one two  three"' \
  'r["output"]["e"]["usage"]["prompt_tokens"] == 3 and r["output"]["e"]["usage"]["total_tokens"] == 6'
t_end

t_begin "llm: 200 nodes with an llm pool of 200 are all in flight at once"
start_server hold --hold-until 200
python3 -I -S -c 'import json
nodes = [{"id": "n%d" % i, "type": "llm", "prompt": "[[hold]] %d" % i} for i in range(200)]
print(json.dumps({"max_parallel": 200, "pools": {"llm": 200}, "llm": {"model": "m"}, "nodes": nodes}))' >"$W/llm/wide.json"
llm run "$W/llm/wide.json" --no-store
expect_rc 0
expect_json 'r["metrics"]["nodes_completed"] == 200'
stats "$URL"
expect_json 'r["max_in_flight"] == 200 and r["requests"] == 200'
t_end

t_begin "llm: the llm pool's default of 16 is never exceeded by a loop of 100"
start_server pool
cat >"$W/llm/pool.yaml" <<'EOF'
llm: {model: m}
nodes:
  - id: each
    type: loop
    items_source: "{{ items }}"
    max_concurrency: 100
    body:
      - {id: ask, type: llm, prompt: "[[sleep:0.1]] {{ item }}"}
EOF
llm run "$W/llm/pool.yaml" --no-store --inputs "{\"items\": $(python3 -c 'print(list(range(100)))')}"
expect_rc 0
expect_json 'len(r["output"]["each"]) == 100'
stats "$URL"
expect_json 'r["max_in_flight"] == 16 and r["requests"] == 100'
t_end

t_begin "llm: the API key appears nowhere: result, events, errors, the store"
cat >"$W/llm/leak.yaml" <<'EOF'
llm: {model: m}
nodes:
  - {id: ok, type: llm, prompt: "hi"}
  - {id: bad, type: llm, prompt: "[[status:401]] no"}
  - {id: gone, type: llm, prompt: "x", llm_config: {base_url: "http://127.0.0.1:1/v1"}}
EOF
llm run "$W/llm/leak.yaml" --events "$W/llm/ev-leak" --store "$W/llm/leak.db"
expect_rc 1
for f in "$W/out" "$W/err" "$W/llm/ev-leak" "$W/llm/leak.db" "$W/llm/leak.db-wal"; do
  if [ -f "$f" ] && grep -qaF "$KEY" "$f"; then fail "the key is in $f"; fi
done
[ -s "$W/llm/leak.db" ] || fail "no store written"
t_end

t_begin "llm: without libcurl at run time, HTTP fails saying so and the rest runs"
# libcurl is loaded on the first request; ICE_LIBCURL=<missing file> plays
# a machine without it. The command does not link it at all.
if command -v readelf >/dev/null 2>&1 &&
  readelf -d "$ICE" | grep -q 'NEEDED.*libcurl'; then
  fail "$ICE links libcurl: $(readelf -d "$ICE" | grep NEEDED | tr -s ' ')"
fi
cat >"$W/llm/nocurl.yaml" <<'EOF'
nodes:
  - {id: a, type: tool, tool_name: echo, tool_args: {x: 1}}
  - {id: b, type: llm, model: m, prompt: hi, dependencies: [a]}
EOF
ICE_LIBCURL=$W/no-such-libcurl.so.4 llm run "$W/llm/nocurl.yaml" --no-store
expect_rc 1
expect_json 'r["output"]["a"] == {"x": 1}' \
  'r["nodes"]["b"]["error"]["kind"] == "non_retryable"' \
  '"HTTP is not available: cannot load libcurl" in r["nodes"]["b"]["error"]["message"]' \
  '"no-such-libcurl.so.4" in r["nodes"]["b"]["error"]["message"]'
llm run "$W/llm/nocurl.yaml" --no-store
expect_rc 0
expect_json 'r["output"]["b"]["response"] == "echo: hi"'
t_end

t_begin "llm: a missing key names the variable, not a value"
OPENAI_BASE_URL=$URL OPENAI_API_KEY= ice run "$W/llm/echo.yaml" --no-store
expect_rc 0
cat >"$W/llm/nokey.yaml" <<'EOF'
nodes:
  - {id: a, type: llm, model: m, prompt: hi, llm_config: {api_key_env: ICE_TEST_NO_SUCH_KEY}}
EOF
OPENAI_BASE_URL=$URL ice run "$W/llm/nokey.yaml" --no-store
expect_rc 1
expect_json '"ICE_TEST_NO_SUCH_KEY is not set" in r["nodes"]["a"]["error"]["message"]' \
  'r["nodes"]["a"]["error"]["kind"] == "llm_error"'
t_end

t_begin "llm: budgets stop further LLM calls with non_retryable"
cat >"$W/llm/budget.yaml" <<'EOF'
llm: {provider: echo, max_llm_calls: 2}
nodes:
  - {id: a, type: llm, prompt: "one"}
  - {id: b, type: llm, prompt: "two", dependencies: [a]}
  - {id: c, type: llm, prompt: "three", dependencies: [b], retry_policy: {max_attempts: 3}}
EOF
ice run "$W/llm/budget.yaml" --no-store
expect_rc 1
expect_json 'r["nodes"]["b"]["status"] == "completed"' \
  'r["nodes"]["c"]["error"]["kind"] == "non_retryable" and r["nodes"]["c"]["attempts"] == 1' \
  '"max_llm_calls (2)" in r["nodes"]["c"]["error"]["message"]'
cat >"$W/llm/budget2.yaml" <<'EOF'
llm: {provider: echo, budget: {max_tokens: 5}}
nodes:
  - {id: a, type: llm, prompt: "one two three"}
  - {id: b, type: llm, prompt: "more", dependencies: [a]}
EOF
ice run "$W/llm/budget2.yaml" --no-store
expect_rc 1
expect_json '"budget: max_tokens (5)" in r["nodes"]["b"]["error"]["message"]'
t_end

t_begin "llm: bad settings are validation errors at their position"
cat >"$W/llm/invalid.yaml" <<'EOF'
llm: {provider: echo, budget: {max_calls: 1}, prices: {m: {input: 1}}}
nodes:
  - id: a
    type: llm
    prompt: "{{ unclosed"
    llm_config: {provider: nosuch, temperature: hot}
EOF
ice validate "$W/llm/invalid.yaml"
expect_rc 2
expect_diag "$W/llm/invalid.yaml" "llm.budget: unknown field 'max_calls'" 1
expect_diag "$W/llm/invalid.yaml" "unknown field 'input'" 1
expect_diag "$W/llm/invalid.yaml" "unknown provider 'nosuch'" 6
expect_diag "$W/llm/invalid.yaml" "temperature must be a number" 6
expect_diag "$W/llm/invalid.yaml" "prompt" 5
t_end

# ---- agents (SPEC §6.2) -------------------------------------------------------
# A scripted server conversation: the k-th request naming a script gets its
# k-th answer. The directive rides in the agent's prompt (the first user
# message); later user messages are tool results.

mkdir -p "$W/llm/tools"
cat >"$W/llm/tools/add.py" <<'EOF'
import json, sys
a = json.load(sys.stdin)
print(json.dumps({"sum": a["a"] + a["b"]}))
EOF
cat >"$W/llm/agent.yaml" <<'EOF'
llm: {model: m}
tools:
  add: {command: [python3, tools/add.py]}
agents:
  calc:
    system_prompt: "You add numbers."
    tools: [add]
nodes:
  - id: choose
    type: agent
    package: calc
    prompt: "[[script:choose]] add 1 and 2"
  - id: forbidden
    type: agent
    package: calc
    prompt: "[[script:forbidden]] delete everything"
  - id: prose
    type: agent
    package: calc
    prompt: "[[script:prose]] just talk"
  - id: capped
    type: agent
    package: calc
    max_iterations: 3
    prompt: "[[script:loop]] forever"
  - id: inline
    type: agent
    tools: [{name: add, description: "adds"}]
    llm_config: {model: inline-model}
    agent_config: {system_prompt: "Inline agent."}
    prompt: "[[script:inline]] go"
EOF
cat >"$W/scripts/choose.json" <<'EOF'
["{\"tool\": \"add\", \"inputs\": {\"a\": 1, \"b\": 2}, \"done\": false, \"message\": \"adding\"}",
 "```json\n{\"tool\": null, \"done\": true, \"message\": \"the sum is 3\"}\n```"]
EOF
cat >"$W/scripts/forbidden.json" <<'EOF'
["{\"tool\": \"rm_rf\", \"inputs\": {}, \"message\": \"deleting\"}"]
EOF
cat >"$W/scripts/prose.json" <<'EOF'
["I would rather not use a tool."]
EOF
cat >"$W/scripts/loop.json" <<'EOF'
["{\"tool\": \"add\", \"inputs\": {\"a\": 2, \"b\": 2}, \"message\": \"again\"}"]
EOF
cat >"$W/scripts/inline.json" <<'EOF'
["{\"tool\": \"add\", \"inputs\": {\"a\": 5, \"b\": 5}}", "{\"done\": true, \"message\": \"ten\"}"]
EOF

t_begin "agent: tool choice, a tool run through the tool path, observation, final answer"
start_server agents
llm run "$W/llm/agent.yaml" --no-store
expect_rc 1
expect_json 'r["output"]["choose"] == {"reasoning": ["adding", "the sum is 3"], "last_tool": "add", "result": {"sum": 3}, "message": "the sum is 3", "response": "the sum is 3", "iterations": 2}'
t_end

t_begin "agent: a tool outside its list fails non_retryable; prose ends the loop; max_iterations caps it"
expect_json 'r["nodes"]["forbidden"]["error"]["kind"] == "non_retryable"' \
  '"rm_rf" in r["nodes"]["forbidden"]["error"]["message"] and "(add)" in r["nodes"]["forbidden"]["error"]["message"]' \
  'r["output"]["prose"]["message"] == "I would rather not use a tool." and r["output"]["prose"]["iterations"] == 1 and r["output"]["prose"]["last_tool"] is None' \
  'r["output"]["capped"]["iterations"] == 3 and r["output"]["capped"]["result"] == {"sum": 4} and r["output"]["capped"]["reasoning"] == ["again"] * 3'
t_end

t_begin "agent: an inline agent (tools objects, llm_config, agent_config)"
expect_json 'r["output"]["inline"]["result"] == {"sum": 10} and r["output"]["inline"]["response"] == "ten"'
stats "$URL"
expect_json 'any(b["model"] == "inline-model" and b["messages"][0]["role"] == "system" and b["messages"][0]["content"].startswith("Inline agent.") and "add" in b["messages"][0]["content"] for b in r["bodies"])' \
  'any(m["role"] == "user" and m["content"] == "{\"tool_result\":{\"sum\":3}}" for b in r["bodies"] for m in b["messages"])'
t_end

t_begin "agent: memory is a warning; unknown package and tool are errors"
cat >"$W/llm/agent-bad.yaml" <<'EOF'
nodes:
  - id: a
    type: agent
    package: nosuch
  - id: b
    type: agent
    provider: echo
    tools: [no_such_tool]
    memory: {backend: redis}
EOF
ice validate "$W/llm/agent-bad.yaml"
expect_rc 2
expect_diag "$W/llm/agent-bad.yaml" "unknown agent 'nosuch'" 4
expect_diag "$W/llm/agent-bad.yaml" "unknown tool 'no_such_tool'"
grep -qE "agent-bad.yaml:9:5: warning: .*memory" "$W/err" || fail "no memory warning: $(cat "$W/err")"
t_end

t_begin "recursive: agent_package loops on its own until the condition (iceOS form)"
cat >"$W/llm/rec.yaml" <<'EOF'
agents:
  negotiator: {system_prompt: "negotiate", llm_config: {provider: echo}}
nodes:
  - {id: seed, type: tool, tool_name: echo, tool_args: {offer: 10}}
  - id: loop
    type: recursive
    agent_package: negotiator
    recursive_sources: [seed]
    convergence_condition: "iteration >= 3"
    max_rounds: 5
    dependencies: [seed]
EOF
ice run "$W/llm/rec.yaml" --no-store --events "$W/llm/ev-rec"
expect_rc 0
expect_json 'r["output"]["loop"]["converged"] is True and r["output"]["loop"]["iterations"] == 3' \
  'r["output"]["loop"]["result"]["iterations"] == 1' \
  'r["nodes"]["loop"]["tokens"] > 0'
expect_events "$W/llm/ev-rec" 'len(of(ev, "recursive.iteration", "loop")) == 3'
t_end

# ---- the LLM examples, offline and against the server ------------------------

# ex_llm EXPECTED_EXIT NAME ARGS...: runs examples/NAME from the repository
# root; with $EX_URL set, against that server with the test key.
ex_llm() {
  want=$1 name=$2
  shift 2
  (cd "$ROOT" && if [ -n "${EX_URL:-}" ]; then
    export OPENAI_API_KEY="$KEY" OPENAI_BASE_URL="$EX_URL"
  fi && timeout 20 "$ICE" run "examples/$name" "$@" >"$W/out" 2>"$W/err" </dev/null)
  RC=$?
  expect_rc "$want"
}

t_begin "examples/llm: summarise-write, agent-tools and extract run offline with echo"
(cd "$ROOT" && for f in examples/llm/*.yaml; do "$ICE" validate "$f" || echo "INVALID $f"; done) >"$W/out" 2>"$W/err"
grep -q INVALID "$W/out" && fail "$(cat "$W/out" "$W/err")"
ex_llm 0 llm/summarise-write.yaml --input "topic=agent engines" --output-only --no-store
expect_json 'r["summary"] == "Summarise in three sentences what matters about agent engines."' \
  'r["article"].startswith("Write one paragraph") and r["tokens"] > 0'
ex_llm 0 llm/agent-tools.yaml --input "text=the quick brown fox" --no-store
expect_json 'r["output"]["count"]["last_tool"] == "wordcount" and r["output"]["count"]["result"]["words"] == 4'
ex_llm 0 llm/extract.yaml --no-store
expect_json 'r["output"]["greet"]["greeting"] == "Hello Ann Lee, 31!"'
t_end

t_begin "examples/llm: the same files against an OpenAI-compatible endpoint"
start_server examples
EX_URL=$URL
ex_llm 0 llm/summarise-write.yaml --input topic=x --input provider=openai --output-only --no-store
EX_URL=
expect_json 'r["summary"] == "echo: Summarise in three sentences what matters about x."'
stats "$URL"
expect_json 'r["requests"] == 2 and all(b["model"] == "gpt-4o-mini" for b in r["bodies"])'
t_end

# ---- hostile cases ------------------------------------------------------------

t_begin "llm: SIGTERM with requests in flight cancels the run at once (exit 130)"
start_server term
cat >"$W/llm/term.yaml" <<'EOF'
llm: {model: m}
nodes:
  - {id: a, type: llm, prompt: "[[sleep:8]] slow"}
  - {id: b, type: llm, prompt: "[[sleep:8]] slow"}
EOF
t0=$(date +%s%N)
OPENAI_API_KEY=$KEY OPENAI_BASE_URL=$URL "$ICE" run "$W/llm/term.yaml" --no-store >"$W/out" 2>"$W/err" &
pid=$!
sleep 0.5
kill -TERM $pid
wait $pid
RC=$?
ms=$((($(date +%s%N) - t0) / 1000000))
expect_rc 130
expect_json 'r["status"] == "cancelled" and r["nodes"]["a"]["status"] == "cancelled"'
[ "$ms" -lt 3000 ] || fail "took $ms ms"
t_end

t_begin "agent: a timeout kills the tool process it is running"
cat >"$W/scripts/sleepy.json" <<EOF
["{\"tool\": \"nap\", \"inputs\": {}}"]
EOF
cat >"$W/llm/agent-timeout.yaml" <<EOF
llm: {model: m}
tools:
  nap: {command: [sleep, "30.$MARK"]}
nodes:
  - id: a
    type: agent
    tools: [nap]
    timeout_seconds: 0.5
    prompt: "[[script:sleepy]] go"
EOF
llm run "$W/llm/agent-timeout.yaml" --no-store
expect_rc 1
expect_json 'r["nodes"]["a"]["error"]["kind"] == "timeout"'
sleep 0.2
if pgrep -f "sleep 30.$MARK" >/dev/null; then fail "the tool's process is still running"; fi
t_end

t_begin "llm: a bad base_url, a huge prompt and non-UTF-8 answers fail cleanly"
cat >"$W/llm/odd.yaml" <<'EOF'
nodes:
  - {id: badurl, type: llm, model: m, prompt: x, llm_config: {base_url: "not a url"}}
  - {id: huge, type: llm, model: m, prompt: "{{ big }}"}
  - {id: latin1, type: llm, model: m, prompt: "[[reply_b64:/w==]] x"}
EOF
python3 -I -S -c 'import json; print(json.dumps({"big": "word " * 2000000}))' >"$W/llm/big.json"
llm run "$W/llm/odd.yaml" --no-store --inputs "@$W/llm/big.json"
expect_rc 1
expect_json 'r["nodes"]["badurl"]["status"] == "failed"' \
  'r["nodes"]["huge"]["status"] == "completed" and r["output"]["huge"]["usage"]["prompt_tokens"] == 2000000' \
  'r["nodes"]["latin1"]["error"]["kind"] == "llm_error"'
t_end

# ---- a bundle-style workflow: inputs, outputs, a tool file, an inline agent ----

t_begin "bundle example: inputs, a --tools file, an inline agent and outputs, end to end"
ex_llm 0 bundle/workflows/ask.yaml --tools examples/bundle/tools.yaml --input query=agents --no-store
expect_json 'r["output"] == {"question": "agents", "found": 1, "note": "Agents", "response": {"text": "", "steps": 2}}' \
  'r["nodes"]["agent"]["tokens"] > 0'
(cd "$ROOT" && ICE_TOOLS=examples/bundle/tools.yaml timeout 20 "$ICE" run examples/bundle/workflows/ask.yaml --input query=retries --no-store --output-only >"$W/out" 2>"$W/err")
RC=$?
expect_rc 0
expect_json 'r["note"] == "Retries"'
t_end

t_begin "bundle example: a missing required input and an undeclared input exit 2 before anything runs"
ex_llm 2 bundle/workflows/ask.yaml --tools examples/bundle/tools.yaml --no-store --events "$W/llm/ev-none"
expect_err_has "query"
[ -s "$W/llm/ev-none" ] && fail "events were written: $(head -c 300 "$W/llm/ev-none")"
ex_llm 2 bundle/workflows/ask.yaml --tools examples/bundle/tools.yaml --input query=x --input qurey=y --no-store
expect_err_has "qurey"
t_end

t_begin "bundle example: against an OpenAI-compatible endpoint, the agent's answer reaches outputs"
start_server bundle
EX_URL=$URL
ex_llm 0 bundle/workflows/ask.yaml --tools examples/bundle/tools.yaml --input query=agents --input provider=openai --output-only --no-store
EX_URL=
expect_json 'r["response"]["text"].startswith("echo: {\"tool\": \"lookup_tool\"") and r["response"]["steps"] == 1'
t_end
