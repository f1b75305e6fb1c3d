"""Retry delays: a number, a list (one per attempt), or a callable, plus jitter."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

RetryDelay = float | int | Sequence[float] | Callable[[int], Sequence[float]] | None


def exponential_backoff(backoff_factor: float) -> Callable[[int], list[float]]:
    """Delays of `backoff_factor * 2**n` seconds: 10, 20, 40, … for a factor of 10."""

    def delays(retries: int) -> list[float]:
        return [backoff_factor * 2**attempt for attempt in range(retries)]

    return delays


def normalise_delays(delay: RetryDelay, retries: int, owner: str) -> tuple[float, ...]:
    """The delay before each retry, as a tuple (the last one repeats if it is short)."""
    if delay is None:
        return (0.0,)
    if callable(delay):
        delay = delay(retries)
    if isinstance(delay, int | float):
        values: tuple[float, ...] = (float(delay),)
    else:
        values = tuple(float(d) for d in delay)
    if not values:
        values = (0.0,)
    if len(values) > 50:
        raise ValueError(f"{owner}: retry_delay_seconds may list at most 50 delays.")
    if any(v < 0 for v in values):
        raise ValueError(f"{owner}: retry_delay_seconds must not be negative.")
    return values


def delay_for(delays: tuple[float, ...], attempt: int, jitter_factor: float | None) -> float:
    """The delay before retry number `attempt` (1-based), jittered within ±jitter_factor."""
    delay = delays[min(attempt, len(delays)) - 1]
    if jitter_factor:
        delay *= random.uniform(max(0.0, 1 - jitter_factor), 1 + jitter_factor)
    return delay
