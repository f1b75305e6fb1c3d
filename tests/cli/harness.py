"""Running `weir` commands in the test process against a real weir server.

`weir(*args)` invokes the `weir` console script's entry point (`weir.cli.main:main`,
so API errors go through its one-sentence handler) with stdin that is not a
terminal, and returns click's `Result` (exit code, stdout and stderr apart).
`api_server(database_url, home)` serves the API with uvicorn in a daemon thread
and points WEIR_API_URL at it.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner, Result

from tests.servers import serve
from weir.settings import reset_settings


class _ConsoleScript:
    """`weir.cli.main:main` with the `.name` and `.main(args=…)` CliRunner calls."""

    name = "weir"

    def main(self, args: list[str], prog_name: str, **_: Any) -> None:
        from weir.cli.main import main

        saved = sys.argv
        sys.argv = [prog_name, *args]
        try:
            main()
        finally:
            sys.argv = saved


def weir(*args: str, input: str | None = None) -> Result:
    """Run `weir ARGS…` as a user would type it."""
    reset_settings()
    return CliRunner().invoke(_ConsoleScript(), list(args), input=input)  # type: ignore[arg-type]


def weir_json(*args: str) -> Any:
    """Run a command with `--json` that must succeed, and parse its output."""
    result = weir(*args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def fails(result: Result, sentence: str) -> None:
    """The command failed as a person should see it: exit 1, the sentence, no traceback."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert sentence in result.stderr, result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@contextlib.contextmanager
def api_server(database_url: str, home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A weir API on `database_url` (no background services); yields its URL, which
    WEIR_API_URL names for the commands run meanwhile."""
    from weir.server.app import create_app
    from weir.settings import Settings

    settings = Settings(home=home, server={"database_url": database_url})
    server, url = serve(create_app(settings, services=False))
    monkeypatch.setenv("WEIR_API_URL", url)
    reset_settings()
    try:
        yield url
    finally:
        server.should_exit = True
        _wait_closed(url)


def _wait_closed(url: str, timeout: float = 10) -> None:
    parts = urlsplit(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex((parts.hostname or "127.0.0.1", parts.port or 80)) != 0:
                return
        time.sleep(0.02)
