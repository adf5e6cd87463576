# shellcheck source=tests/cli/llm-lib.sh
. "$HERE/llm-lib.sh"

# Edges of the LLM, agent and code nodes: settings that only fail when
# rendered, every check of the file's llm object, agents that cannot be
# compiled, and calls that must be given up on.

E=$W/edges
mkdir -p "$E"

t_begin "llm settings: values that only fail when rendered fail the node clearly"
cat >"$E/render.yaml" <<'EOF'
llm: {provider: echo}
nodes:
  - {id: temp, type: llm, prompt: hi, llm_config: {temperature: "{{ t }}"}}
  - {id: maxt, type: llm, prompt: hi, llm_config: {max_tokens: "{{ t }}"}}
  - {id: prov, type: llm, prompt: hi, llm_config: {provider: "{{ p }}"}}
  - {id: nomodel, type: llm, prompt: hi, llm_config: {provider: "{{ o }}"}}
  - {id: strtype, type: llm, prompt: hi, llm_config: {model: "{{ n }}"}}
  - {id: badtmpl, type: llm, prompt: hi, llm_config: {model: "{{ nosuch.x }}"}}
  - {id: promptobj, type: llm, prompt: "{{ obj }}"}
  - {id: sys, type: llm, prompt: hi, llm_config: {system: "be brief"}}
EOF
ice run "$E/render.yaml" --no-store --input t=hot --input p=nosuch --input o=openai --input n=5 --input 'obj={"a": 1}'
expect_rc 1
expect_json '"temperature must be a number" in r["nodes"]["temp"]["error"]["message"]' \
  '"max_tokens must be a positive integer" in r["nodes"]["maxt"]["error"]["message"]' \
  '"unknown provider '"'"'nosuch'"'"'" in r["nodes"]["prov"]["error"]["message"]' \
  '"no model" in r["nodes"]["nomodel"]["error"]["message"]' \
  '"llm_config.model must be a string" in r["nodes"]["strtype"]["error"]["message"]' \
  'r["nodes"]["badtmpl"]["status"] == "failed"' \
  'r["output"]["promptobj"]["response"] == "{\"a\":1}"' \
  'r["output"]["sys"]["usage"]["prompt_tokens"] == 3'
t_end

t_begin "llm object: every field is checked at its position"
cat >"$E/llmobj.yaml" <<'EOF'
llm:
  model: 5
  max_tokens: 0
  timeout: 30
  x-note: kept
  colour: red
  max_cost_usd: -1
  max_llm_calls: 1.5
  budget: 3
  prices: 4
nodes:
  - {id: a, type: llm, prompt: hi, provider: echo}
EOF
ice validate "$E/llmobj.yaml"
expect_rc 2
expect_diag "$E/llmobj.yaml" "llm.model must be a string" 2
expect_diag "$E/llmobj.yaml" "llm.max_tokens must be a positive integer" 3
expect_diag "$E/llmobj.yaml" "llm: unknown field 'colour'" 6
expect_diag "$E/llmobj.yaml" "llm.max_cost_usd must be a number >= 0" 7
expect_diag "$E/llmobj.yaml" "llm.max_llm_calls must be an integer >= 0" 8
expect_diag "$E/llmobj.yaml" "llm.budget must be an object" 9
expect_diag "$E/llmobj.yaml" "llm.prices must be an object" 10
grep -q "timeout\|x-note" "$W/err" && fail "ignored keys reported: $(cat "$W/err")"
cat >"$E/prices.yaml" <<'EOF'
llm:
  prices: {m: 3, n: {prompt: -1}}
  budget: {max_cost_usd: "x"}
nodes:
  - {id: a, type: llm, prompt: hi, provider: echo}
EOF
ice validate "$E/prices.yaml"
expect_rc 2
expect_diag "$E/prices.yaml" "llm.prices.m must be an object" 2
expect_diag "$E/prices.yaml" "llm.prices.prompt must be a number >= 0" 2
expect_diag "$E/prices.yaml" "llm.budget.max_cost_usd must be a number >= 0" 3
t_end

t_begin "llm budgets: cost, and a price table by model"
cat >"$E/cost.yaml" <<'EOF'
llm:
  provider: echo
  model: m
  max_cost_usd: 0.000001
  prices: {m: {prompt: 1000, completion: 1000}}
nodes:
  - {id: a, type: llm, prompt: "one two"}
  - {id: b, type: llm, prompt: "three", dependencies: [a]}
EOF
ice run "$E/cost.yaml" --no-store
expect_rc 1
expect_json 'r["output"]["a"]["usage"]["cost_usd"] == 0.004' \
  '"budget: max_cost_usd" in r["nodes"]["b"]["error"]["message"]'
t_end

t_begin "agents that cannot be compiled are validation errors"
cat >"$E/agents.yaml" <<'EOF'
agents:
  notobj: 5
  ok: {system_prompt: s, tools: [echo]}
  badtools: {tools: echo}
nodes:
  - {id: a, type: agent, package: notobj}
  - {id: b, type: agent, provider: echo, tools: "echo"}
  - {id: c, type: agent, provider: echo, tools: [5, echo]}
  - {id: d, type: agent, package: ok, max_iterations: 0}
  - {id: e, type: recursive, agent_package: ok, workflow_ref: x.yaml, recursive_sources: [a], convergence_condition: "true", dependencies: [a]}
  - {id: f, type: recursive, agent_package: nosuch, recursive_sources: [a], convergence_condition: "true", dependencies: [a]}
  - {id: g, type: agent, package: badtools}
EOF
ice validate "$E/agents.yaml"
expect_rc 2
expect_diag "$E/agents.yaml" "agent 'notobj' must be an object" 6
expect_diag "$E/agents.yaml" "field 'tools' must be of another type" 7
expect_diag "$E/agents.yaml" "tools[0] must be a tool name or an object" 8
expect_diag "$E/agents.yaml" "max_iterations must be an integer from 1 to 100000" 9
expect_diag "$E/agents.yaml" "set either agent_package or workflow_ref, not both" 10
expect_diag "$E/agents.yaml" "unknown agent 'nosuch'" 11
expect_diag "$E/agents.yaml" "agent 'badtools': tools must be a list of tool names" 4
t_end

t_begin "agent: context as the user message, input_schema, a failing tool, a timeout in a recursive agent"
start_server edges
cat >"$W/scripts/failtool.json" <<'EOF'
["{\"tool\": \"fail\", \"inputs\": {\"message\": \"disk on fire\"}}"]
EOF
cat >"$E/agent-run.yaml" <<'EOF'
llm: {model: m}
agents:
  slow: {system_prompt: s}
nodes:
  - id: noprompt
    type: agent
  - id: schema
    type: agent
    provider: echo
    input_schema: {type: object, required: [must_have]}
  - id: toolfails
    type: agent
    tools: [fail]
    prompt: "[[script:failtool]] go"
  - id: rec
    type: recursive
    agent_package: slow
    recursive_sources: []
    convergence_condition: "false"
    timeout_seconds: 0.5
EOF
sed -i 's/recursive_sources: \[\]/recursive_sources: [noprompt]/; s/    timeout_seconds: 0.5/    timeout_seconds: 0.5\n    dependencies: [noprompt]/' "$E/agent-run.yaml"
llm run "$E/agent-run.yaml" --no-store --input x=1
expect_rc 1
expect_json 'r["output"]["noprompt"]["message"].startswith("echo: {") and "\"x\":1" in r["output"]["noprompt"]["message"]' \
  'r["nodes"]["rec"]["error"]["kind"] == "timeout" and r["nodes"]["rec"]["tokens"] > 0' \
  'r["nodes"]["schema"]["error"]["kind"] == "input_validation"' \
  'r["nodes"]["toolfails"]["error"]["kind"] == "tool_error" and "tool '"'"'fail'"'"': disk on fire" in r["nodes"]["toolfails"]["error"]["message"]'
t_end

t_begin "code: module on a python node, a wasm node without a module, python's prints stay off the output"
cat >"$E/code.yaml" <<'EOF'
nodes:
  - {id: a, type: code, language: python, code: "output = 1", module: x.wasm}
  - {id: b, type: code, language: wasm, code: 5}
EOF
ice validate "$E/code.yaml"
expect_rc 2
expect_diag "$E/code.yaml" "module is for language wasm" 2
expect_diag "$E/code.yaml" "missing required field 'module'" 3
t_end

t_begin "llm: input_schema checks the rendered prompt object"
cat >"$E/inschema.yaml" <<'EOF'
nodes:
  - {id: ok, type: llm, provider: echo, prompt: "hello", input_schema: {prompt: str}}
  - {id: bad, type: llm, provider: echo, prompt: "hello", input_schema: {type: object, properties: {prompt: {maxLength: 2}}}}
EOF
ice run "$E/inschema.yaml" --no-store
expect_rc 1
expect_json 'r["nodes"]["ok"]["status"] == "completed"' \
  'r["nodes"]["bad"]["error"]["kind"] == "input_validation" and "$.prompt" in r["nodes"]["bad"]["error"]["message"]'
t_end

t_begin "recursive: workflow_ref without a cycle loops on its own; the child's declared inputs, its failure, an agent's failure"
mkdir -p "$E/rec"
cat >"$E/rec/child.yaml" <<'EOF'
inputs: {required: [iteration], optional: [seed, result]}
nodes:
  - {id: c, type: tool, tool_name: echo, tool_args: {k: "{{ iteration }}", prev: "{{ inputs.result.c.k if exists(inputs.result) else 0 }}"}}
EOF
cat >"$E/rec/failing.yaml" <<'EOF'
nodes:
  - {id: c, type: tool, tool_name: fail, tool_args: {message: "child broke"}}
EOF
cat >"$E/rec/parent.yaml" <<'EOF'
agents:
  keyless: {llm_config: {provider: openai, model: m, api_key_env: ICE_TEST_NO_KEY_HERE}}
nodes:
  - {id: seed, type: tool, tool_name: echo, tool_args: {v: 1}}
  - id: loop
    type: recursive
    workflow_ref: child.yaml
    recursive_sources: [seed]
    convergence_condition: "result.c.k >= 3"
    dependencies: [seed]
  - id: broken
    type: recursive
    workflow_ref: failing.yaml
    recursive_sources: [seed]
    convergence_condition: "false"
    dependencies: [seed]
  - id: agentfails
    type: recursive
    agent_package: keyless
    recursive_sources: [seed]
    convergence_condition: "false"
    dependencies: [seed]
EOF
ice run "$E/rec/parent.yaml" --no-store
expect_rc 1
expect_json 'r["output"]["loop"]["converged"] is True and r["output"]["loop"]["iterations"] == 3' \
  'r["output"]["loop"]["result"]["c"] == {"k": 3, "prev": 2}' \
  'r["nodes"]["broken"]["error"]["kind"] == "subworkflow"' \
  'r["nodes"]["agentfails"]["error"]["kind"] == "llm_error" and "ICE_TEST_NO_KEY_HERE is not set" in r["nodes"]["agentfails"]["error"]["message"]'
t_end

t_begin "llm: a template error in llm_config is a validation error; base_url forms"
cat >"$E/cfgtmpl.yaml" <<'EOF'
nodes:
  - {id: a, type: llm, provider: echo, prompt: hi, llm_config: {model: "{{ oops"}}
EOF
ice validate "$E/cfgtmpl.yaml"
expect_rc 2
expect_diag "$E/cfgtmpl.yaml" "unterminated" 2
start_server slash
cat >"$E/urls.yaml" <<EOF
llm: {model: m}
nodes:
  - {id: slash, type: llm, prompt: hi, llm_config: {base_url: "$URL//"}}
  - {id: ftp, type: llm, prompt: hi, llm_config: {base_url: "ftp://127.0.0.1/v1"}}
EOF
llm run "$E/urls.yaml" --no-store
expect_rc 1
expect_json 'r["output"]["slash"]["response"] == "echo: hi"' \
  'r["nodes"]["ftp"]["status"] == "failed"'
t_end

t_begin "agent: a step without inputs calls the tool with {}"
printf '%s\n' '["{\"tool\": \"echo\"}", "{\"done\": true, \"message\": \"ok\"}"]' >"$W/scripts/noinputs.json"
cat >"$E/noinputs.yaml" <<'EOF'
llm: {model: m}
nodes:
  - {id: a, type: agent, tools: [echo], prompt: "[[script:noinputs]] go"}
EOF
llm run "$E/noinputs.yaml" --no-store
expect_rc 0
expect_json 'r["output"]["a"]["result"] == {} and r["output"]["a"]["last_tool"] == "echo"'
t_end

t_begin "swarm: members' answers that break the protocol, and bad member fields"
cat >"$E/swarm-proto.yaml" <<'EOF'
nodes:
  - id: noplan
    type: swarm
    coordination_strategy: hierarchical
    task: t
    agents:
      - {role: lead, tool: echo, config_overrides: {subtasks: "not a list"}}
      - {role: w, tool: echo}
  - id: norole
    type: swarm
    coordination_strategy: hierarchical
    task: t
    agents:
      - {role: lead, tool: echo, config_overrides: {subtasks: [{task: x}]}}
      - {role: w, tool: echo}
  - id: noproposal
    type: swarm
    coordination_strategy: hierarchical
    task: t
    agents:
      - {role: lead, tool: echo, config_overrides: {subtasks: []}}
      - {role: w, tool: echo}
EOF
ice run "$E/swarm-proto.yaml" --no-store
expect_rc 1
expect_json '"without a \"subtasks\" list" in r["nodes"]["noplan"]["error"]["message"]' \
  '"subtasks[0] without a \"role\"" in r["nodes"]["norole"]["error"]["message"]' \
  '"without a \"proposal\"" in r["nodes"]["noproposal"]["error"]["message"]'
cat >"$E/swarm-bad.yaml" <<'EOF'
nodes:
  - id: s
    type: swarm
    task: "{{ oops"
    agents:
      - {role: "", tool: echo}
      - {role: b, tool: 5}
      - {role: c, agent: 5}
      - {role: d, tool: echo, config_overrides: {x: "{{ oops"}}
EOF
ice validate "$E/swarm-bad.yaml"
expect_rc 2
expect_err_has "role must be a non-empty string"
expect_err_has "tool must be a tool name"
expect_err_has "agents[2]"
expect_err_has "unterminated"
t_end

t_begin "code and agent: input_schema and prompt errors fail the node"
cat >"$E/schemas.yaml" <<'EOF'
nodes:
  - {id: c, type: code, language: python, code: "output = 1", input_schema: {type: object, required: [zz]}}
  - {id: a, type: agent, provider: echo, prompt: "{{ nosuch.field }}"}
  - {id: w, type: code, language: wasm, module: tools/echo.wat, export: run, fuel: 1000, memory_pages: 2}
EOF
mkdir -p "$E/tools" && cp "$ROOT/tests/wasm/echo.wat" "$E/tools/"
ice run "$E/schemas.yaml" --no-store
expect_rc 1
expect_json 'r["nodes"]["c"]["error"]["kind"] == "input_validation"' \
  'r["nodes"]["a"]["error"]["kind"] == "expression" and "prompt:" in r["nodes"]["a"]["error"]["message"]' \
  'r["nodes"]["w"]["status"] == "completed"'
t_end
