"""iceOS's executor registry: @register_node("TYPE") is ice.register_node.
The built-in executors (tool, llm, agent, ...) are libice's own."""

from ice import register_node, register_tool  # noqa: F401

__all__ = ["register_node", "register_tool"]
