"""The flows in examples/ run as a newcomer runs them, and return what they promise.

Each example runs once as a real `python examples/x.py` subprocess (what `make
run` does), and its flow is also imported and called directly with small
parameters.
"""

from __future__ import annotations

import importlib.util
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from weir import tags
from weir.testing import fake_clock

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name: str) -> ModuleType:
    """Import examples/{name}.py under a private module name."""
    module_name = f"weir_example_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def run_example(name: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py")],
        cwd=workdir,
        env=dict(os.environ),  # WEIR_HOME is the test's empty home (conftest)
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


# -- as a subprocess ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "expected_stderr", "expected_stdout"),
    [
        pytest.param(
            "etl_with_retries",
            [
                "Task run 'extract-page-2' - Task run encountered an exception ConnectionError: "
                "orders API timed out on page 2 (HTTP 503) - Retry 1/3 will start in 0.1 second(s).",
                "Task run 'extract-page-2' - Task run encountered an exception ConnectionError: "
                "orders API timed out on page 2 (HTTP 503) - Retry 2/3 will start in 0.1 second(s).",
                "Task run 'extract-page-2' - Fetched 5 orders from page 2",
                "Task run 'transform_orders-",  # a print() logged by log_prints=True
                "Kept 17 of 20 orders (cancelled ones dropped)",
                "Warehouse holds 17 orders",
                "for flow 'orders-etl'",
                "Finished in state Completed()",
            ],
            ["orders_etl returned {'extracted': 20, 'loaded': 17, 'revenue_eur_cents': "],
            id="etl_with_retries",
        ),
        pytest.param(
            "fan_out_map",
            [
                "Rate USD->EUR 0.92 (Completed)",
                "Rate USD->EUR 0.92 (Cached)",
                "Task run 'open_invoice_batch-",
                "Opened invoice batch 2024-06 for 6 orders",
                "Invoice for SO-1004: EUR 5616.00",
                "Batch 2024-06: 6 invoices, EUR 8465.98",
                "Finished in state Completed()",
            ],
            [
                "first run: rates {'CHF': 'Completed', 'EUR': 'Completed', 'GBP': 'Completed', "
                "'USD': 'Completed'}, total EUR 8465.98",
                "second run: rates {'CHF': 'Cached', 'EUR': 'Cached', 'GBP': 'Cached', "
                "'USD': 'Cached'}, total EUR 8465.98",
            ],
            id="fan_out_map",
        ),
        pytest.param(
            "subflows",
            [
                "Flow run 'close-books-2024-06-30' - Beginning flow run 'close-books-2024-06-30'",
                "Flow run 'close-emea-2024-06-30' - Closing emea as flow run "
                "close-emea-2024-06-30, tags ['finance', 'region:emea']",
                "Flow run 'close-apac-2024-06-30' - Finished in state Completed()",
                "Flow run 'close-books-2024-06-30' - Finished in state Completed()",
                "Posted to #finance: close-books-2024-06-30: books closed, revenue EUR 5,903.50",
            ],
            [
                "emea: EUR 1,658.50 (flow run close-emea-2024-06-30)",
                "amer: EUR 2,245.00 (flow run close-amer-2024-06-30)",
                "apac: EUR 2,000.00 (flow run close-apac-2024-06-30)",
            ],
            id="subflows",
        ),
    ],
)
def test_example_runs_as_a_script(
    name: str,
    expected_stderr: list[str],
    expected_stdout: list[str],
    tmp_path: Path,
    weir_home: Path,
) -> None:
    result = run_example(name, tmp_path)

    output = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, output
    for line in expected_stderr:
        assert line in result.stderr, f"{line!r} not logged\n{output}"
    for line in expected_stdout:
        assert line in result.stdout, f"{line!r} not printed\n{output}"
    assert "Traceback" not in result.stderr, output
    # Examples write only inside their own temporary directories.
    assert list(tmp_path.iterdir()) == []
    assert list(weir_home.iterdir()) == []


def test_every_example_is_tested() -> None:
    tested = {"etl_with_retries", "fan_out_map", "subflows"}
    assert {path.stem for path in EXAMPLES.glob("*.py")} == tested


# -- etl_with_retries --------------------------------------------------------------
def test_etl_retries_the_flaky_pages_and_loads_the_warehouse(tmp_path: Path) -> None:
    etl = load_example("etl_with_retries")
    database = tmp_path / "warehouse.db"

    with fake_clock() as clock:
        summary = etl.orders_etl(database=str(database), pages=4, seed=6)

    # Seed 6 fails page 2 twice and page 3 once: three retries, 0.1 s apart.
    assert clock.sleeps == [0.1, 0.1, 0.1]
    assert summary["extracted"] == 20
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT customer_email, amount_eur_cents, status FROM orders"
        ).fetchall()
    connection.close()
    assert len(rows) == summary["loaded"] == 17
    assert all(email == email.strip().lower() for email, _, _ in rows)
    assert all(status in ("paid", "refunded") for _, _, status in rows)
    paid = sum(cents for _, cents, status in rows if status == "paid")
    assert summary["revenue_eur_cents"] == paid


def test_etl_fails_when_the_source_fails_more_often_than_it_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    etl = load_example("etl_with_retries")
    monkeypatch.setattr(etl.FlakyOrdersAPI, "failures_planned", lambda self, page: 4)

    with fake_clock() as clock:
        state = etl.orders_etl(database=str(tmp_path / "w.db"), pages=1, return_state=True)

    assert state.is_failed()
    assert "orders API timed out on page 0" in state.message
    assert clock.sleeps == [0.1, 0.1, 0.1]  # 1 attempt + 3 retries, then it gives up
    assert not (tmp_path / "w.db").exists()


def test_etl_loads_idempotently(tmp_path: Path) -> None:
    etl = load_example("etl_with_retries")
    database = str(tmp_path / "warehouse.db")

    with fake_clock():
        first = etl.orders_etl(database=database, pages=2, seed=1)
        second = etl.orders_etl(database=database, pages=2, seed=1)

    assert first == second
    with sqlite3.connect(database) as connection:
        (count,) = connection.execute("SELECT COUNT(*) FROM orders").fetchone()
    connection.close()
    assert count == first["loaded"]


# -- fan_out_map -------------------------------------------------------------------
def test_fan_out_invoices_every_order_and_caches_the_rates(tmp_path: Path) -> None:
    fan_out = load_example("fan_out_map")
    orders = [
        {"order_id": "SO-1", "customer": "Northwind", "amount": 100.0, "currency": "USD"},
        {"order_id": "SO-2", "customer": "Contoso", "amount": 50.0, "currency": "GBP"},
        {"order_id": "SO-3", "customer": "Fabrikam", "amount": 10.0, "currency": "USD"},
    ]
    pipeline = fan_out.invoice_orders.with_options(result_storage=str(tmp_path))

    first = pipeline(orders, batch_id="test")
    second = pipeline(orders, batch_id="test")

    expected_total = round((100.0 * 0.92 + 50.0 * 1.17 + 10.0 * 0.92) * 1.2, 2)
    assert first["invoices"] == second["invoices"] == 3
    assert first["total_eur"] == second["total_eur"] == expected_total
    assert first["rate_states"] == {"GBP": "Completed", "USD": "Completed"}
    assert second["rate_states"] == {"GBP": "Cached", "USD": "Cached"}
    assert len([p for p in tmp_path.iterdir() if p.is_file()]) == 2  # one record per currency


def test_fan_out_builds_one_invoice_per_order() -> None:
    fan_out = load_example("fan_out_map")
    order = {"order_id": "SO-9", "customer": "Litware", "amount": 200.0, "currency": "CHF"}

    invoice = fan_out.build_invoice(order, {"CHF": 1.04})

    assert invoice == {
        "order_id": "SO-9",
        "customer": "Litware",
        "net_eur": 208.0,
        "total_eur": 249.6,
    }


# -- subflows ----------------------------------------------------------------------
def test_subflows_run_one_child_flow_per_region() -> None:
    subflows = load_example("subflows")
    subflows.FINANCE_CHANNEL.clear()

    with tags("finance"):
        closed = subflows.close_books(["emea", "amer"], "2024-06-30")  # validated into a date

    assert set(closed) == {"emea", "amer"}
    assert closed["emea"]["revenue"] == 1658.5
    assert closed["amer"]["revenue"] == 2245.0
    assert closed["emea"]["flow_run_name"] == "close-emea-2024-06-30"
    assert closed["emea"]["tags"] == ["finance", "region:emea"]
    assert closed["amer"]["tags"] == ["finance", "region:amer"]
    assert closed["emea"]["parent_flow_run_id"] is not None
    assert closed["emea"]["parent_flow_run_id"] == closed["amer"]["parent_flow_run_id"]
    assert subflows.FINANCE_CHANNEL == [
        "close-books-2024-06-30: books closed, revenue EUR 3,903.50"
    ]


def test_a_failing_child_flow_fails_the_parent_and_runs_its_failure_hook() -> None:
    subflows = load_example("subflows")
    subflows.FINANCE_CHANNEL.clear()

    state = subflows.close_books(["emea", "atlantis"], "2024-06-30", return_state=True)

    assert state.is_failed()
    assert "there is no ledger for region 'atlantis'" in state.message
    assert len(subflows.FINANCE_CHANNEL) == 1
    assert subflows.FINANCE_CHANNEL[0].startswith(
        "close-books-2024-06-30: close FAILED, paging on-call"
    )
