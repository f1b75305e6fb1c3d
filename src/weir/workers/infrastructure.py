"""Where a worker runs a claimed flow run: the `Infrastructure` protocol.

One module per kind, chosen by the work pool's type (`process` today; docker and
kubernetes later). An infrastructure starts a claimed run and hands back a handle
the worker polls, waits on and kills; the exit code tells the worker how it ended
(the run's state, read back from the API, tells whether it ended properly).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from weir.core.schemas.work_pools import ClaimedRun

# called with each line the run's process prints (without the line break)
OnOutput = Callable[[str], None]


class Infrastructure(Protocol):
    def start(self, claimed: ClaimedRun, on_output: OnOutput) -> Any:
        """Start the claimed run; a handle for the other methods. Call it from a thread
        that outlives the run (the main thread): a process child dies with it."""

    def poll(self, handle: Any) -> int | None:
        """The exit code if the run's process has ended, else None."""

    def wait(self, handle: Any, timeout: float | None = None) -> int | None:
        """Wait up to `timeout` seconds (None: for ever); the exit code, or None."""

    def kill(self, handle: Any, grace: float) -> None:
        """Stop the run: ask it to end, then force it after `grace` seconds."""


def infrastructure_for(pool_type: str, environment: Mapping[str, str]) -> Infrastructure:
    """The infrastructure of a pool type; `environment` is what every run gets from the
    worker (its API URL, credentials and project). ValueError for an unknown type."""
    if pool_type == "process":
        from weir.workers.process import ProcessInfrastructure

        infrastructure = ProcessInfrastructure(environment)
        infrastructure.prepare()  # its fork server imports while the worker registers
        return infrastructure
    raise ValueError(
        f"This worker cannot run work pools of type '{pool_type}'; it runs 'process' pools."
    )
