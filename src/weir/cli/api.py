"""What CLI nouns that talk to the API share: the client, ids, tables and times."""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from weir.cli.output import exit_with_error, print_json

if TYPE_CHECKING:
    from pydantic import BaseModel

    from weir.client.sync import SyncWeirClient


@contextlib.contextmanager
def api_client() -> Iterator[SyncWeirClient]:
    """A client of WEIR_API_URL; without one, of the local server (WEIR_SERVER_HOST/PORT)."""
    from weir.client.http import settings_options
    from weir.client.sync import SyncWeirClient
    from weir.settings import get_settings

    settings = get_settings()
    local = f"http://{settings.server.host}:{settings.server.port}/api"
    with SyncWeirClient(**settings_options(settings, default_api_url=local)) as client:
        yield client


def parse_id(value: str, what: str = "flow run") -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        exit_with_error(
            f"{value!r} is not a {what} id; ids look like 01a2063f-ff3b-7d2f-86cd-eb3a031c7cbd."
        )


def print_models(models: Sequence[BaseModel]) -> None:
    print_json([m.model_dump(mode="json") for m in models])


def print_table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None
) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, box=None, header_style="bold", pad_edge=False)
    for column in columns:  # ids are copied and pasted: never cut them
        table.add_column(column, no_wrap=column == "ID", min_width=36 if column == "ID" else None)
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    # piped into grep or a file, use a wide line rather than the 80 columns of no terminal
    width = None if sys.stdout.isatty() else 250
    Console(highlight=False, width=width).print(table)


def when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def duration(seconds: float | None) -> str:
    if not seconds:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"
