"""Profiles: named sets of settings in `{home}/profiles.toml`, one of them active.

    active = "default"

    [profiles.default]
    WEIR_API_URL = "http://localhost:4200/api"

    [profiles.prod]
    WEIR_API_URL = "https://weir.example.com/api"

Keys are environment-style setting names. The `default` profile always exists,
even when the file does not. Writes replace the file atomically.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from weir.exceptions import ConfigurationError

ProfileValue = str | int | float | bool
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


@dataclass
class Profiles:
    active: str = "default"
    profiles: dict[str, dict[str, ProfileValue]] = field(default_factory=lambda: {"default": {}})


def profiles_path(home: Path) -> Path:
    return home / "profiles.toml"


def load_profiles(home: Path) -> Profiles:
    """The profiles in `{home}/profiles.toml`; only the default, empty one if there is no file."""
    path = profiles_path(home)
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except FileNotFoundError:
        return Profiles()
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(
            f"{path} is not valid TOML ({exc}); fix the file or delete it to start from defaults."
        ) from None

    active = document.get("active", "default")
    tables = document.get("profiles", {})
    if not isinstance(active, str) or not isinstance(tables, dict):
        raise ConfigurationError(
            f"{path} must have a string `active` and [profiles.<name>] tables; fix the file."
        )
    profiles: dict[str, dict[str, ProfileValue]] = {"default": {}}
    for name, values in tables.items():
        if not isinstance(values, dict):
            raise ConfigurationError(f"`profiles.{name}` in {path} must be a table; fix the file.")
        for key, value in values.items():
            if not isinstance(value, ProfileValue):
                raise ConfigurationError(
                    f"Profile {name!r} in {path} sets {key!r} to a {type(value).__name__}; "
                    "profile values must be strings, numbers or booleans."
                )
        profiles[name] = dict(values)
    if active not in profiles:
        raise ConfigurationError(
            f"{path} makes {active!r} the active profile but defines no [profiles.{active}] "
            f"table; add it or set `active` to one of: {', '.join(sorted(profiles))}."
        )
    return Profiles(active=active, profiles=profiles)


def selected_profile(
    home: Path, requested: str | None = None
) -> tuple[str, dict[str, ProfileValue]]:
    """Profile `requested` (WEIR_PROFILE), else the file's active one: its name and values."""
    profiles = load_profiles(home)
    name = requested or profiles.active
    if name not in profiles.profiles:
        where = "WEIR_PROFILE" if requested else "The `active` key"
        raise ConfigurationError(
            f"{where} names profile {name!r}, which {profiles_path(home)} does not "
            f"define; add a [profiles.{name}] table or use one of: "
            f"{', '.join(sorted(profiles.profiles))}."
        )
    return name, profiles.profiles[name]


def save_profiles(profiles: Profiles, home: Path) -> None:
    """Write `profiles` to `{home}/profiles.toml`, replacing the file atomically."""
    lines = [f"active = {_toml_value(profiles.active)}"]
    for name, values in profiles.profiles.items():
        lines += ["", f"[profiles.{_toml_key(name)}]"]
        lines += [f"{_toml_key(key)} = {_toml_value(value)}" for key, value in values.items()]
    path = profiles_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".profiles.", suffix=".toml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write("\n".join(lines) + "\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def set_profile_value(
    name: str, key: str, value: ProfileValue, *, home: Path | None = None
) -> None:
    """Set setting `key` (e.g. `WEIR_API_URL`) in profile `name`, creating the profile if needed.

    Raises ConfigurationError for an unknown key or a value the setting rejects.
    """
    from weir.settings import check_setting_value, profile_key_path

    home = _home(home)
    profile_key_path(key, profiles_path(home), name)
    check_setting_value(key, value)
    profiles = load_profiles(home)
    profiles.profiles.setdefault(name, {})[key.upper()] = value
    save_profiles(profiles, home)


def unset_profile_value(name: str, key: str, *, home: Path | None = None) -> bool:
    """Remove `key` from profile `name`; False if it was not set there."""
    home = _home(home)
    profiles = load_profiles(home)
    values = profiles.profiles.get(name, {})
    present = next((k for k in values if k.upper() == key.upper()), None)
    if present is None:
        return False
    del values[present]
    save_profiles(profiles, home)
    return True


def _home(home: Path | None) -> Path:
    # Not get_settings().home: that also loads the profile, which may be the thing being fixed.
    if home is not None:
        return home
    from weir.settings import resolve_home

    return resolve_home()


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_value(key)


def _toml_value(value: ProfileValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    # A JSON string is a TOML basic string, except that TOML wants DEL escaped.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
