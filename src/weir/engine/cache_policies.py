"""Cache policies: how a task run's cache key is computed from what it depends on.

The names and behaviour follow Prefect 3's `prefect.cache_policies`:

    @task(cache_policy=INPUTS + TASK_SOURCE)         # same inputs, same code -> cached
    @task(cache_policy=INPUTS - "debug")              # ignore one parameter
    @task(cache_key_fn=lambda ctx, params: params["day"])

A policy returns a key, or None for "do not cache". Policies add up into a
`CompoundCachePolicy` whose key hashes its parts' keys; a part that does not
apply here (`RUN_ID` outside a flow) is left out, while `NO_CACHE` anywhere,
or inputs that cannot be hashed, mean the run is not cached at all.

Keys are hex digests (or a user's key when it is already a plain file name),
so they are safe as file names in any result store, and the same in every
process: hashing goes through sorted JSON first and cloudpickle second, never
through `hash()`.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import re
import types
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from weir.engine.serializers import json_default

if TYPE_CHECKING:
    from weir.engine.contexts import TaskRunContext

logger = logging.getLogger("weir.cache")

_KEY_LENGTH = 32
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def hash_objects(*objs: Any) -> str | None:
    """A hex digest of `objs` that is the same in every process, or None if they can't be hashed.

    Values go through sorted JSON. What JSON cannot hold is made canonical
    piece by piece (sets sorted, dicts with non-str keys as sorted pairs) and
    only the leaves that are still opaque are pickled, so one odd parameter
    does not put a set of strings, whose pickle order varies per process,
    into the hash.
    """
    try:
        return _digest(_dumps(objs))
    except (TypeError, ValueError, RecursionError):
        pass
    try:
        return _digest(_dumps(_canonical(objs)))
    except (_Unhashable, TypeError, ValueError, RecursionError):
        return None


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, default=json_default, separators=(",", ":")).encode()


class _Unhashable(Exception):
    pass


def _canonical(obj: Any) -> Any:
    """`obj` as plain JSON values, with a digest of its pickle for what has no JSON form."""
    if obj is None or isinstance(obj, str | int | float):
        return obj
    if isinstance(obj, list | tuple):
        return [_canonical(item) for item in obj]
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: _canonical(v) for k, v in obj.items()}
        pairs = [[_canonical(k), _canonical(v)] for k, v in obj.items()]
        return {"__pairs__": sorted(pairs, key=lambda pair: _dumps(pair[0]))}
    if isinstance(obj, set | frozenset):
        return {"__set__": sorted((_canonical(item) for item in obj), key=_dumps)}
    try:
        plain = json_default(obj)
    except Exception:  # no JSON form (or a model that fails to dump): pickle it
        pass
    else:
        return _canonical(plain)
    import cloudpickle

    try:
        return {"__pickle__": _digest(cloudpickle.dumps(obj))}
    except Exception as exc:
        raise _Unhashable from exc


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:_KEY_LENGTH]


class _NotCacheable(Exception):
    """Raised inside a compound policy when one part forbids caching the run."""


class CachePolicy:
    """Computes a task run's cache key; None means the run is not cached.

    weir's policies implement `_part_key`; a policy of your own may override either
    `compute_key` (as with Prefect) or `_part_key`.
    """

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
    ) -> str | None:
        try:
            return self._part_key(task_ctx, inputs, flow_parameters)
        except _NotCacheable:
            return None

    def _part_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
    ) -> str | None:
        """This policy's key as part of a compound: None to be left out; raises to forbid caching."""
        if type(self).compute_key is CachePolicy.compute_key:
            raise NotImplementedError(f"{type(self).__name__} implements neither key method.")
        return self.compute_key(task_ctx, inputs, flow_parameters)

    @classmethod
    def from_cache_key_fn(
        cls, cache_key_fn: Callable[[TaskRunContext, dict[str, Any]], str | None]
    ) -> CacheKeyFnPolicy:
        return CacheKeyFnPolicy(cache_key_fn)

    def __add__(self, other: CachePolicy) -> CachePolicy:
        if not isinstance(other, CachePolicy):
            return NotImplemented
        if isinstance(self, NoCache) or isinstance(other, NoCache):
            return NO_CACHE
        return CompoundCachePolicy((*_parts(self), *_parts(other)))

    def __sub__(self, parameter: str) -> CachePolicy:
        """The same policy with `parameter` left out of its inputs (a no-op without INPUTS)."""
        if not isinstance(parameter, str):
            raise TypeError("Only a parameter name (a str) can be subtracted from a cache policy.")
        return self


def _parts(policy: CachePolicy) -> tuple[CachePolicy, ...]:
    return policy.policies if isinstance(policy, CompoundCachePolicy) else (policy,)


@dataclass(frozen=True, eq=True)
class CompoundCachePolicy(CachePolicy):
    """Several policies at once: the key hashes every part's key."""

    policies: tuple[CachePolicy, ...] = ()

    def _part_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
    ) -> str | None:
        keys = []
        for policy in self.policies:
            key = policy._part_key(task_ctx, inputs, flow_parameters)
            if key is not None:
                keys.append(key)
        return hash_objects(*keys) if keys else None

    def __sub__(self, parameter: str) -> CachePolicy:
        super().__sub__(parameter)
        return CompoundCachePolicy(tuple(policy - parameter for policy in self.policies))


@dataclass(frozen=True, eq=True)
class NoCache(CachePolicy):
    """Never cache. Added to any policy, the sum never caches either."""

    def _part_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
    ) -> str | None:
        raise _NotCacheable


@dataclass(frozen=True, eq=True)
class Inputs(CachePolicy):
    """The task run's inputs, except the parameters named in `exclude`.

    A run with no inputs has no key from this policy. Inputs that can be
    neither written as JSON nor pickled make the run uncacheable, with one
    warning per task and parameter.
    """

    exclude: tuple[str, ...] = ()

    def _part_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
    ) -> str | None:
        if not inputs:
            return None
        hashed = {name: value for name, value in inputs.items() if name not in self.exclude}
        key = hash_objects(hashed)
        if key is None:
            _warn_unhashable(task_ctx, hashed)
            raise _NotCacheable
        return key

    def __sub__(self, parameter: str) -> CachePolicy:
        super().__sub__(parameter)
        return Inputs((*self.exclude, parameter))


_warned: set[tuple[str, str]] = set()


def _warn_unhashable(task_ctx: TaskRunContext, inputs: dict[str, Any]) -> None:
    names = [name for name, value in inputs.items() if hash_objects(value) is None]
    task = task_ctx.task
    for name in names or ["<all together>"]:
        if (task.task_key, name) in _warned:
            continue
        if len(_warned) < 10_000:
            _warned.add((task.task_key, name))
        logger.warning(
            "Task %r is not cached: its parameter %r (%s) can be neither written as JSON "
            "nor pickled; use cache_policy=INPUTS - %r or a cache_key_fn.",
            task.name,
            name,
            type(inputs[name]).__name__ if name in inputs else "several values",
            name,
        )


_source_keys: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, eq=True)
class TaskSource(CachePolicy):
    """The source code of the task's function, so editing the task invalidates its cache."""

    def _part_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
    ) -> str | None:
        fn = task_ctx.task.fn
        try:
            return _source_keys[fn]
        except (KeyError, TypeError):
            pass
        key = _source_key(fn)
        try:
            _source_keys[fn] = key
        except TypeError:  # not weak-referenceable; hash again next time
            pass
        return key


def _source_key(fn: Callable[..., Any]) -> str:
    try:
        return _digest(inspect.getsource(fn).encode())
    except (OSError, TypeError):
        pass
    # no source file (a REPL, exec): the compiled code stands in for the text
    fn = inspect.unwrap(fn)
    code = getattr(fn, "__code__", None) or getattr(type(fn).__call__, "__code__", None)
    name = getattr(fn, "__qualname__", type(fn).__qualname__)
    if code is None:
        return _digest(f"{getattr(fn, '__module__', '')}.{name}".encode())
    return _digest(name.encode() + b"\0" + _code_bytes(code))


def _code_bytes(code: types.CodeType) -> bytes:
    parts = [code.co_code, repr(code.co_names).encode()]
    for const in code.co_consts:
        parts.append(
            _code_bytes(const) if isinstance(const, types.CodeType) else repr(const).encode()
        )
    return b"\0".join(parts)


@dataclass(frozen=True, eq=True)
class FlowParameters(CachePolicy):
    """The parameters of the flow run the task runs in; no key outside a flow."""

    def _part_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
    ) -> str | None:
        if task_ctx.task_run.flow_run_id is None:
            return None
        key = hash_objects(flow_parameters)
        if key is None:
            logger.warning(
                "Task %r is not cached: the parameters of its flow run can be neither written "
                "as JSON nor pickled.",
                task_ctx.task.name,
            )
            raise _NotCacheable
        return key


@dataclass(frozen=True, eq=True)
class RunId(CachePolicy):
    """The id of the flow run the task runs in, so the cache lasts one flow run."""

    def _part_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
    ) -> str | None:
        run_id = task_ctx.task_run.flow_run_id
        return None if run_id is None else str(run_id)


@dataclass(frozen=True, eq=True)
class CacheKeyFnPolicy(CachePolicy):
    """A user's `cache_key_fn(context, parameters)`; its None means "do not cache".

    A key that is a plain file name is used as it is; any other is hashed.
    """

    cache_key_fn: Callable[[TaskRunContext, dict[str, Any]], str | None]

    def _part_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
    ) -> str | None:
        key = self.cache_key_fn(task_ctx, inputs)
        if key is None:
            return None
        if not isinstance(key, str):
            name = getattr(self.cache_key_fn, "__qualname__", repr(self.cache_key_fn))
            raise TypeError(
                f"cache_key_fn {name} returned a {type(key).__name__}; it must return a str or None."
            )
        return key if _PLAIN_KEY.fullmatch(key) else _digest(key.encode())


INPUTS = Inputs()
TASK_SOURCE = TaskSource()
FLOW_PARAMETERS = FlowParameters()
RUN_ID = RunId()
NO_CACHE = NoCache()
DEFAULT = INPUTS + TASK_SOURCE + RUN_ID

__all__ = [
    "DEFAULT",
    "FLOW_PARAMETERS",
    "INPUTS",
    "NO_CACHE",
    "RUN_ID",
    "TASK_SOURCE",
    "CacheKeyFnPolicy",
    "CachePolicy",
    "CompoundCachePolicy",
    "FlowParameters",
    "Inputs",
    "NoCache",
    "RunId",
    "TaskSource",
    "hash_objects",
]
