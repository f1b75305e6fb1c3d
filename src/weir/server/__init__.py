"""The weir server: REST API, orchestration of flow-run state, storage, services."""
