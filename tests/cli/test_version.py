"""`weir --version`, `weir version` and a mistyped command, run as a user runs them."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

WEIR = Path(sys.executable).parent / "weir"


def run_weir(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    # cwd is a temporary directory so that a developer's .env cannot leak in.
    return subprocess.run(
        [str(WEIR), *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
        check=False,
    )


def test_version_flag_prints_the_installed_version(tmp_path: Path) -> None:
    result = run_weir("--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"weir {metadata.version('weir')}"


def test_version_command_names_weir_python_and_platform(tmp_path: Path) -> None:
    result = run_weir("version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"Version:  {metadata.version('weir')}" in result.stdout
    assert f"Python:   {platform.python_version()}" in result.stdout
    assert "Platform: " in result.stdout
    assert "API URL:  none" in result.stdout


def test_version_command_prints_json(tmp_path: Path) -> None:
    result = run_weir("version", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    details = json.loads(result.stdout)
    assert details["version"] == metadata.version("weir")
    assert details["python"] == platform.python_version()
    assert details["api_url"] is None


def test_an_unknown_command_is_a_short_usage_error(tmp_path: Path) -> None:
    result = run_weir("nosuchcommand", cwd=tmp_path)
    assert result.returncode == 2
    assert "No such command 'nosuchcommand'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.splitlines()) < 10


def test_version_command_shows_the_configured_api_url(tmp_path: Path) -> None:
    result = run_weir("version", cwd=tmp_path, env={"WEIR_API_URL": "http://127.0.0.1:4200/api"})
    assert result.returncode == 0, result.stderr
    assert "API URL:  http://127.0.0.1:4200/api" in result.stdout


def test_a_bad_setting_is_one_sentence_without_a_traceback(tmp_path: Path) -> None:
    result = run_weir("version", cwd=tmp_path, env={"WEIR_LOGGING_LEVEL": "loudest"})
    assert result.returncode == 1
    assert result.stderr.startswith("WEIR_LOGGING_LEVEL")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr + result.stdout
