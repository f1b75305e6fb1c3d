"""`weir server database ...` as an operator uses it: upgrade, revision, downgrade and
reset (which ask first), and one-sentence errors for a bad or unreachable database."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.server.conftest import fresh_postgres_database
from weir.cli.server_database import database_app
from weir.server.db.migrate import HEAD
from weir.settings import reset_settings

INVOKE_APP = "from weir.cli.server_database import database_app; database_app()"


@pytest.fixture
def sqlite_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "server.db"
    monkeypatch.setenv("WEIR_SERVER_DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def postgres_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with fresh_postgres_database() as url:
        monkeypatch.setenv("WEIR_SERVER_DATABASE_URL", url)
        yield url


def weir(*args: str, input: str | None = None) -> Result:
    reset_settings()
    return CliRunner().invoke(database_app, list(args), input=input)


def project_names(path: Path) -> list[str]:
    with sqlite3.connect(path) as connection:
        return [name for (name,) in connection.execute("SELECT name FROM projects ORDER BY name")]


def assert_one_sentence_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


def test_upgrade_then_revision(sqlite_path: Path) -> None:
    assert weir("revision").stdout == "none (the database has no weir schema)\n"
    result = weir("upgrade")
    assert result.exit_code == 0, result.output
    assert (
        result.stdout
        == f"Upgraded the database at sqlite+aiosqlite:///{sqlite_path} to revision {HEAD} (head).\n"
    )
    assert project_names(sqlite_path) == ["default"]
    assert weir("revision").stdout == f"{HEAD} (head)\n"


def test_downgrade_without_a_terminal_needs_yes(sqlite_path: Path) -> None:
    weir("upgrade")
    assert_one_sentence_error(weir("downgrade"), "pass --yes")
    assert weir("revision").stdout == f"{HEAD} (head)\n"
    result = weir("downgrade", "--yes")  # one step down
    assert result.exit_code == 0, result.output
    previous = f"{int(HEAD) - 1:04d}"
    assert f"to revision {previous}" in result.stdout
    assert weir("revision").stdout.startswith(previous)


def test_downgrade_asks_on_a_terminal(sqlite_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weir("upgrade")
    monkeypatch.setattr("weir.cli.output.stdin_is_interactive", lambda: True)
    declined = weir("downgrade", "--revision", "base", input="n\n")
    assert declined.exit_code == 1
    assert "Nothing changed." in declined.stderr
    assert weir("revision").stdout == f"{HEAD} (head)\n"
    accepted = weir("downgrade", "--revision", "base", input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert weir("revision").stdout == "none (the database has no weir schema)\n"


def test_reset_deletes_all_data(sqlite_path: Path) -> None:
    weir("upgrade")
    with sqlite3.connect(sqlite_path) as connection:
        connection.execute(
            "INSERT INTO projects (id, name, created) VALUES (?, 'etl', '2026-01-01 00:00:00')",
            (uuid.uuid4().hex,),
        )
    assert project_names(sqlite_path) == ["default", "etl"]
    assert_one_sentence_error(weir("reset"), "pass --yes")
    assert project_names(sqlite_path) == ["default", "etl"]
    result = weir("reset", "--yes")
    assert result.exit_code == 0, result.output
    assert project_names(sqlite_path) == ["default"]


def test_an_unknown_revision_is_one_sentence(sqlite_path: Path) -> None:
    assert_one_sentence_error(weir("upgrade", "--revision", "nope"), "'nope'")
    assert_one_sentence_error(weir("downgrade", "--yes"), "Cannot downgrade")


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("not a url", "is not a URL"),
        ("sqlite:///x.db", "cannot be used"),
        ("mysql+nodriver://h/db", "cannot be used"),
        ("postgresql+asyncpg://postgres:s3cret@127.0.0.1:9/weir", "Cannot use the database"),
    ],
)
def test_a_bad_or_unreachable_database_is_one_sentence(
    url: str, fragment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEIR_SERVER_DATABASE_URL", url)
    result = weir("revision")
    assert_one_sentence_error(result, fragment)
    assert "s3cret" not in result.stderr


def test_postgres_upgrade_and_revision(postgres_url: str) -> None:
    result = weir("upgrade")
    assert result.exit_code == 0, result.output
    assert f"to revision {HEAD} (head)" in result.stdout
    assert weir("revision").stdout == f"{HEAD} (head)\n"
    assert weir("reset", "--yes").exit_code == 0
    assert weir("downgrade", "--yes", "--revision", "base").exit_code == 0
    assert weir("revision").stdout == "none (the database has no weir schema)\n"


def test_as_a_separate_process(sqlite_path: Path) -> None:
    env = {**os.environ, "WEIR_SERVER_DATABASE_URL": f"sqlite+aiosqlite:///{sqlite_path}"}
    upgraded = subprocess.run(
        [sys.executable, "-c", INVOKE_APP, "upgrade"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert upgraded.returncode == 0, upgraded.stderr
    assert project_names(sqlite_path) == ["default"]
    env["WEIR_SERVER_DATABASE_URL"] = "postgresql+asyncpg://postgres@127.0.0.1:9/weir"
    unreachable = subprocess.run(
        [sys.executable, "-c", INVOKE_APP, "revision"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert unreachable.returncode == 1
    assert unreachable.stderr.startswith("Cannot use the database at postgresql+asyncpg://")
    assert len(unreachable.stderr.strip().splitlines()) == 1, unreachable.stderr
