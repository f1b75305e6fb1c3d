"""Schedules on the wire: cron, interval and RRule, each with an IANA time zone.

Only their shape and validity live here (a bad cron expression, time zone or rule
is a 422 naming it); computing their times is the scheduler's (issue 5).
"""

from __future__ import annotations

import re
import uuid
import zoneinfo
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field, field_validator

from weir.core.schemas.base import RequestModel, ResponseModel

MAX_SCHEDULES = 100


def _check_timezone(value: str | None) -> str | None:
    if value is None:
        return value
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name like 'Europe/Oslo' or 'UTC'"
        ) from None
    return value


class CronSchedule(RequestModel):
    cron: str = Field(max_length=200, description="five fields: minute hour day month weekday")
    timezone: str | None = "UTC"
    # Vixie cron's rule: when both day fields are restricted, either may match
    day_or: bool = True

    _timezone = field_validator("timezone")(_check_timezone)

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from weir.core.cron import CronExpression  # the scheduler's own parser

        value = " ".join(value.split())
        CronExpression.parse(value)  # a CronError (ValueError) names the bad field
        return value


class IntervalSchedule(RequestModel):
    # seconds, or an ISO 8601 duration such as "PT30M" (pydantic reads both)
    interval: timedelta
    anchor_date: datetime | None = None
    timezone: str | None = "UTC"

    _timezone = field_validator("timezone")(_check_timezone)

    @field_validator("interval")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value.total_seconds() <= 0:
            raise ValueError("the interval must be positive, e.g. 1800 or 'PT30M'")
        return value


class RRuleSchedule(RequestModel):
    rrule: str = Field(max_length=5000, description="RFC 5545, e.g. FREQ=DAILY;BYHOUR=8")
    timezone: str | None = "UTC"

    _timezone = field_validator("timezone")(_check_timezone)

    @field_validator("rrule")
    @classmethod
    def _valid_rrule(cls, value: str) -> str:
        from dateutil import rrule

        try:
            rrule.rrulestr(value, cache=False)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{value!r} is not an RFC 5545 rule: {exc}") from None
        if re.search(r"DTSTART[^:\n]*(TZID|:\S*Z\b)", value, re.IGNORECASE):
            raise ValueError(
                "the rule's DTSTART has a time zone; write it as local time "
                "(DTSTART:20240101T090000) and set the schedule's 'timezone'"
            )
        return value


Schedule = CronSchedule | IntervalSchedule | RRuleSchedule


def schedule_kind(schedule: Schedule) -> str:
    if isinstance(schedule, CronSchedule):
        return "cron"
    if isinstance(schedule, IntervalSchedule):
        return "interval"
    return "rrule"


def describe_schedule(schedule: Schedule | dict[str, Any]) -> str:
    """One line for tables: `cron '0 8 * * *' (Europe/Oslo)`."""
    data = schedule if isinstance(schedule, dict) else schedule.model_dump(mode="json")
    zone = data.get("timezone") or "UTC"
    if "cron" in data:
        return f"cron {data['cron']!r} ({zone})"
    if "interval" in data:
        interval = data["interval"]
        seconds = interval if isinstance(interval, int | float) else None
        return f"every {seconds:g} s ({zone})" if seconds is not None else f"every {interval}"
    return f"rrule {data.get('rrule')!r} ({zone})"


class DeploymentScheduleCreate(RequestModel):
    schedule: Schedule
    active: bool = True
    # merged over the deployment's parameters for the runs of this schedule
    parameters: dict[str, Any] = Field(default_factory=dict)
    slug: str | None = Field(default=None, max_length=200)


class DeploymentScheduleUpdate(RequestModel):
    schedule: Schedule | None = None
    active: bool | None = None
    parameters: dict[str, Any] | None = None


class DeploymentSchedule(ResponseModel):
    id: uuid.UUID
    deployment_id: uuid.UUID
    schedule: dict[str, Any]
    active: bool = True
    parameters: dict[str, Any] = Field(default_factory=dict)
    slug: str | None = None
    created: datetime
    updated: datetime
