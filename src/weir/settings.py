"""Settings: one object, read from keyword arguments, the environment, `.env` and a profile.

Every setting has a path-derived environment name: `settings.results.storage`
is `WEIR_RESULTS_STORAGE`. Sources, highest precedence first: keyword
arguments, the environment, `.env` in the current directory, the active profile
in `{home}/profiles.toml` (`WEIR_PROFILE` picks another one).

Nothing is read at import time. `get_settings()` reads once and caches;
`reset_settings()` drops the cache. Importing this module costs ~200 ms
(pydantic-settings), so engine modules import it inside functions only.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from weir.exceptions import ConfigurationError
from weir.profiles import profiles_path, selected_profile

ENV_PREFIX = "WEIR_"
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
_SECRET_MARKERS = ("AUTH", "SECRET", "PASSWORD", "TOKEN", "KEY")


def is_secret(env_name: str) -> bool:
    """Whether a setting's value must not be shown (credentials, tokens, keys)."""
    return any(marker in env_name.upper() for marker in _SECRET_MARKERS)


class _Group(BaseModel):
    # Unknown WEIR_* variables (from a newer weir, say) are ignored, not fatal.
    model_config = ConfigDict(frozen=True, extra="ignore")


class APISettings(_Group):
    """How clients reach the weir API."""

    url: str | None = None
    auth_string: SecretStr | None = None


class LoggingSettings(_Group):
    level: LogLevel = "INFO"

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class ResultsSettings(_Group):
    storage: str | None = None  # None: file://{home}/storage, see Settings.results_storage_url
    persist_by_default: bool = False
    serializer: str = "pickle"


class TasksSettings(_Group):
    thread_pool_max_workers: int | None = Field(default=None, ge=1)


class WorkerSettings(_Group):
    """`weir worker start` and the runs it starts (WEIR_WORKER_*)."""

    heartbeat_seconds: float = Field(default=10.0, gt=0)
    # a run's lease: renewed every third of it; lapsed, the run is crashed
    lease_seconds: float = Field(default=30.0, ge=1)
    # how long one claim request waits on the server for a run (a long poll)
    claim_wait_seconds: float = Field(default=30.0, gt=0, le=60)
    # on SIGTERM: how long running flows may take to finish before they are stopped
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    # claim runs due within this many seconds and start their processes early: each
    # run waits for its expected start time, ready, so it starts on time (capped at
    # half the lease; 0 claims only runs already due)
    prefetch_seconds: float = Field(default=10.0, ge=0, le=300)
    # start runs of the process infrastructure by forking a pre-imported template
    # process (Linux; runs with a job `command` always start a new process)
    fork_server: bool = True


class ServerSettings(_Group):
    """The server's own settings (`weir server start`)."""

    database_url: str | None = None  # None: sqlite+aiosqlite:///{home}/weir.db
    host: str = "127.0.0.1"
    port: int = Field(default=4200, ge=1, le=65535)
    api_auth_string: SecretStr | None = None  # "user:pass" turns on HTTP basic auth
    csrf_protection_enabled: bool = False
    csrf_token_expiration_seconds: int = Field(default=3600, ge=60)
    # the zombie reaper's pass interval (runs whose lease lapsed become CRASHED)
    zombie_reaper_interval_seconds: float = Field(default=5.0, gt=0)
    # the scheduler: runs are created ahead for every active schedule, at least
    # `min_runs` of them and none further ahead than `max_horizon_seconds`
    scheduler_interval_seconds: float = Field(default=10.0, gt=0)
    scheduler_min_runs: int = Field(default=3, ge=1)
    scheduler_max_runs: int = Field(default=100, ge=1)
    scheduler_max_horizon_seconds: float = Field(default=100 * 24 * 3600, gt=0)
    # late runs: a SCHEDULED run this long past its time is named Late, and the
    # deployment's catch-up policy and lateness limit apply to it
    late_runs_after_seconds: float = Field(default=15.0, ge=0)
    late_runs_interval_seconds: float = Field(default=5.0, gt=0)
    # worker liveness: workers whose heartbeats stopped are marked offline, and
    # forgotten after `worker_retention_seconds` offline
    liveness_interval_seconds: float = Field(default=10.0, gt=0)
    worker_retention_seconds: float = Field(default=7 * 24 * 3600, gt=0)
    # cancellation clean-up: sub-runs of cancelled runs are cancelled too
    cancellation_cleanup_interval_seconds: float = Field(default=10.0, gt=0)
    # retention: finished runs, their task runs and logs older than this are deleted
    # (0 keeps everything)
    retention_days: float = Field(default=90.0, ge=0)
    retention_interval_seconds: float = Field(default=3600.0, gt=0)
    # a singleton service runs in the one services process holding its lease row
    service_lease_seconds: float = Field(default=30.0, ge=1)
    # GET /metrics in Prometheus format (behind the API's auth when that is on)
    metrics_enabled: bool = True


class MessagingSettings(_Group):
    """The broker that carries wake-ups between server replicas and services processes:
    `memory` (one process), `postgres` (LISTEN/NOTIFY on the server's database), or
    `redis` (at `redis_url`; a `redis://…` URL as the broker names it directly)."""

    broker: str = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"


def _default_home() -> Path:
    return Path.home() / ".weir"


def _to_absolute_path(value: Any) -> Any:
    return Path(value).expanduser().absolute() if isinstance(value, str | Path) else value


_ENV_CONFIG = SettingsConfigDict(
    env_prefix=ENV_PREFIX,
    env_nested_delimiter="_",
    env_nested_max_split=1,  # WEIR_RESULTS_PERSIST_BY_DEFAULT -> results.persist_by_default
    env_file=".env",
    extra="ignore",
    frozen=True,
)


class _Bootstrap(BaseSettings):
    """The settings that locate the profile, so read from kwargs, env and .env only."""

    model_config = _ENV_CONFIG

    home: Path = Field(default_factory=_default_home)
    profile: str | None = None  # WEIR_PROFILE: use this profile instead of the file's `active`

    @field_validator("home", mode="before")
    @classmethod
    def _absolute_home(cls, value: Any) -> Any:
        return _to_absolute_path(value)


class Settings(_Bootstrap):
    """Everything configurable about weir; see the module docstring for the sources."""

    # WEIR_PROJECT: the project clients work in (`weir --project NAME` sets it too)
    project: str = "default"
    api: APISettings = APISettings()
    logging: LoggingSettings = LoggingSettings()
    results: ResultsSettings = ResultsSettings()
    tasks: TasksSettings = TasksSettings()
    server: ServerSettings = ServerSettings()
    worker: WorkerSettings = WorkerSettings()
    messaging: MessagingSettings = MessagingSettings()

    def __init__(self, **values: Any) -> None:
        unknown = sorted(
            k for k in values if not k.startswith("_") and k not in type(self).model_fields
        )
        if unknown:
            raise ConfigurationError(
                f"Unknown setting {unknown[0]!r}; use one of: {', '.join(type(self).model_fields)}."
            )
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigurationError(describe_validation_error(exc)) from None

    @property
    def results_storage_url(self) -> str:
        """Where results are persisted: WEIR_RESULTS_STORAGE, else `file://{home}/storage`."""
        return self.results.storage or (self.home / "storage").as_uri()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            _ProfileSource(settings_cls, init_settings),
        )


class _ProfileSource(PydanticBaseSettingsSource):
    """The active profile's values, nested the way the env source nests WEIR_* names."""

    def __init__(self, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource):
        super().__init__(settings_cls)
        self._init_kwargs = (
            init_settings.init_kwargs if isinstance(init_settings, InitSettingsSource) else {}
        )

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ builds the whole dict at once

    def __call__(self) -> dict[str, Any]:
        bootstrap = _Bootstrap(
            **{k: v for k, v in self._init_kwargs.items() if k in ("home", "profile")}
        )
        name, values = selected_profile(bootstrap.home, bootstrap.profile)
        data: dict[str, Any] = {}
        for key, value in values.items():
            path = profile_key_path(key, profiles_path(bootstrap.home), name)
            if len(path) == 1:
                data[path[0]] = value
            else:
                data.setdefault(path[0], {})[path[1]] = value
        return data


@functools.cache
def setting_env_names() -> dict[str, tuple[str, ...]]:
    """Each profile-settable env name (`WEIR_API_URL`) and its path (`("api", "url")`,
    or `("project",)` for a top-level setting)."""
    names: dict[str, tuple[str, ...]] = {}
    for group, info in Settings.model_fields.items():
        model = info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            for field in model.model_fields:
                names[f"{ENV_PREFIX}{group}_{field}".upper()] = (group, field)
        elif group not in _Bootstrap.model_fields:  # home and profile locate the profile
            names[f"{ENV_PREFIX}{group}".upper()] = (group,)
    return names


def profile_key_path(key: str, path: Path, profile: str) -> tuple[str, ...]:
    """The settings path of a profile key, or ConfigurationError naming the unknown key."""
    try:
        return setting_env_names()[key.upper()]
    except KeyError:
        raise ConfigurationError(
            f"Profile {profile!r} in {path} has unknown setting {key!r}; remove it "
            f"(known settings: {', '.join(sorted(setting_env_names()))})."
        ) from None


def check_setting_value(key: str, value: Any) -> None:
    """Raise ConfigurationError if `value` is not valid for env name `key` (no other setting read)."""
    path = setting_env_names()[key.upper()]
    try:
        if len(path) == 1:
            annotation: Any = Settings.model_fields[path[0]].annotation
            TypeAdapter(annotation).validate_python(value)
        else:
            model = cast("type[BaseModel]", Settings.model_fields[path[0]].annotation)
            model.model_validate({path[1]: value})
    except ValidationError as exc:
        raise ConfigurationError(describe_validation_error(exc, prefix=path[:1])) from None


def describe_validation_error(exc: ValidationError, prefix: tuple[str, ...] = ()) -> str:
    """One sentence per invalid value, naming its environment variable."""
    sentences = []
    for error in exc.errors():
        loc = prefix + tuple(str(part) for part in error["loc"][:2])
        name = (ENV_PREFIX + "_".join(loc)).upper()
        shown = "" if is_secret(name) else f"={error.get('input')!r}"
        sentences.append(f"{name}{shown} is invalid: {error['msg']}")
    return (
        "; ".join(sentences) + ". Set a valid value in the environment, .env or the active profile."
    )


def resolve_home() -> Path:
    """WEIR_HOME from the environment or `.env`, else `~/.weir`, without reading any profile."""
    return _Bootstrap().home


@functools.cache
def get_settings() -> Settings:
    """The settings of this process, read on first call and cached."""
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings; the next `get_settings()` reads them again."""
    get_settings.cache_clear()
