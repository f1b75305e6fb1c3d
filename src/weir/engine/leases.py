"""Leases of the flow runs this process runs: crash detection for any tracked run.

A top-level flow run that the reporter moves to RUNNING gets a lease on the server
(`state_details.lease_seconds`, held by `process:<hostname>:<pid>`); the reporter's
sender thread renews it every third of its length until the run leaves RUNNING. If
the process dies, renewals stop and the server's zombie reaper crashes the run once
the lease lapses. A renewal answered 409 means someone else ended the run (the
reaper, an operator): it is logged once and that run is no longer renewed.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING

from weir.core.schemas.work_pools import LeaseRenewal
from weir.exceptions import APIError, NotFound, ObjectAlreadyExists, ServerUnreachable

if TYPE_CHECKING:
    from weir.client.sync import SyncWeirClient

logger = logging.getLogger("weir.reporter.leases")


def process_lease_owner() -> str:
    """Who holds the leases this process takes: `process:<hostname>:<pid>`."""
    return f"process:{socket.gethostname()}:{os.getpid()}"


class LeaseKeeper:
    """The runs whose leases this process renews, and when each renewal is due.

    `hold`/`release` are called from the engine's threads; `renew_due` and
    `seconds_to_next` from the reporter's sender thread.
    """

    def __init__(self, lease_seconds: float) -> None:
        self.lease_seconds = lease_seconds
        self.owner = process_lease_owner()
        self._due: dict[uuid.UUID, float] = {}
        self._lock = threading.Lock()
        self._unsupported = False

    @property
    def interval(self) -> float:
        return self.lease_seconds / 3

    def hold(self, flow_run_id: uuid.UUID) -> None:
        """Start renewing the lease the run just got with its RUNNING state."""
        with self._lock:
            self._due[flow_run_id] = time.monotonic() + self.interval

    def release(self, flow_run_id: uuid.UUID) -> None:
        with self._lock:
            self._due.pop(flow_run_id, None)

    def held(self) -> list[uuid.UUID]:
        with self._lock:
            return list(self._due)

    def seconds_to_next(self) -> float | None:
        """How long until the next renewal is due (0 if one is), None if none is held."""
        with self._lock:
            if not self._due:
                return None
            return max(0.0, min(self._due.values()) - time.monotonic())

    def renew_due(self, client: SyncWeirClient) -> None:
        """Renew every lease that is due. Raises ServerUnreachable (the caller backs off)."""
        now = time.monotonic()
        with self._lock:
            due = [run_id for run_id, at in self._due.items() if at <= now]
        for run_id in due:
            self._renew(client, run_id)

    def _renew(self, client: SyncWeirClient, run_id: uuid.UUID) -> None:
        renewal = LeaseRenewal(lease_seconds=self.lease_seconds, owner=self.owner)
        try:
            client.renew_flow_run_lease(run_id, renewal)
        except ServerUnreachable:
            with self._lock:  # try again soon, not in a tight loop
                if run_id in self._due:
                    self._due[run_id] = time.monotonic() + min(self.interval, 1.0)
            raise
        except ObjectAlreadyExists as exc:
            self.release(run_id)
            logger.warning(
                "The lease of flow run %s could not be renewed: %s (it was ended elsewhere).",
                run_id,
                exc,
            )
            return
        except NotFound as exc:
            self.release(run_id)
            if not self._unsupported:  # an older server, or the run was deleted
                self._unsupported = True
                logger.warning("The lease of flow run %s could not be renewed: %s", run_id, exc)
            return
        except APIError as exc:
            self.release(run_id)
            logger.warning("The lease of flow run %s could not be renewed: %s", run_id, exc)
            return
        with self._lock:
            if run_id in self._due:
                self._due[run_id] = time.monotonic() + self.interval
