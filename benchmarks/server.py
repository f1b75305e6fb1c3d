"""What the weir server costs and how fast it answers (issue 3's benchmark): prints figures
and PASS/MISS against the targets, asserts nothing. `--quick` for a smoke run.
127.0.0.1 only; every server started is stopped; files go to temporary directories; the
PostgreSQL database `weir_bench_<random>` is dropped at the end, even on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import sqlalchemy as sa

import weir
from weir.server.db.engine import Database
from weir.server.db.migrate import DEFAULT_PROJECT_ID as PROJECT
from weir.server.db.models import Flow, FlowRun, FlowRunState
from weir.testing.server import free_port, temporary_server

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _prefect_scenarios as sc
from _bytecode import compile_weir

HERE = Path(__file__).resolve().parent
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
CLIENTS, STARTS, FILTER_CALLS, TASKS = 20, 3, 30, 1_000
BUDGET = 120.0  # seconds at most per load phase
FILTERS = {"limit 200": {"limit": 200}, "state FAILED|CRASHED, sort START_TIME_DESC, limit 200": {
    "flow_runs": {"state": {"type": {"any_": ["FAILED", "CRASHED"]}}}, "sort": "START_TIME_DESC",
    "limit": 200}}  # fmt: skip
SEED_STATES = [("COMPLETED", "Completed", 80), ("FAILED", "Failed", 7), ("CRASHED", "Crashed", 1),
               ("CANCELLED", "Cancelled", 2), ("RUNNING", "Running", 2),  # (type, name, % of runs)
               ("SCHEDULED", "Scheduled", 5), ("PENDING", "Pending", 3)]  # fmt: skip
PREFECT_REFERENCE = """\
  Prefect 3.8 (quoted from issue 3; measured earlier on this kind of machine, not here):
    "start <= 1 s (7.1 s cold, 2.7 s warm); idle RSS <= 120 MB (222 MB); >= 1,000 runs created/s
    sequential on SQLite (27-38/s), and 0 errors with 20 concurrent clients (p95 latency 6 s, and
    503s from 2 concurrent raw clients); filter <= 20 ms with 100,000 runs (50 ms with 1,600);
    tracked task overhead <= 0.2 ms (about 3 ms) with all task runs visible within 0.5 s of the
    flow's end (14-18 s for 1,000 tasks)."
  Both side by side, measured in one run: benchmarks/compare_prefect.py --install --weir"""

# Run in a child process with WEIR_API_URL set: the same flow untracked, then tracked.
TASKS_SNIPPET = r"""
import json, os, sys, time, httpx
N, API = int(sys.argv[1]), os.environ.pop("WEIR_API_URL")
from weir import flow, runtime, task
from weir.settings import reset_settings
IDS, CLIENT = [], httpx.Client(base_url=API, timeout=10)
@task
def noop(): return None
@flow
def bench(n):
    IDS.append(runtime.flow_run.id)
    for _ in range(n): noop()
def timed():
    t = time.perf_counter(); bench(N); return time.perf_counter() - t
def visible(run_id):  # seconds until the server counts N task runs of this flow run
    body, t = {"task_runs": {"flow_run_id": {"any_": [str(run_id)]}}}, time.perf_counter()
    while (n := CLIENT.post("/task_runs/count", json=body).json()) < N and time.perf_counter() - t < 30:
        time.sleep(0.02)
    return time.perf_counter() - t, n
reset_settings()
out = {"untracked": [timed(), timed()], "tracked": [], "visible": []}
os.environ["WEIR_API_URL"] = API; reset_settings()
for _ in range(2):
    out["tracked"].append(timed())  # the flow has returned: the visibility clock starts now
    out["visible"].append(visible(IDS[-1]))
print("@@BENCH " + json.dumps(out), flush=True)
"""


def pct(values: list[float], p: int) -> float:
    if len(values) < 2:
        return (values or [float("nan")])[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def uuid7(moment: datetime, rng: random.Random) -> uuid.UUID:
    """A UUIDv7 of a given time, so seeded ids sort by their (past) creation time."""
    millis, rand = int(moment.timestamp() * 1000), rng.getrandbits(74)
    return uuid.UUID(int=millis << 80 | 7 << 76 | (rand >> 62) << 64 | 2 << 62 | rand & (2**62 - 1))


def git_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True).stdout

    diff = git("diff", "HEAD", "--", ":/src") + git("ls-files", "-o", "--exclude-standard", ":/src")
    dirty = f" + uncommitted changes in src/ ({uuid.uuid5(uuid.NAMESPACE_URL, diff).hex[:8]})"
    return git("rev-parse", "--short", "HEAD").strip() + (dirty if diff else "")


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


class Phase:
    """Latencies and failures (by kind) of a series of requests, bounded by BUDGET."""

    def __init__(self, ok: int = 201) -> None:
        self.ok, self.lat, self.kinds, self.start = ok, [], {}, time.perf_counter()

    def note(self, t: float, outcome: httpx.Response | Exception) -> None:
        self.lat.append(time.perf_counter() - t)
        if isinstance(outcome, Exception):
            key = type(outcome).__name__
        elif outcome.status_code != self.ok:
            key = f"HTTP {outcome.status_code}: {outcome.text[:100]}"
        else:
            return
        self.kinds[key] = self.kinds.get(key, 0) + 1

    def summary(self) -> dict[str, Any]:
        errors, done = sum(self.kinds.values()), len(self.lat)
        per_s = (done - errors) / (time.perf_counter() - self.start)
        ms = {f"p{p}": pct(self.lat, p) * 1e3 for p in (50, 95, 99)}
        return {"done": done, "errors": errors, "kinds": self.kinds, "per_s": per_s, **ms}


def repeat(call: Callable[[Any], httpx.Response], items: Iterable[Any], ok: int = 200) -> Phase:
    """`call(item)` for each item, one after another, timed, until done or over BUDGET."""
    phase = Phase(ok)
    for item in items:
        if time.perf_counter() - phase.start > BUDGET:
            break
        t = time.perf_counter()
        try:
            phase.note(t, call(item))
        except httpx.HTTPError as exc:
            phase.note(t, exc)
    return phase


def start_once(tmp: Path) -> tuple[float, float]:
    """Seconds from Popen to the first 200 on /api/health, and on /api/ready."""
    home, port = Path(tempfile.mkdtemp(prefix="start-", dir=tmp)), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEIR_")}
    env["WEIR_HOME"] = str(home)
    cmd = [sys.executable, "-m", "weir", "server", "start", "--host", "127.0.0.1"]
    t0 = time.perf_counter()
    proc = sc.spawn([*cmd, "--port", str(port)], env, home, home / "server.log")
    times, client = [], httpx.Client(base_url=f"http://127.0.0.1:{port}/api", timeout=2)
    try:
        for path in ("/health", "/ready"):
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(path).status_code == 200:
                        break
                if proc.poll() is not None or time.perf_counter() - t0 > 60:
                    raise RuntimeError(f"no 200 on {path}; server exit code {proc.poll()}")
                time.sleep(0.01)
            times.append(time.perf_counter() - t0)
    finally:
        client.close()
        sc.kill_group(proc.pid)
        proc.wait(timeout=10)
    return times[0], times[1]


def _run(i: int) -> dict[str, Any]:
    return {"flow_name": "bench", "parameters": {"i": i}}


def create_sequential(api: str, n: int) -> dict[str, Any]:
    with httpx.Client(base_url=api, timeout=30) as client:
        floor = repeat(lambda _: client.get("/health"), range(200)).summary()["p50"]  # HTTP alone
        phase = repeat(lambda i: client.post("/flow_runs/", json=_run(i)), range(n), ok=201)
        return phase.summary() | {"floor": floor}


def create_sequential_lean(api: str, n: int) -> dict[str, Any]:
    """The server's capacity: the same requests from the stdlib's keep-alive HTTP client,
    which costs ~0.1 ms a request where httpx costs ~1 ms (so httpx's figure is mostly
    httpx on this 2-core machine)."""
    url = urllib.parse.urlsplit(api)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    connection.connect()
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    headers = {"Content-Type": "application/json"}

    def post(i: int) -> Any:
        try:
            connection.request("POST", f"{url.path}/flow_runs/", json.dumps(_run(i)), headers)
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            return _Status(0, repr(exc))
        return _Status(response.status, body.decode(errors="replace"))

    try:
        return repeat(post, range(n), ok=201).summary()
    finally:
        connection.close()


@dataclass
class _Status:  # what Phase.note reads of a response
    status_code: int
    text: str


async def create_concurrent(api: str, n: int) -> dict[str, Any]:
    phase, numbers = Phase(), iter(range(n))  # shared: each client takes the next number

    async def client_loop() -> None:
        async with httpx.AsyncClient(base_url=api, timeout=30) as client:
            for i in numbers:
                if time.perf_counter() - phase.start > BUDGET:
                    return
                t = time.perf_counter()
                try:
                    phase.note(t, await client.post("/flow_runs/", json=_run(i)))
                except httpx.HTTPError as exc:
                    phase.note(t, exc)

    await asyncio.gather(*(client_loop() for _ in range(CLIENTS)))
    return phase.summary()


# -- (4) seeding and filter ------------------------------------------------------------
async def seed(url: str, count: int) -> None:
    """Bulk INSERTs into flows, flow_runs and flow_run_states (not through the API)."""
    rng, db, span = random.Random(3), Database(url), timedelta(days=30)
    first = datetime.now(UTC) - span
    flows = [{"id": uuid7(first, rng), "project_id": PROJECT, "name": f"seed-flow-{k:02d}",
              "tags": [], "created": first, "updated": first} for k in range(25)]  # fmt: skip
    kinds, shares = [s[:2] for s in SEED_STATES], [s[2] for s in SEED_STATES]
    weights = [1 / (k + 1) for k in range(len(flows))]  # a few flows run most often
    try:
        async with db.write() as session:
            await session.execute(sa.insert(Flow.__table__), flows)
        for chunk in range(0, count, 10_000):
            runs, states = [], []
            for i in range(chunk, min(count, chunk + 10_000)):
                created = first + span * (i / count)
                (kind, name), flow = rng.choices(kinds, shares)[0], rng.choices(flows, weights)[0]
                run_id, took = uuid7(created, rng), rng.lognormvariate(3.5, 1.2)
                waiting = kind in ("SCHEDULED", "PENDING")
                start = None if waiting else created + timedelta(seconds=rng.uniform(0, 5))
                end = start + timedelta(seconds=took) if start and kind != "RUNNING" else None
                path = [(kind, name, created)] if waiting else [("PENDING", "Pending", created)]
                path += [("RUNNING", "Running", start)] if start else []
                path += [(kind, name, end)] if end else []
                runs.append({  # columns left out are NULL or the model's default
                    "id": run_id, "project_id": PROJECT, "flow_id": flow["id"],
                    "name": f"seeded-{i}", "state_type": kind, "state_name": name,
                    "state_timestamp": path[-1][2], "state_details": {}, "parameters": {"i": i},
                    "tags": rng.choice([[], ["prod"], ["staging"], ["prod", "etl"]]),
                    "run_count": int(start is not None), "expected_start_time": created,
                    "start_time": start, "end_time": end, "total_run_time": took if end else 0.0,
                    "version": len(path), "created": created, "updated": path[-1][2],
                })  # fmt: skip
                states += [{"id": uuid7(at, rng), "flow_run_id": run_id, "type": t, "name": n,
                            "timestamp": at, "state_details": {}} for t, n, at in path]  # fmt: skip
            async with db.write() as session:
                await session.execute(sa.insert(FlowRun.__table__), runs)
                await session.execute(sa.insert(FlowRunState.__table__), states)
        if db.dialect == "postgresql":  # autovacuum would do this soon after, in real life
            async with db.write() as session:
                await session.execute(sa.text("ANALYZE flows, flow_runs, flow_run_states"))
    finally:
        await db.dispose()


def time_filter(api: str, body: dict[str, Any]) -> dict[str, Any]:
    with httpx.Client(base_url=api, timeout=30) as client:
        first = client.post("/flow_runs/filter", json=body)  # a warm-up, not timed
        phase = repeat(lambda _: client.post("/flow_runs/filter", json=body), range(FILTER_CALLS))
    rows = len(first.json()) if first.status_code == 200 else f"HTTP {first.status_code}"
    return phase.summary() | {"rows": rows}


def measure_backend(url: str | None, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with temporary_server(database_url=url) as server:
        url = url or f"sqlite+aiosqlite:///{server.home / 'weir.db'}"
        api, pid = server.api_url, server.process.pid
        time.sleep(5)
        out["rss_kib"] = rss_kib(pid)
        out["children"] = len(Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
        out["seq"] = create_sequential(api, args.n)
        out["lean"] = create_sequential_lean(api, args.n)
        out["conc"] = asyncio.run(create_concurrent(api, args.n))
        env = server.env(WEIR_LOGGING_LEVEL="WARNING")
        t = sc.run_snippet(sys.executable, TASKS_SNIPPET, [TASKS], env, tmp, timeout=600)
        per_task_ms = (t["tracked"][1] - t["untracked"][1]) / TASKS * 1e3
        out["tasks"] = t | {"over": (per_task_ms, t["visible"][1][0])}
        stored = httpx.post(f"{api}/flow_runs/count", json={}).json()
        t0 = time.perf_counter()
        asyncio.run(seed(url, max(0, args.runs - stored)))
        out["seed_s"] = time.perf_counter() - t0
        out["stored"] = httpx.post(f"{api}/flow_runs/count", json={}).json()
        out["filters"] = {label: time_filter(api, body) for label, body in FILTERS.items()}
        out["loaded_rss_kib"] = rss_kib(pid)
    return out


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database's URL; the database is dropped on the way out."""

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(**PG, database="postgres", timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    name = f"weir_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(run(f"CREATE DATABASE {name}"))
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(run(f"DROP DATABASE {name} WITH (FORCE)"))


# -- reporting -------------------------------------------------------------------------
def print_backend(label: str, r: dict[str, Any]) -> None:
    rss, t, vis = r["rss_kib"], r["tasks"], r["tasks"]["visible"]
    print(label)
    print(f"  (2) VmRSS of the server pid ({r['children']} child processes): idle 5 s {rss / 1024:.0f}"
          f" MiB = {rss * 1.024e-3:.0f} MB; after the load below {r['loaded_rss_kib'] / 1024:.0f} MiB")  # fmt: skip
    print(f"  (3) for scale: GET /api/health, 1 client: median {r['seq']['floor']:.1f} ms")
    for key, title in (("seq", "1 httpx client, sequential"), ("lean", "1 http.client, sequential"),
                       ("conc", f"{CLIENTS} concurrent clients")):  # fmt: skip
        s = r[key]
        print(f"      POST /api/flow_runs/, {title + ':':<28} {s['per_s']:6.1f} runs/s,"
              f" {s['done'] - s['errors']}/{s['done']} ok, {s['errors']} errors;"
              f" p50 {s['p50']:.1f} / p95 {s['p95']:.1f} / p99 {s['p99']:.1f} ms")  # fmt: skip
        for kind, count in s["kinds"].items():
            print(f"        {count} x {kind}")
    print(f"  (4) {r['stored']:,} flow runs stored: those not created above were seeded by bulk"
          f" SQL INSERTs\n      straight into the database ({r['seed_s']:.1f} s, not measured)")  # fmt: skip
    for label, f in r["filters"].items():
        bad = f", {f['errors']} failed: {f['kinds']}" if f["errors"] else ""
        print(f"      POST /api/flow_runs/filter, {label}: median {f['p50']:.1f} ms,"
              f" p95 {f['p95']:.1f} ms of {FILTER_CALLS} calls ({f['rows']} rows{bad})")  # fmt: skip
    print(f"  (5) flow of {TASKS:,} sequential no-op tasks, 2nd of 2 calls each, one process:"
          f" untracked {t['untracked'][1] * 1e3:.1f} ms, tracked {t['tracked'][1] * 1e3:.1f} ms"
          f"\n      -> overhead {t['over'][0]:.3f} ms per task; {vis[1][1]:,} task runs"
          f" visible {vis[1][0] * 1e3:.0f} ms after the flow returned (1st call:"
          f" {vis[0][0] * 1e3:.0f} ms)\n")  # fmt: skip


def print_targets(health: float, ready: float, results: dict[str, Any]) -> None:
    rows = [("start -> /api/health 200 (median)", f"{health:.2f} s", "<= 1 s", health <= 1),
            ("start -> /api/ready 200 (median)", f"{ready:.2f} s", "<= 1 s", ready <= 1)]  # fmt: skip
    for label, r in results.items():
        if isinstance(r, str):
            rows.append((f"{label}: everything", "failed", "-", False))
            continue
        if label == "SQLite":
            mb, per_s, over, vis = r["rss_kib"] * 1.024e-3, r["lean"]["per_s"], *r["tasks"]["over"]
            rows += [
                ("idle RSS (SQLite)", f"{mb:.0f} MB", "<= 120 MB", mb <= 120),
                ("created/s, 1 client (SQLite, http.client)", f"{per_s:.0f}/s", ">= 1,000/s", per_s >= 1000),
                ("created/s, 1 client (SQLite, httpx)", f"{r['seq']['per_s']:.0f}/s", "(for scale)", True),
                ("tracked overhead per task (SQLite)", f"{over:.3f} ms", "<= 0.2 ms", over <= 0.2),
                ("task runs visible after the flow", f"{vis:.3f} s", "<= 0.5 s", vis <= 0.5),
            ]  # fmt: skip
        errors = r["conc"]["errors"]
        rows.append((f"errors, {CLIENTS} concurrent ({label})", str(errors), "0", errors == 0))
        for what, f in zip(("limit 200", "state+sort"), r["filters"].values(), strict=True):
            name, ms = f"filter {what}, {r['stored']:,} runs ({label})", f["p50"]
            rows.append((name, f"{ms:.1f} ms", "<= 20 ms", ms <= 20))
    print("(6) against the targets of issue 3 (filters: median)")
    for name, value, target, ok in rows:
        print(f"    {name:<46} {value:>10}   target {target:<10} {'PASS' if ok else 'MISS'}")
    print(f"\n{PREFECT_REFERENCE}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="300 runs created, 10,000 stored")
    ap.add_argument("--no-postgres", action="store_true", help="SQLite only")
    ap.add_argument("--n", type=int, help="flow runs created per phase (2,000; quick: 300)")
    ap.add_argument("--runs", type=int, help="flow runs stored (100,000; quick: 10,000)")
    args = ap.parse_args()
    compile_weir()
    args.n = args.n or (300 if args.quick else 2_000)
    args.runs = args.runs or (10_000 if args.quick else 100_000)
    commit = git_commit()
    print(f"weir server benchmark: commit {commit}, weir {weir.__version__},"
          f" Python {sys.version.split()[0]}, {sys.platform}, {os.cpu_count()} CPU(s)")  # fmt: skip
    print(f"  N = {args.n:,} flow runs created per phase, {args.runs:,} stored for the filters;"
          " server and clients on this machine; task flows with WEIR_LOGGING_LEVEL=WARNING\n")  # fmt: skip
    results: dict[str, dict[str, Any] | str] = {}
    health = ready = float("nan")
    with tempfile.TemporaryDirectory(prefix="weir-bench-server-") as tmp_dir:
        tmp = Path(tmp_dir)
        print("(1) weir server start, a fresh home and SQLite each time, from Popen:")
        try:
            starts = [start_once(tmp) for _ in range(STARTS)]
            for i, (h, r) in enumerate(starts, 1):
                print(f"    start {i}: /api/health 200 after {h:.3f} s, /api/ready after {r:.3f} s")
            health, ready = (statistics.median(s[k] for s in starts) for k in (0, 1))
            print(f"    median of {STARTS}: health {health:.3f} s, ready {ready:.3f} s\n")
        except Exception as exc:
            print(f"    failed: {type(exc).__name__}: {exc}\n")
        finally:
            sc.kill_all()
        for label in ["SQLite"] + ([] if args.no_postgres else ["PostgreSQL"]):
            try:
                with pg_database() if label == "PostgreSQL" else contextlib.nullcontext() as url:
                    results[label] = measure_backend(url, args, tmp)
                    where = url.rsplit("/", 1)[-1] if url else "the default file, in a temp home"
                print_backend(f"{label} ({where})", results[label])
            except Exception as exc:
                results[label] = f"{type(exc).__name__}: {exc}"
                print(f"{label}: failed: {results[label]}\n")
    print_targets(health, ready, results)
    if (after := git_commit()) != commit:
        print(f"\nNote: the checkout changed during the run (now {after}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
