"""`weir config set|view|unset` through the real console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

WEIR = str(Path(sys.executable).parent / "weir")


def weir(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEIR_")}
    env["WEIR_HOME"] = str(home)
    return subprocess.run(
        [WEIR, *args], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=30
    )


def test_set_view_unset_round_trip(tmp_path: Path) -> None:
    assert weir(tmp_path, "config", "set", "WEIR_API_URL=http://127.0.0.1:4200/api").returncode == 0
    assert weir(tmp_path, "config", "set", "WEIR_API_AUTH_STRING=admin:s3cret").returncode == 0
    view = weir(tmp_path, "config", "view", "--json")
    settings = json.loads(view.stdout)["settings"]
    assert settings["WEIR_API_URL"] == {
        "value": "http://127.0.0.1:4200/api",
        "source": "profile default",
    }
    assert settings["WEIR_API_AUTH_STRING"]["value"] == "********"
    assert "s3cret" not in weir(tmp_path, "config", "view").stdout
    assert "s3cret" in weir(tmp_path, "config", "view", "--show-secrets").stdout
    assert weir(tmp_path, "version", "--json").stdout.count("http://127.0.0.1:4200/api") == 1
    assert weir(tmp_path, "config", "unset", "WEIR_API_URL").returncode == 0
    assert (
        "WEIR_API_URL"
        not in json.loads(weir(tmp_path, "config", "view", "--json").stdout)["settings"]
    )


def test_bad_input_is_one_sentence_and_a_non_zero_exit(tmp_path: Path) -> None:
    for args, expected in [
        (("config", "set", "nonsense"), "is not KEY=VALUE"),
        (("config", "set", "WEIR_LOGGING_LEVEL=LOUD"), "WEIR_LOGGING_LEVEL='LOUD' is invalid"),
        (("config", "set", "WEIR_NO_SUCH=1"), "unknown setting"),
        (("config", "unset", "WEIR_API_URL"), "not set in profile"),
    ]:
        result = weir(tmp_path, *args)
        assert result.returncode == 1, args
        assert expected in result.stderr
        assert "Traceback" not in result.stderr


def test_the_environment_wins_over_the_profile(tmp_path: Path) -> None:
    weir(tmp_path, "config", "set", "WEIR_PROJECT=finance-report-staging")
    env_home = dict(os.environ, WEIR_HOME=str(tmp_path), WEIR_PROJECT="finance-report-prod")
    result = subprocess.run(
        [WEIR, "config", "view", "--json"], capture_output=True, text=True, env=env_home, timeout=30
    )
    row = json.loads(result.stdout)["settings"]["WEIR_PROJECT"]
    assert row == {"value": "finance-report-prod", "source": "env"}


def test_settings_from_dotenv_are_shown_with_their_source(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("WEIR_API_URL=http://10.0.0.5:4200/api\nOTHER_TOOL=1\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEIR_")}
    env["WEIR_HOME"] = str(tmp_path / "home")
    result = subprocess.run(
        [WEIR, "config", "view", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=30,
    )
    row = json.loads(result.stdout)["settings"]["WEIR_API_URL"]
    assert row == {"value": "http://10.0.0.5:4200/api", "source": ".env"}
