"""Entrypoints in both forms, and the errors for each way one can be wrong."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from weir.deployments.entrypoints import entrypoint_for, load_flow
from weir.engine.flows import Flow
from weir.exceptions import DeploymentConfigError

FLOWS = """\
from weir import flow
from helpers import double  # a sibling module: the file's directory is on sys.path

@flow(name="etl")
def etl(n: int = 1) -> int:
    return double(n)

def plain(n: int) -> int:
    return n
"""


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "pipeline.py").write_text(FLOWS)
    (tmp_path / "flows" / "helpers.py").write_text("def double(n):\n    return 2 * n\n")
    package = tmp_path / "acme_pkg_for_tests"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "jobs.py").write_text(FLOWS.replace("from helpers import double", "double = abs"))
    (tmp_path / "broken.py").write_text("import no_such_module_anywhere\n")
    saved = list(sys.path), set(sys.modules)
    yield tmp_path
    sys.path[:] = saved[0]
    for name in set(sys.modules) - saved[1]:
        del sys.modules[name]


def test_a_file_entrypoint_relative_to_the_root(project: Path) -> None:
    flow = load_flow("flows/pipeline.py:etl", project)
    assert isinstance(flow, Flow)
    assert flow.name == "etl"
    assert flow(n=4) == 8


def test_a_module_entrypoint_importable_from_the_root(project: Path) -> None:
    flow = load_flow("acme_pkg_for_tests.jobs:etl", project)
    assert flow.name == "etl"
    assert flow.fn.__module__ == "acme_pkg_for_tests.jobs"


@pytest.mark.parametrize(
    ("entrypoint", "message"),
    [
        ("flows/pipeline.py", "must look like 'path/to/file.py:function'"),
        ("flows/missing.py:etl", "there is no file"),
        ("flows/pipeline.py:nope", "flows/pipeline.py has no attribute 'nope'."),
        ("flows/pipeline.py:plain", "'plain' in flows/pipeline.py is a function, not a flow; decorate it with @flow."),
        ("broken.py:etl", "importing broken.py failed: ModuleNotFoundError: No module named 'no_such_module_anywhere'."),
        ("acme_pkg_for_tests.missing:etl", "no module named 'acme_pkg_for_tests.missing' importable from"),
        ("acme_pkg_for_tests.jobs:nope", "module acme_pkg_for_tests.jobs has no attribute 'nope'."),
    ],
)  # fmt: skip
def test_bad_entrypoints_are_one_clear_sentence(
    project: Path, entrypoint: str, message: str
) -> None:
    with pytest.raises(DeploymentConfigError) as caught:
        load_flow(entrypoint, project)
    assert str(caught.value).startswith(f"Entrypoint {entrypoint!r}")
    assert message in str(caught.value)


def test_entrypoint_for_a_flow_is_its_file_relative_to_cwd(project: Path) -> None:
    flow = load_flow("flows/pipeline.py:etl", project)
    assert entrypoint_for(flow, project) == "flows/pipeline.py:etl"
    assert entrypoint_for(flow, project / "flows") == "pipeline.py:etl"
    # outside cwd, a flow of an importable module is named by its module
    packaged = load_flow("acme_pkg_for_tests.jobs:etl", project)
    assert entrypoint_for(packaged, project / "flows") == "acme_pkg_for_tests.jobs:etl"
