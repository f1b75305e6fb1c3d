"""CLI tests that need a server get `api`: a real weir API on a fresh SQLite file and
on a fresh PostgreSQL database (so they run on both), with WEIR_API_URL pointing at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.harness import api_server
from tests.server.conftest import database_url  # noqa: F401  (the fixture, for both databases)


@pytest.fixture
def api(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:  # noqa: F811
    with api_server(database_url, tmp_path, monkeypatch) as url:
        yield url
