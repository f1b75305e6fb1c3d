"""Settings come from kwargs > environment > .env > the active profile, and fail in one sentence."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from weir.exceptions import ConfigurationError
from weir.profiles import (
    Profiles,
    load_profiles,
    profiles_path,
    save_profiles,
    set_profile_value,
    unset_profile_value,
)
from weir.settings import Settings, get_settings, reset_settings

pytestmark = pytest.mark.usefixtures("cwd")


def write_profiles(home: Path, text: str) -> None:
    profiles_path(home).write_text(textwrap.dedent(text))


def test_defaults(weir_home: Path) -> None:
    settings = Settings()
    assert settings.home == weir_home
    assert settings.api.url is None
    assert settings.api.auth_string is None
    assert settings.logging.level == "INFO"
    assert settings.results.storage is None
    assert settings.results.persist_by_default is False
    assert settings.results.serializer == "pickle"
    assert settings.tasks.thread_pool_max_workers is None
    assert settings.server.database_url is None
    assert settings.results_storage_url == (weir_home / "storage").as_uri()


def test_home_defaults_to_dot_weir_in_the_user_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("WEIR_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert Settings().home == tmp_path / ".weir"


@pytest.mark.parametrize(
    ("env", "value", "read"),
    [
        ("WEIR_API_URL", "http://api:4200/api", lambda s: s.api.url),
        ("WEIR_API_AUTH_STRING", "admin:pw", lambda s: s.api.auth_string.get_secret_value()),
        ("WEIR_LOGGING_LEVEL", "debug", lambda s: s.logging.level.lower()),
        ("WEIR_RESULTS_STORAGE", "s3://bucket/prefix", lambda s: s.results.storage),
        (
            "WEIR_RESULTS_PERSIST_BY_DEFAULT",
            "true",
            lambda s: str(s.results.persist_by_default).lower(),
        ),
        ("WEIR_RESULTS_SERIALIZER", "json", lambda s: s.results.serializer),
        ("WEIR_TASKS_THREAD_POOL_MAX_WORKERS", "7", lambda s: str(s.tasks.thread_pool_max_workers)),
        ("WEIR_SERVER_DATABASE_URL", "sqlite:///x.db", lambda s: s.server.database_url),
    ],
)
def test_each_setting_has_its_env_name(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, read: Callable[[Settings], object]
) -> None:
    monkeypatch.setenv(env, value)
    assert read(Settings()) == value


def test_level_is_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEIR_LOGGING_LEVEL", "warning")
    assert Settings().logging.level == "WARNING"


def test_results_storage_url_prefers_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEIR_RESULTS_STORAGE", "s3://bucket/prefix")
    assert Settings().results_storage_url == "s3://bucket/prefix"


def test_auth_string_is_not_shown_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEIR_API_AUTH_STRING", "admin:hunter2")
    assert "hunter2" not in repr(Settings())


def test_precedence_kwargs_env_dotenv_profile(
    weir_home: Path, cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_profiles(
        weir_home,
        """
        active = "default"
        [profiles.default]
        WEIR_API_URL = "http://profile"
        WEIR_RESULTS_SERIALIZER = "from-profile"
        WEIR_RESULTS_STORAGE = "file:///profile"
        WEIR_LOGGING_LEVEL = "ERROR"
        """,
    )
    (cwd / ".env").write_text(
        "WEIR_API_URL=http://dotenv\nWEIR_RESULTS_SERIALIZER=from-dotenv\nOTHER_TOOL=1\n"
    )
    monkeypatch.setenv("WEIR_API_URL", "http://env")

    settings = Settings()
    assert settings.api.url == "http://env"
    assert settings.results.serializer == "from-dotenv"
    assert settings.results.storage == "file:///profile"
    assert settings.logging.level == "ERROR"

    settings = Settings(api={"url": "http://kwargs"})
    assert settings.api.url == "http://kwargs"
    assert settings.results.serializer == "from-dotenv"


def test_weir_profile_selects_another_profile(
    weir_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_profiles(
        weir_home,
        """
        active = "default"
        [profiles.default]
        WEIR_API_URL = "http://local"
        [profiles.prod]
        WEIR_API_URL = "https://prod"
        """,
    )
    assert Settings().api.url == "http://local"
    monkeypatch.setenv("WEIR_PROFILE", "prod")
    assert Settings().api.url == "https://prod"


def test_active_key_selects_the_profile(weir_home: Path) -> None:
    write_profiles(
        weir_home,
        """
        active = "prod"
        [profiles.prod]
        WEIR_RESULTS_PERSIST_BY_DEFAULT = true
        WEIR_TASKS_THREAD_POOL_MAX_WORKERS = 3
        """,
    )
    settings = Settings()
    assert settings.results.persist_by_default is True
    assert settings.tasks.thread_pool_max_workers == 3


def test_home_from_kwargs_finds_its_profiles(tmp_path: Path) -> None:
    other = tmp_path / "other-home"
    other.mkdir()
    write_profiles(other, '[profiles.default]\nWEIR_API_URL = "http://other"\n')
    assert Settings(home=other).api.url == "http://other"


def test_malformed_profiles_file(weir_home: Path) -> None:
    write_profiles(weir_home, "active = \n[profiles.default\n")
    with pytest.raises(ConfigurationError, match=r"profiles\.toml is not valid TOML") as info:
        Settings()
    assert str(weir_home) in str(info.value)


def test_unknown_active_profile(weir_home: Path) -> None:
    write_profiles(weir_home, 'active = "staging"\n[profiles.default]\n')
    with pytest.raises(
        ConfigurationError, match=r"'staging' the active profile.*\[profiles\.staging\]"
    ):
        Settings()


def test_unknown_weir_profile(weir_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEIR_PROFILE", "nope")
    with pytest.raises(ConfigurationError, match=r"WEIR_PROFILE names profile 'nope'"):
        Settings()


def test_unknown_key_in_profile(weir_home: Path) -> None:
    write_profiles(weir_home, '[profiles.default]\nWEIR_API_ULR = "http://typo"\n')
    with pytest.raises(ConfigurationError, match=r"unknown setting 'WEIR_API_ULR'"):
        Settings()


def test_non_scalar_profile_value(weir_home: Path) -> None:
    write_profiles(weir_home, "[profiles.default]\nWEIR_API_URL = [1, 2]\n")
    with pytest.raises(ConfigurationError, match=r"'WEIR_API_URL' to a list"):
        Settings()


def test_invalid_value_names_the_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEIR_LOGGING_LEVEL", "LOUD")
    with pytest.raises(ConfigurationError, match=r"WEIR_LOGGING_LEVEL='LOUD' is invalid"):
        Settings()


def test_invalid_value_in_profile_names_the_env_var(weir_home: Path) -> None:
    write_profiles(weir_home, '[profiles.default]\nWEIR_TASKS_THREAD_POOL_MAX_WORKERS = "many"\n')
    with pytest.raises(ConfigurationError, match=r"WEIR_TASKS_THREAD_POOL_MAX_WORKERS='many'"):
        Settings()


def test_unknown_keyword_argument() -> None:
    with pytest.raises(ConfigurationError, match=r"Unknown setting 'colour'"):
        Settings(colour="blue")


def test_get_settings_is_cached_until_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    first = get_settings()
    monkeypatch.setenv("WEIR_API_URL", "http://changed")
    assert get_settings() is first
    reset_settings()
    assert get_settings().api.url == "http://changed"


def test_importing_weir_reads_no_settings() -> None:
    code = (
        "import sys, weir, weir.engine.logging, weir.runtime, weir.testing;"
        "print(sorted(m for m in ('weir.settings', 'pydantic_settings') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# Profile helpers (the CLI's `weir config set/unset` use them).


def test_load_profiles_without_a_file(weir_home: Path) -> None:
    assert load_profiles(weir_home) == Profiles(active="default", profiles={"default": {}})


def test_save_and_load_round_trip(weir_home: Path) -> None:
    profiles = Profiles(
        active="prod west",
        profiles={
            "default": {},
            "prod west": {"WEIR_API_URL": 'http://a "quoted" \\ url/é\n', "WEIR_X": True},
        },
    )
    save_profiles(profiles, weir_home)
    assert load_profiles(weir_home) == profiles
    assert [p.name for p in weir_home.iterdir()] == ["profiles.toml"]  # no temp file left


def test_set_and_unset_profile_value(weir_home: Path) -> None:
    set_profile_value("prod", "weir_api_url", "https://prod", home=weir_home)
    assert load_profiles(weir_home).profiles["prod"] == {"WEIR_API_URL": "https://prod"}
    assert Settings(profile="prod").api.url == "https://prod"

    assert unset_profile_value("prod", "WEIR_API_URL", home=weir_home) is True
    assert unset_profile_value("prod", "WEIR_API_URL", home=weir_home) is False
    assert load_profiles(weir_home).profiles["prod"] == {}


def test_set_profile_value_defaults_to_weir_home(weir_home: Path) -> None:
    set_profile_value("default", "WEIR_LOGGING_LEVEL", "DEBUG")
    assert load_profiles(weir_home).profiles["default"] == {"WEIR_LOGGING_LEVEL": "DEBUG"}


def test_set_profile_value_rejects_unknown_keys_and_bad_values(weir_home: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"unknown setting 'WEIR_NOPE'"):
        set_profile_value("default", "WEIR_NOPE", "1", home=weir_home)
    with pytest.raises(ConfigurationError, match=r"WEIR_LOGGING_LEVEL='LOUD' is invalid"):
        set_profile_value("default", "WEIR_LOGGING_LEVEL", "LOUD", home=weir_home)
    assert not profiles_path(weir_home).exists()


def test_dotenv_can_choose_home_and_profile(
    tmp_path: Path, cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WEIR_HOME")
    home = tmp_path / "dotenv-home"
    home.mkdir()
    write_profiles(home, '[profiles.prod]\nWEIR_API_URL = "https://prod"\n')
    (cwd / ".env").write_text(f"WEIR_HOME={home}\nWEIR_PROFILE=prod\n")
    settings = Settings()
    assert settings.home == home
    assert settings.api.url == "https://prod"
