"""How every CLI command talks to people: errors on stderr, JSON on stdout, confirmations.

A command that cannot go on calls `exit_with_error` with one sentence naming the
problem and what to do; the user sees that sentence and a non-zero exit code,
never a traceback.
"""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn


def exit_with_error(message: str, code: int = 1) -> NoReturn:
    """Print `message` to stderr (red on a terminal) and exit with `code`."""
    if sys.stderr.isatty():
        from rich.console import Console  # ~25 ms: only for a person at a terminal

        Console(stderr=True, highlight=False).print(message, style="red", markup=False)
    else:
        print(message, file=sys.stderr)
    raise SystemExit(code)


def print_json(obj: Any) -> None:
    """Write `obj` to stdout as indented JSON, for a command's `--json` output."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def stdin_is_interactive() -> bool:
    """Whether a person can answer a prompt: stdin is a terminal."""
    return sys.stdin is not None and sys.stdin.isatty()


def confirm(question: str, *, assume_yes: bool = False) -> bool:
    """Ask `question`; `assume_yes` (a `--yes` flag) answers it without asking.

    With no terminal to ask on (CI, pipes, cron) it never waits for input: it
    exits with an error telling the user to pass `--yes`.
    """
    if assume_yes:
        return True
    if not stdin_is_interactive():
        exit_with_error(f"{question} Cannot ask without a terminal: pass --yes to confirm.")
    from rich.console import Console

    return Console().input(f"{question} [y/N] ").strip().lower() in {"y", "yes"}
