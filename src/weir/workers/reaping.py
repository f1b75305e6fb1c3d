"""Exit statuses of the worker's run processes, and the worker as a child subreaper.

A run's process is either the worker's own `subprocess.Popen` child or a process
the fork server forked (workers/forkserver.py) and Linux re-parented to the worker,
because the worker is a *child subreaper* (`PR_SET_CHILD_SUBREAPER`): orphaned
descendants go to it instead of to init. Either way the worker reads the exit status
itself, with `waitpid`, so both kinds look the same to it (`ExitStatus`).

Being a subreaper also brings the worker every orphan a run leaves behind (a
daemon it started, say); `reap_orphans` reaps those zombies. It only touches a
zombie child that is not a registered run process and is not in the worker's own
process group (run processes and their descendants have their own groups; a
subprocess some other code in the worker started stays in the worker's group and
is left to that code's `wait`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Protocol

_PR_SET_CHILD_SUBREAPER = 36
# how often poll() looks for orphans to reap, at most
_ORPHAN_SWEEP_SECONDS = 1.0

# the pids whose exit status an `ExitStatus` will read: never reaped as orphans
_registered: set[int] = set()
# held while a run process is started and registered, and while orphans are reaped
registry_lock = threading.RLock()
_subreaper = False
_last_sweep = 0.0


class ExitStatus(Protocol):
    def poll(self) -> int | None:
        """The exit code (negative: killed by that signal) if it ended, else None."""

    def wait(self, timeout: float | None) -> int | None:
        """Wait up to `timeout` seconds (None: for ever); the exit code, or None."""


class PopenStatus:
    """The exit status of the worker's own subprocess."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        register(process.pid)

    def poll(self) -> int | None:
        return _collected(self.process.pid, self.process.poll())

    def wait(self, timeout: float | None) -> int | None:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return _collected(self.process.pid, code)


class ReparentedStatus:
    """The exit status of a process re-parented to the worker, read with `waitpid`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._lock = threading.Lock()  # poll (worker loop) and kill (a thread) both wait
        register(pid)

    def poll(self) -> int | None:
        with self._lock:
            if self.returncode is None:
                try:
                    pid, status = os.waitpid(self.pid, os.WNOHANG)
                except ChildProcessError:  # not ours (never happens once registered)
                    pid, status = self.pid, 255 << 8
                if pid != 0:
                    self.returncode = _collected(pid, os.waitstatus_to_exitcode(status))
            return self.returncode

    def wait(self, timeout: float | None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.001
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        return code


def register(pid: int) -> None:
    with registry_lock:
        _registered.add(pid)


def forget(pid: int) -> None:
    """Its exit status was read: from now on the pid may be anything's."""
    with registry_lock:
        _registered.discard(pid)


def _collected(pid: int, code: int | None) -> int | None:
    if code is not None:
        forget(pid)
    return code


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); False if not."""
    global _subreaper
    if not _subreaper and sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        _subreaper = libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    return _subreaper


def reap_orphans(force: bool = False) -> list[int]:
    """Reap the zombie orphans re-parented to this process (at most once a second
    unless `force`); their pids."""
    global _last_sweep
    now = time.monotonic()
    if not _subreaper or (not force and now - _last_sweep < _ORPHAN_SWEEP_SECONDS):
        return []
    _last_sweep = now
    reaped = []
    own_group = os.getpgrp()
    with registry_lock:
        for pid in _children() - _registered:
            stat = _stat(pid)
            if stat is None or stat[0] != "Z" or int(stat[2]) == own_group:
                continue
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    reaped.append(pid)
    return reaped


def _children() -> set[int]:
    children: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        with contextlib.suppress(OSError):
            children.update(int(pid) for pid in (task / "children").read_text().split())
    return children


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name: state, ppid, pgrp, ..."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
