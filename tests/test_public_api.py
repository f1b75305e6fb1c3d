"""The public surface of `weir` is curated and pinned; importing it does no work."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import weir

PINNED = [
    "Flow",
    "ProcessPoolTaskRunner",
    "State",
    "Task",
    "ThreadPoolTaskRunner",
    "WeirFuture",
    "__version__",
    "allow_failure",
    "as_completed",
    "concurrency",
    "exponential_backoff",
    "flow",
    "get_run_context",
    "get_run_logger",
    "quote",
    "runtime",
    "serve",
    "tags",
    "task",
    "unmapped",
    "wait",
]


def test_all_is_pinned_and_sorted() -> None:
    assert weir.__all__ == PINNED
    assert weir.__all__ == sorted(weir.__all__)


@pytest.mark.parametrize("name", PINNED)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(weir, name) is not None
    assert name in dir(weir)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'flows'"):
        weir.flows  # noqa: B018


def test_prefect_style_modules() -> None:
    from weir.cache_policies import DEFAULT, INPUTS, NO_CACHE, TASK_SOURCE  # noqa: F401
    from weir.states import Cached, Completed, Failed  # noqa: F401
    from weir.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner  # noqa: F401


def _modules_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nimport json; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_import_weir_loads_nothing_heavy() -> None:
    loaded = _modules_after("import weir")
    heavy = {"pydantic", "pydantic_settings", "cloudpickle", "fsspec", "asyncio", "weir.settings"}
    assert not heavy & loaded
    assert not {m for m in loaded if m.startswith("weir.engine")}


def test_importing_the_decorators_stays_light() -> None:
    loaded = _modules_after("from weir import flow, task")
    assert not {"pydantic", "pydantic_settings", "cloudpickle", "fsspec", "weir.settings"} & loaded


def test_the_cli_imports_only_the_noun_it_runs() -> None:
    # `weir deployment run` is how users trigger a run from the shell: it must not pay for
    # the server, the workers or the other nouns' commands.
    script = (
        "from weir.cli.main import app\n"
        "from typer.testing import CliRunner\n"
        "CliRunner().invoke(app, ['deployment', '--help'])"
    )
    loaded = _modules_after(script)
    assert "weir.cli.deployment" in loaded
    nouns = {"weir.cli.server", "weir.cli.worker", "weir.cli.work_pool", "weir.cli.flow_run"}
    assert not nouns & loaded
    assert not {m for m in loaded if m.startswith(("weir.server", "sqlalchemy", "uvicorn"))}


def test_importing_the_client_package_imports_nothing_more() -> None:
    # each name is imported on first use, so the stdlib client (`weir.client.lite`) that
    # `weir deployment run` uses never pays for httpx or pydantic
    loaded = _modules_after("import weir.client")
    assert not {"httpx", "pydantic"} & loaded


def test_the_client_does_not_import_httpx_command_line_tool() -> None:
    loaded = _modules_after("from weir.client import WeirClient")
    assert "httpx" in loaded
    assert not {"pygments", "rich", "click"} & loaded


def test_parsing_a_command_line_does_not_build_pydantic_validators() -> None:
    # typer 0.29 builds a pydantic TypeAdapter per parameter as it parses (~140 ms of
    # every command's start on a 2-core machine): pyproject keeps typer below it
    script = (
        "from weir.cli.main import app\n"
        "from typer.testing import CliRunner\n"
        "CliRunner().invoke(app, ['deployment', 'run', '--help'])"
    )
    assert "pydantic" not in _modules_after(script)
