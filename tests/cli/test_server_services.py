"""`weir server services ls` and `start` as an operator uses them: the list through the
API (table and JSON), a services process that takes every service and releases them on
SIGTERM, and one sentence for a database it cannot use."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.harness import fails, weir, weir_json
from weir.server.services import SERVICES

NAMES = [service.name for service in SERVICES]


def test_ls_lists_every_service(api: str) -> None:
    listed = weir_json("server", "services", "ls")
    assert [service["name"] for service in listed] == NAMES
    assert {service["status"] for service in listed} == {"never ran"}
    assert {service["runs_here"] for service in listed} == {False}

    result = weir("server", "services", "ls")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "STATUS", "EVERY"]
    assert any(line.split()[:4] == ["scheduler", "never", "ran", "10s"] for line in lines)
    assert "This server runs no services itself (--no-services)" in result.stdout


def owners(path: Path) -> dict[str, str | None]:
    """The owner of each service's lease (nothing while the schema is being created)."""
    try:
        with sqlite3.connect(path) as connection:
            return dict(connection.execute("SELECT name, owner FROM services").fetchall())
    except sqlite3.OperationalError:
        return {}


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_start_runs_every_service_and_releases_them_on_sigterm(tmp_path: Path) -> None:
    path = tmp_path / "weir.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEIR_")}
    env.update(WEIR_HOME=str(tmp_path), WEIR_SERVER_DATABASE_URL=f"sqlite+aiosqlite:///{path}")
    process = subprocess.Popen(
        [sys.executable, "-m", "weir", "server", "services", "start"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.communicate()[0].decode()
            found = owners(path)
            if sorted(found) == sorted(NAMES) and all(found.values()):
                break
            assert time.monotonic() < deadline, found
            time.sleep(0.1)
        # the owner is this process: hostname:pid:random
        assert {owner.split(":")[1] for owner in found.values() if owner} == {str(process.pid)}
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=20)[0].decode()
    assert process.returncode == 0, output
    assert "weir services running as" in output
    assert "Traceback" not in output
    assert set(owners(path).values()) == {None}  # released: another process takes over at once


def test_start_on_an_unusable_database_is_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEIR_HOME", str(tmp_path))
    monkeypatch.setenv("WEIR_SERVER_DATABASE_URL", "not a url")
    fails(weir("server", "services", "start"), "is not a URL")
