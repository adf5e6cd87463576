"""iceOS's node models: one config class per node type, from ice.nodes.
Each takes the node's fields as keyword arguments; Workflow.validate()
checks them."""

from ice.nodes import (  # noqa: F401
    AgentNodeConfig,
    CodeNodeConfig,
    ConditionNodeConfig,
    HumanNodeConfig,
    LLMNodeConfig,
    LoopNodeConfig,
    MonitorNodeConfig,
    NodeConfig,
    NodeExecutionResult,
    ParallelNodeConfig,
    RecursiveNodeConfig,
    SwarmNodeConfig,
    ToolNodeConfig,
    WorkflowNodeConfig,
)

__all__ = [
    "AgentNodeConfig",
    "CodeNodeConfig",
    "ConditionNodeConfig",
    "HumanNodeConfig",
    "LLMNodeConfig",
    "LoopNodeConfig",
    "MonitorNodeConfig",
    "NodeConfig",
    "NodeExecutionResult",
    "ParallelNodeConfig",
    "RecursiveNodeConfig",
    "SwarmNodeConfig",
    "ToolNodeConfig",
    "WorkflowNodeConfig",
]
