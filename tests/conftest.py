"""Fixtures every test gets: a fresh, empty weir home and no WEIR_* settings from the shell."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


def _reset_settings() -> None:
    # weir.settings caches the settings object; drop it so each test reads its own env.
    try:
        from weir.settings import reset_settings
    except ImportError:  # also covers a settings module without reset_settings
        return
    reset_settings()


@pytest.fixture(autouse=True)
def weir_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Point WEIR_HOME at a new temporary directory and unset every other WEIR_* variable."""
    for name in list(os.environ):
        if name.startswith("WEIR_"):
            monkeypatch.delenv(name)
    home = tmp_path_factory.mktemp("weir-home")
    monkeypatch.setenv("WEIR_HOME", str(home))
    _reset_settings()
    yield home
    _reset_settings()


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, so no stray `.env` is read (and a test may write one).
    Modules that read settings use it on every test: `pytestmark = usefixtures("cwd")`."""
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return workdir
