"""iceOS's ice_core, as far as code written for ice_orchestrator needs it:
the node config classes (ice_core.models.node_models), on the ice engine."""
