"""The `process` infrastructure: each claimed run in a subprocess on this machine.

The child runs `python -m weir.deployments.execute <flow-run-id>` (or the job's
`command`) with the job's `env` over the worker's environment and API settings, in
the job's `working_dir`. It is the leader of its own process group, so a kill
reaches whatever it started, and (on Linux) it gets SIGKILL when the worker dies
(`PR_SET_PDEATHSIG`), so no run outlives its worker unwatched. Its output is read
line by line by a thread and handed to the worker's callback.

On Linux a run with the default command is not a new interpreter but a fork of the
worker's fork server (workers/forkserver.py), which has the imports done already;
`settings.worker.fork_server` (WEIR_WORKER_FORK_SERVER) turns that off. A job
`command`, an environment that changes what the interpreter reads at start-up
(PYTHON*, LD_*, the locale), or a fork server that keeps failing starts the run
with `subprocess.Popen` as before. Either way the handle is a pid leading its own
process group and an exit status the worker reads itself (workers/reaping.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from weir.workers import reaping
from weir.workers.forkserver import ForkServer, ForkServerUnavailable

if TYPE_CHECKING:
    from weir.core.schemas.work_pools import ClaimedRun
    from weir.workers.infrastructure import OnOutput
    from weir.workers.reaping import ExitStatus

PR_SET_PDEATHSIG = 1
# how long, after the process ended, its output reader may take to finish
_READER_JOIN_SECONDS = 5.0
# a run's environment differing from the fork server's in one of these starts a new
# interpreter instead (PATH, TZ and the rest are fine: the fork applies them)
_INTERPRETER_PREFIXES = ("PYTHON", "LD_", "LC_", "LANG", "MALLOC_", "GLIBC_TUNABLES")
# fork server failures (it died, did not answer) after which a worker stops using it
_MAX_FORK_SERVER_FAILURES = 3

logger = logging.getLogger("weir.worker")


@dataclass
class ProcessHandle:
    pid: int  # it leads its own process group
    status: ExitStatus
    readers: list[threading.Thread] = field(default_factory=list)


def default_command(flow_run_id: object) -> list[str]:
    return [sys.executable, "-m", "weir.deployments.execute", str(flow_run_id)]


class ProcessInfrastructure:
    def __init__(
        self, environment: Mapping[str, str] | None = None, *, fork_server: bool | None = None
    ) -> None:
        """`fork_server`: start default-command runs from a fork server (Linux);
        None: as `settings.worker.fork_server` says."""
        self.environment = dict(environment or {})
        if fork_server is None:
            from weir.settings import get_settings

            fork_server = get_settings().worker.fork_server
        self.fork_server: ForkServer | None = None
        self._fork_server_wanted = fork_server and sys.platform.startswith("linux")
        self._fork_server_failures = 0

    def prepare(self) -> None:
        """Start the fork server now rather than for the first run (from the thread
        that will start the runs)."""
        if self._fork_server_wanted and self.fork_server is None:
            self._launch_fork_server()

    def start(self, claimed: ClaimedRun, on_output: OnOutput) -> ProcessHandle:
        config = claimed.job_configuration
        stream = config.get("stream_output", True) is not False
        env = self.env(config.get("env"))
        cwd = config.get("working_dir") or None
        read_end, write_end = os.pipe() if stream else (None, None)
        try:
            handle = self._fork(claimed, env, cwd, write_end)
            if handle is None:
                handle = self._popen(claimed, env, cwd, write_end)
        except BaseException:
            if read_end is not None:
                os.close(read_end)
            raise
        finally:
            if write_end is not None:
                os.close(write_end)
        if read_end is not None:
            reader = threading.Thread(
                target=_read_lines,
                args=(os.fdopen(read_end, "rb"), on_output),
                name=f"weir-output-{handle.pid}",
                daemon=True,
            )
            reader.start()
            handle.readers.append(reader)
        return handle

    def _popen(
        self, claimed: ClaimedRun, env: dict[str, str], cwd: str | None, out: int | None
    ) -> ProcessHandle:
        with reaping.registry_lock:  # registered before an orphan sweep could see it
            process = subprocess.Popen(
                self.command(claimed),
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out if out is not None else subprocess.DEVNULL,
                stderr=out if out is not None else subprocess.DEVNULL,
                preexec_fn=die_with_parent(os.getpid()),
                process_group=0,
            )
            return ProcessHandle(process.pid, reaping.PopenStatus(process))

    def _fork(
        self, claimed: ClaimedRun, env: dict[str, str], cwd: str | None, out: int | None
    ) -> ProcessHandle | None:
        """The run started by the fork server; None when it must be started with Popen."""
        if not self._fork_server_wanted or claimed.job_configuration.get("command"):
            return None
        if self.fork_server is None and not self._launch_fork_server():
            return None
        assert self.fork_server is not None
        if not _same_interpreter_env(env, self.fork_server.environ):
            return None
        with reaping.registry_lock:
            try:
                pid = self.fork_server.spawn(
                    claimed.flow_run.id, env, cwd, out, claimed.model_dump_json()
                )
            except ForkServerUnavailable as exc:
                self._fork_server_failed(exc)
                return None
            return ProcessHandle(pid, reaping.ReparentedStatus(pid))

    def _launch_fork_server(self) -> bool:
        self.fork_server = ForkServer()
        try:
            self.fork_server.launch()
        except (OSError, ForkServerUnavailable) as exc:
            self._fork_server_failed(exc)
            return False
        return True

    def _fork_server_failed(self, exc: Exception) -> None:
        """Restart the template for the next run; after a few failures, stop using it."""
        if self.fork_server is not None:
            self.fork_server.close()
            self.fork_server = None
        self._fork_server_failures += 1
        if self._fork_server_failures >= _MAX_FORK_SERVER_FAILURES:
            self._fork_server_wanted = False
            logger.warning(
                "The worker's fork server failed %d times (%s); runs start as new processes.",
                self._fork_server_failures,
                exc,
            )

    def close(self) -> None:
        """Stop the fork server (runs already started are not affected)."""
        if self.fork_server is not None:
            self.fork_server.close()
            self.fork_server = None

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
        reaping.reap_orphans()
        return handle.status.poll()

    def wait(self, handle: ProcessHandle, timeout: float | None = None) -> int | None:
        code = handle.status.wait(timeout)
        if code is not None:
            for reader in handle.readers:  # so every line is handed over before we answer
                reader.join(_READER_JOIN_SECONDS)
        return code

    def kill(self, handle: ProcessHandle, grace: float) -> None:
        """SIGTERM to the process group; SIGKILL to it after `grace` seconds."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(handle.pid, signal.SIGTERM)
        handle.status.wait(grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(handle.pid, signal.SIGKILL)
        handle.status.wait(None)


def _same_interpreter_env(env: Mapping[str, str], template: Mapping[str, str]) -> bool:
    """Whether the run's environment agrees with the fork server's in every variable
    read when the interpreter (or the dynamic loader, or the C locale) starts: those
    cannot change in a forked process."""
    names = {name for name in (*env, *template) if name.startswith(_INTERPRETER_PREFIXES)}
    return all(env.get(name) == template.get(name) for name in names)


def _read_lines(stream: IO[bytes], on_output: OnOutput) -> None:
    with stream:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            try:
                on_output(line)
            except Exception:  # a failing callback must not stop the reading (the pipe fills)
                pass


def die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGKILL the child when the worker dies."""
    if not sys.platform.startswith("linux"):
        return None

    def preexec() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the worker died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec
