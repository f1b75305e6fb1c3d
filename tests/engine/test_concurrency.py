"""`concurrency()` and task tag limits against a real in-process server."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import serve, weir_app
from weir import concurrency, flow, task
from weir.client.sync import SyncWeirClient
from weir.core.schemas.concurrency import ConcurrencyLimitCreate
from weir.engine import concurrency as concurrency_module
from weir.engine.contexts import get_run_context
from weir.engine.reporter import shutdown_reporter
from weir.engine.task_runners import ThreadPoolTaskRunner
from weir.exceptions import ConcurrencySlotTimeout, ConfigurationError
from weir.settings import reset_settings


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SyncWeirClient]:
    running, api_url = serve(weir_app(tmp_path))
    monkeypatch.setenv("WEIR_API_URL", api_url)
    reset_settings()
    with SyncWeirClient(api_url) as sync_client:
        yield sync_client
    shutdown_reporter()
    concurrency_module.limit_names.clear()
    for cached in concurrency_module._clients.values():
        cached.close()
    concurrency_module._clients.clear()
    running.should_exit = True


def create_limit(client: SyncWeirClient, name: str, limit: int) -> None:
    client.create_concurrency_limit(ConcurrencyLimitCreate(name=name, limit=limit))


class Overlap:
    """Counts the blocks running at once, and the most there ever were."""

    def __init__(self) -> None:
        self.now = self.most = self.done = 0
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def exit(self) -> None:
        with self._lock:
            self.now -= 1
            self.done += 1


def test_without_an_api_it_does_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="weir.concurrency")
    with concurrency("db", occupy=5, strict=True, timeout_seconds=0):
        pass

    async def main() -> str:
        async with concurrency(["db", "api"]):
            return "ran"

    assert asyncio.run(main()) == "ran"
    assert "no API configured" in caplog.text


def test_two_threads_on_a_limit_of_one_never_overlap(client: SyncWeirClient) -> None:
    create_limit(client, "db", 1)
    overlap = Overlap()

    def work() -> None:
        with concurrency("db", occupy=1):
            overlap.enter()
            time.sleep(0.2)
            overlap.exit()

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert overlap.done == 3
    assert overlap.most == 1
    assert client.read_concurrency_limit("db").active_slots == 0


def test_a_timeout_raises_and_slots_are_released_on_exceptions(client: SyncWeirClient) -> None:
    create_limit(client, "db", 1)

    def hold_and_fail() -> None:
        with concurrency("db"):
            held = client.read_concurrency_limit("db")
            assert held.active_slots == 1 and len(held.holders) == 1
            started = time.monotonic()
            with pytest.raises(ConcurrencySlotTimeout, match=r"'db' within 0\.3 s"):
                concurrency("db", timeout_seconds=0.3).acquire()
            assert 0.3 <= time.monotonic() - started < 3
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        hold_and_fail()
    assert client.read_concurrency_limit("db").active_slots == 0


def test_strict_refuses_a_name_without_a_limit(client: SyncWeirClient) -> None:
    create_limit(client, "db", 1)
    with pytest.raises(ConfigurationError, match="'nope' does not exist"):  # noqa: SIM117
        with concurrency(["db", "nope"], strict=True):
            pass
    assert client.read_concurrency_limit("db").active_slots == 0
    with concurrency(["db", "nope"]):  # not strict: only db limits
        assert client.read_concurrency_limit("db").active_slots == 1


def test_slots_are_renewed_while_held(client: SyncWeirClient) -> None:
    create_limit(client, "db", 1)
    with concurrency("db", lease_seconds=1):
        time.sleep(1.5)  # past the first lease: renewals kept it
        assert client.read_concurrency_limit("db").active_slots == 1
        with pytest.raises(ConcurrencySlotTimeout):  # noqa: SIM117
            with concurrency("db", timeout_seconds=0.1):
                pass
    assert client.read_concurrency_limit("db").active_slots == 0


def test_async_with_and_the_run_is_the_holder(client: SyncWeirClient) -> None:
    create_limit(client, "db", 2)

    @flow
    async def writer() -> list[str]:
        async with concurrency("db", occupy=2):
            holders = client.read_concurrency_limit("db").holders
        context = get_run_context()
        assert context is not None
        [holder] = holders
        assert holder.startswith(f"run:{context.flow_run.id}/")  # type: ignore[union-attr]
        return holders

    assert len(asyncio.run(writer())) == 1
    assert client.read_concurrency_limit("db").active_slots == 0


def test_blocks_of_one_run_hold_and_release_their_own_slots(client: SyncWeirClient) -> None:
    # two blocks of one flow run on the same limit, at once (asyncio tasks share the
    # run's context): the first to leave gives back its slot only
    create_limit(client, "db", 2)
    seen: list[int] = []

    @flow
    async def two_blocks() -> None:
        first_in, first_out = asyncio.Event(), asyncio.Event()

        async def first() -> None:
            async with concurrency("db"):
                first_in.set()
                await first_out.wait()

        other = asyncio.create_task(first())
        await first_in.wait()
        async with concurrency("db"):
            seen.append(client.read_concurrency_limit("db").active_slots)
            first_out.set()
            await other
            seen.append(client.read_concurrency_limit("db").active_slots)
            with pytest.raises(ConcurrencySlotTimeout):
                async with concurrency("db", occupy=2, timeout_seconds=0.2):
                    pass

    asyncio.run(two_blocks())
    assert seen == [2, 1]
    assert client.read_concurrency_limit("db").active_slots == 0


def test_a_tag_limit_of_one_runs_mapped_tasks_one_at_a_time(
    client: SyncWeirClient, caplog: pytest.LogCaptureFixture
) -> None:
    create_limit(client, "tag:db", 1)
    overlap = Overlap()

    @task(tags=["db"])
    def load(i: int) -> int:
        overlap.enter()
        time.sleep(0.1)
        overlap.exit()
        return i

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=4))
    def etl() -> list[int]:
        return list(load.map(range(4)).result())

    caplog.set_level(logging.INFO)
    assert etl() == [0, 1, 2, 3]
    assert overlap.done == 4 and overlap.most == 1
    assert "waiting for a slot of tag 'db'" in caplog.text
    assert client.read_concurrency_limit("tag:db").active_slots == 0


def test_tags_without_a_limit_ask_nothing_of_the_server(client: SyncWeirClient) -> None:
    overlap = Overlap()

    @task(tags=["api"])
    def call(i: int) -> int:
        overlap.enter()
        time.sleep(0.1)
        overlap.exit()
        return i

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=4))
    def fan_out() -> list[int]:
        return list(call.map(range(4)).result())

    assert fan_out() == [0, 1, 2, 3]
    assert overlap.most > 1
