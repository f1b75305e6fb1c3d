"""Helpers for tests that need a real service (PostgreSQL, Redis).

Outside CI such a test skips when the service is not running; with CI=true it
fails instead, because CI must provide every service the suite uses.
"""

from __future__ import annotations

import os
import socket

import pytest


def service_available(host: str, port: int) -> bool:
    """Whether something accepts TCP connections at host:port within half a second."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip the calling test when `name` is not reachable at host:port; fail instead in CI."""
    if service_available(host, port):
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} at {host}:{port} is not reachable and CI=true: CI must have it")
    pytest.skip(f"{name} at {host}:{port} is not reachable")
