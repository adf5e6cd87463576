"""ice: the Python binding of the ice workflow engine (SPEC §13).

A pure-Python package over libice (ctypes). Workflows run on the asyncio
loop of the calling thread, with Python executors and tools beside the
engine's own work, on that one thread:

    import asyncio, ice

    @ice.register_tool("shout")
    async def shout(text):
        return {"text": text.upper()}

    wf = ice.Workflow([{"id": "a", "type": "tool", "tool_name": "shout",
                        "tool_args": {"text": "hi"}}], name="demo")
    result = asyncio.run(wf.execute(store=False))
    print(result.output["a"])   # {'text': 'HI'}

See docs/python.md.
"""

from ._engine import (  # noqa: F401
    Config,
    IceError,
    ValidationError,
    register_node,
    register_tool,
)
from ._lib import path as library_path  # noqa: F401
from .workflow import Result, Workflow  # noqa: F401

__version__ = "0.1.0"

__all__ = [
    "Config",
    "IceError",
    "Result",
    "ValidationError",
    "Workflow",
    "library_path",
    "register_node",
    "register_tool",
]
