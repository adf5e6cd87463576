"""Workflow, validate(), Result, on_event and stores."""

import asyncio
import os
import sqlite3

import ice


def test_diagnostics_list_every_problem():
    wf = ice.Workflow([
        {"id": "a", "type": "tool"},                          # no tool_name
        {"id": "a", "type": "tool", "tool_name": "echo"},      # duplicate id
        {"id": "b", "type": "nope"},                           # unknown type
        {"id": "c", "type": "tool", "tool_name": "nosuch"},    # unknown tool
        {"id": "d", "type": "tool", "tool_name": "echo", "dependencies": ["zz"]},
    ], name="bad", failure_policy="sometimes")
    try:
        wf.validate()
    except ice.ValidationError as e:
        assert isinstance(e, ValueError)
        d = e.diagnostics
        assert all(x.startswith("<workflow bad>: error: ") for x in d), d
        text = "\n".join(d)
        for needle in ("missing required field 'tool_name'", "duplicate id 'a'",
                       "unknown node type 'nope'", "unknown tool 'nosuch'",
                       "unknown dependency 'zz'", "failure_policy"):
            assert needle in text, (needle, d)
        assert str(e) == text
    else:
        raise AssertionError("validate() must raise")


def test_validate_returns_warnings():
    wf = ice.Workflow([{"id": "a", "type": "tool", "tool_name": "echo",
                        "output_mappings": {"x": "y"}}], name="warn")
    warnings = wf.validate()
    assert len(warnings) == 1 and ": warning: " in warnings[0]


def test_execute_raises_on_an_invalid_workflow_or_inputs():
    bad = ice.Workflow([{"id": "a", "type": "nope"}], name="bad")
    try:
        bad.run(store=False)
    except ice.ValidationError as e:
        assert "unknown node type 'nope'" in e.diagnostics[0]
    else:
        raise AssertionError
    wf = ice.Workflow([{"id": "a", "type": "tool", "tool_name": "echo"}], name="in",
                      input_schema={"n": "int"})
    try:
        wf.run({"n": "three"}, store=False)
    except ice.ValidationError as e:
        assert e.diagnostics and "n" in e.diagnostics[0]
    else:
        raise AssertionError


def test_nodes_that_are_not_configs_are_diagnostics():
    wf = ice.Workflow([{"id": "a", "type": "tool", "tool_name": "echo"}, 42], name="x")
    try:
        wf.validate()
    except ice.ValidationError as e:
        assert e.diagnostics == ["<workflow x>: error: node 2: a node must be a dict "
                                 "or a node config, not int"]


def test_result_has_the_fields_of_the_spec():
    r = ice.Workflow([{"id": "hello", "type": "tool", "tool_name": "echo",
                       "tool_args": {"msg": "hi"}}], name="demo").run(store=False)
    assert set(r.to_dict()) == {"run_id", "workflow", "status", "success", "output",
                                "nodes", "errors", "metrics"}
    assert r.status == "completed" and r.success is True
    assert r.output == {"hello": {"msg": "hi"}}
    assert r.nodes["hello"]["status"] == "completed"
    assert r.errors == [] and r.error is None
    assert r.metrics["nodes_completed"] == 1
    assert r["workflow"] == "demo"


def test_events_reach_on_event_in_seq_order(tmp_path):
    child = tmp_path / "child.yaml"
    child.write_text("name: child\nnodes:\n  - {id: c1, type: tool, tool_name: echo}\n")
    wf = ice.Workflow([
        {"id": "a", "type": "tool", "tool_name": "echo"},
        {"id": "sub", "type": "workflow", "workflow_ref": str(child),
         "dependencies": ["a"]},
    ], name="events")
    seen = []
    got_async = []

    async def on_async(ev):
        got_async.append(ev["type"])

    async def main():
        r1 = await wf.execute(store=False, on_event=seen.append)
        r2 = await wf.execute(store=False, on_event=on_async)
        await asyncio.sleep(0)
        return r1, r2

    r1, r2 = asyncio.run(main())
    assert r1.success, r1.errors
    mine = [e for e in seen if e["run_id"] == r1.run_id]
    assert [e["seq"] for e in mine] == list(range(1, len(mine) + 1))
    assert mine[0]["type"] == "workflow.started"
    assert mine[-1]["type"] == "workflow.completed"
    assert {(e["type"], e.get("node_id")) for e in mine} >= {
        ("node.started", "a"), ("node.completed", "a"),
        ("node.started", "sub"), ("node.completed", "sub")}
    # The child run's events come too.
    child_events = [e for e in seen if e["run_id"].startswith(r1.run_id + ".")]
    assert ("node.completed", "c1") in {(e["type"], e.get("node_id")) for e in child_events}
    # Only this run's: nothing of the second run reached the first handler.
    assert all(e["run_id"].startswith(r1.run_id) for e in seen)
    assert got_async[0] == "workflow.started" and got_async[-1] == "workflow.completed"


def test_store_records_the_run(tmp_path):
    db = tmp_path / "runs.db"
    wf = ice.Workflow([{"id": "a", "type": "tool", "tool_name": "echo"}], name="stored")
    events = []
    r = wf.run(store=str(db), on_event=events.append)
    with sqlite3.connect(str(db)) as c:
        row = c.execute("select workflow, status from runs where run_id = ?",
                        (r.run_id,)).fetchone()
        n = c.execute("select count(*) from events where run_id = ?",
                      (r.run_id,)).fetchone()[0]
    assert row == ("stored", "completed")
    assert n == len(events) == 4


def test_load_a_file_with_tool_files():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(root, "examples", "bundle", "workflows", "ask.yaml")
    tools = os.path.join(root, "examples", "bundle", "tools.yaml")
    try:
        ice.Workflow.load(path).validate()
    except ice.ValidationError as e:
        assert any("unknown tool 'search_tool'" in d for d in e.diagnostics)
    else:
        raise AssertionError
    wf = ice.Workflow.load(path, tools=[tools])
    r = wf.run({"query": "agents"}, store=False)
    assert r.success, r.errors
    assert wf.name == "ask"  # the file's stem: it has no name
    assert "flowchart" in wf.graph() or "graph" in wf.graph()
