"""The stdlib client of fast commands (`weir.client.lite`): it finds the API from the
same sources as `weir.settings`, and against a real server it does what `WeirClient`
does around a request (project, basic auth, CSRF, retries, error details), without
importing httpx or pydantic."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.client.test_client import FAST_RETRIES, Flaky
from tests.servers import serve, weir_app
from weir.client.http import settings_options
from weir.client.lite import LiteClient, lite_options
from weir.exceptions import (
    BadRequest,
    ConfigurationError,
    NotFound,
    ServerError,
    ServerUnreachable,
    Unauthorized,
)
from weir.profiles import profiles_path
from weir.settings import Settings
from weir.testing.server import free_port

pytestmark = pytest.mark.usefixtures("cwd")


@pytest.fixture
def api_url(tmp_path: Path) -> Iterator[str]:
    server, url = serve(weir_app(tmp_path / "server"))
    yield url
    server.should_exit = True


def full_options() -> dict[str, object]:
    """What the CLI's httpx client is built with (`cli/api.py`)."""
    settings = Settings()
    local = f"http://{settings.server.host}:{settings.server.port}/api"
    return settings_options(settings, default_api_url=local)


def profiles(home: Path, text: str) -> None:
    profiles_path(home).write_text(textwrap.dedent(text))


Scenario = Callable[[Path, Path, pytest.MonkeyPatch], None]


def nothing_set(home: Path, cwd: Path, env: pytest.MonkeyPatch) -> None:
    pass


def local_server_port(home: Path, cwd: Path, env: pytest.MonkeyPatch) -> None:
    env.setenv("WEIR_SERVER_PORT", "4999")
    (cwd / ".env").write_text("WEIR_SERVER_HOST=0.0.0.0\n")


def env_over_dotenv_over_profile(home: Path, cwd: Path, env: pytest.MonkeyPatch) -> None:
    profiles(
        home,
        """
        [profiles.default]
        WEIR_API_URL = "http://profile/api"
        WEIR_API_AUTH_STRING = "profile:pass"
        WEIR_PROJECT = "from-profile"
        """,
    )
    (cwd / ".env").write_text('WEIR_API_URL="http://dotenv/api"\nexport WEIR_PROJECT=dotenv\n')
    env.setenv("WEIR_PROJECT", "finance-report-prod")


def profile_chosen_by_weir_profile(home: Path, cwd: Path, env: pytest.MonkeyPatch) -> None:
    profiles(
        home,
        """
        active = "default"
        [profiles.default]
        WEIR_API_URL = "http://local/api"
        [profiles.prod]
        weir_api_url = "https://prod.example.com/api"
        WEIR_SERVER_PORT = 4300
        """,
    )
    env.setenv("weir_profile", "prod")


def home_and_profile_from_dotenv(home: Path, cwd: Path, env: pytest.MonkeyPatch) -> None:
    env.delenv("WEIR_HOME")
    other = cwd.parent / "dotenv-home"
    other.mkdir()
    profiles(other, '[profiles.staging]\nWEIR_API_AUTH_STRING = "ops:s3cret"\n')
    (cwd / ".env").write_text(f"WEIR_HOME={other}\nWEIR_PROFILE=staging\n")


@pytest.mark.parametrize(
    "scenario",
    [
        nothing_set,
        local_server_port,
        env_over_dotenv_over_profile,
        profile_chosen_by_weir_profile,
        home_and_profile_from_dotenv,
    ],
)
def test_lite_options_are_what_the_settings_give(
    scenario: Scenario, weir_home: Path, cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario(weir_home, cwd, monkeypatch)
    assert lite_options() == full_options()


def test_a_bad_profile_or_port_is_one_sentence(
    weir_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEIR_PROFILE", "prod")
    with pytest.raises(ConfigurationError, match="WEIR_PROFILE names profile 'prod'"):
        lite_options()
    monkeypatch.delenv("WEIR_PROFILE")
    monkeypatch.setenv("WEIR_SERVER_PORT", "http")
    with pytest.raises(ConfigurationError, match="WEIR_SERVER_PORT='http' is invalid"):
        lite_options()
    with pytest.raises(ConfigurationError, match="is not an http"):
        LiteClient("127.0.0.1:4200/api")


def test_requests_answers_and_error_details(api_url: str) -> None:
    with LiteClient(api_url) as client:
        assert client.request("GET", "health") is True
        flow = client.request("POST", "flows/", {"name": "etl"})
        assert flow["name"] == "etl"
        with pytest.raises(NotFound, match="not found"):
            client.request("GET", "flow_runs/01a2063f-ff3b-7d2f-86cd-eb3a031c7cbd")
        with pytest.raises(BadRequest) as invalid:
            client.request("POST", "flows/", {"name": 7})
        assert invalid.value.status == 422 and "name" in invalid.value.detail


def test_the_project_header_keeps_projects_apart(api_url: str) -> None:
    with LiteClient(api_url) as client:
        client.request("POST", "projects/", {"name": "finance-report-prod"})
        client.request("POST", "flows/", {"name": "in-default"})
    with LiteClient(api_url, project="finance-report-prod") as prod:
        assert prod.request("POST", "flows/filter", {}) == []
    with LiteClient(api_url, project="nowhere") as wrong, pytest.raises(NotFound):
        wrong.request("POST", "flows/filter", {})


def test_basic_auth_and_the_csrf_exchange(tmp_path: Path) -> None:
    app = weir_app(tmp_path, api_auth_string="ops:s3cret", csrf_protection_enabled=True)
    server, url = serve(app)
    try:
        with LiteClient(url) as anonymous, pytest.raises(Unauthorized):
            anonymous.request("POST", "flows/filter", {})
        with LiteClient(url, auth_string="ops:s3cret") as client:
            assert client.request("POST", "flows/", {"name": "secure"})["name"] == "secure"
            assert client.request("POST", "flows/", {"name": "again"})["name"] == "again"
    finally:
        server.should_exit = True


def test_503_is_retried_and_a_server_that_keeps_failing_raises_its_detail() -> None:
    app = Flaky(failures=2)
    server, url = serve(app)
    try:
        with LiteClient(url, retry=FAST_RETRIES) as client:
            assert client.request("GET", "health") is True
        assert app.calls == 3
        app.calls, app.failures = 0, 100
        with LiteClient(url, retry=FAST_RETRIES) as client, pytest.raises(ServerError) as failed:
            client.request("POST", "flows/filter", {})
        assert "warming up" in str(failed.value)
        assert app.calls == FAST_RETRIES.attempts
    finally:
        server.should_exit = True


def test_an_unreachable_server_says_what_to_do() -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    started = time.monotonic()
    with LiteClient(url, retry=FAST_RETRIES) as client, pytest.raises(ServerUnreachable) as caught:
        client.request("GET", "health")
    assert str(caught.value) == (
        f"Cannot reach the weir API at {url}: connection refused. "
        "Start it with `weir server start` or check WEIR_API_URL."
    )
    assert time.monotonic() - started < 5


def test_the_run_command_imports_neither_httpx_nor_pydantic() -> None:
    # What makes `weir deployment run` start fast; importing weir.client alone is lazy too.
    code = (
        "import sys, weir.client, weir.client.lite, weir.cli.main, weir.cli.deployment; "
        "print(sorted(m for m in ('httpx', 'pydantic', 'sqlalchemy') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
