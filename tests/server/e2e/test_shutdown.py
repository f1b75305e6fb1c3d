"""Stopping a real server while workers long-poll it: the claims and the heartbeats
waiting on it answer at once, so SIGTERM stops the server in about a second instead
of waiting out their polls (a restart in the middle of a schedule stays short)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from weir.testing.server import temporary_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


def test_sigterm_answers_long_polls_and_stops_within_seconds() -> None:
    with temporary_server() as server:
        api = server.api_url
        assert httpx.post(f"{api}/work_pools/", json={"name": "main"}).status_code == 201
        answers: dict[str, httpx.Response] = {}

        def poll(kind: str, path: str, body: dict[str, object]) -> None:
            answers[kind] = httpx.post(f"{api}{path}", json=body, timeout=60)

        polls = [
            threading.Thread(
                target=poll,
                args=("claim", "/work_pools/main/claim", {"worker_name": "w", "wait_seconds": 30}),
            ),
            threading.Thread(
                target=poll,
                args=(
                    "heartbeat",
                    "/work_pools/main/workers/heartbeat",
                    {"name": "w", "heartbeat_interval_seconds": 30, "wait_seconds": 30},
                ),
            ),
        ]
        for thread in polls:
            thread.start()
        time.sleep(1.0)  # both are waiting in the server now
        assert all(thread.is_alive() for thread in polls)

        started = time.monotonic()
        # uvicorn ends by re-raising SIGTERM once it has stopped cleanly
        assert server.stop(timeout=30) in (0, -15)
        stopped_in = time.monotonic() - started
        for thread in polls:
            thread.join(5)
        assert stopped_in < 5, f"the server took {stopped_in:.1f} s to stop"
        assert answers["claim"].status_code == 200 and answers["claim"].json() == []
        assert answers["heartbeat"].status_code == 200
        assert answers["heartbeat"].json()["cancel"] == []
