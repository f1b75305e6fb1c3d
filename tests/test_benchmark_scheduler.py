"""The counting of benchmarks/scheduler.py: which runs a window expects, and how found
runs are judged missing, duplicated, unexpected or late (no server, no timing)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import scheduler

W0 = datetime(2030, 5, 1, 12, 0, tzinfo=UTC).timestamp()
W1 = W0 + 120


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


def test_expected_runs_follow_the_minute_and_the_interval_anchor() -> None:
    want = scheduler.expected_runs(["cron-0000", "every-0000"], W0 + 5, W1, 30)
    assert sorted(at - W0 for name, at in want if name == "cron-0000") == [60]
    assert sorted(at - W0 for name, at in want if name == "every-0000") == [30, 60, 90]


def test_analyse_counts_missing_duplicate_unexpected_and_lateness() -> None:
    names = {"d1": "cron-0000", "d2": "every-0000"}
    runs = [
        {"id": "a", "deployment_id": "d1", "expected_start_time": iso(W0), "start_time": iso(W0 + 0.5)},
        {"id": "b", "deployment_id": "d1", "expected_start_time": iso(W0 + 60), "start_time": iso(W0 + 62)},
        {"id": "c", "deployment_id": "d1", "expected_start_time": iso(W0 + 60), "start_time": None},
        {"id": "d", "deployment_id": "d2", "expected_start_time": iso(W0 + 45), "start_time": None},
        {"id": "e", "deployment_id": "d2", "expected_start_time": iso(W1), "start_time": None},
        {"id": "f", "deployment_id": "other", "expected_start_time": iso(W0), "start_time": None},
    ]  # fmt: skip
    for run in runs:
        run |= {"state_type": "COMPLETED", "state_name": "Completed"}
    r = scheduler.analyse(runs, names, (W0, W1), 30, {"a": W0 + 0.7}, (W0 + 50, W0 + 70))
    assert (r["expected"], r["found"]) == (6, 4)  # d2 every 30 s from W0; "e" is past W1
    assert (r["missing"], r["duplicates"], r["unexpected"]) == (4, 1, 1)
    assert (r["not_started"], r["ran"]) == (2, 1)
    assert (r["late_p50_s"], r["late_max_s"]) == (0.5, 2.0)
    assert abs(r["first_line_p50_s"] - 0.7) < 1e-3
    assert (r["restart_runs"], r["restart_max_s"]) == (1, 2.0)
