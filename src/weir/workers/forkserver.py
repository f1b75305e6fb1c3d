"""A fork server: deployment runs start from an already-imported Python process.

`python -m weir.deployments.execute <id>` spends ~0.35 s importing (pydantic models,
httpx, the engine) before it does anything. The worker instead starts one
long-lived *template* process (`python -m weir.workers.forkserver FD`) that does
those imports once, starts no thread and no event loop, and waits on a Unix socket
for requests: a flow run id, the run's complete environment, its working directory
and (passed with SCM_RIGHTS) the write end of the pipe its output goes to.

For each request the template double-forks. The intermediate exits at once, so
Linux re-parents the run's process to the nearest *child subreaper* up the tree:
the worker (workers/reaping.py), which therefore waits for it with `waitpid`, gets
its real exit status, and kills its process group exactly as it does a `Popen`
child. The template answers with the run's pid. The run's process then:
starts its own session (so its pid is its process group), waits until it has been
re-parented to the worker and only then sets PR_SET_PDEATHSIG (that signal follows
the *thread that is the parent*: set earlier, the intermediate's exit would fire
it), checks the worker is still its parent, puts the pipe on stdout and stderr and
/dev/null on stdin, replaces os.environ with the given environment, changes
directory, resets signal handlers and `random`, and returns up the template's stack
to run `weir.deployments.execute.main` and exit like `python -m` would (atexit
handlers run, stdio is flushed), minus the interpreter's teardown.

Why not have the template reap its children and report exit codes? Then a run's
process would be the template's child and die with it (its PDEATHSIG would have
to point at the template); re-parented to the worker, running runs survive a
template crash, and the worker restarts the template for the next run.

The template dies with the worker (PR_SET_PDEATHSIG) and exits when the worker
closes its end of the socket. Nothing below `_template_main` is imported by the
worker, so importing this module stays cheap.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from weir.workers import reaping

logger = logging.getLogger("weir.worker")

# how long the template may take to import everything and say it is ready
READY_TIMEOUT_SECONDS = 60.0
# how long one request may take to be answered
ANSWER_TIMEOUT_SECONDS = 10.0
_MAX_MESSAGE = 1 << 20
# a claim answer larger than this (big parameters) is not handed over: the run reads it
MAX_CLAIM_BYTES = 64 * 1024


class ForkServerUnavailable(Exception):
    """The template is not running (or did not answer); start the run another way."""


class ForkServer:
    """The worker's side: starts the template and asks it for run processes."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.environ: dict[str, str] = {}  # the template's environment
        self._socket: socket.socket | None = None
        self._ready = False
        self._lock = threading.Lock()

    def launch(self) -> None:
        """Start the template (without waiting for it to be ready). Call it from a
        thread that outlives it (the main thread): it dies with that thread."""
        from weir.workers.process import die_with_parent

        if not reaping.become_subreaper():
            raise ForkServerUnavailable("This system cannot re-parent runs to the worker.")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.environ = dict(os.environ)
        try:
            with reaping.registry_lock:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "weir.workers.forkserver", str(theirs.fileno())],
                    env=self.environ,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    pass_fds=[theirs.fileno()],
                    preexec_fn=die_with_parent(os.getpid()),
                    start_new_session=True,  # the worker's terminal signals are not for it
                )
                reaping.register(self.process.pid)
        finally:
            theirs.close()
        self._socket, self._ready = ours, False

    def spawn(
        self,
        flow_run_id: object,
        env: Mapping[str, str],
        cwd: str | None,
        out: int | None,
        claimed: str | None = None,
    ) -> int:
        """Fork a run's process; its pid. `out` (a pipe's write end) becomes its stdout
        and stderr, None: /dev/null. ForkServerUnavailable if the template is gone."""
        request = {"flow_run_id": str(flow_run_id), "env": dict(env), "cwd": cwd}
        if claimed is not None and len(claimed) <= MAX_CLAIM_BYTES:
            request["claimed"] = claimed  # the run reads neither its run nor its deployment
        with self._lock:
            if self._socket is None:
                raise ForkServerUnavailable("The fork server is not running.")
            try:
                if not self._ready:
                    self._receive(READY_TIMEOUT_SECONDS)
                    self._ready = True
                payload = json.dumps(request).encode()
                socket.send_fds(self._socket, [payload], [out] if out is not None else [])
                answer = self._receive(ANSWER_TIMEOUT_SECONDS)
            except (OSError, ValueError) as exc:
                self.close()
                raise ForkServerUnavailable(f"The fork server stopped answering: {exc}") from exc
        if "pid" not in answer:
            raise ForkServerUnavailable(f"The fork server could not start the run: {answer}")
        return int(answer["pid"])

    def _receive(self, timeout: float) -> dict[str, Any]:
        assert self._socket is not None
        self._socket.settimeout(timeout)
        message = self._socket.recv(_MAX_MESSAGE)
        if not message:
            raise ConnectionResetError("the fork server exited")
        answer: dict[str, Any] = json.loads(message)
        return answer

    def close(self) -> None:
        """Stop the template: it exits when its socket closes (killed if it does not)."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self.process is not None:
            try:
                self.process.wait(2)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            reaping.forget(self.process.pid)
            self.process = None


# -- the template ----------------------------------------------------------------------


@dataclass
class _Run:
    flow_run_id: str
    claimed: str | None = None


def _warm_up() -> None:
    """Import what a run needs, so each forked run has it already."""
    # httpx's first request imports its async backend (anyio, ~30 ms): here, not in
    # every run as it turns RUNNING (when a tick starts hundreds at once, that adds up)
    import anyio._backends._asyncio
    import anyio.streams.tls
    import anyio.to_thread  # noqa: F401
    import httpcore._backends.anyio  # noqa: F401
    import httpx  # noqa: F401
    import pydantic_settings  # noqa: F401

    import weir.client.sync
    import weir.deployments.execute
    import weir.engine.adoption
    import weir.engine.flow_engine
    import weir.engine.logging
    import weir.engine.reporter
    import weir.engine.result_config
    import weir.engine.task_engine
    import weir.settings  # noqa: F401
    from weir.client.http import tls_context

    tls_context()  # loading the CAs is the dearest part of a new HTTP client


def _serve(control: socket.socket, worker_pid: int) -> _Run | None:
    """Answer requests until the worker closes the socket (None); in a run's process,
    the run to execute."""
    control.send(json.dumps({"ready": True}).encode())
    while True:
        message, fds, _, _ = socket.recv_fds(control, _MAX_MESSAGE, 1)
        if not message:
            return None
        request = json.loads(message)
        out = fds[0] if fds else None
        try:
            pid = _double_fork()
            if pid == 0:
                _in_run_process(control, request, out, worker_pid)
                return _Run(request["flow_run_id"], request.get("claimed"))
        except OSError as exc:
            control.send(json.dumps({"error": str(exc)}).encode())
            continue
        finally:
            if out is not None:
                os.close(out)
        control.send(json.dumps({"pid": pid}).encode())


def _double_fork() -> int:
    """The pid of a grandchild whose parent has already exited; 0 in the grandchild."""
    read_end, write_end = os.pipe()
    intermediate = os.fork()
    if intermediate == 0:
        grandchild = -1
        try:
            os.close(read_end)
            grandchild = os.fork()
            if grandchild == 0:
                os.close(write_end)
                return 0
            os.write(write_end, str(grandchild).encode())
        finally:
            if grandchild != 0:
                os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read()
    os.waitpid(intermediate, 0)
    if not answer:
        raise OSError("fork failed")
    return int(answer)


def _in_run_process(
    control: socket.socket, request: dict[str, Any], out: int | None, worker_pid: int
) -> None:
    try:
        control.close()
        _become_run(request, out, worker_pid)
    except BaseException:  # never back into the template's loop
        import traceback

        traceback.print_exc()
        os._exit(70)


def _become_run(request: dict[str, Any], out: int | None, worker_pid: int) -> None:
    """In the grandchild: the process `python -m weir.deployments.execute` would be."""
    import ctypes
    import importlib
    import random
    import signal
    import time

    from weir.settings import reset_settings
    from weir.workers.process import PR_SET_PDEATHSIG

    os.setsid()
    deadline = time.monotonic() + 10
    while os.getppid() != worker_pid:  # the intermediate is exiting
        if time.monotonic() > deadline:
            os._exit(70)
        time.sleep(0.0002)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != worker_pid:  # the worker died before prctl took effect
        os._exit(70)

    target = out if out is not None else os.open(os.devnull, os.O_WRONLY)
    os.dup2(target, 1)
    os.dup2(target, 2)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)

    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    random.seed()

    template_cwd = os.getcwd()
    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()
    reset_settings()
    if request["cwd"]:
        os.chdir(request["cwd"])
    if sys.path and sys.path[0] == template_cwd:  # `python -m` puts its cwd first
        sys.path[0] = os.getcwd()
        importlib.invalidate_caches()


def _template_main(argv: list[str]) -> int:
    control = socket.socket(fileno=int(argv[0]))
    worker_pid = os.getppid()
    _warm_up()
    # what the template imported lives on untouched by the collector, so a forked run
    # does not copy those pages when a collection walks them
    gc.collect()
    gc.freeze()
    run = _serve(control, worker_pid)
    if run is None:
        return 0
    from weir.deployments import execute

    sys.argv = [execute.__file__ or "execute", run.flow_run_id]
    code = execute.main([run.flow_run_id], claimed=run.claimed)
    _exit_run(code)
    return code  # not reached


def _exit_run(code: int) -> None:
    """End a run's process as `python -m` would (atexit handlers, stdio flushed) but
    without the interpreter's teardown: freeing every object of a process forked from
    the template writes to (and so copies) most of its pages, which cost a run about
    a third of its CPU."""
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # the worker closed the pipe, or it is closed
            pass
    os._exit(code)


if __name__ == "__main__":
    sys.exit(_template_main(sys.argv[1:]))
