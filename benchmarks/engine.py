"""How much the engine adds per task run, and what `import weir` costs.

Prints, and asserts nothing:

(a) the per-task overhead of a flow that calls 1,000 no-op tasks one after another;
(b) the per-task overhead of a flow that sends 10,000 no-op tasks through `.map`;
(c) the wall time of `python -c "import weir"` (and of also importing `flow`, `task`);
(d) each figure against its target, PASS or MISS, next to Prefect's figures.

Run it with `.venv/bin/python benchmarks/engine.py`. It points WEIR_HOME at a
temporary directory (removed at exit) so it writes nothing under ~, and sets
WEIR_LOGGING_LEVEL=WARNING so console logging is not what is measured.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

SEQUENTIAL_TASKS = 1_000
MAPPED_TASKS = 10_000
WARM_REPEATS = 5
COLD_PROCESSES = 3
IMPORT_RUNS = 10

TARGET_SEQUENTIAL_US = 30.0
TARGET_MAPPED_US = 60.0
TARGET_IMPORT_MS = 150.0

PREFECT_REFERENCE = """\
  Prefect 3.8, measured earlier on this kind of machine (quoted, not measured here):
    import prefect                          1.0 s
    no-server mode, before the first run    about 5 s to start a temporary server
    sequential task                         about 3.8 ms per task
    task runs kept once the process exits   about 5 %"""


def _configure_environment() -> str:
    """Point weir at a throwaway home and quiet logging; returns the home directory.

    Child processes (the cold measurements) inherit both variables.
    """
    home = tempfile.mkdtemp(prefix="weir-benchmark-")
    os.environ["WEIR_HOME"] = home
    os.environ["WEIR_LOGGING_LEVEL"] = "WARNING"
    return home


# -- the flows measured --------------------------------------------------------------
def make_sequential_flow() -> Callable[[int], Any]:
    from weir import flow, task

    @task
    def noop() -> None:
        return None

    @flow
    def sequential_noops(count: int) -> None:
        for _ in range(count):
            noop()

    return sequential_noops


def make_mapped_flow() -> Callable[[int], Any]:
    from weir import flow, task

    @task
    def noop_item(item: int) -> int:
        return item

    @flow
    def mapped_noops(count: int) -> None:
        noop_item.map(range(count)).result()

    return mapped_noops


def make_empty_flow() -> Callable[[int], Any]:
    from weir import flow

    @flow
    def empty(count: int) -> None:
        return None

    return empty


FLOWS = {"sequential": make_sequential_flow, "mapped": make_mapped_flow}
COUNTS = {"sequential": SEQUENTIAL_TASKS, "mapped": MAPPED_TASKS}


# -- measuring ---------------------------------------------------------------------
def time_call(fn: Callable[[int], Any], count: int) -> float:
    started = time.perf_counter()
    fn(count)
    return time.perf_counter() - started


def warm_times(make: Callable[[], Callable[[int], Any]], count: int) -> list[float]:
    """Seconds per flow call, after one untimed call has paid for imports and set-up."""
    run = make()
    run(count)
    return [time_call(run, count) for _ in range(WARM_REPEATS)]


def cold_time(kind: str) -> float:
    """Seconds of the first call of the flow in a fresh process (lazy imports included)."""
    result = subprocess.run(
        [sys.executable, __file__, "--cold", kind],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(result.stdout.strip().splitlines()[-1])


def measure_cold_in_this_process(kind: str) -> None:
    """The child side of `cold_time`: `from weir import ...` is done, the call is not."""
    run = FLOWS[kind]()
    print(f"{time_call(run, COUNTS[kind]):.9f}")


def import_times() -> dict[str, float]:
    """Median wall seconds of each command over IMPORT_RUNS fresh interpreters."""
    commands = {
        "pass": "pass",
        "import weir": "import weir",
        "import weir; from weir import flow, task": "import weir; from weir import flow, task",
    }
    samples: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(IMPORT_RUNS):
        for label, code in commands.items():  # interleaved, so drift hits every command alike
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            samples[label].append(time.perf_counter() - started)
    return {label: statistics.median(values) for label, values in samples.items()}


# -- reporting ---------------------------------------------------------------------
def us_per_task(seconds: float, count: int) -> float:
    return seconds / count * 1e6


def verdict(value: float, target: float) -> str:
    return "PASS" if value <= target else "MISS"


def report_engine(kind: str, title: str) -> float:
    """Print one engine benchmark; return its warm median in µs per task."""
    count = COUNTS[kind]
    warm = warm_times(FLOWS[kind], count)
    cold = statistics.median(cold_time(kind) for _ in range(COLD_PROCESSES))
    best, median = min(warm), statistics.median(warm)
    print(title)
    lines = [
        (f"warm, best of {WARM_REPEATS}", best, ""),
        (f"warm, median of {WARM_REPEATS}", median, ""),
        (
            "cold first call",
            cold,
            f"   (fresh process, lazy imports included; median of {COLD_PROCESSES})",
        ),
    ]
    for label, seconds, note in lines:
        print(
            f"    {label + ':':<20} {seconds * 1e3:8.1f} ms per flow run"
            f" = {us_per_task(seconds, count):6.1f} µs per task{note}"
        )
    return us_per_task(median, count)


def main() -> None:
    home = _configure_environment()
    try:
        import weir

        cpus = os.cpu_count()
        print("weir engine benchmark")
        print(
            f"  weir {weir.__version__}, Python {platform.python_version()}, "
            f"{platform.system()} {platform.machine()}, {cpus} CPU(s)"
        )
        print(
            "  WEIR_LOGGING_LEVEL=WARNING: the INFO lines of each flow run are not printed,\n"
            "  so console logging is not part of what is measured. WEIR_HOME is a temporary\n"
            "  directory, removed at exit. Per-task figures are flow-run wall time / tasks,\n"
            "  so they include the flow run's own fixed cost (shown below)."
        )
        print()

        empty = statistics.median(warm_times(make_empty_flow, 0))
        print(f"A flow run with no tasks, warm median of {WARM_REPEATS}: {empty * 1e3:.2f} ms")
        print()
        sequential = report_engine(
            "sequential",
            f"(a) {SEQUENTIAL_TASKS:,} sequential no-op tasks in one flow (each task called directly)",
        )
        print()
        mapped = report_engine(
            "mapped",
            f"(b) {MAPPED_TASKS:,} no-op tasks through .map in one flow (default thread pool"
            f" runner), then .result()",
        )
        print()

        imports = import_times()
        baseline = imports["pass"]
        print(f"(c) import time: wall time of a fresh interpreter, median of {IMPORT_RUNS} runs")
        for label, seconds in imports.items():
            command = f'python -c "{label}"'
            if label == "pass":
                print(f"    {command:<54} {seconds * 1e3:6.1f} ms")
            else:
                print(
                    f"    {command:<54} {seconds * 1e3:6.1f} ms raw,"
                    f" {(seconds - baseline) * 1e3:6.1f} ms net of python -c pass"
                )
        print()

        import_raw = imports["import weir"] * 1e3
        import_all_raw = imports["import weir; from weir import flow, task"] * 1e3
        rows = [
            ("sequential task (warm median)", sequential, TARGET_SEQUENTIAL_US, "µs"),
            ("mapped task (warm median)", mapped, TARGET_MAPPED_US, "µs"),
            ('python -c "import weir" (raw)', import_raw, TARGET_IMPORT_MS, "ms"),
            ("... plus from weir import flow, task (raw)", import_all_raw, TARGET_IMPORT_MS, "ms"),
        ]
        print("(d) against the targets")
        for label, value, target, unit in rows:
            print(
                f"    {label:<44} {value:7.1f} {unit}   target <= {target:5.0f} {unit}"
                f"   {verdict(value, target)}"
            )
        print()
        print(PREFECT_REFERENCE)
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--cold":  # a child started by cold_time()
        measure_cold_in_this_process(sys.argv[2])
    else:
        main()
