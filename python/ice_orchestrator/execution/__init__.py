"""iceOS's ice_orchestrator.execution, on the ice engine."""
