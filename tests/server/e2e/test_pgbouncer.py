"""Behind PgBouncer in transaction mode (how shared Postgres is often run): a real server
through a real PgBouncer, started by this test, tracks a flow and takes concurrent writes.
asyncpg's prepared-statement caches would break here; weir turns them off."""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.conftest import PG_HOST, PG_PORT, _pg_admin
from tests.server.e2e.test_tracking import run_flow, weir
from tests.services import require_service
from weir.testing import temporary_server
from weir.testing.server import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def _pgbouncer_binary() -> str:
    binary = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/bin")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("pgbouncer is not installed and CI=true: `make test` installs it.")
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer)")
    return binary


@pytest.fixture
def pgbouncer_url() -> Iterator[str]:
    binary = _pgbouncer_binary()
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    name = f"weir_test_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    port = free_port()
    # pgbouncer drops root for `nobody`, who must reach its files: not under pytest's
    # owner-only tmp_path, but in a world-traversable directory of its own
    workdir = Path(tempfile.mkdtemp(prefix="weir-pgbouncer-"))
    workdir.chmod(0o777)
    (workdir / "users.txt").write_text('"postgres" ""\n')
    (workdir / "pgbouncer.ini").write_text(
        f"[databases]\n{name} = host={PG_HOST} port={PG_PORT} dbname={name} user=postgres\n"
        f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nauth_type = trust\n"
        f"auth_file = {workdir / 'users.txt'}\npool_mode = transaction\nmax_client_conn = 200\n"
        f"default_pool_size = 5\nunix_socket_dir =\nlogfile = {workdir / 'pgbouncer.log'}\n"
        "ignore_startup_parameters = extra_float_digits\n"
    )
    for path in workdir.iterdir():
        path.chmod(0o666)
    command = [binary, str(workdir / "pgbouncer.ini")]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "nobody"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(
                    f"pgbouncer exited: {process.stdout.read().decode() if process.stdout else ''}"
                )
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/{name}"
    finally:
        process.terminate()
        process.wait(10)
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)


def test_a_server_behind_pgbouncer_tracks_flows_and_takes_concurrent_writes(
    pgbouncer_url: str, tmp_path: Path
) -> None:
    with temporary_server(database_url=pgbouncer_url) as server:
        run_flow(server, tmp_path)
        (run,) = json.loads(weir(server, "flow-run", "ls", "--json").stdout)
        assert run["state_type"] == "COMPLETED"

        def create(i: int) -> int:
            request = urllib.request.Request(
                f"{server.api_url}/flow_runs/",
                data=json.dumps(
                    {"flow_name": "through-pgbouncer", "parameters": {"i": i}}
                ).encode(),
                headers={"content-type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status

        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            statuses = list(pool.map(create, range(200)))
        assert statuses == [201] * 200
        logs = weir(server, "flow-run", "logs", run["id"])
        assert logs.stdout.count("loaded invoice") == 25
