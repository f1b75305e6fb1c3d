"""Wrappers that change how a task argument is treated.

- `unmapped(x)`: pass `x` whole to every call of `.map`, instead of iterating it.
- `allow_failure(future)`: run even if that upstream failed; the argument is then
  the upstream's exception.
- `quote(x)`: pass `x` as is, without looking inside it for futures (for big
  collections, to save the walk).
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class BaseAnnotation(Generic[T]):
    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def unwrap(self) -> T:
        return self.value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.value!r})"


class unmapped(BaseAnnotation[T]):
    """Don't map over this argument: every mapped call receives it whole."""

    __slots__ = ()


class allow_failure(BaseAnnotation[T]):
    """Let the task run even if this upstream future failed."""

    __slots__ = ()


class quote(BaseAnnotation[T]):
    """Pass the value as is: don't resolve futures inside it."""

    __slots__ = ()
