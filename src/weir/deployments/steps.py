"""Pull steps: what runs before a deployment's flow is loaded, on the worker's machine.

A step is a one-key mapping, `{step_name: {argument: value, …}}`, as in
prefect.yaml. Steps run in order, each in the working directory the previous
steps left (`set_working_directory` changes it, `git_clone` moves it into the
clone). Prefect's fully qualified names (`prefect.deployments.steps.git_clone`)
are aliases of ours. `{{ step_id.key }}` templating is not supported: `id` and
`requires` are accepted and ignored.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from weir.exceptions import DeploymentConfigError

_PREFIXES = (
    "prefect.deployments.steps.pull.",
    "prefect.deployments.steps.utility.",
    "prefect.deployments.steps.",
    "weir.deployments.steps.",
)
STDERR_TAIL = 2000


class StepArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, description="accepted for prefect.yaml; not used")
    requires: str | None = Field(default=None, description="accepted for prefect.yaml; not used")


class SetWorkingDirectory(StepArguments):
    directory: str = Field(description="relative to the current working directory")


class GitClone(StepArguments):
    repository: str = Field(description="an https, ssh or local repository URL")
    branch: str | None = None
    access_token: str | None = Field(
        default=None, description="for https repositories: sent as the URL's credentials"
    )
    include_submodules: bool = False


class RunShellScript(StepArguments):
    script: str
    directory: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    expand_env_vars: bool = False
    stream_output: bool = True


@dataclass(frozen=True)
class Step:
    arguments: type[StepArguments]
    run: Callable[[Any, Path], dict[str, Any]]


def step_name(name: str) -> str:
    """Our name of a step given by one of its aliases."""
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def check_step(step: Any) -> dict[str, Any]:
    """A step as written in the file, checked; a ValueError names what is wrong."""
    if not isinstance(step, dict) or len(step) != 1:
        raise ValueError(
            "a pull step is a mapping with one key, the step's name, e.g. "
            "'- git_clone: {repository: https://…}'"
        )
    ((name, arguments),) = step.items()
    parse_step(name, arguments or {})
    return step


def parse_step(name: str, arguments: Any) -> tuple[Step, StepArguments]:
    step = STEPS.get(step_name(str(name)))
    if step is None:
        raise ValueError(f"unknown step {name!r}; use {', '.join(STEPS)}")
    if not isinstance(arguments, Mapping):
        raise ValueError(f"the arguments of {name!r} must be a mapping")
    try:
        return step, step.arguments.model_validate(arguments)
    except ValidationError as exc:
        # an unknown argument first: a misspelt one is also reported missing
        error = min(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        where = ".".join(str(part) for part in error["loc"])
        if error["type"] == "missing":
            raise ValueError(f"{name} needs {where!r}") from None
        if error["type"] == "extra_forbidden":
            known = ", ".join(f for f in step.arguments.model_fields if f not in ("id", "requires"))
            raise ValueError(
                f"{name} has no argument {where!r}; its arguments are {known}"
            ) from None
        raise ValueError(f"{name}.{where}: {error['msg']}") from None


def run_steps(steps: Sequence[Mapping[str, Any]], directory: Path) -> Path:
    """Run the pull steps in order from `directory`; the working directory they leave."""
    for index, step in enumerate(steps):
        ((name, arguments),) = step.items()
        try:
            definition, parsed = parse_step(name, arguments or {})
        except ValueError as exc:
            raise DeploymentConfigError(f"Pull step {index + 1}: {exc}.") from None
        try:
            output = definition.run(parsed, directory)
        except DeploymentConfigError as exc:
            raise DeploymentConfigError(
                f"Pull step {index + 1} ({step_name(name)}): {exc}"
            ) from None
        directory = Path(output.get("directory", directory))
    return directory


def set_working_directory(arguments: SetWorkingDirectory, cwd: Path) -> dict[str, Any]:
    directory = (cwd / arguments.directory).resolve()
    if not directory.is_dir():
        raise DeploymentConfigError(f"the directory {str(directory)!r} does not exist.")
    return {"directory": str(directory)}


def git_clone(arguments: GitClone, cwd: Path) -> dict[str, Any]:
    url = _with_token(arguments.repository, arguments.access_token)
    name = arguments.repository.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git") or "repo"
    target = cwd / (f"{name}-{arguments.branch}" if arguments.branch else name)
    command = ["git", "clone", "--depth", "1"]
    if arguments.branch:
        command += ["--branch", arguments.branch]
    if arguments.include_submodules:
        command += ["--recurse-submodules"]
    if target.exists():  # a worker reusing its directory: start from a fresh clone
        import shutil

        shutil.rmtree(target)
    result = _run([*command, url, str(target)], cwd, stream=False, env=None)
    if result.returncode != 0:
        stderr = result.stderr.replace(url, arguments.repository)
        raise DeploymentConfigError(f"git clone of {arguments.repository} failed: {_tail(stderr)}")
    return {"directory": str(target)}


def run_shell_script(arguments: RunShellScript, cwd: Path) -> dict[str, Any]:
    directory = (cwd / arguments.directory) if arguments.directory else cwd
    env = {**os.environ, **arguments.env}
    script = os.path.expandvars(arguments.script) if arguments.expand_env_vars else arguments.script
    result = _run(["/bin/sh", "-c", script], directory, stream=arguments.stream_output, env=env)
    if result.returncode != 0:
        raise DeploymentConfigError(
            f"the script exited with code {result.returncode}: {_tail(result.stderr)}"
        )
    return {"stdout": result.stdout.strip(), "stderr": result.stderr.strip()}


def _run(
    command: list[str], cwd: Path, *, stream: bool, env: dict[str, str] | None
) -> subprocess.CompletedProcess[str]:
    if not cwd.is_dir():
        raise DeploymentConfigError(f"the directory {str(cwd)!r} does not exist.")
    try:
        result = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError:
        raise DeploymentConfigError(f"{command[0]!r} is not installed on this machine.") from None
    if stream:
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
    return result


def _with_token(repository: str, token: str | None) -> str:
    if not token:
        return repository
    parts = urlsplit(repository)
    if parts.scheme != "https":
        raise DeploymentConfigError("access_token works with https repository URLs only.")
    # GitHub, GitLab and Bitbucket accept a token as the password of any user name
    netloc = f"oauth2:{quote(token, safe='')}@{parts.hostname}" + (
        f":{parts.port}" if parts.port else ""
    )
    return urlunsplit(parts._replace(netloc=netloc))


def _tail(text: str) -> str:
    text = text.strip() or "(no output on stderr)"
    return text if len(text) <= STDERR_TAIL else "…" + text[-STDERR_TAIL:]


STEPS: dict[str, Step] = {
    "set_working_directory": Step(SetWorkingDirectory, set_working_directory),
    "git_clone": Step(GitClone, git_clone),
    "run_shell_script": Step(RunShellScript, run_shell_script),
}


def steps_json_schema() -> dict[str, Any]:
    """The JSON Schema of one pull step (any of the names and aliases)."""
    options = []
    for name, step in STEPS.items():
        arguments = step.arguments.model_json_schema()
        arguments.pop("title", None)
        names = [name, *(prefix + name for prefix in _PREFIXES)]
        options.append(
            {
                "type": "object",
                "minProperties": 1,
                "maxProperties": 1,
                "properties": {alias: arguments for alias in names},
                "additionalProperties": False,
            }
        )
    return {"anyOf": options}
