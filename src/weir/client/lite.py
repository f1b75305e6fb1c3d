"""The weir API from the standard library, for the commands that must start fast.

`weir deployment run` is typed by people and by the cron jobs and CI steps that
wait on it, and with httpx and pydantic it spent ~0.25 s importing before its one
request. `LiteClient` sends JSON over `http.client` and does what `WeirClient`
does around a request: the project header, basic credentials, the CSRF token
exchange, the same retries (`client/retries.py`) and the same exceptions for
error answers (`client/wire.py`). `lite_options()` reads the API URL, its auth
string and the project from the sources `weir.settings` reads, in its order
(environment, `.env` in the current directory, the active profile), without
pydantic; only those few settings, so a bad value of another one is not noticed
here.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from weir.client.retries import RETRY_STATUSES, RetryPolicy, describe_connection_error
from weir.client.wire import (
    CLIENT_HEADER,
    CSRF_HEADER,
    PROJECT_HEADER,
    UNSAFE_METHODS,
    api_error,
    basic_auth_header,
    is_csrf_refusal,
)
from weir.exceptions import ConfigurationError, ServerUnreachable
from weir.profiles import ProfileValue, selected_profile

CONNECT_TIMEOUT = 5.0  # as WeirClient's
READ_TIMEOUT = 30.0
# a connection lost before the answer came: worth another try, as httpx's read and
# write errors are (any failure to connect is, too)
_LOST = (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine)


def lite_options() -> dict[str, Any]:
    """`api_url`, `auth_string` and `project`, as `client.http.settings_options` gives
    them for the CLI (an unset WEIR_API_URL means the local server)."""
    source = _Sources()
    host = source.get("WEIR_SERVER_HOST") or "127.0.0.1"
    port = source.get("WEIR_SERVER_PORT") or "4200"
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigurationError(
            f"WEIR_SERVER_PORT={port!r} is invalid: it must be a port number from 1 to 65535. "
            "Set a valid value in the environment, .env or the active profile."
        )
    return {
        "api_url": source.get("WEIR_API_URL") or f"http://{host}:{port}/api",
        "auth_string": source.get("WEIR_API_AUTH_STRING") or None,
        "project": source.get("WEIR_PROJECT") or "default",
    }


class _Sources:
    """WEIR_* values by precedence: the environment, `.env`, the selected profile. Names
    are matched without regard to case, as pydantic-settings matches them."""

    def __init__(self) -> None:
        self._environ = {k.upper(): v for k, v in os.environ.items()}
        self._dotenv = _dotenv(Path(".env"))
        home = self._early("WEIR_HOME")
        home_path = Path(home).expanduser().absolute() if home else Path.home() / ".weir"
        _, values = selected_profile(home_path, self._early("WEIR_PROFILE") or None)
        self._profile = {k.upper(): _text(v) for k, v in values.items()}

    def _early(self, name: str) -> str | None:
        """A setting that locates the profile: from the environment or `.env` only."""
        return self._environ.get(name, self._dotenv.get(name))

    def get(self, name: str) -> str | None:
        found = self._early(name)
        return found if found is not None else self._profile.get(name)


def _dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values  # what pydantic-settings reads `.env` with

    return {k.upper(): v for k, v in dotenv_values(path).items() if v is not None}


def _text(value: ProfileValue) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


class LiteClient:
    """One keep-alive connection to the weir API. `request` returns the answer's JSON."""

    def __init__(
        self,
        api_url: str,
        *,
        auth_string: str | None = None,
        project: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        parts = urlsplit(self.api_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(
                f"WEIR_API_URL={api_url!r} is not an http(s) URL; set it to your server's "
                "API, e.g. http://127.0.0.1:4200/api."
            )
        self._https = parts.scheme == "https"
        self._host, self._port, self._base = parts.hostname, parts.port, parts.path
        self.retry = retry or RetryPolicy()
        self._headers = {"Accept": "application/json"}
        if project:
            self._headers[PROJECT_HEADER] = project
        if auth_string:
            self._headers["Authorization"] = basic_auth_header(auth_string)
        self._client_id = uuid.uuid4().hex
        self._connection: http.client.HTTPConnection | None = None

    def __enter__(self) -> LiteClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send `body` as JSON to `path` (relative to the API URL); the answer's JSON
        (None for an empty one), or the APIError it stands for."""
        content = None if body is None else json.dumps(body).encode()
        status, answer = self._send(method, path, content)
        if method in UNSAFE_METHODS and is_csrf_refusal(status, answer):
            self._fetch_csrf_token()  # asked only of a server that wants one
            status, answer = self._send(method, path, content)
        if status >= 400:
            reason = http.client.responses.get(status, "")
            raise api_error(status, answer, reason, f"{self.api_url}/{path}")
        return json.loads(answer) if answer else None

    def _fetch_csrf_token(self) -> None:
        status, answer = self._send("GET", f"csrf-token?client={self._client_id}", None)
        if status == 200:
            self._headers[CSRF_HEADER] = str(json.loads(answer)["token"])
            self._headers[CLIENT_HEADER] = self._client_id

    def _send(self, method: str, path: str, content: bytes | None) -> tuple[int, bytes]:
        headers = dict(self._headers)
        if content is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(self.retry.attempts):
            last = attempt + 1 >= self.retry.attempts
            try:
                connection = self._connect()
            except OSError as exc:  # refused, timed out, unknown host, …
                if last:
                    raise self._unreachable(exc) from None
                time.sleep(self.retry.delay(attempt))
                continue
            try:
                connection.request(method, f"{self._base}/{path}", body=content, headers=headers)
                response = connection.getresponse()
                answer = response.read()
            except _LOST as exc:
                self.close()
                if last:
                    raise self._unreachable(exc) from None
                time.sleep(self.retry.delay(attempt))
                continue
            except OSError as exc:  # timed out waiting for the answer: not retried
                self.close()
                raise self._unreachable(exc) from None
            if response.will_close:
                self.close()
            if response.status in RETRY_STATUSES and not last:
                time.sleep(self.retry.delay(attempt, response.headers))
                continue
            return response.status, answer
        raise AssertionError("unreachable")  # pragma: no cover

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            connection = (
                http.client.HTTPSConnection(
                    self._host, self._port, timeout=CONNECT_TIMEOUT, context=_tls_context()
                )
                if self._https
                else http.client.HTTPConnection(self._host, self._port, timeout=CONNECT_TIMEOUT)
            )
            connection.connect()
            if connection.sock is not None:
                connection.sock.settimeout(READ_TIMEOUT)
            self._connection = connection
        return self._connection

    def _unreachable(self, exc: BaseException) -> ServerUnreachable:
        return ServerUnreachable(
            f"Cannot reach the weir API at {self.api_url}: {describe_connection_error(exc)}. "
            "Start it with `weir server start` or check WEIR_API_URL."
        )


def _tls_context() -> ssl.SSLContext:
    """The CAs httpx would trust: SSL_CERT_FILE / SSL_CERT_DIR, else certifi's."""
    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    if not cafile and not capath:
        import certifi

        cafile = certifi.where()
    return ssl.create_default_context(cafile=cafile or None, capath=capath or None)
