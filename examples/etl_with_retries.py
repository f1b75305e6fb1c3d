"""An ETL against a flaky source: extract orders, transform them, load them into SQLite.

What it shows:

- `@task(retries=3, retry_delay_seconds=0.1, task_run_name="extract-page-{page}")`: the orders API fails now and then
  (a seeded random plan, so the run is the same every time and always ends
  Completed); each failed page is retried after a short delay.
- `log_prints=True` on the flow: `print()` inside the flow and its tasks becomes
  an INFO log line of the run that printed it.
- `get_run_logger()`: the logger of the task or flow run in progress.
- Loading into a SQLite file (stdlib `sqlite3`) in a temporary directory.

Run it with `python examples/etl_with_retries.py`; it exits 1 if the flow does
not complete.
"""

from __future__ import annotations

import random
import sqlite3
import sys
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from weir import flow, get_run_logger, task

# EUR per unit of each currency: the warehouse stores every amount in euro cents.
EUR_RATES = {"EUR": 1.0, "USD": 0.92, "GBP": 1.17}


@dataclass(frozen=True)
class Order:
    order_id: int
    customer_email: str
    amount: float
    currency: str
    status: str


class FlakyOrdersAPI:
    """A stand-in for a remote orders API that times out now and then.

    Which requests fail is decided by a seeded random generator per page: page
    `n` fails its first 0, 1 or 2 requests. That is random-looking but the same
    on every run, and never more failures than the extract task has retries.
    """

    def __init__(self, seed: int, orders_per_page: int = 5) -> None:
        self.seed = seed
        self.orders_per_page = orders_per_page
        self._requests: Counter[int] = Counter()
        self._lock = threading.Lock()

    def failures_planned(self, page: int) -> int:
        return random.Random(f"{self.seed}:{page}").choice([0, 1, 1, 2])

    def fetch_page(self, page: int) -> list[Order]:
        with self._lock:
            self._requests[page] += 1
            attempt = self._requests[page]
        if attempt <= self.failures_planned(page):
            raise ConnectionError(f"orders API timed out on page {page} (HTTP 503)")
        rng = random.Random(f"{self.seed}:{page}:orders")
        orders = []
        for index in range(self.orders_per_page):
            order_id = page * self.orders_per_page + index + 1
            orders.append(
                Order(
                    order_id=order_id,
                    customer_email=f"  Customer{rng.randint(1, 40)}@Example.COM ",
                    amount=round(rng.uniform(5, 500), 2),
                    currency=rng.choice(sorted(EUR_RATES)),
                    status=rng.choice(["paid", "paid", "paid", "refunded", "cancelled"]),
                )
            )
        return orders


@task(retries=3, retry_delay_seconds=0.1, task_run_name="extract-page-{page}")
def extract_orders(api: FlakyOrdersAPI, page: int) -> list[Order]:
    """Fetch one page of orders; a timeout fails this attempt and weir retries it."""
    orders = api.fetch_page(page)
    get_run_logger().info("Fetched %d orders from page %d", len(orders), page)
    return orders


@task
def transform_orders(orders: list[Order]) -> list[tuple[int, str, int, str]]:
    """Drop cancelled orders, normalise emails, convert amounts to euro cents."""
    rows = []
    for order in orders:
        if order.status == "cancelled":
            continue
        email = order.customer_email.strip().lower()
        eur_cents = round(order.amount * EUR_RATES[order.currency] * 100)
        rows.append((order.order_id, email, eur_cents, order.status))
    print(f"Kept {len(rows)} of {len(orders)} orders (cancelled ones dropped)")
    return rows


@task
def load_orders(database: str, rows: list[tuple[int, str, int, str]]) -> int:
    """Upsert the rows into the warehouse's `orders` table; return how many it holds."""
    with sqlite3.connect(database) as connection:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS orders ("
            " order_id INTEGER PRIMARY KEY, customer_email TEXT NOT NULL,"
            " amount_eur_cents INTEGER NOT NULL, status TEXT NOT NULL)"
        )
        connection.executemany("INSERT OR REPLACE INTO orders VALUES (?, ?, ?, ?)", rows)
        (count,) = connection.execute("SELECT COUNT(*) FROM orders").fetchone()
    connection.close()
    return int(count)


@flow(log_prints=True)
def orders_etl(database: str, pages: int = 4, seed: int = 6) -> dict[str, int]:
    """Copy every page of orders from the orders API into the warehouse."""
    api = FlakyOrdersAPI(seed=seed)
    extracted = []
    for page in range(pages):
        extracted.extend(extract_orders(api, page))
    rows = transform_orders(extracted)
    stored = load_orders(database, rows)
    revenue_cents = sum(row[2] for row in rows if row[3] == "paid")
    print(f"Warehouse holds {stored} orders; paid revenue EUR {revenue_cents / 100:,.2f}")
    return {"extracted": len(extracted), "loaded": len(rows), "revenue_eur_cents": revenue_cents}


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="weir-etl-") as workdir:
        database = str(Path(workdir) / "warehouse.db")
        state = orders_etl(database=database, return_state=True)
        if not state.is_completed():
            return 1
        print(f"orders_etl returned {state.result()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
