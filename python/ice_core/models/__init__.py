"""iceOS's ice_core.models: the node config classes and
NodeExecutionResult, from the ice package."""

from ice.nodes import (
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
