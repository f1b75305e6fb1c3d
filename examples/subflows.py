"""Subflows: a month-end close that runs one child flow per sales region.

What it shows:

- A parent flow calling a child flow: each call is a child flow run of its own,
  linked to the parent, with its own state and logs.
- `flow_run_name="close-{region}-{day}"`: run names from the run's parameters.
- `with tags(...)`: tags added to every run started inside the block.
- `weir.runtime.flow_run`: the name, tags and parent of the run in progress.
- Hooks: `on_completion` posts a summary, `on_failure` alerts the on-call
  person. Here they post to a list standing in for a chat channel.
- Parameter validation: `day: date` also accepts "2024-06-30".

Run it with `python examples/subflows.py`; it exits 1 if the parent flow does
not complete.
"""

from __future__ import annotations

import sys
from datetime import date
from typing import Any

from weir import flow, get_run_logger, runtime, tags, task

# Each region's invoices for the day: (invoice id, amount in EUR).
LEDGERS = {
    "emea": [("INV-E-301", 1250.0), ("INV-E-302", 310.0), ("INV-E-303", 98.5)],
    "amer": [("INV-A-118", 2200.0), ("INV-A-119", 45.0)],
    "apac": [("INV-P-075", 870.25), ("INV-P-076", 129.75), ("INV-P-077", 1000.0)],
}

# Messages a real pipeline would post to the #finance chat channel.
FINANCE_CHANNEL: list[str] = []


def post_to_finance_channel(message: str) -> None:
    FINANCE_CHANNEL.append(message)
    get_run_logger().info("Posted to #finance: %s", message)


def announce_close(flow: Any, flow_run: Any, state: Any) -> None:
    """on_completion hook: runs after the flow run reached Completed."""
    revenue = state.result()
    total = sum(region["revenue"] for region in revenue.values())
    post_to_finance_channel(f"{flow_run.name}: books closed, revenue EUR {total:,.2f}")


def alert_on_call(flow: Any, flow_run: Any, state: Any) -> None:
    """on_failure hook: runs after the flow run reached Failed."""
    post_to_finance_channel(f"{flow_run.name}: close FAILED, paging on-call ({state.message})")


@task
def fetch_invoices(region: str, day: date) -> list[tuple[str, float]]:
    if region not in LEDGERS:
        raise LookupError(f"there is no ledger for region {region!r}")
    invoices = LEDGERS[region]
    get_run_logger().info("%d invoices in %s for %s", len(invoices), region, day)
    return invoices


@task
def sum_revenue(invoices: list[tuple[str, float]]) -> float:
    return round(sum(amount for _, amount in invoices), 2)


@flow(flow_run_name="close-{region}-{day}")
def close_region(region: str, day: date) -> dict[str, Any]:
    """Close one region's books for `day` (a child flow of `close_books`)."""
    get_run_logger().info(
        "Closing %s as flow run %s, tags %s", region, runtime.flow_run.name, runtime.flow_run.tags
    )
    revenue = sum_revenue(fetch_invoices(region, day))
    return {
        "revenue": revenue,
        "flow_run_name": runtime.flow_run.name,
        "tags": runtime.flow_run.tags,
        "parent_flow_run_id": runtime.flow_run.parent_flow_run_id,
    }


@flow(
    flow_run_name="close-books-{day}",
    on_completion=[announce_close],
    on_failure=[alert_on_call],
)
def close_books(regions: list[str], day: date) -> dict[str, dict[str, Any]]:
    """Month-end close: one child flow run per region, then a summary in #finance."""
    closed = {}
    for region in regions:
        with tags(f"region:{region}"):
            closed[region] = close_region(region, day)
    return closed


def main() -> int:
    with tags("finance"):
        state = close_books(["emea", "amer", "apac"], date(2024, 6, 30), return_state=True)
    if not state.is_completed():
        return 1
    for region, closed in state.result().items():
        print(f"{region}: EUR {closed['revenue']:,.2f} (flow run {closed['flow_run_name']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
