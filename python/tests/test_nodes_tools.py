"""Python executors and tools through the engine's own paths: tool
nodes, agents, retries, failures and outputs."""

import asyncio

import ice
from ice_core.models import NodeExecutionResult

CALLS = []


@ice.register_tool("t_shout")
async def t_shout(text, times=1):
    CALLS.append(("shout", text))
    await asyncio.sleep(0.01)
    return {"text": (text.upper() + " ") * times}


@ice.register_tool("t_count")
def t_count(text):
    CALLS.append(("count", text))
    return len(text.split())  # not an object: becomes {"result": N}


@ice.register_node("t_raise")
async def t_raise(workflow, cfg, ctx):
    CALLS.append(("raise", cfg.id))
    await asyncio.sleep(0)
    raise ValueError("the flux capacitor broke")


@ice.register_node("t_raise_sync")
def t_raise_sync(workflow, cfg, ctx):
    CALLS.append(("raise_sync", cfg.id))
    raise KeyError("missing")


@ice.register_node("t_result")
def t_result(workflow, cfg, ctx):
    return NodeExecutionResult(success=cfg.ok, output={"ok": cfg.ok}, error="said no")


@ice.register_node("t_ctx")
async def t_ctx(workflow, cfg, ctx):
    # cfg as written (templates not rendered), with attribute access;
    # ctx the node's context (SPEC §3.1); workflow the ice.Workflow.
    return {"cfg": cfg, "field": cfg.nested.deep, "ctx": ctx,
            "workflow": workflow.name}


@ice.register_node("t_bad_output")
def t_bad_output(workflow, cfg, ctx):
    return {"x": object()}


def test_python_tool_in_a_tool_node():
    CALLS.clear()
    wf = ice.Workflow([
        {"id": "a", "type": "tool", "tool_name": "t_shout",
         "tool_args": {"text": "{{ who }}", "times": 2}},
        {"id": "b", "type": "tool", "tool_name": "t_count",
         "tool_args": {"text": "{{ a.text }}"}, "dependencies": ["a"]},
    ], name="tools", input_schema={"who": "str"})
    r = wf.run({"who": "ada"}, store=False)
    assert r.success, r.errors
    assert r.output == {"a": {"text": "ADA ADA "}, "b": {"result": 2}}
    assert CALLS == [("shout", "ada"), ("count", "ADA ADA ")]


def test_python_tool_called_by_an_agent():
    CALLS.clear()
    # The echo provider answers with the last user message: the prompt is
    # a step in the agent's answer format, so the agent calls the tool.
    wf = ice.Workflow([{
        "id": "agent", "type": "agent",
        "llm_config": {"provider": "echo", "model": "echo"},
        "tools": ["t_shout"],
        "max_iterations": 3,
        "prompt": '{"tool": "t_shout", "inputs": {"text": "{{ topic }}"}}',
    }], name="agent")
    r = wf.run({"topic": "agents"}, store=False)
    assert r.success, r.errors
    assert CALLS == [("shout", "agents")]
    assert r.output["agent"]["last_tool"] == "t_shout"
    assert r.output["agent"]["result"] == {"text": "AGENTS "}


def test_a_raising_executor_is_retried_then_fails_as_tool_error():
    CALLS.clear()
    wf = ice.Workflow([{"id": "x", "type": "t_raise",
                        "retry_policy": {"max_attempts": 3, "backoff_seconds": 0.01}}],
                      name="retry")
    events = []
    r = wf.run(store=False, on_event=events.append)
    assert CALLS == [("raise", "x")] * 3
    assert r.status == "failed" and not r.success
    assert r.nodes["x"]["attempts"] == 3
    assert r.nodes["x"]["error"] == {"kind": "tool_error",
                                     "message": "the flux capacitor broke"}
    assert r.errors == ["Node x failed: the flux capacitor broke"]
    assert r.metrics["retries"] == 2
    assert [e["type"] for e in events].count("node.retrying") == 2
    # The traceback goes to node.log events of the attempt.
    logs = [e for e in events if e["type"] == "node.log"]
    assert any("ValueError: the flux capacitor broke" in e["line"] for e in logs)


def test_a_raising_plain_function_fails_as_tool_error():
    r = ice.Workflow([{"id": "y", "type": "t_raise_sync"}], name="sync").run(store=False)
    assert r.nodes["y"]["error"] == {"kind": "tool_error", "message": "'missing'"}


def test_node_execution_result():
    wf = ice.Workflow([{"id": "yes", "type": "t_result", "ok": True},
                       {"id": "no", "type": "t_result", "ok": False}], name="ner")
    r = wf.run(store=False)
    assert r.output["yes"] == {"ok": True}
    assert r.nodes["no"]["error"] == {"kind": "tool_error", "message": "said no"}


def test_executor_sees_cfg_ctx_and_workflow():
    wf = ice.Workflow([
        {"id": "a", "type": "tool", "tool_name": "echo", "tool_args": {"v": 1}},
        {"id": "b", "type": "t_ctx", "dependencies": ["a"],
         "nested": {"deep": "{{ a.v }}"}},
    ], name="ctxwf")
    r = wf.run({"k": "v"}, store=False)
    assert r.success, r.errors
    out = r.output["b"]
    assert out["field"] == "{{ a.v }}"
    assert out["cfg"] == {"id": "b", "type": "t_ctx", "dependencies": ["a"],
                          "nested": {"deep": "{{ a.v }}"}}
    assert out["ctx"]["a"] == {"v": 1}
    assert out["ctx"]["inputs"] == {"k": "v"} and out["ctx"]["k"] == "v"
    assert out["workflow"] == "ctxwf"


def test_output_that_is_not_json_fails_the_attempt():
    r = ice.Workflow([{"id": "o", "type": "t_bad_output"}], name="o").run(store=False)
    assert r.nodes["o"]["error"]["kind"] == "tool_error"
    assert "not JSON" in r.nodes["o"]["error"]["message"]


def test_register_node_refuses_a_built_in_type():
    try:
        ice.register_node("tool")(lambda w, c, x: None)
    except ValueError as e:
        assert "built into ice" in str(e)
    else:
        raise AssertionError("registering 'tool' must fail")
    # The built-in still runs.
    r = ice.Workflow([{"id": "a", "type": "tool", "tool_name": "echo"}], name="b").run(
        store=False)
    assert r.success


def test_registering_again_replaces_the_function():
    @ice.register_node("t_again")
    def one(workflow, cfg, ctx):
        return {"v": 1}

    wf = ice.Workflow([{"id": "a", "type": "t_again"}], name="again")
    assert wf.run(store=False).output["a"] == {"v": 1}

    @ice.register_node("t_again")
    def two(workflow, cfg, ctx):
        return {"v": 2}

    assert wf.run(store=False).output["a"] == {"v": 2}
