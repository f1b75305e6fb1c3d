"""`weir flow-run …`: list, inspect, watch, cancel, retry, read the logs of and delete
flow runs."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import typer

from weir.cli.api import api_client, duration, parse_id, print_models, print_table, when
from weir.cli.output import exit_with_error, print_json
from weir.cli.watch import print_log, watch_and_exit

if TYPE_CHECKING:
    from weir.core.schemas.runs import FlowRun
    from weir.core.schemas.states import OrchestrationResult

app = typer.Typer(
    help="List, inspect, watch, cancel, retry and delete flow runs; read their logs.",
    no_args_is_help=True,
)


@app.command("ls")
def list_flow_runs(
    flow_name: list[str] = typer.Option(
        None, "--flow-name", help="Only runs of this flow (repeatable)."
    ),
    state: list[str] = typer.Option(
        None,
        "--state",
        help="A state type (COMPLETED, FAILED, …) or name (Late, Cached); repeatable.",
    ),
    limit: int = typer.Option(15, "--limit", help="Show at most this many runs (newest first)."),
    json_output: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List flow runs of the current project, newest first."""
    from weir.core.schemas import filters as f
    from weir.core.states import StateType

    if not 1 <= limit <= f.MAX_LIMIT:
        exit_with_error(f"--limit must be between 1 and {f.MAX_LIMIT}, got {limit}.")
    types = [s.upper() for s in state or [] if s.upper() in StateType.__members__]
    names = [s for s in state or [] if s.upper() not in StateType.__members__]
    state_filter = None
    if types or names:
        state_filter = f.StateFilter(
            type=f.StateTypes(any_=[StateType(t) for t in types]) if types else None,
            name=f.StateNames(any_=names) if names else None,
        )
    request = f.FlowRunFilterRequest(
        limit=limit,
        flows=f.FlowFilter(name=f.Names(any_=flow_name)) if flow_name else None,
        flow_runs=f.FlowRunFilter(state=state_filter) if state_filter else None,
    )
    with api_client() as client:
        runs = client.read_flow_runs(request)
    if json_output:
        print_models(runs)
        return
    print_table(
        ["ID", "FLOW", "NAME", "STATE", "STARTED", "DURATION"],
        [
            (
                r.id,
                r.flow_name,
                r.name,
                r.state_name,
                when(r.start_time),
                duration(r.total_run_time),
            )
            for r in runs
        ],
    )


@app.command("inspect")
def inspect_flow_run(
    flow_run_id: str,
    json_output: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Show one flow run: its fields, parameters and state history."""
    run_id = parse_id(flow_run_id)
    with api_client() as client:
        run = client.read_flow_run(run_id)
        history = client.read_flow_run_states(run_id)
    if json_output:
        details = run.model_dump(mode="json")
        details["state_history"] = [s.model_dump(mode="json") for s in history]
        print_json(details)
        return
    fields = [
        ("ID", run.id), ("Name", run.name), ("Flow", run.flow_name), ("Project", run.project),
        ("State", f"{run.state_name}" + (f" - {run.state.message}" if run.state and run.state.message else "")),
        ("Parameters", run.parameters), ("Tags", ", ".join(run.tags) or "-"),
        ("Started", when(run.start_time)), ("Ended", when(run.end_time)),
        ("Run time", duration(run.total_run_time)), ("Attempts", run.run_count),
        ("Parent flow run", run.parent_flow_run_id or "-"), ("Deployment", run.deployment_id or "-"),
    ]  # fmt: skip
    for label, value in fields:
        typer.echo(f"{label + ':':<17}{value}")
    typer.echo("")
    print_table(
        ["TIME", "STATE", "MESSAGE"],
        [(when(s.timestamp), s.name, s.message or "") for s in history],
        title="State history",
    )


@app.command("logs")
def logs(
    flow_run_id: str,
    tail: bool = typer.Option(
        False, "--tail", "-f", help="Keep following new lines until the run ends (like tail -f)."
    ),
    level: str = typer.Option("DEBUG", help="Only lines at this level or above."),
) -> None:
    """Print a flow run's logs (its tasks' lines included)."""
    from weir.core.schemas import filters as f

    run_id = parse_id(flow_run_id)
    minimum = logging.getLevelName(level.upper())
    if not isinstance(minimum, int):
        exit_with_error(f"Unknown level {level!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL.")
    with api_client() as client:
        client.read_flow_run(run_id)  # a clear "not found" before anything else
        if tail:
            for line in client.stream_logs(run_id, follow=True):
                if line.level >= minimum:
                    print_log(line)
            return
        offset = 0
        while True:
            page = client.read_logs(
                f.LogFilterRequest(
                    logs=f.LogFilter(
                        flow_run_id=f.AnyId(any_=[run_id]), level=f.LevelRange(ge_=minimum)
                    ),
                    limit=f.MAX_LIMIT,
                    offset=offset,
                )
            )
            for line in page:
                print_log(line)
            if len(page) < f.MAX_LIMIT:
                return
            offset += len(page)


@app.command("delete")
def delete(flow_run_ids: list[str] = typer.Argument(..., help="One or more flow run ids.")) -> None:
    """Delete flow runs with their task runs, states and logs."""
    ids = [parse_id(value) for value in flow_run_ids]
    with api_client() as client:
        for run_id in ids:
            client.delete_flow_run(run_id)
            typer.echo(f"Deleted flow run {run_id}.")


@app.command("watch")
def watch(flow_run_id: str) -> None:
    """Show a flow run's state changes and log lines as they happen, until it ends; exit
    with 0 when it COMPLETED, 1 otherwise."""
    run_id = parse_id(flow_run_id)
    with api_client() as client:
        client.read_flow_run(run_id)  # a clear "not found" before anything else
        watch_and_exit(client, run_id)


@app.command("cancel")
def cancel(flow_run_id: str) -> None:
    """Cancel a flow run: a scheduled run is cancelled at once; a running one goes to
    Cancelling and its worker stops it."""
    from weir.core.schemas.states import StateSchema
    from weir.core.states import TERMINAL_TYPES, StateType

    run_id = parse_id(flow_run_id)
    with api_client() as client:
        run = client.read_flow_run(run_id)
        if run.state_type in TERMINAL_TYPES:
            exit_with_error(
                f"Flow run {run_id} already ended {run.state_name}; there is nothing to cancel."
            )
        if run.state_type is StateType.CANCELLING:
            typer.echo(f"Flow run {run_id} is already being cancelled (Cancelling).")
            return
        proposed = StateSchema(
            type=StateType.CANCELLING, name="Cancelling", message="Cancelled from the CLI."
        )
        result = client.set_flow_run_state(run_id, proposed)
    _print_result(run, result, "cancelled")


@app.command("retry")
def retry(flow_run_id: str) -> None:
    """Run a deployment's flow run that ended again: it is scheduled now (AwaitingRetry)
    for a worker of its pool to pick up."""
    from weir.core.clock import utcnow
    from weir.core.schemas.states import StateDetails, StateSchema
    from weir.core.states import StateType

    run_id = parse_id(flow_run_id)
    with api_client() as client:
        run = client.read_flow_run(run_id)
        _check_retryable(run)
        proposed = StateSchema(
            type=StateType.SCHEDULED,
            name="AwaitingRetry",
            message="Retried from the CLI.",
            state_details=StateDetails(scheduled_time=utcnow()),
        )
        # COMPLETED is left only by an operator's decision: the transition table has no
        # COMPLETED -> SCHEDULED, so this one is forced
        force = run.state_type is StateType.COMPLETED
        result = client.set_flow_run_state(run_id, proposed, force=force)
    _print_result(run, result, "retried")


def _check_retryable(run: FlowRun) -> None:
    from weir.core.states import TERMINAL_TYPES

    if run.deployment_id is None:
        exit_with_error(
            f"Flow run {run.id} has no deployment; only deployment runs can be retried by a "
            "worker, so run the flow again instead."
        )
    if run.state_type not in TERMINAL_TYPES:
        exit_with_error(
            f"Flow run {run.id} is {run.state_name}; only a run that ended can be retried."
        )


def _print_result(run: FlowRun, result: OrchestrationResult, verb: str) -> None:
    from weir.core.schemas.states import OrchestrationStatus, state_name

    if result.status is OrchestrationStatus.ACCEPT and result.state is not None:
        typer.echo(f"Flow run {run.name!r} ({run.id}) is now {state_name(result.state)}.")
        return
    reason = result.details.reason or result.status.value
    exit_with_error(f"Flow run {run.id} was not {verb}: {reason}")
