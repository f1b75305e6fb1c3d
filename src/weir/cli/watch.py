"""Watching a flow run live: its state changes and log lines as they happen, until it
ends (`weir flow-run watch ID`, `weir deployment run … --watch`).

It polls the run, then its state history, then its logs, twice a second. The state is
read before the logs: a run is final only once its logs are stored, so the logs read
after seeing it final are complete. Log lines are asked for from a little before the
newest one seen (batches from several processes arrive out of order) and printed once.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from weir.client.sync import SyncWeirClient
    from weir.core.schemas.runs import FlowRun, Log
    from weir.core.schemas.states import StateSchema

POLL_SECONDS = 0.5
# how far before the newest line seen to look for lines that arrived late
LOG_LOOKBACK = timedelta(seconds=10)


def watch_flow_run(
    client: SyncWeirClient, flow_run_id: uuid.UUID, poll_seconds: float = POLL_SECONDS
) -> FlowRun:
    """Print the run's states and logs until it reaches a final state; return the run."""
    from weir.core.states import TERMINAL_TYPES

    logs = _LogFollower(client, flow_run_id)
    states_seen: set[uuid.UUID | None] = set()
    while True:
        run = client.read_flow_run(flow_run_id)
        for state in client.read_flow_run_states(flow_run_id):
            if state.id not in states_seen:
                states_seen.add(state.id)
                print_state(state)
        logs.print_new()
        if run.state_type in TERMINAL_TYPES:
            return run
        time.sleep(poll_seconds)


def watch_exit_code(run: FlowRun) -> int:
    """0 for a COMPLETED run, 1 for any other end."""
    from weir.core.states import StateType

    return 0 if run.state_type is StateType.COMPLETED else 1


def watch_and_exit(client: SyncWeirClient, flow_run_id: uuid.UUID) -> None:
    """Watch the run, print how it ended and exit with `watch_exit_code`."""
    try:
        run = watch_flow_run(client, flow_run_id)
    except KeyboardInterrupt:
        typer.echo(f"Stopped watching; flow run {flow_run_id} goes on.", err=True)
        raise typer.Exit(130) from None
    message = f" - {run.state.message}" if run.state and run.state.message else ""
    typer.echo(f"Flow run {run.name!r} ended {run.state_name}{message}.")
    raise typer.Exit(watch_exit_code(run))


def print_state(state: StateSchema) -> None:
    from weir.core.schemas.states import state_name

    message = f" - {state.message}" if state.message else ""
    typer.echo(f"{_stamp(state.timestamp)} | STATE   | {state_name(state)}{message}")


def print_log(line: Log) -> None:
    level = logging.getLevelName(line.level)
    typer.echo(f"{_stamp(line.timestamp)} | {level:<7} | {line.name} - {line.message}")


def _stamp(moment: datetime | None) -> str:
    if moment is None:
        return " " * 12
    return moment.astimezone().strftime("%H:%M:%S.%f")[:-3]


class _LogFollower:
    """Prints each of a run's log lines once, as they are stored."""

    def __init__(self, client: SyncWeirClient, flow_run_id: uuid.UUID) -> None:
        self.client = client
        self.flow_run_id = flow_run_id
        self.seen: set[uuid.UUID] = set()
        self.newest: datetime | None = None

    def print_new(self) -> None:
        from weir.core.schemas import filters as f

        since = self.newest - LOG_LOOKBACK if self.newest else None
        offset = 0
        while True:
            page = self.client.read_logs(
                f.LogFilterRequest(
                    logs=f.LogFilter(
                        flow_run_id=f.AnyId(any_=[self.flow_run_id]),
                        timestamp=f.TimeRange(after_=since) if since else None,
                    ),
                    limit=f.MAX_LIMIT,
                    offset=offset,
                )
            )
            for line in page:
                if line.id in self.seen:
                    continue
                self.seen.add(line.id)
                print_log(line)
                if self.newest is None or line.timestamp > self.newest:
                    self.newest = line.timestamp
            if len(page) < f.MAX_LIMIT:
                return
            offset += len(page)
