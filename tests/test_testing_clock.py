"""FakeClock: time moves only when something sleeps or advances it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import pytest

from weir.core.clock import SYSTEM_CLOCK, Clock, get_clock
from weir.testing import FakeClock, fake_clock


def test_starts_at_a_fixed_utc_time() -> None:
    clock: Clock = FakeClock()
    assert clock.now() == datetime(2030, 1, 1, tzinfo=UTC)
    assert clock.now().utcoffset() == timedelta(0)
    assert clock.now() == clock.now()


def test_start_is_converted_to_utc_and_naive_means_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert FakeClock(datetime(2031, 5, 1, 12, tzinfo=plus_two)).now() == datetime(
        2031, 5, 1, 10, tzinfo=UTC
    )
    assert FakeClock(datetime(2031, 5, 1, 12)).now() == datetime(2031, 5, 1, 12, tzinfo=UTC)


def test_sleep_advances_instantly_and_is_recorded() -> None:
    clock = FakeClock()
    before, start = clock.now(), clock.monotonic()
    clock.sleep(10)
    clock.sleep(0.5)
    assert clock.sleeps == [10, 0.5]
    assert clock.now() - before == timedelta(seconds=10.5)
    assert clock.monotonic() - start == 10.5


def test_negative_sleep_is_recorded_but_does_not_move_time() -> None:
    clock = FakeClock()
    clock.sleep(-1)
    assert clock.sleeps == [-1]
    assert clock.now() == datetime(2030, 1, 1, tzinfo=UTC)


def test_asleep_advances_instantly() -> None:
    clock = FakeClock()

    async def main() -> None:
        await clock.asleep(3600)

    asyncio.run(main())
    assert clock.sleeps == [3600]
    assert clock.now() == datetime(2030, 1, 1, 1, tzinfo=UTC)


def test_advance_moves_time_without_recording_a_sleep() -> None:
    clock = FakeClock()
    clock.advance(60)
    assert clock.now() == datetime(2030, 1, 1, 0, 1, tzinfo=UTC)
    assert clock.monotonic() == 60
    assert clock.sleeps == []
    with pytest.raises(ValueError, match="back in time"):
        clock.advance(-1)


def test_fake_clock_is_current_inside_the_block() -> None:
    start = datetime(2032, 2, 29, tzinfo=UTC)
    with fake_clock(start) as clock:
        assert get_clock() is clock
        assert get_clock().now() == start
    assert get_clock() is SYSTEM_CLOCK


def test_importing_weir_testing_loads_nothing_else() -> None:
    code = "import sys, weir.testing; print('weir.testing.clock' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
