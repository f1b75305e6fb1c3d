"""When a schedule fires: `next_times(schedule, after, until, limit)` in UTC.

Cron expressions and RRules are wall-clock rules in the schedule's IANA time zone;
intervals are exact durations. Across DST transitions (pinned by
tests/core/test_schedules.py and documented in docs/schedules.md):

- A local time that does not exist (the hour skipped when clocks spring forward)
  runs at the same distance after the transition: a daily 02:30 job in Europe/Oslo
  runs at 03:30 local on that day, once. Times that land on the same instant (an
  hourly job's 02:00 and 03:00) run once.
- A local time that happens twice (the hour repeated when clocks fall back) runs
  once, at its first occurrence — unless the rule follows real time: a cron
  expression whose hour field starts with `*` (`0 * * * *`, `*/5 * * * *`) or an
  RRule with FREQ=HOURLY, MINUTELY or SECONDLY runs in both passes, so an hourly
  job runs once in every real hour.
- An interval is exact in UTC: every 24 h is every 24 real hours, counted from
  `anchor_date` (default 2020-01-01 00:00 in the schedule's zone). The anchor is a
  point of the sequence, not its start.
- An RRule without DTSTART starts at 2020-01-01 00:00 in the schedule's zone, so its
  times do not depend on when they are computed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from weir.core.cron import CronExpression
from weir.core.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule, Schedule

DEFAULT_ANCHOR = datetime(2020, 1, 1)
# DST moves clocks by at most 2 h (Antarctica/Troll); near a transition the search
# looks this far around its bounds in wall-clock time
_SHIFT = timedelta(hours=3)
ZONED_DTSTART = (
    "the rule's DTSTART has a time zone; write it as local time (DTSTART:20240101T090000) "
    "and set the schedule's 'timezone'"
)
_PERIODS = {
    "HOURLY": timedelta(hours=1),
    "MINUTELY": timedelta(minutes=1),
    "SECONDLY": timedelta(seconds=1),
}
_REAL_TIME_FREQ = re.compile(r"FREQ\s*=\s*(HOURLY|MINUTELY|SECONDLY)", re.IGNORECASE)


def parse_schedule(schedule: Schedule | dict[str, Any]) -> Schedule:
    """A wire model from a schedule or its stored JSON form; ValueError if invalid."""
    if isinstance(schedule, CronSchedule | IntervalSchedule | RRuleSchedule):
        return schedule
    if not isinstance(schedule, dict):
        raise ValueError(f"a schedule is a cron, interval or rrule object, not {schedule!r}")
    if "cron" in schedule:
        return CronSchedule.model_validate(schedule)
    if "interval" in schedule:
        return IntervalSchedule.model_validate(schedule)
    if "rrule" in schedule:
        return RRuleSchedule.model_validate(schedule)
    raise ValueError(
        f"a schedule needs one of 'cron', 'interval' or 'rrule'; got keys {sorted(schedule)}"
    )


def next_times(
    schedule: Schedule | dict[str, Any], after: datetime, until: datetime, limit: int
) -> list[datetime]:
    """The schedule's first `limit` times in (after, until], ascending, as aware UTC
    datetimes. `after` and `until` must be time-zone aware."""
    for name, value in (("after", after), ("until", until)):
        if value.utcoffset() is None:
            raise ValueError(f"{name} must be time-zone aware, e.g. datetime.now(UTC)")
    after, until = after.astimezone(UTC), until.astimezone(UTC)
    if limit <= 0 or until <= after:
        return []
    parsed = parse_schedule(schedule)
    zone = ZoneInfo(parsed.timezone or "UTC")
    if isinstance(parsed, IntervalSchedule):
        return _interval_times(parsed, zone, after, until, limit)
    if isinstance(parsed, CronSchedule):
        cron = CronExpression.parse(parsed.cron, parsed.day_or)
        start = _local(after, zone) - _margin(after, zone)
        return _resolve(_cron_times(cron, start), zone, cron.every_hour, after, until, limit)
    start = _local(after, zone) - _margin(after, zone)
    real_time = bool(_REAL_TIME_FREQ.search(parsed.rrule))
    return _resolve(_rrule_times(parsed, start), zone, real_time, after, until, limit)


def _interval_times(
    schedule: IntervalSchedule, zone: ZoneInfo, after: datetime, until: datetime, limit: int
) -> list[datetime]:
    anchor = schedule.anchor_date or DEFAULT_ANCHOR
    if anchor.utcoffset() is None:
        anchor = anchor.replace(tzinfo=zone)
    anchor = anchor.astimezone(UTC)
    step = schedule.interval
    # timedelta // timedelta is exact integer arithmetic on microseconds
    time = anchor + step * ((after - anchor) // step + 1)
    times: list[datetime] = []
    while time <= until and len(times) < limit:
        times.append(time)
        time += step
    return times


def _cron_times(cron: CronExpression, start: datetime) -> Iterator[datetime]:
    time = cron.next_after(start)
    while time is not None:
        yield time
        time = cron.next_after(time)


def _rrule_times(schedule: RRuleSchedule, start: datetime) -> Iterator[datetime]:
    from dateutil import rrule

    rules = rrule.rrulestr(schedule.rrule, dtstart=DEFAULT_ANCHOR, cache=False)
    if isinstance(rules, rrule.rrule):
        rules = _fast_forward(rules, schedule.rrule, start)
    for time in rules.xafter(start):
        if time.utcoffset() is not None:
            raise ValueError(ZONED_DTSTART)
        yield time


def _fast_forward(rule: Any, text: str, start: datetime) -> Any:
    """The same rule with DTSTART moved to the last whole period before `start`: an
    hourly, minutely or secondly rule would otherwise be walked from its DTSTART
    (2020 by default), millions of steps. Not for COUNT, which counts from DTSTART."""
    freq = _REAL_TIME_FREQ.search(text)
    if freq is None or re.search(r"COUNT\s*=", text, re.IGNORECASE):
        return rule
    interval = re.search(r"INTERVAL\s*=\s*(\d+)", text, re.IGNORECASE)
    period = _PERIODS[freq.group(1).upper()] * (int(interval.group(1)) if interval else 1)
    dtstart = rule._dtstart  # dateutil has no public getter
    if dtstart.utcoffset() is not None or dtstart >= start:
        return rule
    return rule.replace(dtstart=dtstart + period * ((start - dtstart) // period))


def _resolve(
    local_times: Iterator[datetime],
    zone: ZoneInfo,
    real_time: bool,
    after: datetime,
    until: datetime,
    limit: int,
) -> list[datetime]:
    """The instants of ascending wall-clock times in `zone` within (after, until], the
    first `limit` of them. Wall-clock order is instant order except next to a DST
    transition, so the search reads on until a margin past its bound."""
    found: set[datetime] = set()
    bound = until
    stop = _local(bound, zone) + _margin(bound, zone)
    for local in local_times:
        if local > stop:
            break
        for instant in _instants(local, zone, real_time):
            if after < instant <= bound:
                found.add(instant)
        if len(found) > limit:
            bound = sorted(found)[limit - 1]
            found = {instant for instant in found if instant <= bound}
            stop = _local(bound, zone) + _margin(bound, zone)
    return sorted(found)[:limit]


def _instants(local: datetime, zone: ZoneInfo, real_time: bool) -> list[datetime]:
    """The instants a wall-clock time stands for: one; in a repeated hour the first
    (both if `real_time`); in a skipped hour the same distance after the transition
    (what zoneinfo gives with fold=0: the offset from before the transition)."""
    first = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first == second:
        return [first]
    exists = _local(first, zone) == local
    if exists and real_time:
        return [first, second]
    return [first]


def _local(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _margin(instant: datetime, zone: ZoneInfo) -> timedelta:
    """How far around `instant` wall-clock order may differ from instant order: none
    unless the UTC offset changes within a few hours of it."""
    offsets = {(instant + delta).astimezone(zone).utcoffset() for delta in (-_SHIFT, _SHIFT)}
    offsets.add(instant.astimezone(zone).utcoffset())
    return _SHIFT if len(offsets) > 1 else timedelta(0)
