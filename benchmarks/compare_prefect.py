"""Measure weir and Prefect side by side, with the same method for both.

    python benchmarks/compare_prefect.py --install          # once: Prefect into its own venv
    python benchmarks/compare_prefect.py --weir             # weir and Prefect, as a table
    python benchmarks/compare_prefect.py --weir --no-prefect --json

Prefect is installed into a separate virtual environment (default
~/.cache/weir-bench/prefect-venv) and never into weir's. Each scenario runs as a
snippet in the target's own interpreter. Scenarios: `import` time, the engine
(a flow of sequential no-op tasks, without and with a server), the server
(start-up, idle RSS, flow-run creation sequential and concurrent, filter latency),
dispatch (a process work pool, a deployment and one worker: `deployment run` to
the flow's first line, and to COMPLETED in the API), and, when asked for, scheduler
(issue 5's scenario from scheduler.py: cron and interval deployments run by `serve()`
processes, the server restarted mid-window; lateness, missing and duplicate runs).
Everything talks to 127.0.0.1 only; every process started here is killed, as a
process group, on the way out; files go to a temp dir and the venv path only.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _prefect_scenarios as sc
import scheduler
from _bytecode import compile_weir

from weir.testing.server import free_port

PREFECT_PINS = ["prefect==3.8.8", "fastapi<0.151", "sqlalchemy<2.1"]
DEFAULT_VENV = Path.home() / ".cache" / "weir-bench" / "prefect-venv"
NA = "not available yet"


@dataclass
class Target:
    """One side of the comparison: its package, its interpreter and its CLI."""

    name: str  # "weir" or "prefect": also the package imported
    python: str
    cli: list[str]  # the command line tool, run with the target's interpreter

    def server_cmd(self, port: int) -> list[str]:
        return [*self.cli, "server", "start", "--host", "127.0.0.1", "--port", str(port)]

    def env(self, home: Path, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "WEIR_"))}
        env.update(
            PREFECT_HOME=str(home / "prefect-home"),
            WEIR_HOME=str(home / "weir-home"),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_UI_ENABLED="false",
            PREFECT_SERVER_UI_ENABLED="false",
            PREFECT_SERVER_ALLOW_EPHEMERAL_MODE="true",
            DO_NOT_TRACK="1",
            NO_PROXY="127.0.0.1,localhost",
            no_proxy="127.0.0.1,localhost",
        )
        env.update(extra)
        for key in ("PREFECT_HOME", "WEIR_HOME"):
            Path(env[key]).mkdir(parents=True, exist_ok=True)
        return env


def prefect_target(venv: Path) -> Target:
    return Target("prefect", str(venv / "bin" / "python"), [str(venv / "bin" / "prefect")])


def weir_target() -> Target:
    main = "from weir.cli.main import main; main()"
    return Target("weir", sys.executable, [sys.executable, "-c", main])


# --- install -------------------------------------------------------------------------


def prefect_version(venv: Path) -> str | None:
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    code = "from importlib.metadata import version; print(version('prefect'))"
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
    return proc.stdout.strip() if proc.returncode == 0 else None


def install_prefect(venv: Path) -> None:
    """Create `venv` (if needed) and pip install the pinned Prefect into it."""
    if prefect_version(venv) == "3.8.8":
        print(f"Prefect 3.8.8 already installed in {venv}", file=sys.stderr)
        return
    start = time.perf_counter()
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *PREFECT_PINS]
    print("+ " + " ".join(pip), file=sys.stderr)
    subprocess.run(pip, check=True, timeout=1800)
    size = subprocess.run(["du", "-sh", str(venv)], capture_output=True, text=True).stdout.split()
    took = time.perf_counter() - start
    print(f"installed in {took:.0f}s; venv size {size[0] if size else '?'}", file=sys.stderr)


# --- scenarios: each takes a target and returns {metric: value or str} ----------------


@dataclass
class Ctx:
    tmp: Path  # everything the children write goes under here
    tasks: int
    runs: int
    clients: int
    budget: float  # seconds per load phase
    client_python: str  # a Python with httpx, used as the load client for both targets
    dispatch_runs: int = 5  # runs triggered one at a time in the dispatch scenario
    schedule: scheduler.Options = field(default_factory=scheduler.Options)


def scenario_import(t: Target, ctx: Ctx) -> dict:
    """Median wall time of 5 `python -c "import X"` runs minus the median of `python -c pass`."""
    env = t.env(ctx.tmp / f"import-{t.name}")

    def wall(code: str) -> float:
        start = time.perf_counter()
        run = [t.python, "-c", code]
        subprocess.run(run, env=env, cwd=ctx.tmp, check=True, capture_output=True, timeout=120)
        return time.perf_counter() - start

    wall(f"import {t.name}")  # warm the OS file cache; not counted
    base, imp = [], []
    for _ in range(5):
        base.append(wall("pass"))
        imp.append(wall(f"import {t.name}"))
    return {"import_s": statistics.median(imp) - statistics.median(base)}


def _engine(t: Target, ctx: Ctx, label: str, **env: str) -> dict:
    home = ctx.tmp / f"engine-{label}-{t.name}"
    home.mkdir(parents=True, exist_ok=True)
    r = sc.run_snippet(
        t.python, sc.ENGINE, [ctx.tasks, t.name, 60], t.env(home, **env), home, timeout=900
    )
    out = {
        f"{label}_first_call_s": r["call_s"][0],
        f"{label}_second_call_s": r["call_s"][1],
        f"{label}_per_task_us": r["loop_s"][1] / ctx.tasks * 1e6,
    }
    kept = r.get("kept")
    out[f"{label}_kept"] = f"{sum(kept)}/{2 * ctx.tasks}" if kept else "none (no store)"
    return out


def scenario_engine(t: Target, ctx: Ctx) -> dict:
    """Flow of N no-op tasks, twice, with no server configured (Prefect: temporary server)."""
    return _engine(t, ctx, "local")


def server_available(t: Target, ctx: Ctx) -> bool:
    env = t.env(ctx.tmp / "probe")
    cmd = [*t.cli, "server", "start", "--help"]
    try:
        proc = subprocess.run(cmd, env=env, cwd=ctx.tmp, capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0


def scenario_server(t: Target, ctx: Ctx) -> dict:
    """Start-up, idle RSS, tracked engine run, flow-run creation and filter latency."""
    if not server_available(t, ctx):
        return {"server": NA}
    home = ctx.tmp / f"server-{t.name}"
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = t.env(home)
    proc = sc.spawn(t.server_cmd(port), env, home, home / "server.log")
    try:
        out: dict = {"startup_s": sc.wait_healthy(f"{base}/api/health", proc, timeout=180)}
        time.sleep(5)
        out["idle_rss_mib"] = sc.session_rss_mib(proc.pid)
        out.update(_engine(t, ctx, "tracked", **{f"{t.name.upper()}_API_URL": f"{base}/api"}))
        load = sc.run_snippet(
            ctx.client_python,
            sc.LOAD,
            [base, ctx.runs, ctx.clients, ctx.budget],
            env,
            home,
            timeout=3 * ctx.budget + 300,
        )
        for phase in ("sequential", "concurrent"):
            p = load[phase]
            out[f"{phase}_per_s"] = p["per_s"]
            out[f"{phase}_done"] = f"{p['attempted'] - p['errors']}/{p['attempted']} ok"
            out[f"{phase}_p50_ms"], out[f"{phase}_p95_ms"] = p["p50_ms"], p["p95_ms"]
            out[f"{phase}_error_kinds"] = p["error_kinds"]
        out["filter_ms"] = load["filter_median_ms"]
        out["runs_in_db"] = load["runs_in_db"]
        out["loaded_rss_mib"] = sc.session_rss_mib(proc.pid)
        return out
    finally:
        sc.kill_group(proc.pid)
        proc.wait(timeout=10)


DISPATCH_FLOW = """
import time
from pathlib import Path

from {pkg} import flow, runtime


@flow
def first_line(out: str) -> None:
    started = time.time()
    Path(out, str(runtime.flow_run.id)).write_text(repr(started))
"""


def scenario_dispatch(t: Target, ctx: Ctx) -> dict:
    """Issue 4's scenario: a process work pool, a deployment, one worker; then
    `<cli> deployment run` -> the flow's first line, and -> COMPLETED in the API."""
    if not server_available(t, ctx):
        return {"dispatch": NA}
    home = ctx.tmp / f"dispatch-{t.name}"
    project = home / "project"
    out = home / "out"
    project.mkdir(parents=True, exist_ok=True)
    out.mkdir(exist_ok=True)
    (project / "flows.py").write_text(DISPATCH_FLOW.format(pkg=t.name))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = t.env(home, **{f"{t.name.upper()}_API_URL": f"{base}/api"})
    server = sc.spawn(t.server_cmd(port), env, home, home / "server.log")
    worker = None
    try:
        sc.wait_healthy(f"{base}/api/health", server, timeout=180)
        cli = [*t.cli, "--no-prompt"] if t.name == "prefect" else t.cli

        def run(*args: str) -> str:
            proc = subprocess.run(
                [*cli, *args], env=env, cwd=project, capture_output=True, text=True, timeout=300
            )
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(args)}: {proc.stdout[-500:]} {proc.stderr[-500:]}")
            return proc.stdout

        run("work-pool", "create", "bench", "--type", "process")
        deploy = ["deploy", "flows.py:first_line", "--name", "dispatch"]
        pool = ["-p", "bench"] if t.name == "prefect" else ["--pool", "bench"]
        run(*deploy, *pool, "--param", f"out={out}")
        worker = sc.spawn([*t.cli, "worker", "start", "-p", "bench"], env, project, home / "w.log")
        time.sleep(3)  # the worker registers and starts polling
        first, done = [], []
        for _ in range(ctx.dispatch_runs):
            before = set(os.listdir(out))
            t0 = time.time()
            run("deployment", "run", "first-line/dispatch")
            new: set[str] = set()
            deadline = time.monotonic() + 120
            while not new and time.monotonic() < deadline:
                new = set(os.listdir(out)) - before
                time.sleep(0.005)
            if not new:
                return {"dispatch": "the run did not start within 120 s"}
            run_id = new.pop()
            text = ""
            while not text:
                text = (out / run_id).read_text()
            first.append(float(text) - t0)
            while time.monotonic() < deadline:
                state = sc.get_json(f"{base}/api/flow_runs/{run_id}").get("state_type")
                if state == "COMPLETED":
                    done.append(time.time() - t0)
                    break
                time.sleep(0.01)
        return {
            "dispatch_first_line_p50_s": statistics.median(first),
            "dispatch_first_line_max_s": max(first),
            "dispatch_completed_p50_s": statistics.median(done) if done else None,
        }
    finally:
        for proc in (worker, server):
            if proc is not None:
                sc.kill_group(proc.pid)
                proc.wait(timeout=10)


def scenario_scheduler(t: Target, ctx: Ctx) -> dict:
    """Issue 5's scenario (see scheduler.py): `* * * * *` and interval deployments run by
    `serve()` processes for a window of minutes, the server restarted in its middle."""
    if not server_available(t, ctx):
        return {"scheduler": NA}
    say = functools.partial(print, file=sys.stderr, flush=True)
    r = scheduler.run_scenario(t, ctx.schedule, ctx.tmp, say)
    r["found_of"] = f"{r['found']}/{r['expected']}"
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()}


SCENARIOS: dict[str, Callable[[Target, Ctx], dict]] = {
    "import": scenario_import,
    "engine": scenario_engine,
    "server": scenario_server,
    "dispatch": scenario_dispatch,
    "scheduler": scenario_scheduler,
}

# (scenario, metric key, row label, format, "lower"/"higher" is better or None: no ratio)
ROWS = [
    ("import", "import_s", "import (s, median of 5, minus `python -c pass`)", ".3f", "lower"),
    ("engine", "local_first_call_s", "engine, no server: 1st flow call (s)", ".2f", "lower"),
    ("engine", "local_second_call_s", "engine, no server: 2nd flow call (s)", ".3f", "lower"),
    ("engine", "local_per_task_us", "engine, no server: per task, 2nd call (µs)", ".0f", "lower"),
    ("engine", "local_kept", "engine, no server: task runs kept", "", None),
    ("server", "server", "server", "", None),
    ("server", "startup_s", "server: start -> /api/health 200 (s)", ".2f", "lower"),
    ("server", "idle_rss_mib", "server: RSS idle 5 s, process tree (MiB)", ".0f", "lower"),
    ("server", "tracked_first_call_s", "engine, tracked: 1st flow call (s)", ".2f", "lower"),
    ("server", "tracked_second_call_s", "engine, tracked: 2nd flow call (s)", ".3f", "lower"),
    ("server", "tracked_per_task_us", "engine, tracked: per task, 2nd call (µs)", ".0f", "lower"),
    ("server", "tracked_kept", "engine, tracked: task runs kept", "", None),
    ("server", "sequential_per_s", "create flow run, sequential (runs/s)", ".1f", "higher"),
    ("server", "sequential_done", "  sequential: done", "", None),
    ("server", "sequential_p50_ms", "  sequential: p50 (ms)", ".1f", "lower"),
    ("server", "sequential_p95_ms", "  sequential: p95 (ms)", ".1f", "lower"),
    ("server", "concurrent_per_s", "create flow run, {clients} clients (runs/s)", ".1f", "higher"),
    ("server", "concurrent_done", "  concurrent: done", "", None),
    ("server", "concurrent_p50_ms", "  concurrent: p50 (ms)", ".1f", "lower"),
    ("server", "concurrent_p95_ms", "  concurrent: p95 (ms)", ".1f", "lower"),
    ("server", "filter_ms", "filter limit=200, median of 20 (ms)", ".1f", "lower"),
    ("server", "runs_in_db", "  flow runs in the database", "", None),
    ("server", "loaded_rss_mib", "server: RSS after the load (MiB)", ".0f", "lower"),
    ("dispatch", "dispatch", "dispatch", "", None),
    (
        "dispatch",
        "dispatch_first_line_p50_s",
        "`deployment run` -> first line, p50 (s)",
        ".2f",
        "lower",
    ),
    (
        "dispatch",
        "dispatch_first_line_max_s",
        "`deployment run` -> first line, max (s)",
        ".2f",
        "lower",
    ),
    (
        "dispatch",
        "dispatch_completed_p50_s",
        "`deployment run` -> COMPLETED, p50 (s)",
        ".2f",
        "lower",
    ),
    ("scheduler", "scheduler", "scheduler", "", None),
    ("scheduler", "found_of", "scheduler: runs found/expected in the window", "", None),
    ("scheduler", "missing", "scheduler: missing runs (target 0)", "", None),
    ("scheduler", "duplicates", "scheduler: duplicate runs (target 0)", "", None),
    ("scheduler", "not_started", "scheduler: runs never started", "", None),
    ("scheduler", "late_p50_s", "scheduler: lateness p50 (s)", ".2f", "lower"),
    ("scheduler", "late_p95_s", "scheduler: lateness p95 (s)", ".2f", "lower"),
    ("scheduler", "late_p99_s", "scheduler: lateness p99 (s, target <= 1)", ".2f", "lower"),
    ("scheduler", "late_max_s", "scheduler: lateness max (s)", ".2f", "lower"),
    (
        "scheduler",
        "first_line_p50_s",
        "scheduler: to the flow's first line, p50 (s)",
        ".2f",
        "lower",
    ),
    ("scheduler", "restart_max_s", "  runs due around the restart: max (s)", ".2f", "lower"),
    ("scheduler", "down_s", "  server down for the restart (s)", ".1f", "lower"),
    ("scheduler", "scheduled_s", "  every deployment scheduled after (s)", ".1f", "lower"),
    ("scheduler", "pass_p50_s", "  scheduler pass, median (s)", ".3f", "lower"),
    ("scheduler", "pass_max_s", "  scheduler pass, max (s)", ".3f", "lower"),
    ("scheduler", "pass_warmup_max_s", "  scheduler pass, longest before (s)", ".3f", "lower"),
    ("scheduler", "server_cpu_s", "  server CPU in the window (s)", ".0f", "lower"),
    ("scheduler", "serving_cpu_s", "  serving processes CPU, with runs (s)", ".0f", "lower"),
    ("scheduler", "server_peak_rss_mib", "  server peak RSS (MiB)", ".0f", "lower"),
    ("scheduler", "serving_peak_rss_mib", "  serving processes peak RSS (MiB)", ".0f", "lower"),
]


def _fmt(value: object, fmt: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, int | float) and fmt:
        return format(value, fmt)
    return str(value)


def _ratio(w: object, p: object, better: str | None) -> str:
    ok = all(isinstance(v, int | float) and v > 0 for v in (w, p))
    if not better or not ok:
        return ""
    r = p / w if better == "lower" else w / p  # type: ignore[operator]
    return f"{r:.1f}x"


def table(results: dict[str, dict[str, dict]], ctx: Ctx) -> str:
    w_all, p_all = results.get("weir", {}), results.get("prefect", {})
    lines = [("scenario", "weir", "prefect", "ratio")]
    for scen, key, label, fmt, better in ROWS:
        w, p = w_all.get(scen), p_all.get(scen)
        if w is None and p is None:
            continue
        wv, pv = (_cell(x, key) for x in (w, p))
        if wv is None and pv is None:
            continue
        label = label.format(clients=ctx.clients)
        lines.append((label, _fmt(wv, fmt), _fmt(pv, fmt), _ratio(wv, pv, better)))
    widths = [max(len(row[i]) for row in lines) for i in range(4)]
    text = [
        "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r))
        for r in lines
    ]
    text.insert(1, "  ".join("-" * n for n in widths))
    return "\n".join(text)


def _cell(result: dict | None, key: str) -> object:
    if result is None:
        return None
    if "error" in result:
        return (
            "error (see below)"
            if key in {"import_s", "local_first_call_s", "server", "scheduler"}
            else None
        )
    if result.get("server") == NA:
        return NA if key == "server" else None
    return result.get(key)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--install", action="store_true", help="install Prefect into --venv first")
    ap.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="Prefect's venv (%(default)s)")
    ap.add_argument("--weir", action="store_true", help="also measure weir (this interpreter)")
    ap.add_argument("--no-prefect", action="store_true", help="skip the Prefect side")
    ap.add_argument(
        "--scenarios", default="import,engine,server,dispatch", help="comma list (%(default)s)"
    )
    ap.add_argument(
        "--dispatch-runs", type=int, default=5, help="runs in the dispatch scenario (%(default)s)"
    )
    ap.add_argument("--tasks", type=int, default=1000, help="tasks per flow (%(default)s)")
    ap.add_argument("--runs", type=int, default=2000, help="flow runs per load phase (%(default)s)")
    ap.add_argument("--clients", type=int, default=20, help="concurrent clients (%(default)s)")
    ap.add_argument(
        "--budget", type=float, default=120.0, help="max s per load phase (%(default)s)"
    )
    ap.add_argument("--minutes", type=int, default=5, help="scheduler: window (%(default)s)")
    ap.add_argument("--cron-deployments", type=int, default=500, help="scheduler: (%(default)s)")
    ap.add_argument(
        "--interval-deployments", type=int, default=500, help="scheduler: every 30 s (%(default)s)"
    )
    ap.add_argument("--serve-processes", type=int, default=4, help="scheduler: (%(default)s)")
    ap.add_argument("--json", action="store_true", help="print the raw results as JSON")
    args = ap.parse_args(argv)
    compile_weir()
    names = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if unknown := set(names) - set(SCENARIOS):
        ap.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    args.venv = args.venv.expanduser().resolve()
    if args.install:
        install_prefect(args.venv)

    targets: list[Target] = []
    if args.weir:
        targets.append(weir_target())
    if not args.no_prefect:
        if prefect_version(args.venv) is None:
            print(f"No Prefect in {args.venv}: run with --install.", file=sys.stderr)
            return 2
        targets.append(prefect_target(args.venv))
    if not targets:
        ap.error("nothing to measure: use --weir and/or drop --no-prefect")

    # The load client must have httpx: Prefect's venv has it; else try each target's Python.
    candidates = [str(args.venv / "bin" / "python"), *(t.python for t in targets)]
    client = next((p for p in candidates if _has_httpx(p)), sys.executable)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = Path(tempfile.mkdtemp(prefix="weir-bench-"))
    ctx = Ctx(tmp, args.tasks, args.runs, args.clients, args.budget, client, args.dispatch_runs)
    ctx.schedule = scheduler.Options(
        minutes=args.minutes,
        crons=args.cron_deployments,
        intervals=args.interval_deployments,
        processes=args.serve_processes,
    )
    results: dict[str, dict[str, dict]] = {t.name: {} for t in targets}
    try:
        for name in names:
            for t in targets:
                print(f"... {name} / {t.name}", file=sys.stderr, flush=True)
                try:
                    results[t.name][name] = SCENARIOS[name](t, ctx)
                except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
                    results[t.name][name] = {"error": str(exc)}
                    print(f"    {t.name} {name} failed: {exc}", file=sys.stderr)
    finally:
        sc.kill_all()
        shutil.rmtree(tmp, ignore_errors=True)

    meta = {"tasks": args.tasks, "runs": args.runs, "clients": args.clients, "cpus": os.cpu_count()}
    if "scheduler" in names:
        meta["scheduler"] = vars(ctx.schedule)
    if args.json:
        print(json.dumps({"meta": meta, "results": results}, indent=2))
    else:
        print(f"tasks per flow={args.tasks}  N (flow runs per load phase)={args.runs}  ", end="")
        print(f"clients={args.clients}  cpus={meta['cpus']}")
        if "scheduler" in names:
            o = ctx.schedule
            print(f"scheduler: {o.crons} deployments on `* * * * *` + {o.intervals} every"
                  f" {o.every} s, {o.processes} serve() processes (each tool's default limit),"
                  f" SQLite, a {o.minutes} min window, server restarted 10 s after its mid tick")  # fmt: skip
        print(table(results, ctx))
        print("ratio: how many times better weir is (prefect/weir for times and sizes,")
        print("weir/prefect for rates); above 1 favours weir.")
        for name, per in results.items():
            for scen, r in per.items():
                if "error" in r:
                    print(f"error: {name} {scen}: {r['error']}")
                for key, kinds in r.items():
                    if key.endswith("_error_kinds") and kinds:
                        print(f"{name} {key[: -len('_error_kinds')]} errors: {kinds}")
    return 0


def _has_httpx(python: str) -> bool:
    if not Path(python).exists():
        return False
    proc = subprocess.run([python, "-c", "import httpx"], capture_output=True, timeout=60)
    return proc.returncode == 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sc.kill_all()
        sys.exit(130)
