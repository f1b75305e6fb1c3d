"""Schedule times, pinned: cron, interval and RRule in their time zones across DST.

Europe/Oslo in 2024: clocks spring forward on 31 March at 02:00 CET (01:00 UTC) to
03:00 CEST, and fall back on 27 October at 03:00 CEST (01:00 UTC) to 02:00 CET.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from weir.core.cron import CronError, CronExpression
from weir.core.schedules import next_times, parse_schedule
from weir.core.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule

OSLO = "Europe/Oslo"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def times(schedule: Any, after: datetime, until: datetime, limit: int = 100) -> list[datetime]:
    return next_times(schedule, after, until, limit)


# -- cron across DST -------------------------------------------------------------------
def test_daily_job_in_the_skipped_hour_runs_once_an_hour_later_on_spring_forward() -> None:
    daily = {"cron": "30 2 * * *", "timezone": OSLO}
    assert times(daily, utc(2024, 3, 29), utc(2024, 4, 2)) == [
        utc(2024, 3, 29, 1, 30),  # 02:30 CET
        utc(2024, 3, 30, 1, 30),  # 02:30 CET
        utc(2024, 3, 31, 1, 30),  # 02:30 does not exist: 03:30 CEST, once
        utc(2024, 4, 1, 0, 30),  # 02:30 CEST
    ]


def test_daily_job_in_the_repeated_hour_runs_once_at_the_first_pass_on_fall_back() -> None:
    daily = CronSchedule(cron="30 2 * * *", timezone=OSLO)
    assert times(daily, utc(2024, 10, 26), utc(2024, 10, 29)) == [
        utc(2024, 10, 26, 0, 30),  # 02:30 CEST
        utc(2024, 10, 27, 0, 30),  # the first 02:30 (CEST), not 01:30 UTC (CET)
        utc(2024, 10, 28, 1, 30),  # 02:30 CET
    ]


def test_hourly_job_runs_once_per_real_hour_on_spring_forward() -> None:
    hourly = {"cron": "0 * * * *", "timezone": OSLO}
    got = times(hourly, utc(2024, 3, 30, 22, 30), utc(2024, 3, 31, 4))
    # 00:00 CET, 01:00 CET, (02:00 does not exist), 03:00 CEST, 04:00, 05:00, 06:00
    assert got == [utc(2024, 3, 30, 23), utc(2024, 3, 31, 0)] + [
        utc(2024, 3, 31, h) for h in range(1, 5)
    ]


def test_hourly_job_runs_once_per_real_hour_on_fall_back() -> None:
    hourly = {"cron": "0 * * * *", "timezone": OSLO}
    got = times(hourly, utc(2024, 10, 26, 21, 30), utc(2024, 10, 27, 4))
    # 00:00 CEST, 01:00 CEST, 02:00 CEST, 02:00 CET, 03:00 CET, ...: every UTC hour once
    assert got == [utc(2024, 10, 26, 22), utc(2024, 10, 26, 23)] + [
        utc(2024, 10, 27, h) for h in range(0, 5)
    ]


def test_every_fifteen_minutes_across_both_transitions_is_evenly_spaced() -> None:
    schedule = {"cron": "*/15 * * * *", "timezone": OSLO}
    for day in (utc(2024, 3, 30, 22), utc(2024, 10, 26, 22)):
        got = times(schedule, day, day + timedelta(hours=6), limit=1000)
        assert got == [day + timedelta(minutes=15 * i) for i in range(1, 25)]


def test_fixed_hours_in_the_repeated_hour_run_only_in_its_first_pass() -> None:
    schedule = {"cron": "0,30 2 * * *", "timezone": OSLO}
    got = times(schedule, utc(2024, 10, 26, 12), utc(2024, 10, 27, 12))
    assert got == [utc(2024, 10, 27, 0), utc(2024, 10, 27, 0, 30)]


def test_a_search_starting_inside_the_repeated_hour_finds_its_second_pass() -> None:
    hourly = {"cron": "30 * * * *", "timezone": OSLO}
    # 02:10 CET, in the second pass of 02:xx: next is 02:30 CET, then 03:30 CET
    got = times(hourly, utc(2024, 10, 27, 1, 10), utc(2024, 10, 27, 3))
    assert got == [utc(2024, 10, 27, 1, 30), utc(2024, 10, 27, 2, 30)]


def test_cron_in_new_york_and_utc() -> None:
    schedule = {"cron": "0 9 * * *", "timezone": "America/New_York"}
    # DST starts 10 March 2024: 09:00 EST is 14:00 UTC, 09:00 EDT is 13:00 UTC
    assert times(schedule, utc(2024, 3, 9), utc(2024, 3, 11, 23)) == [
        utc(2024, 3, 9, 14),
        utc(2024, 3, 10, 13),
        utc(2024, 3, 11, 13),
    ]
    assert times({"cron": "0 9 * * *"}, utc(2024, 3, 9), utc(2024, 3, 10)) == [utc(2024, 3, 9, 9)]


# -- cron fields -----------------------------------------------------------------------
def test_day_or_runs_on_either_day_field_and_day_and_on_both() -> None:
    # the 13th of the month, or a Friday (2024-09: the 13th is a Friday)
    either = {"cron": "0 0 13 * fri", "day_or": True}
    both = {"cron": "0 0 13 * fri", "day_or": False}
    sept = (utc(2024, 9, 1), utc(2024, 9, 30, 23, 59))
    assert [t.day for t in times(either, *sept)] == [6, 13, 20, 27]
    assert [t.day for t in times(both, *sept)] == [13]
    # one restricted field alone decides, whatever day_or says
    assert [t.day for t in times({"cron": "0 0 * * fri", "day_or": True}, *sept)] == [6, 13, 20, 27]
    assert [t.day for t in times({"cron": "0 0 */10 * *", "day_or": True}, *sept)] == [11, 21]


def test_cron_syntax() -> None:
    sept = (utc(2024, 8, 31, 23, 59), utc(2024, 10, 1))
    assert [t.day for t in times({"cron": "0 0 L * *"}, *sept)] == [30]
    assert [t.day for t in times({"cron": "0 0 * * mon#2"}, *sept)] == [9]
    assert [t.day for t in times({"cron": "0 0 * * 5L"}, *sept)] == [27]
    assert [t.day for t in times({"cron": "0 0 * * SAT-SUN"}, *sept)] == [
        1,
        7,
        8,
        14,
        15,
        21,
        22,
        28,
        29,
    ]
    assert [t.day for t in times({"cron": "0 0 * * 7"}, *sept)] == [1, 8, 15, 22, 29]  # Sunday
    assert [t.minute for t in times({"cron": "5/20 9 1 sep *"}, *sept)] == [5, 25, 45]
    assert times({"cron": "0 12 29 feb *"}, utc(2024, 3, 1), utc(2030, 1, 1)) == [
        utc(2028, 2, 29, 12)
    ]


def test_a_cron_that_never_fires_gives_nothing() -> None:
    assert times({"cron": "0 0 30 2 *"}, utc(2024, 1, 1), utc(2100, 1, 1)) == []


@pytest.mark.parametrize(
    ("cron", "words"),
    [
        ("0 8 * *", "5-field"),
        ("61 * * * *", "minute"),
        ("0 24 * * *", "hour"),
        ("0 0 0 * *", "day"),
        ("0 0 * 13 *", "month"),
        ("0 0 * * funday", "weekday"),
        ("*/0 * * * *", "step"),
        ("0 0 5-1 * *", "range"),
        ("0 0 * * mon#6", "mon#1"),
        ("0 0 15W * *", "day"),
    ],
)
def test_invalid_cron_names_the_problem(cron: str, words: str) -> None:
    with pytest.raises(CronError, match=words):
        CronExpression.parse(cron)
    with pytest.raises(ValidationError, match=words):
        CronSchedule(cron=cron)
    with pytest.raises(ValueError, match=words):
        next_times({"cron": cron}, utc(2024, 1, 1), utc(2024, 2, 1), 5)


# -- intervals -------------------------------------------------------------------------
def test_interval_counts_from_the_default_anchor() -> None:
    every_7m = {"interval": 420}
    # 2020-01-01 00:00 UTC + k * 7 min; 2024-01-01 is 2103840 min after it, and
    # 2103843 = 7 * 300549
    got = times(every_7m, utc(2024, 1, 1), utc(2024, 1, 1, 0, 20))
    assert got == [utc(2024, 1, 1, 0, 3), utc(2024, 1, 1, 0, 10), utc(2024, 1, 1, 0, 17)]


def test_interval_is_exact_in_utc_across_dst_from_an_anchor_in_the_zone() -> None:
    daily = IntervalSchedule(
        interval=timedelta(days=1), anchor_date=datetime(2024, 3, 1, 9), timezone=OSLO
    )
    # anchored at 09:00 CET = 08:00 UTC; every 24 real hours, so 10:00 CEST after DST
    assert times(daily, utc(2024, 3, 30), utc(2024, 4, 2)) == [
        utc(2024, 3, 30, 8),
        utc(2024, 3, 31, 8),
        utc(2024, 4, 1, 8),
    ]


def test_interval_as_iso_duration_and_aware_anchor_and_future_anchor() -> None:
    schedule = {"interval": "PT30M", "anchor_date": "2024-05-01T00:10:00+02:00"}
    assert times(schedule, utc(2024, 5, 1), utc(2024, 5, 1, 1)) == [
        utc(2024, 5, 1, 0, 10),
        utc(2024, 5, 1, 0, 40),
    ]
    # an anchor is a point of the sequence, not its start: times before it exist too
    future = {"interval": 3600, "anchor_date": "2030-01-01T00:30:00Z"}
    assert times(future, utc(2024, 1, 1), utc(2024, 1, 1, 2)) == [
        utc(2024, 1, 1, 0, 30),
        utc(2024, 1, 1, 1, 30),
    ]
    # `after` itself is excluded, `until` included
    assert times({"interval": 3600}, utc(2024, 1, 1), utc(2024, 1, 1, 2)) == [
        utc(2024, 1, 1, 1),
        utc(2024, 1, 1, 2),
    ]


def test_limit_and_bounds() -> None:
    every_minute = {"cron": "* * * * *", "timezone": OSLO}
    got = times(every_minute, utc(2024, 3, 31, 0, 58, 30), utc(2024, 4, 1), limit=4)
    assert got == [utc(2024, 3, 31, 0, 59)] + [utc(2024, 3, 31, 1, m) for m in range(3)]
    assert times(every_minute, utc(2024, 1, 1), utc(2024, 1, 1), limit=10) == []
    assert times(every_minute, utc(2024, 1, 1), utc(2024, 1, 2), limit=0) == []
    assert all(t.tzinfo is UTC for t in got)


# -- rrule -----------------------------------------------------------------------------
def test_rrule_with_byday_and_count_in_the_zone() -> None:
    rule = RRuleSchedule(
        rrule="DTSTART:20240325T023000\nRRULE:FREQ=WEEKLY;BYDAY=MO,WE,SU;COUNT=4",
        timezone=OSLO,
    )
    assert times(rule, utc(2024, 1, 1), utc(2025, 1, 1)) == [
        utc(2024, 3, 25, 1, 30),  # Mon 02:30 CET
        utc(2024, 3, 27, 1, 30),  # Wed
        utc(2024, 3, 31, 1, 30),  # Sun: 02:30 does not exist, 03:30 CEST
        utc(2024, 4, 1, 0, 30),  # Mon 02:30 CEST; COUNT=4 ends it
    ]


def test_rrule_without_dtstart_starts_at_the_default_anchor_and_follows_dst() -> None:
    rule = {"rrule": "FREQ=DAILY;BYHOUR=8;BYMINUTE=0", "timezone": OSLO}
    assert times(rule, utc(2024, 3, 30), utc(2024, 4, 1)) == [
        utc(2024, 3, 30, 7),
        utc(2024, 3, 31, 6),
    ]
    # without BYMINUTE/BYSECOND, times come from the anchor, not from the clock
    hourly = {"rrule": "FREQ=HOURLY;INTERVAL=2", "timezone": "UTC"}
    assert times(hourly, utc(2024, 1, 1, 0, 30), utc(2024, 1, 1, 5)) == [
        utc(2024, 1, 1, 2),
        utc(2024, 1, 1, 4),
    ]


def test_hourly_rrule_runs_once_per_real_hour_on_fall_back() -> None:
    rule = {"rrule": "FREQ=HOURLY", "timezone": OSLO}
    got = times(rule, utc(2024, 10, 26, 23, 30), utc(2024, 10, 27, 3))
    assert got == [utc(2024, 10, 27, h) for h in range(0, 4)]


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=SOMETIMES",
        "DTSTART;TZID=Europe/Oslo:20240101T090000\nRRULE:FREQ=DAILY",
        "DTSTART:20240101T090000Z\nRRULE:FREQ=DAILY",
    ],
)
def test_invalid_rrules_are_refused(rule: str) -> None:
    with pytest.raises(ValidationError):
        RRuleSchedule(rrule=rule)
    with pytest.raises(ValueError):
        next_times({"rrule": rule}, utc(2024, 1, 1), utc(2024, 2, 1), 5)


# -- bad input -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        ({"cron": "0 * * * *", "timezone": "Mars/Olympus"}, "time zone"),
        ({"interval": 0}, "positive"),
        ({"interval": "soon"}, "interval"),
        ({"every": "day"}, "'cron', 'interval' or 'rrule'"),
        ({"cron": "0 * * * *", "colour": "red"}, "colour"),
        ("0 * * * *", "cron, interval or rrule object"),
    ],
)
def test_invalid_schedules(schedule: Any, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_schedule(schedule)


def test_naive_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="time-zone aware"):
        next_times({"interval": 60}, datetime(2024, 1, 1), utc(2024, 1, 2), 5)


@pytest.mark.parametrize(
    "cron",
    [
        "* * * * *",
        "*/7 */5 * * *",
        "15,45 8-17 * * mon-fri",
        "0 0 1,15 * wed",
        "30 6 10-20 feb,aug *",
        "0 12 31 * *",
        "59 23 * 12 sun",
    ],
)
def test_cron_in_utc_agrees_with_croniter(cron: str) -> None:
    """Where no time zone is involved, our matcher and croniter's must agree."""
    from croniter import croniter

    start = datetime(2023, 12, 30, 22, 17)
    expected, iterator = [], croniter(cron, start)
    for _ in range(300):
        expected.append(iterator.get_next(datetime).replace(tzinfo=UTC))
    got = times({"cron": cron}, start.replace(tzinfo=UTC), utc(2100, 1, 1), limit=300)
    assert got == expected


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=MINUTELY;INTERVAL=7",
        "FREQ=HOURLY;INTERVAL=5;BYMINUTE=10,40",
        "FREQ=SECONDLY;INTERVAL=97",
    ],
)
def test_fast_rrules_skip_ahead_without_changing_their_times(rule: str) -> None:
    """Sub-daily rules start their walk near `after`, not at DTSTART (2020): same times."""
    from dateutil import rrule as dateutil_rrule

    after = utc(2020, 2, 10, 13, 5, 17)
    walked = dateutil_rrule.rrulestr(rule, dtstart=datetime(2020, 1, 1)).xafter(
        after.replace(tzinfo=None), count=50
    )
    expected = [time.replace(tzinfo=UTC) for time in walked]
    assert times({"rrule": rule}, after, utc(2021, 1, 1), limit=50) == expected
