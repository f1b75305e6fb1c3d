"""Fan out with `.map`: invoice a batch of orders in parallel, with cached exchange rates.

What it shows:

- `task.map(iterable)`: one task run per element, run on the flow's thread pool.
- `unmapped(rates)`: an argument passed whole to every mapped run.
- `wait_for=[...]`: start the invoices only after the batch is opened.
- `as_completed(futures)`: handle each invoice as soon as its run ends.
- A cached task: `cache_policy=INPUTS` with `cache_expiration`, its results
  stored in a temporary directory (`result_storage=` on the flow). The flow runs
  twice; the second run finds every exchange rate `Cached`.

Run it with `python examples/fan_out_map.py`; it exits 1 if a flow run does
not complete.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import timedelta
from typing import Any

from weir import as_completed, flow, get_run_logger, task, unmapped
from weir.cache_policies import INPUTS

# A made-up market: EUR per unit of each currency.
MARKET_RATES = {"EUR": 1.0, "USD": 0.92, "GBP": 1.17, "CHF": 1.04}
VAT_RATE = 0.2

SAMPLE_ORDERS = [
    {"order_id": "SO-1001", "customer": "Northwind", "amount": 1200.0, "currency": "USD"},
    {"order_id": "SO-1002", "customer": "Contoso", "amount": 310.5, "currency": "GBP"},
    {"order_id": "SO-1003", "customer": "Fabrikam", "amount": 89.9, "currency": "EUR"},
    {"order_id": "SO-1004", "customer": "Tailspin", "amount": 4500.0, "currency": "CHF"},
    {"order_id": "SO-1005", "customer": "Litware", "amount": 75.0, "currency": "USD"},
    {"order_id": "SO-1006", "customer": "Adatum", "amount": 640.0, "currency": "GBP"},
]


@task(cache_policy=INPUTS, cache_expiration=timedelta(hours=1))
def fetch_exchange_rate(currency: str) -> float:
    """Ask the (slow) market-data service for a rate; cached for an hour per currency."""
    time.sleep(0.05)
    return MARKET_RATES[currency]


@task
def open_invoice_batch(batch_id: str, size: int) -> str:
    get_run_logger().info("Opened invoice batch %s for %d orders", batch_id, size)
    return batch_id


@task(task_run_name="invoice-{order[order_id]}")
def build_invoice(order: dict[str, Any], rates: dict[str, float]) -> dict[str, Any]:
    """One invoice: the order's amount in euros, plus VAT."""
    net = order["amount"] * rates[order["currency"]]
    return {
        "order_id": order["order_id"],
        "customer": order["customer"],
        "net_eur": round(net, 2),
        "total_eur": round(net * (1 + VAT_RATE), 2),
    }


@flow
def invoice_orders(orders: list[dict[str, Any]], batch_id: str = "2024-06") -> dict[str, Any]:
    """Invoice every order of a batch; return the batch total and how each rate was found."""
    logger = get_run_logger()
    currencies = sorted({order["currency"] for order in orders})
    rate_futures = fetch_exchange_rate.map(currencies)
    rates: dict[str, float] = {}
    rate_states: dict[str, str] = {}
    for currency, future in zip(currencies, rate_futures, strict=True):
        rates[currency] = future.result()
        # The run's final state says whether the rate was fetched or came from the cache.
        rate_states[currency] = future.state.name
        logger.info("Rate %s->EUR %.2f (%s)", currency, rates[currency], rate_states[currency])

    batch = open_invoice_batch.submit(batch_id, len(orders))
    invoice_futures = build_invoice.map(orders, unmapped(rates), wait_for=[batch])
    invoices = []
    for future in as_completed(invoice_futures):
        invoice = future.result()
        invoices.append(invoice)
        logger.info("Invoice for %s: EUR %.2f", invoice["order_id"], invoice["total_eur"])

    invoices.sort(key=lambda invoice: invoice["order_id"])
    total = round(sum(invoice["total_eur"] for invoice in invoices), 2)
    logger.info("Batch %s: %d invoices, EUR %.2f", batch_id, len(invoices), total)
    return {"invoices": len(invoices), "total_eur": total, "rate_states": rate_states}


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="weir-rates-") as cache_dir:
        # The cached rates are written under cache_dir; nothing goes to ~/.weir.
        pipeline = invoice_orders.with_options(result_storage=cache_dir)
        for attempt in ("first", "second"):
            state = pipeline(SAMPLE_ORDERS, return_state=True)
            if not state.is_completed():
                return 1
            summary = state.result()
            print(
                f"{attempt} run: rates {summary['rate_states']}, total EUR {summary['total_eur']}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
