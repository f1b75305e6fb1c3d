"""A temporary weir server for tests: a real `weir server start` in a subprocess.

    with temporary_server() as server:
        os.environ["WEIR_API_URL"] = server.api_url
        my_flow()

It gets its own free port and home directory (SQLite under it unless you pass a
`database_url`), waits until `/api/ready` answers, and is stopped (SIGTERM, then
SIGKILL) when the block ends, even on errors.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass
class TemporaryServer:
    url: str
    home: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    def env(self, **extra: str) -> dict[str, str]:
        """An environment for a client process of this server (`WEIR_API_URL`, a home)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("WEIR_")}
        env.update(WEIR_API_URL=self.api_url, WEIR_HOME=str(self.home / "client"), **extra)
        return env

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 10) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def temporary_server(
    *,
    database_url: str | None = None,
    env: Mapping[str, str] | None = None,
    args: tuple[str, ...] = (),
    startup_timeout: float = 30,
) -> Iterator[TemporaryServer]:
    """Start `weir server start` on a free port; yield it; stop it."""
    with tempfile.TemporaryDirectory(prefix="weir-server-") as tmp:
        home = Path(tmp)
        port = free_port()
        server_env = {k: v for k, v in os.environ.items() if not k.startswith("WEIR_")}
        server_env.update(WEIR_HOME=str(home), WEIR_SERVER_PORT=str(port))
        if database_url:
            server_env["WEIR_SERVER_DATABASE_URL"] = database_url
        server_env.update(env or {})
        log_path = home / "server.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "weir", "server", "start", "--port", str(port), *args],
                env=server_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        server = TemporaryServer(f"http://127.0.0.1:{port}", home, process, log_path)
        try:
            _wait_until_ready(
                server, startup_timeout, server_env.get("WEIR_SERVER_API_AUTH_STRING")
            )
            yield server
        finally:
            server.stop()


def _wait_until_ready(server: TemporaryServer, timeout: float, auth: str | None) -> None:
    request = urllib.request.Request(f"{server.api_url}/ready")
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"weir server exited with {server.process.returncode}:\n{server.log()}"
            )
        try:
            with urllib.request.urlopen(request, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"weir server did not become ready in {timeout} s:\n{server.log()}")
