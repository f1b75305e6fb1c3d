"""The `weir.yaml` model: a project's deployments, as prefect.yaml writes them.

Every key is checked: an unknown one is an error naming it. Values are checked
with the wire models (`core/schemas/schedules.py`), so a bad cron expression is
reported when the file is loaded, not when it is deployed. `json_schema()` is the
file's published JSON Schema (docs/weir.schema.json).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from weir.core.schemas.deployments import Catchup, CollisionStrategy
from weir.core.schemas.schedules import (
    CronSchedule,
    DeploymentScheduleCreate,
    IntervalSchedule,
    RRuleSchedule,
    Schedule,
)
from weir.deployments.steps import check_step, steps_json_schema

SCHEMA_ID = "https://weir.dev/weir.schema.json"

PullStep = Annotated[
    dict[str, Any], AfterValidator(check_step), WithJsonSchema(steps_json_schema())
]


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
DURATION_HELP = "seconds (3600), or 90s, 30m, 2h, 1d, 1w, or ISO 8601 (PT1H)"


def duration_seconds(value: Any) -> float:
    """A positive duration in seconds, from a number of seconds, `90s`, `30m`, `2h`,
    `1d`, `1w`, or an ISO 8601 duration (`PT1H`); a ValueError saying so otherwise."""
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        elif value.strip().upper().startswith("P"):
            try:
                seconds = TypeAdapter(timedelta).validate_python(value.strip()).total_seconds()
            except ValidationError:
                seconds = None
    if seconds is None:
        raise ValueError(f"{value!r} is not a duration; use {DURATION_HELP}")
    if seconds <= 0:
        raise ValueError(f"the duration must be positive, not {value!r}")
    return seconds


Duration = Annotated[
    float,
    BeforeValidator(duration_seconds),
    WithJsonSchema({"anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string"}]}),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _checked(model: type[BaseModel], field: str, **values: Any) -> Any:
    """Validate with a wire model and answer the field's value; its error as a ValueError."""
    try:
        return getattr(model.model_validate(values), field)
    except ValidationError as exc:
        error = exc.errors()[0]
        cause = (error.get("ctx") or {}).get("error")
        raise ValueError(str(cause) if cause else error["msg"]) from None


class ScheduleEntry(_Strict):
    """One schedule: exactly one of `cron`, `interval` or `rrule`."""

    cron: str | None = Field(default=None, description="five fields, e.g. '0 8 * * *'")
    interval: float | str | None = Field(
        default=None, description="seconds (1800) or an ISO 8601 duration ('PT30M')"
    )
    rrule: str | None = Field(default=None, description="RFC 5545, e.g. 'FREQ=DAILY;BYHOUR=8'")
    timezone: str | None = Field(default=None, description="an IANA name; default UTC")
    anchor_date: datetime | None = Field(default=None, description="intervals count from here")
    day_or: bool | None = Field(default=None, description="cron: either day field may match")
    active: bool = True
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="merged over the deployment's for this schedule's runs"
    )
    slug: str | None = None

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return value if value is None else _checked(CronSchedule, "cron", cron=value)

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: float | str | None) -> float | str | None:
        if value is not None:
            _checked(IntervalSchedule, "interval", interval=value)
        return value

    @field_validator("rrule")
    @classmethod
    def _rrule(cls, value: str | None) -> str | None:
        return value if value is None else _checked(RRuleSchedule, "rrule", rrule=value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None:
            _checked(RRuleSchedule, "timezone", rrule="FREQ=DAILY", timezone=value)
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> ScheduleEntry:
        given = [k for k in ("cron", "interval", "rrule") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "a schedule needs exactly one of cron, interval or rrule"
                + (f", not {' and '.join(given)}" if given else "")
            )
        if self.day_or is not None and self.cron is None:
            raise ValueError("day_or applies to cron schedules only")
        if self.anchor_date is not None and self.interval is None:
            raise ValueError("anchor_date applies to interval schedules only")
        return self

    def schedule(self) -> Schedule:
        zone: dict[str, Any] = {"timezone": self.timezone} if self.timezone else {}
        if self.cron is not None:
            if self.day_or is not None:
                zone["day_or"] = self.day_or
            return CronSchedule(cron=self.cron, **zone)
        if self.interval is not None:
            return IntervalSchedule.model_validate(
                {"interval": self.interval, "anchor_date": self.anchor_date, **zone}
            )
        return RRuleSchedule(rrule=str(self.rrule), **zone)

    def to_create(self) -> DeploymentScheduleCreate:
        return DeploymentScheduleCreate(
            schedule=self.schedule(), active=self.active, parameters=self.parameters, slug=self.slug
        )


class WorkPoolEntry(_Strict):
    name: str | None = Field(default=None, description="the work pool's name")
    work_queue_name: str | None = Field(default=None, description="default: the pool's default")
    job_variables: dict[str, Any] = Field(
        default_factory=dict, description="override the pool's base job template (env, …)"
    )


class ConcurrencyLimitEntry(_Strict):
    limit: int = Field(ge=1)
    collision_strategy: CollisionStrategy = CollisionStrategy.ENQUEUE


class DeploymentEntry(_Strict):
    name: str = Field(description="unique per flow")
    entrypoint: str | None = Field(
        default=None, description="'path/to/file.py:function' or 'package.module:function'"
    )
    description: str | None = None
    version: str | None = None
    tags: list[str] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    enforce_parameter_schema: bool = True
    paused: bool = False
    schedules: list[ScheduleEntry] = Field(default_factory=list)
    schedule: ScheduleEntry | None = Field(
        default=None, description="the older single schedule; use schedules"
    )
    work_pool: WorkPoolEntry = Field(default_factory=WorkPoolEntry)
    concurrency_limit: ConcurrencyLimitEntry | None = Field(
        default=None, description="an integer, or {limit, collision_strategy}"
    )
    catchup: Catchup = Field(
        default=Catchup.ALL,
        description="runs that became late while no worker ran: all run, only each "
        "schedule's latest, or none (skip)",
    )
    max_lateness: Duration | None = Field(
        default=None,
        description=f"a run later than this is marked Missed instead of started: {DURATION_HELP}",
    )
    pull: list[PullStep] | None = Field(default=None, description="replaces the file's pull")
    build: Any = Field(default=None, description="accepted and ignored")
    push: Any = Field(default=None, description="accepted and ignored")

    @field_validator("concurrency_limit", mode="before")
    @classmethod
    def _limit_as_int(cls, value: Any) -> Any:
        return {"limit": value} if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("tags", mode="before")
    @classmethod
    def _tags_none(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("parameters", mode="before")
    @classmethod
    def _parameters_none(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("schedules", mode="before")
    @classmethod
    def _schedules_none(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("work_pool", mode="before")
    @classmethod
    def _work_pool_none(cls, value: Any) -> Any:
        return {} if value is None else value

    @model_validator(mode="after")
    def _one_schedule_key(self) -> DeploymentEntry:
        if self.schedule is not None:
            if self.schedules:
                raise ValueError("give schedules or the older schedule, not both")
            self.schedules = [self.schedule]
            self.schedule = None
        return self


class WeirYaml(_Strict):
    """A weir.yaml (or prefect.yaml) file."""

    model_config = ConfigDict(title="weir.yaml", json_schema_extra={"$id": SCHEMA_ID})

    name: str | None = Field(default=None, description="the project's name (informational)")
    prefect_version: str | None = Field(default=None, alias="prefect-version")
    weir_version: str | None = Field(default=None, alias="weir-version")
    build: Any = Field(default=None, description="accepted and ignored")
    push: Any = Field(default=None, description="accepted and ignored")
    pull: list[PullStep] = Field(default_factory=list, description="run before each flow run")
    definitions: Any = Field(default=None, description="anything, for YAML anchors")
    deployments: list[DeploymentEntry] = Field(default_factory=list)

    @field_validator("pull", "deployments", mode="before")
    @classmethod
    def _empty_list(cls, value: Any) -> Any:
        return [] if value is None else value

    def ignored_sections(self) -> list[str]:
        """The non-empty build/push sections, which weir does not run."""
        found = [key for key in ("build", "push") if getattr(self, key)]
        for index, entry in enumerate(self.deployments):
            found += [f"deployments[{index}].{k}" for k in ("build", "push") if getattr(entry, k)]
        return found

    def pull_steps(self, entry: DeploymentEntry) -> list[dict[str, Any]]:
        """A deployment's pull steps: its own, else the file's."""
        return list(entry.pull if entry.pull is not None else self.pull)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of weir.yaml."""
    schema = WeirYaml.model_json_schema(by_alias=True)
    limit = schema["$defs"]["DeploymentEntry"]["properties"]["concurrency_limit"]
    limit["anyOf"].insert(0, {"type": "integer", "minimum": 1})
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
