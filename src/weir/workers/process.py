"""The `process` infrastructure: each claimed run in a subprocess on this machine.

The child runs `python -m weir.deployments.execute <flow-run-id>` (or the job's
`command`) with the job's `env` over the worker's environment and API settings, in
the job's `working_dir`. It is the leader of its own process group, so a kill
reaches whatever it started, and (on Linux) it gets SIGKILL when the worker dies
(`PR_SET_PDEATHSIG`), so no run outlives its worker unwatched. Its output is read
line by line by a thread and handed to the worker's callback.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from weir.core.schemas.work_pools import ClaimedRun
    from weir.workers.infrastructure import OnOutput

_PR_SET_PDEATHSIG = 1
# how long, after the process ended, its output reader may take to finish
_READER_JOIN_SECONDS = 5.0


@dataclass
class ProcessHandle:
    process: subprocess.Popen[bytes]
    readers: list[threading.Thread] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid


def default_command(flow_run_id: object) -> list[str]:
    return [sys.executable, "-m", "weir.deployments.execute", str(flow_run_id)]


class ProcessInfrastructure:
    def __init__(self, environment: Mapping[str, str] | None = None) -> None:
        self.environment = dict(environment or {})

    def start(self, claimed: ClaimedRun, on_output: OnOutput) -> ProcessHandle:
        config = claimed.job_configuration
        stream = config.get("stream_output", True) is not False
        process = subprocess.Popen(
            self.command(claimed),
            env=self.env(config.get("env")),
            cwd=config.get("working_dir") or None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stream else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if stream else subprocess.DEVNULL,
            preexec_fn=_die_with_parent(os.getpid()),
            process_group=0,
        )
        handle = ProcessHandle(process)
        if process.stdout is not None:
            reader = threading.Thread(
                target=_read_lines,
                args=(process.stdout, on_output),
                name=f"weir-output-{process.pid}",
                daemon=True,
            )
            reader.start()
            handle.readers.append(reader)
        return handle

    def command(self, claimed: ClaimedRun) -> list[str]:
        """The job's `command` (a string, split like a shell would, or a list) or the default."""
        command = claimed.job_configuration.get("command")
        if isinstance(command, str) and command.strip():
            return shlex.split(command)
        if isinstance(command, list) and command:
            return [str(part) for part in command]
        return default_command(claimed.flow_run.id)

    def env(self, job_env: Any) -> dict[str, str]:
        """os.environ, then the worker's API settings, then the job's `env` (None unsets)."""
        env = {**os.environ, **self.environment}
        for name, value in (job_env or {}).items():
            if value is None:
                env.pop(name, None)
            else:
                env[str(name)] = str(value)
        return env

    def poll(self, handle: ProcessHandle) -> int | None:
        return handle.process.poll()

    def wait(self, handle: ProcessHandle, timeout: float | None = None) -> int | None:
        try:
            code = handle.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        for reader in handle.readers:  # so every line is handed over before we answer
            reader.join(_READER_JOIN_SECONDS)
        return code

    def kill(self, handle: ProcessHandle, grace: float) -> None:
        """SIGTERM to the process group; SIGKILL to it after `grace` seconds."""
        pgid = handle.pid  # it leads its own group (process_group=0)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            handle.process.wait(grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        handle.process.wait()


def _read_lines(stream: IO[bytes], on_output: OnOutput) -> None:
    with stream:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            try:
                on_output(line)
            except Exception:  # a failing callback must not stop the reading (the pipe fills)
                pass


def _die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGKILL the child when the worker dies."""
    if not sys.platform.startswith("linux"):
        return None

    def preexec() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the worker died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec
