"""The allowed flow-run transitions (DESIGN.md §4), as data you can read on one screen.

`None` is a run that has no state yet (being created).
"""

from __future__ import annotations

from weir.core.states import StateType as S

ALLOWED: dict[S | None, frozenset[S]] = {
    None: frozenset({S.SCHEDULED, S.PENDING, S.RUNNING}),
    S.SCHEDULED: frozenset({S.PENDING, S.CANCELLING, S.CANCELLED, S.SCHEDULED}),
    S.PENDING: frozenset({S.RUNNING, S.FAILED, S.CRASHED, S.CANCELLING, S.CANCELLED, S.SCHEDULED}),
    S.RUNNING: frozenset({S.COMPLETED, S.FAILED, S.CRASHED, S.CANCELLING, S.PAUSED, S.SCHEDULED}),
    S.PAUSED: frozenset({S.RUNNING, S.FAILED, S.CRASHED, S.CANCELLING, S.CANCELLED, S.SCHEDULED}),
    S.CANCELLING: frozenset({S.CRASHED, S.CANCELLED}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset({S.SCHEDULED}),
    S.CRASHED: frozenset({S.SCHEDULED}),
    S.CANCELLED: frozenset({S.SCHEDULED}),
}


def is_allowed(current: S | None, proposed: S) -> bool:
    return proposed in ALLOWED[current]
