"""iceOS's ice_orchestrator.workflow: Workflow is ice.Workflow."""

from ice import Result, ValidationError, Workflow  # noqa: F401

__all__ = ["Result", "ValidationError", "Workflow"]
