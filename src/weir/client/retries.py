"""When the client retries a request, and how long it waits in between.

Retried: 429, 502, 503, 504, and failures to connect or to read an answer.
Waits grow exponentially with full jitter, capped, and a server's
`Retry-After` (seconds or an HTTP date) is honoured up to the cap. No httpx here:
the stdlib client of fast commands (`client/lite.py`) retries by the same policy.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol

RETRY_STATUSES = frozenset({429, 502, 503, 504})


class Headers(Protocol):
    """httpx's headers and http.client's alike."""

    def get(self, key: str, /) -> str | None: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`attempts` tries in all; the n-th wait is at most `base * 2**n`, never past `cap`."""

    attempts: int = 5
    base: float = 0.1
    cap: float = 10.0

    def delay(self, attempt: int, headers: Headers | None = None) -> float:
        """Seconds to wait after failed try number `attempt` (0-based), given the
        headers of the answer that failed it, if there was one."""
        if headers is not None:
            after = retry_after(headers)
            if after is not None:
                return min(after, self.cap)
        return random.uniform(0.5, 1.0) * min(self.cap, self.base * 2**attempt)


NO_RETRIES = RetryPolicy(attempts=1)


def retry_after(headers: Headers) -> float | None:
    """The `Retry-After` header in seconds, or None when absent or unreadable."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def describe_connection_error(exc: BaseException) -> str:
    """`connection refused`, `timed out`, … for the ServerUnreachable message."""
    causes = list(_causes(exc))
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return "connection refused"
    text = " ".join(str(c) for c in causes).lower()
    if "refused" in text:
        return "connection refused"
    # httpx's ConnectTimeout, ReadTimeout, … are not TimeoutErrors
    if any(isinstance(c, TimeoutError) or type(c).__name__.endswith("Timeout") for c in causes):
        return "timed out"
    if "name or service not known" in text or "nodename nor servname" in text:
        return "unknown host"
    return str(exc) or type(exc).__name__


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what caused it, and what was inside any exception group, once each."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack.extend(c for c in (current.__cause__, current.__context__) if c is not None)
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)
