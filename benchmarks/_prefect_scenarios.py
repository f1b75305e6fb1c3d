"""Helpers for compare_prefect.py: the snippets each scenario runs, and process handling.

Every snippet runs in a child Python (the target's own interpreter) and prints one
line `@@BENCH {json}`. Every child runs in its own session, so that it and all it
spawns (servers, temporary servers) can be killed as one process group.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

MARK = "@@BENCH "
_LIVE_GROUPS: set[int] = set()

# A flow of N sequential no-op tasks, called twice. The same text serves weir and
# Prefect; only the package name differs. The loop inside the flow is timed on its
# own, so that per-task cost is not mixed with flow start-up and tear-down.
ENGINE = r"""
import importlib, json, os, sys, time
N, PKG, COUNT_WAIT = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
t_import = time.perf_counter()
mod = __import__(PKG)
flow, task = mod.flow, mod.task
import_s = time.perf_counter() - t_import
LOOPS, RUN_IDS = [], []

@task
def noop():
    return None

@flow
def bench(n):
    RUN_IDS.append(str(importlib.import_module(PKG + ".runtime").flow_run.id))
    t = time.perf_counter()
    for _ in range(n):
        noop()
    LOOPS.append(time.perf_counter() - t)

calls = []
for _ in range(2):
    t = time.perf_counter()
    bench(N)
    calls.append(time.perf_counter() - t)
out = {"import_s": import_s, "call_s": calls, "loop_s": LOOPS, "kept": None}
def count_kept(http):  # wait (up to COUNT_WAIT) for each run's N task runs; record counts
    kept, waited = [], []
    for run_id in RUN_IDS:
        body = {"flow_runs": {"id": {"any_": [run_id]}}}
        t = time.perf_counter()
        while True:
            n = http.post("/task_runs/count", json=body).json()
            if n >= N or time.perf_counter() - t > COUNT_WAIT:
                break
            time.sleep(0.02)
        kept.append(n)
        waited.append(time.perf_counter() - t)
    out["kept"], out["kept_wait_s"] = kept, waited

API = os.environ.get(PKG.upper() + "_API_URL")
if API:  # a server of our own: count with the same Prefect-shaped filter on both sides
    import httpx
    with httpx.Client(base_url=API, timeout=30) as client:
        count_kept(client)
elif PKG == "prefect":  # Prefect's temporary server, through its own client
    from prefect.client.orchestration import get_client
    with get_client(sync_client=True) as client:
        out["api_url"] = str(client.api_url)
        count_kept(client._client)
print("@@BENCH " + json.dumps(out), flush=True)
"""

# HTTP load against a running server: create one flow, then N flow runs one after
# another, then N more from C concurrent clients, then time `filter` with limit 200.
LOAD = r"""
import asyncio, json, statistics, sys, time
import httpx
BASE, N, C, BUDGET = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
TIMEOUT = httpx.Timeout(30.0)

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] * 1000 if xs else None

def note(kinds, outcome):
    if isinstance(outcome, Exception):
        key = type(outcome).__name__
    elif outcome.status_code >= 300:
        key = f"HTTP {outcome.status_code}: {outcome.text[:120]}"
    else:
        return
    kinds[key] = kinds.get(key, 0) + 1

def summary(lat, kinds, elapsed):
    errors = sum(kinds.values())
    ok = len(lat) - errors
    return {"attempted": len(lat), "errors": errors, "error_kinds": kinds, "elapsed_s": elapsed,
            "per_s": ok / elapsed if elapsed else None,
            "p50_ms": pct(lat, 0.50), "p95_ms": pct(lat, 0.95)}

def run_body(flow_id, i):
    return {"flow_id": flow_id, "name": f"bench-{i}", "parameters": {}}

with httpx.Client(base_url=BASE, timeout=TIMEOUT) as c:
    r = c.post("/api/flows/", json={"name": "weir-bench"})
    r.raise_for_status()
    flow_id = r.json()["id"]
    lat, kinds, start = [], {}, time.perf_counter()
    for i in range(N):
        if time.perf_counter() - start > BUDGET:
            break
        t = time.perf_counter()
        try:
            note(kinds, c.post("/api/flow_runs/", json=run_body(flow_id, i)))
        except httpx.HTTPError as exc:
            note(kinds, exc)
        lat.append(time.perf_counter() - t)
    sequential = summary(lat, kinds, time.perf_counter() - start)

async def worker(k, per, lat, kinds, start):
    async with httpx.AsyncClient(base_url=BASE, timeout=TIMEOUT) as c:
        for i in range(per):
            if time.perf_counter() - start > BUDGET:
                return
            t = time.perf_counter()
            try:
                note(kinds, await c.post("/api/flow_runs/", json=run_body(flow_id, f"c{k}-{i}")))
            except httpx.HTTPError as exc:
                note(kinds, exc)
            lat.append(time.perf_counter() - t)

async def concurrent():
    lat, kinds, start = [], {}, time.perf_counter()
    await asyncio.gather(*(worker(k, max(1, N // C), lat, kinds, start) for k in range(C)))
    return summary(lat, kinds, time.perf_counter() - start)

concurrent_result = asyncio.run(concurrent())
with httpx.Client(base_url=BASE, timeout=TIMEOUT) as c:
    lat, returned = [], None
    for _ in range(20):
        t = time.perf_counter()
        r = c.post("/api/flow_runs/filter", json={"limit": 200})
        lat.append(time.perf_counter() - t)
        returned = len(r.json()) if r.status_code < 300 else f"HTTP {r.status_code}"
    r = c.post("/api/flow_runs/count", json={})
    total = r.json() if r.status_code < 300 else None
out = {"sequential": sequential, "concurrent": concurrent_result, "clients": C,
       "filter_median_ms": statistics.median(lat) * 1000, "filter_returned": returned,
       "runs_in_db": total}
print("@@BENCH " + json.dumps(out), flush=True)
"""


def kill_group(pgid: int, grace: float = 5.0) -> None:
    """SIGTERM a process group, then SIGKILL whatever is left after `grace` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _group_alive(pgid):
            time.sleep(0.1)
    _LIVE_GROUPS.discard(pgid)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # zombies of our own direct child count as gone once reaped
    with contextlib.suppress(ChildProcessError):
        os.waitpid(-pgid, os.WNOHANG)
    return any(_session_of(pid) == pgid for pid in _pids())


def kill_all() -> None:
    """Kill every group still alive (called on exit, Ctrl-C and SIGTERM)."""
    for pgid in list(_LIVE_GROUPS):
        kill_group(pgid, grace=2.0)


def spawn(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start `cmd` in a new session, output to `log`; it is killed by kill_all() at the latest."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    _LIVE_GROUPS.add(proc.pid)
    return proc


def run_snippet(
    python: str, code: str, args: list[str], env: dict[str, str], cwd: Path, timeout: float
) -> dict:
    """Run a snippet with `python`; return its @@BENCH JSON or raise with the output's tail."""
    log = cwd / f"snippet-{time.monotonic_ns()}.log"
    proc = spawn([python, "-c", code, *map(str, args)], env, cwd, log)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"snippet timed out after {timeout:.0f}s") from exc
    finally:
        kill_group(proc.pid)
    text = log.read_text(errors="replace")
    for line in reversed(text.splitlines()):
        if line.startswith(MARK):
            return json.loads(line[len(MARK) :])
    tail = "\n".join(text.splitlines()[-15:])
    raise RuntimeError(f"snippet exited {proc.returncode} without a result:\n{tail}")


def get_json(url: str) -> dict:
    """GET `url` and parse its JSON body ({} on any error)."""
    import json

    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = json.loads(resp.read())
    except (OSError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float) -> float:
    """Poll GET `url` until HTTP 200; return seconds waited. Raises if the process dies."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before it was healthy")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as resp:
            if resp.status == 200:
                return time.perf_counter() - start
        time.sleep(0.05)
    raise RuntimeError(f"server not healthy after {timeout:.0f}s")


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _session_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[3]) if fields[0] != "Z" else None  # fields[3] is the session id


def session_rss_mib(sid: int) -> float:
    """Summed VmRSS of every live process in session `sid` (the server and its children)."""
    total_kib = 0
    for pid in _pids():
        if _session_of(pid) != sid:
            continue
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
    return total_kib / 1024
