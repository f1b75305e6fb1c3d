"""Test helpers shipped to users: a fake clock (and, later, a temporary server).

Names are loaded on first use so `import weir.testing` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from weir.testing.clock import FakeClock, fake_clock
    from weir.testing.server import TemporaryServer, temporary_server

__all__ = ["FakeClock", "TemporaryServer", "fake_clock", "temporary_server"]

_WHERE = {
    "FakeClock": "weir.testing.clock",
    "fake_clock": "weir.testing.clock",
    "TemporaryServer": "weir.testing.server",
    "temporary_server": "weir.testing.server",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'weir.testing' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_WHERE[name]), name)


def __dir__() -> list[str]:
    return list(__all__)
