from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.services import require_service, service_available


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    # Bound and released without listening: nothing accepts connections on it.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_listening_port_is_available(listening_port: int) -> None:
    assert service_available("127.0.0.1", listening_port)


def test_a_closed_port_is_not_available(closed_port: int) -> None:
    assert not service_available("127.0.0.1", closed_port)


def test_require_service_returns_when_the_service_listens(listening_port: int) -> None:
    require_service("Thing", "127.0.0.1", listening_port)


def test_require_service_skips_a_missing_service_outside_ci(
    closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"Thing at 127\.0\.0\.1"):
        require_service("Thing", "127.0.0.1", closed_port)


def test_require_service_fails_a_missing_service_in_ci(
    closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must have it"):
        require_service("Thing", "127.0.0.1", closed_port)
