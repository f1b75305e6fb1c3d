"""Prometheus metrics of the server (`GET /metrics`)."""

from weir.server.metrics.registry import observe_service_pass

__all__ = ["observe_service_pass"]
