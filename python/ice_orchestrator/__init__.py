"""iceOS's ice_orchestrator on the ice engine (SPEC §13).

Importing it is enough to register the executors: every node type of
SPEC §2 is built into libice. Workflow, register_node and register_tool
are the ice package's."""

from ice import (  # noqa: F401
    Result,
    ValidationError,
    Workflow,
    register_node,
    register_tool,
)

__all__ = ["Result", "ValidationError", "Workflow", "register_node", "register_tool"]
