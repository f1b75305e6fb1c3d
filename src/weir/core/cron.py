"""Five-field cron expressions (minute hour day month weekday) on wall-clock time.

`CronExpression.parse` reads the usual syntax — `*`, `?`, numbers, names (`jan`,
`mon`), ranges, steps (`*/15`, `1-31/2`, `5/10`), lists — plus `L` (the last day of
the month) in the day field, and `mon#2` (the second Monday) and `5L` (the last
Friday) in the weekday field. `next_after` finds the next matching naive wall-clock
minute; time zones and DST are `weir.core.schedules`' business.

Day and weekday follow Vixie cron: when both fields are restricted (neither starts
with `*` or `?`) a day matching either runs (`day_or=True`, the default); otherwise
only a day matching both (so `*/2` in the day field with `mon` means odd-numbered
Mondays, and `day_or=False` means both always).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (name, low, high, names numbered from `low`)
_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day", 1, 31, ()),
    ("month", 1, 12, MONTHS),
    ("weekday", 0, 7, WEEKDAYS),
)
# an expression no date satisfies (`0 0 30 2 *`) is found out within a leap cycle
_SEARCH_YEARS = 9


class CronError(ValueError):
    pass


@dataclass(frozen=True)
class CronExpression:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 is Sunday
    last_day: bool = False  # `L` in the day field
    nth_weekdays: frozenset[tuple[int, int]] = field(default_factory=frozenset)  # (weekday, n)
    last_weekdays: frozenset[int] = field(default_factory=frozenset)  # `5L`
    day_restricted: bool = False
    weekday_restricted: bool = False
    day_or: bool = True
    # the hour field starts with `*`: the job follows real time (see core/schedules.py)
    every_hour: bool = True

    @classmethod
    def parse(cls, text: str, day_or: bool = True) -> CronExpression:
        parts = text.split()
        if len(parts) != 5:
            raise CronError(
                f"{text!r} is not a 5-field cron expression (minute hour day month weekday), "
                "e.g. '0 8 * * *'"
            )
        minute, hour, day, month, weekday = parts
        days, last_day = _parse_day(day)
        weekdays, nth, last_weekdays = _parse_weekday(weekday)
        return cls(
            minutes=tuple(sorted(_parse_field(minute, _FIELDS[0]))),
            hours=tuple(sorted(_parse_field(hour, _FIELDS[1]))),
            days=frozenset(days),
            months=frozenset(_parse_field(month, _FIELDS[3])),
            weekdays=frozenset(weekdays),
            last_day=last_day,
            nth_weekdays=frozenset(nth),
            last_weekdays=frozenset(last_weekdays),
            day_restricted=not _unrestricted(day),
            weekday_restricted=not _unrestricted(weekday),
            day_or=day_or,
            every_hour=hour.startswith("*"),
        )

    def matches_day(self, day: date) -> bool:
        if self.day_or and self.day_restricted and self.weekday_restricted:
            return self._day_matches(day) or self._weekday_matches(day)
        # an unrestricted field (`*`, `*/2`, `?`) is ANDed in, as Vixie cron does
        return self._day_matches(day) and self._weekday_matches(day)

    def _day_matches(self, day: date) -> bool:
        return day.day in self.days or (self.last_day and day.day == _month_length(day))

    def _weekday_matches(self, day: date) -> bool:
        weekday = (day.weekday() + 1) % 7
        if weekday in self.weekdays:
            return True
        if (weekday, (day.day - 1) // 7 + 1) in self.nth_weekdays:
            return True
        return weekday in self.last_weekdays and day.day + 7 > _month_length(day)

    def next_after(self, moment: datetime) -> datetime | None:
        """The first matching minute strictly after `moment` (naive wall-clock time), or
        None when no date within some years matches (`0 0 30 2 *`)."""
        t = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        last_year = t.year + _SEARCH_YEARS
        while t.year <= last_year:
            if t.month not in self.months:
                t = _first_of_next_month(t)
                continue
            if not self.matches_day(t.date()):
                t = datetime(t.year, t.month, t.day) + timedelta(days=1)
                continue
            hour = _first_at_least(self.hours, t.hour)
            if hour is None:
                t = datetime(t.year, t.month, t.day) + timedelta(days=1)
                continue
            if hour != t.hour:
                t = t.replace(hour=hour, minute=0)
            minute = _first_at_least(self.minutes, t.minute)
            if minute is None:
                t = t.replace(minute=0) + timedelta(hours=1)
                continue
            return t.replace(minute=minute)
        return None


def _unrestricted(text: str) -> bool:
    return text.startswith(("*", "?"))


def _first_at_least(values: tuple[int, ...], low: int) -> int | None:
    for value in values:
        if value >= low:
            return value
    return None


def _month_length(day: date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def _first_of_next_month(t: datetime) -> datetime:
    if t.month == 12:
        return datetime(t.year + 1, 1, 1)
    return datetime(t.year, t.month + 1, 1)


def _parse_day(text: str) -> tuple[set[int], bool]:
    items = text.lower().split(",")
    last = "l" in items
    rest = ",".join(item for item in items if item != "l")
    days = _parse_field(rest, _FIELDS[2]) if rest else set()
    return days, last


def _parse_weekday(text: str) -> tuple[set[int], set[tuple[int, int]], set[int]]:
    plain, nth, last = [], set(), set()
    for item in text.lower().split(","):
        if "#" in item:
            name, _, n = item.partition("#")
            if not n.isdigit() or not 1 <= int(n) <= 5:
                raise CronError(f"{item!r} in the weekday field: use 'mon#1' to 'mon#5'")
            nth.add((_value(name, _FIELDS[4]) % 7, int(n)))
        elif item.endswith("l") and len(item) > 1:
            last.add(_value(item[:-1], _FIELDS[4]) % 7)
        else:
            plain.append(item)
    weekdays = (
        {value % 7 for value in _parse_field(",".join(plain), _FIELDS[4])} if plain else set()
    )
    return weekdays, nth, last


def _parse_field(text: str, spec: tuple[str, int, int, tuple[str, ...]]) -> set[int]:
    name, low, high, _ = spec
    values: set[int] = set()
    for item in text.lower().split(","):
        body, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{item!r} in the {name} field: the step must be a positive number")
            step = int(step_text)
        if body in ("*", "?"):
            start, end = low, high
        elif "-" in body:
            first, _, last = body.partition("-")
            start, end = _value(first, spec), _value(last, spec)
            if name == "weekday" and end == 0:
                end = 7  # `sat-sun`: Sunday is 7 too
            if start > end:
                raise CronError(f"{item!r} in the {name} field: a range goes from low to high")
        else:
            start = _value(body, spec)
            end = high if slash else start
        values.update(range(start, end + 1, step))
    return values


def _value(text: str, spec: tuple[str, int, int, tuple[str, ...]]) -> int:
    name, low, high, names = spec
    if text in names:
        return names.index(text) + (1 if name == "month" else 0)
    if not text.isdigit() or not low <= int(text) <= high:
        raise CronError(f"{text!r} is not a valid {name}: use {low}-{high}" + _names_hint(names))
    return int(text)


def _names_hint(names: tuple[str, ...]) -> str:
    return f" or {names[0]}-{names[-1]}" if names else ""
