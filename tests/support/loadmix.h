/* The mix of workflows of the load test (tests/unit/test_load.c) and the
 * soak (tests/soak/soak.c): one workflow per kind, together every node
 * type of SPEC.md, and the exact output each must give. Run i is of kind
 * i % LM_KINDS with input n. Each passes through `gate`, a C tool the
 * program registers, whose output is its args plus {"together": T} (the
 * load test's barrier: T runs met there; the soak's: 1). @BASE@ stands for
 * the chat server's base URL (tests/support/chat_server.py); a workflow
 * node reads child.yaml (lm_child) from the workflow's directory. Kind 4
 * has no text of its own: it is kind 3 run without answers, stopped as
 * waiting and restored with them. Needs ICE_SOURCE_DIR. */
#ifndef ICE_TEST_LOADMIX_H
#define ICE_TEST_LOADMIX_H

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define LM_KINDS 8
#define LM_ECHO_WAT ICE_SOURCE_DIR "/tests/wasm/echo.wat"

static const char *const lm_child =
    "name: child\n"
    "input_schema: {n: int}\n"
    "tools:\n"
    "  wecho: {wasm: " LM_ECHO_WAT "}\n"
    "nodes:\n"
    "  - {id: w, type: tool, tool_name: wecho,"
    " tool_args: {n: '{{ n }}', s: child}}\n"
    "  - {id: twice, type: tool, tool_name: echo, dependencies: [w],"
    " tool_args: {v: '{{ w.n * 2 }}'}}\n";

static const char *const lm_yaml[LM_KINDS] = {
    /* 0: built-in and process tools, condition, loop, parallel. */
    "name: flow\n"
    "input_schema: {n: int}\n"
    "tools:\n"
    "  cat: {command: [cat]}\n"
    "nodes:\n"
    "  - {id: start, type: tool, tool_name: echo, tool_args: {n: '{{ n }}'}}\n"
    "  - {id: proc, type: tool, tool_name: cat, dependencies: [start],"
    " tool_args: {word: 'w{{ start.n }}'}}\n"
    "  - id: check\n"
    "    type: condition\n"
    "    dependencies: [start]\n"
    "    expression: 'start.n % 2 == 0'\n"
    "    true_path:\n"
    "      - {id: even, type: tool, tool_name: echo,"
    " tool_args: {parity: even}}\n"
    "    false_path:\n"
    "      - {id: odd, type: tool, tool_name: echo, tool_args: {parity: odd}}\n"
    "  - id: squares\n"
    "    type: loop\n"
    "    dependencies: [start]\n"
    "    items_source: '[n, n + 1, n + 2]'\n"
    "    max_concurrency: 3\n"
    "    body:\n"
    "      - {id: sq, type: tool, tool_name: echo,"
    " tool_args: {v: '{{ item * item }}', i: '{{ index }}'}}\n"
    "  - id: par\n"
    "    type: parallel\n"
    "    dependencies: [start]\n"
    "    branches:\n"
    "      - - {id: p1, type: tool, tool_name: echo, tool_args: {a: '{{ n "
    "}}'}}\n"
    "      - - {id: p2, type: tool, tool_name: echo,"
    " tool_args: {b: '{{ n * 2 }}'}}\n"
    "  - {id: gate, type: tool, tool_name: gate,"
    " dependencies: [proc, check, squares, par], tool_args: {n: '{{ n }}'}}\n"
    "  - id: done\n"
    "    type: tool\n"
    "    tool_name: echo\n"
    "    dependencies: [gate, proc, check, squares, par]\n"
    "    tool_args:\n"
    "      sum: '{{ squares[0].v + squares[1].v + squares[2].v }}'\n"
    "      merged: '{{ par.merged }}'\n"
    "      word: '{{ proc.word }}'\n"
    "      branch: '{{ check.branch }}'\n",

    /* 1: recursive (a cycle closed by refine). */
    "name: recur\n"
    "input_schema: {n: int}\n"
    "nodes:\n"
    "  - {id: seed, type: tool, tool_name: echo, tool_args: {start: 1}}\n"
    "  - id: step\n"
    "    type: tool\n"
    "    tool_name: echo\n"
    "    dependencies: [seed, refine]\n"
    "    tool_args:\n"
    "      value: '{{ refine.recursive_context.iteration * 10"
    " if exists(refine) else seed.start }}'\n"
    "      n: '{{ n }}'\n"
    "  - id: refine\n"
    "    type: recursive\n"
    "    dependencies: [step]\n"
    "    recursive_sources: [step]\n"
    "    convergence_condition: 'step.value >= 20'\n"
    "    max_iterations: 5\n"
    "  - {id: gate, type: tool, tool_name: gate, dependencies: [refine],"
    " tool_args: {n: '{{ n }}'}}\n"
    "  - {id: done, type: tool, tool_name: echo, dependencies: [gate, refine],"
    " tool_args: {iterations: '{{ refine.iterations }}'}}\n",

    /* 2: a workflow node (a child run with a WASM tool). */
    "name: parent\n"
    "input_schema: {n: int}\n"
    "nodes:\n"
    "  - id: sub\n"
    "    type: workflow\n"
    "    workflow_ref: child.yaml\n"
    "    inputs: {n: '{{ n }}'}\n"
    "    exposed_outputs: {echoed: w.n, doubled: twice.v}\n"
    "  - {id: gate, type: tool, tool_name: gate, dependencies: [sub],"
    " tool_args: {n: '{{ n }}'}}\n"
    "  - {id: done, type: tool, tool_name: echo, dependencies: [gate, sub],"
    " tool_args: {d: '{{ sub.doubled }}'}}\n",

    /* 3: human nodes answered ahead. */
    "name: ask\n"
    "input_schema: {n: int}\n"
    "nodes:\n"
    "  - {id: gate, type: tool, tool_name: gate, tool_args: {n: '{{ n }}'}}\n"
    "  - {id: ok, type: human, dependencies: [gate],"
    " prompt_message: 'Ship {{ n }}?'}\n"
    "  - {id: pick, type: human, dependencies: [gate],"
    " prompt_message: 'Colour?', approval_type: choice,"
    " choices: [red, green]}\n"
    "  - {id: done, type: tool, tool_name: echo, dependencies: [ok, pick],"
    " tool_args: {approved: '{{ ok.approved }}', said: '{{ ok.response }}',"
    " colour: '{{ pick.choice }}'}}\n",

    /* 4: the same, not answered: the run stops as waiting and is restored
     * from the store with the answers (the same text as kind 3). */
    NULL,

    /* 5: a monitor. */
    "name: watched\n"
    "input_schema: {n: int}\n"
    "nodes:\n"
    "  - {id: a, type: tool, tool_name: echo, tool_args: {n: '{{ n }}'}}\n"
    "  - {id: m, type: monitor, dependencies: [a], metric_expression:"
    " 'nodes_completed >= 1', action_on_trigger: alert_only,"
    " alert_channels: [dashboard]}\n"
    "  - {id: gate, type: tool, tool_name: gate, dependencies: [a],"
    " tool_args: {n: '{{ n }}'}}\n"
    "  - {id: done, type: tool, tool_name: echo, dependencies: [gate, a],"
    " tool_args: {n: '{{ a.n }}'}}\n",

    /* 6: llm and agent against the chat server. */
    "name: chat\n"
    "input_schema: {n: int}\n"
    "llm: {model: m, base_url: '@BASE@'}\n"
    "nodes:\n"
    "  - {id: ask, type: llm, prompt: 'Summarise run {{ n }}'}\n"
    "  - {id: gate, type: tool, tool_name: gate, dependencies: [ask],"
    " tool_args: {n: '{{ n }}'}}\n"
    "  - id: act\n"
    "    type: agent\n"
    "    dependencies: [gate]\n"
    "    tools: [echo]\n"
    "    max_iterations: 2\n"
    "    prompt: '[[reply:{\"tool\": \"echo\", \"inputs\": {\"n\": {{ n }}},"
    " \"done\": false, \"message\": \"again\"}]]'\n",

    /* 7: a swarm and WASM code. */
    "name: crowd\n"
    "input_schema: {n: int}\n"
    "nodes:\n"
    "  - id: vote\n"
    "    type: swarm\n"
    "    coordination_strategy: consensus\n"
    "    task: 'pick a name'\n"
    "    agents:\n"
    "      - {role: a, tool: echo, config_overrides: {proposal: ship}}\n"
    "      - {role: b, tool: echo, config_overrides: {proposal: ship}}\n"
    "  - {id: gate, type: tool, tool_name: gate, dependencies: [vote],"
    " tool_args: {n: '{{ n }}'}}\n"
    "  - {id: code, type: code, language: wasm, module: " LM_ECHO_WAT ","
    " dependencies: [gate]}\n",
};

/* The output each run must have. */
static json_t *lm_expected(int kind, int n, int together) {
  json_t *gate = json_pack("{s:i,s:i}", "n", n, "together", together);

  switch (kind) {
  case 0: {
    /* 64-bit, as the engine's integers: the soak's n passes 46,340. */
    json_int_t a = (json_int_t)n * n, b = (json_int_t)(n + 1) * (n + 1),
               c = (json_int_t)(n + 2) * (n + 2);
    const char *par = n % 2 == 0 ? "even" : "odd";
    char word[32];
    snprintf(word, sizeof(word), "w%d", n);
    return json_pack(
        "{s:{s:i},s:{s:s},s:{s:b,s:s,s:s,s:{s:{s:s}}},"
        "s:[{s:I,s:i},{s:I,s:i},{s:I,s:i}],"
        "s:{s:[{s:{s:i}},{s:{s:i}}],s:[i,i],s:s,s:{s:{s:i},s:{s:i}}},"
        "s:o,s:{s:I,s:{s:{s:i},s:{s:i}},s:s,s:s}}",
        "start", "n", n, "proc", "word", word, "check", "result", n % 2 == 0,
        "branch", n % 2 == 0 ? "true" : "false", "expression",
        "start.n % 2 == 0", "branch_outputs", par, "parity", par, "squares",
        "v", a, "i", 0, "v", b, "i", 1, "v", c, "i", 2, "par", "branch_results",
        "p1", "a", n, "p2", "b", n * 2, "completed_branches", 0, 1, "strategy",
        "all", "merged", "p1", "a", n, "p2", "b", n * 2, "gate", gate, "done",
        "sum", a + b + c, "merged", "p1", "a", n, "p2", "b", n * 2, "word",
        word, "branch", n % 2 == 0 ? "true" : "false");
  }
  case 1:
    return json_pack(
        "{s:{s:i},s:{s:i,s:i},"
        "s:{s:b,s:s,s:i,s:{s:i,s:s,s:[{s:i,s:{s:i,s:i}},{s:i,s:{s:i,s:i}},"
        "{s:i,s:{s:i,s:i}}]}},s:o,s:{s:i}}",
        "seed", "start", 1, "step", "value", 20, "n", n, "refine", "converged",
        1, "reason", "condition_met", "iterations", 3, "final_context",
        "iteration", 3, "node_id", "refine", "history", "iteration", 1, "step",
        "value", 1, "n", n, "iteration", 2, "step", "value", 10, "n", n,
        "iteration", 3, "step", "value", 20, "n", n, "gate", gate, "done",
        "iterations", 3);
  case 2:
    return json_pack("{s:{s:i,s:i},s:o,s:{s:i}}", "sub", "echoed", n, "doubled",
                     2 * n, "gate", gate, "done", "d", 2 * n);
  case 3:
  case 4: {
    char said[32];
    snprintf(said, sizeof(said), "run %d", n);
    return json_pack("{s:o,s:{s:b,s:s},s:{s:b,s:s,s:s},s:{s:b,s:s,s:s}}",
                     "gate", gate, "ok", "approved", 1, "response", said,
                     "pick", "approved", 1, "choice", "green", "response",
                     "green", "done", "approved", 1, "said", said, "colour",
                     "green");
  }
  case 5:
    return json_pack("{s:{s:i},s:{s:s,s:b,s:i,s:i,s:s,s:i},s:o,s:{s:i}}", "a",
                     "n", n, "m", "metric_evaluated", "nodes_completed >= 1",
                     "triggered", 1, "triggers_fired", 1, "checks_performed", 1,
                     "action_taken", "alert", "alerts_sent", 1, "gate", gate,
                     "done", "n", n);
  case 6: {
    char prompt[64], resp[80];
    snprintf(prompt, sizeof(prompt), "Summarise run %d", n);
    snprintf(resp, sizeof(resp), "echo: %s", prompt);
    return json_pack("{s:{s:s,s:s,s:s,s:s,s:{s:i,s:i,s:i,s:f}},s:o,"
                     "s:{s:[s,s],s:s,s:{s:i},s:s,s:s,s:i}}",
                     "ask", "response", resp, "text", resp, "prompt", prompt,
                     "model", "m", "usage", "prompt_tokens", 3,
                     "completion_tokens", 4, "total_tokens", 7, "cost_usd", 0.0,
                     "gate", gate, "act", "reasoning", "again", "again",
                     "last_tool", "echo", "result", "n", n, "message", "again",
                     "response", "again", "iterations", 2);
  }
  default:
    /* WASM echo code: its output is its context (SPEC §3.1). */
    return json_pack("{s:{s:s,s:i,s:b,s:s,s:f,s:[{s:s,s:s},{s:s,s:s}]},s:o,"
                     "s:{s:i,s:{s:i},s:o}}",
                     "vote", "strategy", "consensus", "rounds", 1, "consensus",
                     1, "result", "ship", "support", 1.0, "proposals", "role",
                     "a", "proposal", "ship", "role", "b", "proposal", "ship",
                     "gate", json_incref(gate), "code", "n", n, "inputs", "n",
                     n, "gate", gate);
  }
}

/* The text of kind's workflow, with the server's base URL put in. */
static void lm_text(int kind, const char *base, char *buf, size_t size) {
  const char *yaml = lm_yaml[kind == 4 ? 3 : kind];
  const char *at = strstr(yaml, "@BASE@");

  if (at != NULL)
    snprintf(buf, size, "%.*s%s%s", (int)(at - yaml), yaml, base,
             at + strlen("@BASE@"));
  else
    snprintf(buf, size, "%s", yaml);
}

/* Whether run n uses the store: every other run of each kind, and all of
 * kind 4 (restored from it). */
static int lm_stored(int n) {
  return (n / LM_KINDS) % 2 == 1 || n % LM_KINDS == 4;
}

/* The answers of the human nodes of kinds 3 and 4 (new reference). */
static json_t *lm_answers(int n) {
  char said[32];

  snprintf(said, sizeof(said), "approve:run %d", n);
  return json_pack("{s:s,s:s}", "ok", said, "pick", "green");
}

#endif
