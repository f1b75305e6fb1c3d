"""Pull steps, run for real: a `git clone` of a repository made in tmp_path, shell
scripts, working directories, and the errors a user sees."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from weir.deployments.steps import run_steps
from weir.exceptions import DeploymentConfigError


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd, check=True, capture_output=True,
    )  # fmt: skip


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    origin = tmp_path / "origin" / "finance.git"
    origin.mkdir(parents=True)
    _git(origin, "init", "-q", "-b", "main")
    (origin / "flows.py").write_text("VERSION = 'main'\n")
    _git(origin, "add", ".")
    _git(origin, "commit", "-q", "-m", "first")
    _git(origin, "checkout", "-q", "-b", "release")
    (origin / "flows.py").write_text("VERSION = 'release'\n")
    _git(origin, "commit", "-q", "-am", "release")
    _git(origin, "checkout", "-q", "main")
    return origin


def test_git_clone_then_the_next_steps_run_inside_the_clone(
    repository: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    steps = [
        {"prefect.deployments.steps.git_clone": {"id": "clone", "repository": f"file://{repository}"}},
        {"run_shell_script": {"script": "cat flows.py > seen.txt && echo $GREETING >> seen.txt", "env": {"GREETING": "hello"}}},
    ]  # fmt: skip
    directory = run_steps(steps, work)
    assert directory == work / "finance"
    assert (directory / "seen.txt").read_text() == "VERSION = 'main'\nhello\n"


def test_git_clone_of_a_branch_and_again_into_the_same_directory(
    repository: Path, tmp_path: Path
) -> None:
    step = {"git_clone": {"repository": f"file://{repository}", "branch": "release"}}
    for _ in range(2):  # a worker reusing its directory gets a fresh clone
        directory = run_steps([step], tmp_path)
        assert directory == tmp_path / "finance-release"
        assert (directory / "flows.py").read_text() == "VERSION = 'release'\n"


def test_a_failed_clone_names_the_repository_and_git_s_reason(tmp_path: Path) -> None:
    step = {"git_clone": {"repository": f"file://{tmp_path}/missing.git"}}
    with pytest.raises(DeploymentConfigError) as caught:
        run_steps([step], tmp_path)
    message = str(caught.value)
    assert message.startswith(
        f"Pull step 1 (git_clone): git clone of file://{tmp_path}/missing.git failed: "
    )
    assert "does not appear to be a git repository" in message or "not found" in message.lower()


def test_an_access_token_goes_into_https_urls_only_and_never_into_messages(
    tmp_path: Path,
) -> None:
    with pytest.raises(DeploymentConfigError, match="access_token works with https"):
        run_steps(
            [{"git_clone": {"repository": "git@github.com:a/b.git", "access_token": "s3"}}],
            tmp_path,
        )
    step = {"git_clone": {"repository": "https://127.0.0.1:9/a/b.git", "access_token": "s3cr3t"}}
    with pytest.raises(DeploymentConfigError) as caught:
        run_steps([step], tmp_path)
    assert "s3cr3t" not in str(caught.value)
    assert "https://127.0.0.1:9/a/b.git" in str(caught.value)


def test_set_working_directory_changes_where_the_next_steps_run(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    steps = [
        {"set_working_directory": {"directory": "sub"}},
        {"prefect.deployments.steps.utility.run_shell_script": {"script": "pwd > here.txt"}},
    ]
    assert run_steps(steps, tmp_path) == tmp_path / "sub"
    assert (tmp_path / "sub" / "here.txt").read_text().strip() == str(tmp_path / "sub")
    with pytest.raises(DeploymentConfigError, match=r"Pull step 1 .*does not exist"):
        run_steps([{"set_working_directory": {"directory": "nope"}}], tmp_path)


def test_a_failing_script_is_an_error_with_its_stderr_tail(tmp_path: Path) -> None:
    step = {
        "run_shell_script": {"script": "echo starting; echo 'pip: no such package' >&2; exit 3"}
    }
    with pytest.raises(DeploymentConfigError) as caught:
        run_steps([{"set_working_directory": {"directory": "."}}, step], tmp_path)
    assert str(caught.value) == (
        "Pull step 2 (run_shell_script): the script exited with code 3: pip: no such package"
    )


def test_unknown_steps_and_arguments_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DeploymentConfigError, match="Pull step 1: unknown step 'docker_pull'"):
        run_steps([{"docker_pull": {}}], tmp_path)
    with pytest.raises(
        DeploymentConfigError,
        match="git_clone has no argument 'repo'; its arguments are repository",
    ):
        run_steps([{"git_clone": {"repo": "x"}}], tmp_path)
