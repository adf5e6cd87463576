"""Node config classes: one per node type of SPEC §2 (iceOS's
ice_core.models.node_models). Each takes the node's fields as keyword
arguments and keeps them as written; validate() checks them, not the
constructor. `type` defaults to the class's type."""


class NodeConfig:
    """A node of any type (a custom one included): NodeConfig(id=...,
    type=..., **fields)."""

    node_type = None

    def __init__(self, **fields):
        if self.node_type is not None and "type" not in fields:
            ordered = {}
            if "id" in fields:
                ordered["id"] = fields.pop("id")
            ordered["type"] = self.node_type
            ordered.update(fields)
            fields = ordered
        object.__setattr__(self, "_fields", fields)

    def __getattr__(self, name):
        try:
            return self.__dict__["_fields"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self._fields[name] = value

    def __delattr__(self, name):
        try:
            del self._fields[name]
        except KeyError:
            raise AttributeError(name) from None

    def to_dict(self):
        """The node object as a workflow file holds it."""
        return dict(self._fields)

    def model_dump(self, **_):
        """pydantic's name for to_dict(), as iceOS code calls it."""
        return self.to_dict()

    dict = model_dump

    def __eq__(self, other):
        return type(other) is type(self) and other._fields == self._fields

    __hash__ = None

    def __repr__(self):
        args = ", ".join("%s=%r" % kv for kv in self._fields.items())
        return "%s(%s)" % (type(self).__name__, args)


def _config(cls_name, type_name):
    return type(cls_name, (NodeConfig,), {
        "node_type": type_name,
        "__doc__": "A `%s` node (SPEC §2): its fields as keyword arguments." % type_name,
        "__module__": __name__,
    })


ToolNodeConfig = _config("ToolNodeConfig", "tool")
LLMNodeConfig = _config("LLMNodeConfig", "llm")
AgentNodeConfig = _config("AgentNodeConfig", "agent")
SwarmNodeConfig = _config("SwarmNodeConfig", "swarm")
ConditionNodeConfig = _config("ConditionNodeConfig", "condition")
LoopNodeConfig = _config("LoopNodeConfig", "loop")
ParallelNodeConfig = _config("ParallelNodeConfig", "parallel")
RecursiveNodeConfig = _config("RecursiveNodeConfig", "recursive")
WorkflowNodeConfig = _config("WorkflowNodeConfig", "workflow")
CodeNodeConfig = _config("CodeNodeConfig", "code")
HumanNodeConfig = _config("HumanNodeConfig", "human")
MonitorNodeConfig = _config("MonitorNodeConfig", "monitor")

CONFIGS = {
    c.node_type: c
    for c in (ToolNodeConfig, LLMNodeConfig, AgentNodeConfig, SwarmNodeConfig,
              ConditionNodeConfig, LoopNodeConfig, ParallelNodeConfig,
              RecursiveNodeConfig, WorkflowNodeConfig, CodeNodeConfig,
              HumanNodeConfig, MonitorNodeConfig)
}


class NodeExecutionResult:
    """What an iceOS executor may return: `success` false fails the
    attempt with kind tool_error and `error` as its message."""

    def __init__(self, success=True, output=None, error=None, metadata=None, **extra):
        self.success = success
        self.output = output
        self.error = error
        self.metadata = metadata
        for k, v in extra.items():
            setattr(self, k, v)

    def __repr__(self):
        return "NodeExecutionResult(success=%r, output=%r, error=%r)" % (
            self.success, self.output, self.error)
