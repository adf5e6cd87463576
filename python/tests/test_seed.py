"""The two Python snippets of ice_orchestrator's README, as written; the
only change is that the snippet's body is wrapped in `async def main()`
and asyncio.run(main()), since a script cannot await at top level."""

import os
import subprocess
import sys
import textwrap

from conftest import PYDIR

# Verbatim from the seed's README, "Minimal example".
MINIMAL = '''\
from ice_core.models.node_models import ToolNodeConfig
from ice_orchestrator.workflow import Workflow
import ice_orchestrator  # registers executors

nodes = [
    ToolNodeConfig(id="hello", type="tool", tool_name="echo", tool_args={"msg": "hi"})
]
wf = Workflow(nodes, name="demo", version="0.1")
wf.validate()
result = await wf.execute()
print(result.output["hello"])  # → {'msg': 'hi'}
'''

# Verbatim from the seed's README, "Extending with custom node types".
CUSTOM = '''\
from ice_orchestrator.execution.executors import register_node

@register_node("my_node")
async def my_executor(workflow, cfg, ctx):
    ...
'''

# What the test adds after it: a workflow that uses the new type.
CUSTOM_USE = '''\
from ice_orchestrator.workflow import Workflow
wf = Workflow([{"id": "m", "type": "my_node", "anything": {"goes": 1}}], name="custom")
wf.validate()
result = await wf.execute(store=False)
print(result.status, result.nodes["m"]["status"], result.output["m"])
'''


def run_wrapped(code, tmp_path):
    src = "import asyncio\n\nasync def main():\n%s\nasyncio.run(main())\n" % (
        textwrap.indent(code, "    "))
    env = dict(os.environ, PYTHONPATH=PYDIR, ICE_HOME=str(tmp_path / "home"))
    p = subprocess.run([sys.executable, "-c", src], env=env, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_minimal_example_runs_as_written(tmp_path):
    assert run_wrapped(MINIMAL, tmp_path) == "{'msg': 'hi'}\n"
    # execute() with no store= records the run in the default store.
    assert (tmp_path / "home" / "runs.db").exists()


def test_register_node_example_runs_as_written(tmp_path):
    out = run_wrapped(CUSTOM + CUSTOM_USE, tmp_path)
    assert out == "completed completed {}\n"


def test_node_config_classes_cover_every_type():
    from ice_core.models import node_models as m

    types = {
        "ToolNodeConfig": "tool", "LLMNodeConfig": "llm", "AgentNodeConfig": "agent",
        "SwarmNodeConfig": "swarm", "ConditionNodeConfig": "condition",
        "LoopNodeConfig": "loop", "ParallelNodeConfig": "parallel",
        "RecursiveNodeConfig": "recursive", "WorkflowNodeConfig": "workflow",
        "CodeNodeConfig": "code", "HumanNodeConfig": "human",
        "MonitorNodeConfig": "monitor",
    }
    for cls_name, t in types.items():
        c = getattr(m, cls_name)(id="x", extra=1)
        assert c.to_dict() == {"id": "x", "type": t, "extra": 1}
        assert c.type == t and c.extra == 1


def test_config_objects_are_checked_by_validate_not_the_constructor():
    import ice
    from ice_core.models.node_models import LoopNodeConfig, ToolNodeConfig

    nodes = [ToolNodeConfig(id="a", tool_name="echo", bogus=True),
             LoopNodeConfig(id="l", items_source="[1, 2]", body=[
                 ToolNodeConfig(id="inner", tool_name="echo", tool_args={"x": "{{ item }}"})])]
    wf = ice.Workflow(nodes, name="cfg")
    try:
        wf.validate()
    except ice.ValidationError as e:
        assert any("'bogus'" in d for d in e.diagnostics), e.diagnostics
    else:
        raise AssertionError("an unknown field must fail validation")
    del nodes[0].bogus
    wf.validate()
    r = wf.run(store=False)
    assert r.success, r.errors
