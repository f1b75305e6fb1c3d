"""Scheduled runs at scale (issue 5's benchmark): are they on time, all there, and once?

    .venv/bin/python benchmarks/scheduler.py [--minutes 5] [--cron-deployments 500]
        [--interval-deployments 500] [--serve-processes 4] [--database sqlite|postgres]

A real `weir server start` on a fresh SQLite file (or a fresh PostgreSQL database on
127.0.0.1:5432, created and dropped), `--cron-deployments` deployments on `* * * * *`
and `--interval-deployments` every `--interval` seconds (default anchor: they all fire
on :00 and :30), served by `--serve-processes` `weir.serve(...)` processes, so what is
measured is dispatch, not Python start-up. The flow only appends its run id and the
time to a file. After a warm-up (every deployment registered and scheduled), runs
scheduled in a window of `--minutes` whole minutes are counted; in its middle the
server is stopped (SIGTERM) and started again on the same database and port while
the serving processes keep running. After the window, up to `--drain` seconds for
its runs to finish. Prints, and asserts nothing:

- runs expected in the window vs found: missing, duplicates (same deployment and
  scheduled time), unexpected times, final states;
- lateness, start_time - expected_start_time read from the API (p50, p95, p99, max),
  also to the flow's first line, and for the runs due around the restart;
- the scheduler's pass time (GET /api/services, else the /metrics histogram);
- CPU seconds and peak RSS of the server and of the serving processes (with the
  runs they reaped).

Targets: p99 lateness <= 1 s, zero missing, zero duplicates. The same scenario
against Prefect: `compare_prefect.py --scenarios scheduler`.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _prefect_scenarios as sc
from _bytecode import compile_weir

from weir.testing.server import free_port

ANCHOR = datetime(2020, 1, 1, tzinfo=UTC).timestamp()  # interval schedules count from here
ACTIVE = ["SCHEDULED", "PENDING", "RUNNING"]
TARGET_P99_S = 1.0

# The flow and its serving processes; `{pkg}` is weir or prefect, `{out}` the record file.
# A run process imports this file for its flow: the serving part runs only as __main__.
FLOWS = """
import sys, time
from {pkg} import flow, runtime


@flow(name="tick")
def tick() -> None:
    with open({out!r}, "a") as record:
        record.write(f"{{runtime.flow_run.id}} {{time.time()!r}}\\n")


if __name__ == "__main__":
    part, parts, crons, intervals, every, limit = map(int, sys.argv[1:7])
    execution = sys.argv[7]
    cron = [f"cron-{{i:04d}}" for i in range(crons) if i % parts == part]
    interval = [f"every-{{i:04d}}" for i in range(intervals) if i % parts == part]
{serve}
"""
SERVE = {
    "weir": """\
    from weir import serve
    pairs = [(tick, {"name": name, "cron": "* * * * *"}) for name in cron]
    pairs += [(tick, {"name": name, "interval": every}) for name in interval]
    serve(*pairs, limit=limit or None, execution=execution)
""",
    "prefect": """\
    from datetime import datetime, timezone
    from prefect import serve
    from prefect.schedules import Interval
    anchor = datetime(2020, 1, 1, tzinfo=timezone.utc)  # weir's default: both fire on :00, :30
    ds = [tick.to_deployment(name=name, cron="* * * * *") for name in cron]
    ds += [tick.to_deployment(name=name, schedule=Interval(every, anchor_date=anchor))
           for name in interval]
    serve(*ds, **({"limit": limit} if limit else {}))
""",
}


class Side(Protocol):
    """What the scenario needs of weir or Prefect (compare_prefect.Target has it)."""

    name: str
    python: str

    def server_cmd(self, port: int) -> list[str]: ...
    def env(self, home: Path, **extra: str) -> dict[str, str]: ...


@dataclass
class Options:
    minutes: int = 5
    crons: int = 500
    intervals: int = 500
    every: int = 30  # seconds between the runs of an interval deployment
    processes: int = 4  # serving processes
    limit: int = 0  # runs at once per serving process; 0: the tool's default
    warmup: float = 30.0  # seconds between "all scheduled" and the window (at least)
    drain: float = 120.0  # seconds after the window for its runs to finish (at most)
    restart: str = "between"  # "between" ticks, "over" a tick, or "none"
    execution: str = "thread"  # weir's serve(): a run in a "thread" or its own "process"
    server_env: dict[str, str] = field(default_factory=dict)  # e.g. a database URL


def pct(values: list[float], p: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def expected_runs(names: list[str], w0: float, w1: float, every: int) -> set[tuple[str, float]]:
    """(deployment name, scheduled epoch second) of every run due in [w0, w1)."""
    out: set[tuple[str, float]] = set()
    for name in names:
        if name.startswith("cron-"):
            step, first = 60, math.ceil(w0 / 60) * 60
        else:
            step, first = every, int(ANCHOR) + math.ceil((w0 - ANCHOR) / every) * every
        out.update((name, float(t)) for t in range(first, math.ceil(w1), step))
    return out


def epoch(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


def analyse(
    runs: list[dict[str, Any]],
    names: dict[str, str],
    window: tuple[float, float],
    every: int,
    first_lines: dict[str, float],
    around_restart: tuple[float, float] | None,
) -> dict[str, Any]:
    """The figures, from the API's runs (id, deployment_id, expected_start_time,
    start_time, state_type, state_name) of the deployments `names` (id -> name)."""
    w0, w1 = window
    mine = []
    for run in runs:
        expected = epoch(run["expected_start_time"])
        if run.get("deployment_id") in names and expected is not None and w0 <= expected < w1:
            mine.append((names[run["deployment_id"]], round(expected, 3), run))
    keys = Counter((name, at) for name, at, _ in mine)
    want = expected_runs(sorted(names.values()), w0, w1, every)
    late = {r["id"]: s - at for _, at, r in mine if (s := epoch(r.get("start_time"))) is not None}
    first = [first_lines[r["id"]] - at for _, at, r in mine if r["id"] in first_lines]
    near = []
    if around_restart is not None:
        lo, hi = around_restart
        near = [late[r["id"]] for _, at, r in mine if lo <= at <= hi and r["id"] in late]
    states = Counter(f"{r['state_type']}/{r['state_name']}" for _, _, r in mine)
    lateness = list(late.values())
    return {
        "expected": len(want),
        "found": len(mine),
        "missing": len(want - set(keys)),
        "duplicates": sum(n - 1 for n in keys.values()),
        "unexpected": len(set(keys) - want),
        "not_started": len(mine) - len(late),
        "ran": len(first),
        "states": dict(states.most_common()),
        **{f"late_p{p}_s": pct(lateness, p) for p in (50, 95, 99)},
        "late_max_s": max(lateness, default=math.nan),
        "first_line_p50_s": pct(first, 50),
        "first_line_p99_s": pct(first, 99),
        "restart_runs": len(near),
        "restart_p50_s": pct(near, 50),
        "restart_max_s": max(near, default=math.nan),
    }


# -- reading the API (the same requests work on weir and Prefect) -----------------------
def read_all(http: httpx.Client, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while True:
        for attempt in range(5):  # a busy server may drop a request: the figures are worth it
            try:
                response = http.post(path, json={**body, "limit": 200, "offset": len(rows)})
                response.raise_for_status()
                break
            except httpx.HTTPError:
                if attempt == 4:
                    raise
                time.sleep(3)
        page = response.json()
        rows += page
        if len(page) < 200:
            return list({row["id"]: row for row in rows}.values())


def count(http: httpx.Client, path: str, body: dict[str, Any]) -> int:
    with contextlib.suppress(httpx.HTTPError, ValueError):
        response = http.post(path, json=body)
        if response.status_code == 200:
            return int(response.json())
    return -1


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


def runs_between(w0: float, w1: float, **more: Any) -> dict[str, Any]:
    return {"flow_runs": {"expected_start_time": {"after_": iso(w0), "before_": iso(w1)}, **more}}


# -- processes: CPU and RSS by session, and the scheduler's passes ------------------------
def session_usage(sid: int) -> tuple[float, int]:
    """CPU seconds (with reaped children) and RSS bytes of the live processes of `sid`."""
    tick, page, cpu, rss = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE"), 0.0, 0
    for pid in sc._pids():
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[3]) != sid or fields[0] == "Z":
                continue
            cpu += sum(int(f) for f in fields[11:15]) / tick  # utime stime cutime cstime
            rss += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
    return cpu, rss


class Sampler(threading.Thread):
    """Every 2 s: CPU and RSS per role, and (weir) the scheduler's last pass."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base, self.stop = base, threading.Event()
        self.roles: dict[str, list[int]] = {"server": [], "serving": []}
        self.cpu: dict[int, float] = {}  # session -> its last CPU figure
        self.peak: dict[str, int] = Counter()
        self.passes: dict[tuple[int, int], tuple[float, float]] = {}  # -> (when, seconds)
        self.pass_source = ""
        self._metrics: tuple[float, float] | None = None

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=2) as http:
            while not self.stop.wait(2.0):
                self.sample()
                with contextlib.suppress(httpx.HTTPError, ValueError, LookupError, TypeError):
                    self.read_passes(http)

    def sample(self) -> None:
        for role, sessions in self.roles.items():
            rss = 0
            for sid in list(sessions):
                cpu, size = session_usage(sid)
                if size:
                    self.cpu[sid], rss = cpu, rss + size
            self.peak[role] = max(self.peak[role], rss)

    def cpu_of(self, role: str) -> float:
        return sum(self.cpu.get(sid, 0.0) for sid in self.roles[role])

    def read_passes(self, http: httpx.Client) -> None:
        response = http.get("/api/services")
        if response.status_code == 200:
            body = response.json()
            rows = body.get("services", body) if isinstance(body, dict) else body
            row = next((r for r in rows if r["name"] == "scheduler"), None)
            if row is None:
                return
            if row.get("last_pass_seconds") is not None:
                key = (len(self.roles["server"]), int(row["passes"]))
                self.passes.setdefault(key, (time.time(), float(row["last_pass_seconds"])))
                self.pass_source = "GET /api/services"
            return
        from prometheus_client.parser import text_string_to_metric_families

        response = http.get("/metrics")
        if response.status_code != 200:
            return
        total = n = 0.0
        for family in text_string_to_metric_families(response.text):
            for s in family.samples:
                if s.labels.get("service") == "scheduler" and s.name.startswith(
                    "weir_service_pass_duration_seconds"
                ):
                    total += s.value if s.name.endswith("_sum") else 0.0
                    n += s.value if s.name.endswith("_count") else 0.0
        before, self._metrics = self._metrics, (total, n)
        if before is not None and n > before[1]:  # mean of the passes since the last sample
            mean = (total - before[0]) / (n - before[1])
            self.passes[(len(self.roles["server"]), len(self.passes))] = (time.time(), mean)
            self.pass_source = "/metrics (mean per 2 s sample)"
        elif before is not None and n < before[1]:
            self._metrics = None  # the server restarted: its counters too


# -- the scenario ------------------------------------------------------------------------
def run_scenario(side: Side, opts: Options, tmp: Path, say: Callable[[str], None]) -> dict:
    """Start the server and the serving processes of `side`, measure one window, stop
    everything; the figures as a dict (see `analyse`) plus timings of the phases."""
    home, port = tmp / f"scheduler-{side.name}", free_port()
    project, record = home / "project", home / "ran.txt"
    project.mkdir(parents=True, exist_ok=True)
    record.touch()
    text = FLOWS.format(pkg=side.name, out=str(record), serve=SERVE[side.name])
    (project / "bench_flows.py").write_text(text)
    base = f"http://127.0.0.1:{port}"
    env = side.env(home, **{f"{side.name.upper()}_API_URL": f"{base}/api"}, **opts.server_env)
    sampler = Sampler(base)
    servers: list[subprocess.Popen[bytes]] = []
    serving: list[subprocess.Popen[bytes]] = []
    out: dict[str, Any] = {"processes": opts.processes}

    def start_server() -> float:
        proc = sc.spawn(side.server_cmd(port), env, home, home / f"server-{len(servers)}.log")
        servers.append(proc)
        sampler.roles["server"].append(proc.pid)
        return sc.wait_healthy(f"{base}/api/health", proc, timeout=180)

    total = opts.crons + opts.intervals
    try:
        out["startup_s"] = start_server()
        t0 = time.time()
        for part in range(opts.processes):
            args = [part, opts.processes, opts.crons, opts.intervals, opts.every, opts.limit]
            args.append(opts.execution)  # weir's serve() only: Prefect's runs in processes
            cmd = [side.python, "bench_flows.py", *map(str, args)]
            proc = sc.spawn(cmd, env, project, home / f"serve-{part}.log")
            serving.append(proc)
            sampler.roles["serving"].append(proc.pid)
        sampler.start()
        with httpx.Client(base_url=f"{base}/api", timeout=60) as http:
            while (n := count(http, "/deployments/count", {})) < total:
                for part, proc in enumerate(serving):
                    if proc.poll() is not None:
                        tail = (home / f"serve-{part}.log").read_text().splitlines()[-12:]
                        raise RuntimeError(
                            f"serving process {part} exited with {proc.returncode} after"
                            f" {time.time() - t0:.0f} s ({n}/{total} deployments registered):\n"
                            + "\n".join(tail)
                        )
                if time.time() - t0 > 600:
                    raise RuntimeError(f"{n}/{total} deployments registered after 600 s")
                time.sleep(0.5)
            out["registered_s"] = time.time() - t0
            while count(http, "/flow_runs/count", runs_between(time.time(), 4e9)) < total:
                if time.time() - t0 > 900:
                    raise RuntimeError("the scheduler did not schedule every deployment in 900 s")
                time.sleep(0.5)
            out["scheduled_s"] = time.time() - t0
            w0 = math.ceil((time.time() + opts.warmup) / 60) * 60
            w1 = w0 + 60 * opts.minutes
            say(f"  window {iso(w0)[11:19]}-{iso(w1)[11:19]} UTC; warm-up until then")
            sleep_until(w0)
            sampler.sample()
            cpu0 = {role: sampler.cpu_of(role) for role in sampler.roles}
            around = None
            if opts.restart != "none":
                at = w0 + 30 * opts.minutes + (10 if opts.restart == "between" else -2)
                sleep_until(at)
                stopped = time.time()
                sampler.sample()
                sc.kill_group(servers[-1].pid, grace=30)
                out["stop_s"] = time.time() - stopped
                out["ready_s"] = start_server()
                out["down_s"] = time.time() - stopped
                around = (stopped, time.time() + 30)
                say(f"  server restarted at {iso(stopped)[11:19]}: down {out['down_s']:.1f} s")
            sleep_until(w1)
            active = runs_between(w0, w1 - 0.001, state={"type": {"any_": ACTIVE}})
            while count(http, "/flow_runs/count", active) != 0 and time.time() < w1 + opts.drain:
                time.sleep(2)
            out["drained_s"] = time.time() - w1
            sampler.sample()
            seconds = time.time() - w0
            for role in sampler.roles:
                used = sampler.cpu_of(role) - cpu0[role]
                out[f"{role}_cpu_s"], out[f"{role}_cores"] = used, used / seconds
                out[f"{role}_peak_rss_mib"] = sampler.peak[role] / 2**20
            runs = read_all(http, "/flow_runs/filter", runs_between(w0, w1) | {"sort": "ID_DESC"})
            names = {d["id"]: d["name"] for d in read_all(http, "/deployments/filter", {})}
        lines = (line.split() for line in record.read_text().splitlines())
        first_lines = {parts[0]: float(parts[1]) for parts in lines if len(parts) == 2}
        out |= analyse(runs, names, (w0, w1), opts.every, first_lines, around)
        passes = [took for at, took in sampler.passes.values() if at >= w0]
        out["passes"], out["pass_source"] = len(passes), sampler.pass_source or "not available"
        if passes:
            out["pass_p50_s"], out["pass_max_s"] = statistics.median(passes), max(passes)
        warmup = [took for at, took in sampler.passes.values() if at < w0]
        out["pass_warmup_max_s"] = max(warmup, default=math.nan)
        return out
    except httpx.HTTPError as exc:  # the API failed us: a figure we cannot give
        raise RuntimeError(f"{type(exc).__name__} from the {side.name} API: {exc}") from exc
    finally:
        sampler.stop.set()
        for proc in [*serving, *servers]:
            sc.kill_group(proc.pid, grace=10)
        for proc in [*serving, *servers]:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)


def sleep_until(at: float) -> None:
    while (left := at - time.time()) > 0:
        time.sleep(min(left, 1.0))


# -- reporting -------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(r: dict[str, Any], opts: Options) -> list[str]:
    s = lambda key: f"{r.get(key, math.nan):.2f} s"  # noqa: E731
    lines = [
        f"  registered in {s('registered_s')}, every deployment scheduled after"
        f" {s('scheduled_s')}; server start {s('startup_s')}",
        (
            f"  server restart: SIGTERM -> exit {s('stop_s')}, down {s('down_s')}"
            if "down_s" in r
            else "  no server restart"
        )
        + f"; the window's runs ended {s('drained_s')} after it",
        f"  runs in the window: expected {r['expected']}, found {r['found']}, missing"
        f" {r['missing']}, duplicates {r['duplicates']}, unexpected times {r['unexpected']}"
        f"   target 0 missing, 0 duplicates: {verdict(r['missing'] == r['duplicates'] == 0)}",
        f"  final states: {', '.join(f'{k} {v}' for k, v in r['states'].items()) or '-'};"
        f" never started {r['not_started']}; flow body ran {r['ran']}",
        f"  lateness, start_time - expected (n={r['found'] - r['not_started']}):"
        f" p50 {s('late_p50_s')}  p95 {s('late_p95_s')}  p99 {s('late_p99_s')}"
        f"  max {s('late_max_s')}   target p99 <= {TARGET_P99_S:g} s:"
        f" {verdict(r['late_p99_s'] <= TARGET_P99_S)}",
        f"  lateness to the flow's first line: p50 {s('first_line_p50_s')}"
        f"  p99 {s('first_line_p99_s')}",
    ]
    if r.get("restart_runs"):
        lines.append(
            f"  runs due from the SIGTERM to 30 s after the restart (n={r['restart_runs']}):"
            f" p50 {s('restart_p50_s')}  max {s('restart_max_s')}"
        )
    if "pass_p50_s" in r:
        lines.append(
            f"  scheduler pass in the window ({r['pass_source']}, {r['passes']} passes):"
            f" median {r['pass_p50_s'] * 1e3:.0f} ms, max {r['pass_max_s'] * 1e3:.0f} ms;"
            f" longest before the window {r['pass_warmup_max_s'] * 1e3:.0f} ms"
        )
    else:
        lines.append(f"  scheduler pass: {r.get('pass_source', 'not available')}")
    for role, label in (("server", "server"), ("serving", f"{opts.processes} serving processes")):
        lines.append(
            f"  {label}: CPU {r[f'{role}_cpu_s']:.0f} s in the window and drain"
            f" ({r[f'{role}_cores']:.2f} cores), peak RSS {r[f'{role}_peak_rss_mib']:.0f} MiB"
        )
    return lines


@contextlib.contextmanager
def database(kind: str, tmp: Path) -> Iterator[dict[str, str]]:
    if kind == "sqlite":
        yield {"WEIR_SERVER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'bench.db'}"}
        return
    from server import pg_database  # benchmarks/server.py: a fresh database, dropped after

    with pg_database() as url:
        yield {"WEIR_SERVER_DATABASE_URL": url}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=int, default=5, help="the measured window (%(default)s)")
    ap.add_argument("--cron-deployments", type=int, default=500, help="(%(default)s)")
    ap.add_argument("--interval-deployments", type=int, default=500, help="(%(default)s)")
    ap.add_argument("--interval", type=int, default=30, help="seconds (%(default)s)")
    ap.add_argument("--serve-processes", type=int, default=4, help="(%(default)s)")
    ap.add_argument("--limit", type=int, default=0, help="runs at once per serving process")
    ap.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--warmup", type=float, default=30.0, help="seconds, at least (%(default)s)")
    ap.add_argument("--drain", type=float, default=120.0, help="seconds, at most (%(default)s)")
    ap.add_argument(
        "--restart",
        choices=["between", "over", "none"],
        default="between",
        help="restart the server mid-window 10 s after a tick, or 2 s before one (over)",
    )
    ap.add_argument(
        "--execution",
        choices=["thread", "process"],
        default="thread",
        help="serve(execution=...): each run in a thread of the serving process, or in a"
        " process of its own (%(default)s)",
    )
    args = ap.parse_args(argv)
    compile_weir()
    opts = Options(
        args.minutes, args.cron_deployments, args.interval_deployments, args.interval,
        args.serve_processes, args.limit, args.warmup, args.drain, args.restart,
        args.execution,
    )  # fmt: skip
    from compare_prefect import weir_target

    from server import git_commit

    per_minute = opts.crons + opts.intervals * 60 / opts.every
    print(f"weir scheduler benchmark: commit {git_commit()}, {os.cpu_count()} CPU(s),"
          f" {args.database}; {opts.crons} deployments on `* * * * *` and {opts.intervals}"
          f" every {opts.every} s\n  = {per_minute:.0f} runs a minute ({per_minute / 60:.1f}/s"
          f" on average, in bursts on the ticks), served by {opts.processes} `weir.serve()`"
          f" processes (execution={opts.execution!r}) ({math.ceil((opts.crons + opts.intervals) / opts.processes)} deployments"
          f" each, limit {opts.limit or 'none'}); window {opts.minutes} min", flush=True)  # fmt: skip
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="weir-bench-scheduler-") as tmp:
        try:
            with database(args.database, Path(tmp)) as db_env:
                opts.server_env = db_env
                result = run_scenario(weir_target(), opts, Path(tmp), print)
        except RuntimeError as exc:
            print(f"failed: {exc}")
            for log in sorted(Path(tmp).rglob("*.log")):
                print(f"--- {log.name}:\n" + "\n".join(log.read_text().splitlines()[-15:]))
            return 1
        finally:
            sc.kill_all()
    print("\n".join(report(result, opts)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
