"""How CLI commands report errors, JSON and confirmations when nobody is at a terminal."""

from __future__ import annotations

import io
import json

import pytest

from weir.cli.output import confirm, exit_with_error, print_json


def test_exit_with_error_prints_the_sentence_to_stderr_and_exits(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exc_info:
        exit_with_error(
            "Work pool 'gpu' does not exist: create it with `weir work-pool create`.", 3
        )
    assert exc_info.value.code == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "Work pool 'gpu' does not exist: create it with `weir work-pool create`.\n"
    )


def test_print_json_writes_parseable_json(capsys: pytest.CaptureFixture[str]) -> None:
    print_json({"name": "etl", "tags": ["a"]})
    assert json.loads(capsys.readouterr().out) == {"name": "etl", "tags": ["a"]}


def test_confirm_never_prompts_without_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    with pytest.raises(SystemExit) as exc_info:
        confirm("Delete 3 flow runs?")
    assert exc_info.value.code == 1
    assert "pass --yes" in capsys.readouterr().err


def test_confirm_with_assume_yes_does_not_ask(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert confirm("Delete 3 flow runs?", assume_yes=True)
