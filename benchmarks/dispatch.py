"""Dispatch latency: from `deployment run` to the flow's first line, and to COMPLETED
visible in the API, through one process worker (issue 4's benchmark).

    .venv/bin/python benchmarks/dispatch.py [--database-url URL] [--rate 10] [--duration 60]

1. Sequential: one run at a time, triggered through the API
   (`POST /api/deployments/{id}/runs`; `weir deployment run` sends it by name): p50/p99 to
   the first line of the flow and to COMPLETED visible in the API. Also the same
   trigger through the `weir deployment run` CLI, whose own start-up is counted.
2. Under load: `--rate` runs/s for `--duration` s through the same worker: p50/p99 of
   both.

Targets: first line <= 300 ms p50, COMPLETED <= 1 s p50, p99 <= 2 s under load.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

from weir.client.sync import SyncWeirClient
from weir.core.schemas.deployments import DeploymentCreate, DeploymentRunCreate
from weir.core.schemas.work_pools import WorkPoolCreate
from weir.testing import temporary_server

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bytecode import compile_weir

FLOW = textwrap.dedent(
    """
    import time
    from pathlib import Path

    from weir import flow, runtime


    @flow
    def first_line(out: str) -> None:
        started = time.time()
        Path(out, str(runtime.flow_run.id)).write_text(repr(started))
    """
)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def line(label: str, values: list[float], target: float | None = None) -> str:
    if not values:
        return f"  {label:<34} no samples"
    p50, p99 = pct(values, 50) * 1000, pct(values, 99) * 1000
    verdict = ""
    if target is not None:
        verdict = "  ok" if p50 <= target * 1000 else f"  MISS (target p50 <= {target * 1000:g} ms)"
    return f"  {label:<34} p50 {p50:7.0f} ms   p99 {p99:7.0f} ms   n={len(values)}{verdict}"


def wait_for(path: Path, timeout: float) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            text = path.read_text()
            if text:
                return float(text)
        time.sleep(0.002)
    return None


def wait_completed(client: SyncWeirClient, run_id: object, timeout: float) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.read_flow_run(str(run_id))
        if run.state_type is not None and run.state_type.value == "COMPLETED":
            return time.time()
        time.sleep(0.005)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--sequential", type=int, default=20)
    parser.add_argument("--cli-runs", type=int, default=5)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=60.0)
    args = parser.parse_args(argv)
    compile_weir()

    with tempfile.TemporaryDirectory(prefix="weir-dispatch-") as tmp:
        root = Path(tmp)
        (root / "flows.py").write_text(FLOW)
        out = root / "out"
        out.mkdir()
        with temporary_server(database_url=args.database_url) as server:
            env = server.env()
            with SyncWeirClient(server.api_url) as client:
                client.create_work_pool(WorkPoolCreate(name="bench", type="process"))
                deployment = client.apply_deployment(
                    DeploymentCreate(
                        name="dispatch",
                        flow_name="first-line",
                        entrypoint="flows.py:first_line",
                        path=str(root),
                        parameters={"out": str(out)},
                        work_pool_name="bench",
                    )
                )
                worker = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "weir",
                        "worker",
                        "start",
                        "-p",
                        "bench",
                        "--limit",
                        "50",
                    ],
                    env=env,
                    cwd=root,
                    stdout=open(root / "worker.log", "wb"),  # noqa: SIM115
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                try:
                    time.sleep(1.5)  # the worker registers and starts its long poll
                    print(f"weir dispatch benchmark ({args.database_url or 'SQLite'})")
                    first, done = [], []
                    for _ in range(args.sequential):
                        t0 = time.time()
                        run = client.create_deployment_run(deployment.id, DeploymentRunCreate())
                        started = wait_for(out / str(run.id), 30)
                        finished = wait_completed(client, run.id, 30)
                        if started is not None:
                            first.append(started - t0)
                        if finished is not None:
                            done.append(finished - t0)
                    print("sequential, triggered through the API:")
                    print(line("trigger -> first line", first, 0.3))
                    print(line("trigger -> COMPLETED in the API", done, 1.0))

                    cli_first = []
                    for _ in range(args.cli_runs):
                        before = set(os.listdir(out))
                        t0 = time.time()
                        subprocess.run(
                            [
                                sys.executable,
                                "-m",
                                "weir",
                                "deployment",
                                "run",
                                "first-line/dispatch",
                            ],
                            env=env,
                            cwd=root,
                            check=True,
                            capture_output=True,
                        )
                        deadline = time.monotonic() + 30
                        new: set[str] = set()
                        while not new and time.monotonic() < deadline:
                            new = set(os.listdir(out)) - before
                            time.sleep(0.002)
                        started = wait_for(out / new.pop(), 5) if new else None
                        if started is not None:
                            cli_first.append(started - t0)
                    print(line("`weir deployment run` -> first line", cli_first, 0.3))

                    print(f"under load: {args.rate:g} runs/s for {args.duration:g} s:")
                    load_first, load_done = load(client, deployment.id, out, args)
                    print(line("trigger -> first line", load_first))
                    print(line("trigger -> COMPLETED in the API", load_done))
                    p99 = max(pct(load_first, 99), pct(load_done, 99)) if load_done else None
                    if p99 is not None:
                        print(
                            f"  p99 under load {'ok' if p99 <= 2 else 'MISS'} (target <= 2000 ms)"
                        )
                finally:
                    os.killpg(worker.pid, signal.SIGTERM)
                    worker.wait(60)
    return 0


def load(
    client: SyncWeirClient, deployment_id: object, out: Path, args: argparse.Namespace
) -> tuple[list[float], list[float]]:
    triggered: dict[str, float] = {}
    lock = threading.Lock()
    interval = 1.0 / args.rate
    count = int(args.rate * args.duration)
    start = time.monotonic()
    for k in range(count):
        delay = start + k * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t0 = time.time()
        run = client.create_deployment_run(str(deployment_id), DeploymentRunCreate())
        with lock:
            triggered[str(run.id)] = t0
    deadline = time.monotonic() + 120
    first: list[float] = []
    done: list[float] = []
    pending = dict(triggered)
    while pending and time.monotonic() < deadline:
        for run_id in list(pending):
            run = client.read_flow_run(run_id)
            if run.state_type is not None and run.state_type.value in (
                "COMPLETED",
                "FAILED",
                "CRASHED",
            ):
                t0 = pending.pop(run_id)
                started = wait_for(out / run_id, 0.1)
                if started is not None:
                    first.append(started - t0)
                if run.end_time is not None and run.state_type.value == "COMPLETED":
                    done.append(run.end_time.timestamp() - t0)
        time.sleep(0.2)
    if pending:
        print(f"  {len(pending)} runs did not finish in time")
    return first, done


if __name__ == "__main__":
    sys.exit(main())
