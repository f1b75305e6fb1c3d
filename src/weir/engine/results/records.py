"""The stored form of one result, and the reference that loads it back.

A record is one JSON header line, a newline, then the serialized value:

    {"serializer":"pickle","expiration":"2030-01-01T00:00:00+00:00","created":"…"}\\n<payload>

The header comes first so a cache lookup can tell an expired or unreadable
record from a good one without deserializing the payload.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from weir.core.clock import UTC, get_clock
from weir.core.states import ResultReference
from weir.engine.serializers import Serializer, get_serializer
from weir.exceptions import ConfigurationError, SerializationError

if TYPE_CHECKING:
    from weir.engine.results import ResultStore

logger = logging.getLogger("weir.results")

_UNLOADED: Any = object()  # only a default argument; `_loaded` says whether it is set


class PersistedResult(ResultReference):
    """A result in a result store (a `ResultReference`): `load()` returns its value.

    The value is deserialized at most once and then kept, so `load()` is cheap
    to call again; a result made by `write_result` already holds its value.
    """

    __slots__ = (
        "_loaded",
        "_payload",
        "_serializer",
        "_store",
        "_value",
        "created",
        "expiration",
        "key",
        "serializer",
        "store_url",
    )

    def __init__(
        self,
        key: str,
        store_url: str,
        serializer: str,
        expiration: datetime | None = None,
        created: datetime | None = None,
        *,
        store: ResultStore | None = None,
        value: Any = _UNLOADED,
        payload: bytes | None = None,
        serializer_obj: Serializer | None = None,
    ) -> None:
        self.key = key
        self.store_url = store_url
        self.serializer = serializer
        self.expiration = expiration
        self.created = created
        self._store = store
        self._loaded = value is not _UNLOADED
        self._value = None if value is _UNLOADED else value
        self._payload = payload
        self._serializer = serializer_obj

    def load(self) -> Any:
        if self._loaded:
            return self._value
        payload = self._payload if self._payload is not None else self._read_payload()
        self._value = self._get_serializer().loads(payload)
        self._loaded = True
        self._payload = None
        return self._value

    def describe(self) -> dict[str, str]:
        """Where the result lives, as the API stores it on a state (never the value)."""
        return {"key": self.key, "store_url": self.store_url, "serializer": self.serializer}

    def forget_value(self) -> None:
        """Drop the value held in memory; the next `load()` reads it from the store again."""
        self._loaded = False
        self._value = None
        self._payload = None

    def _read_payload(self) -> bytes:
        from weir.engine.results import get_result_store

        store = self._store or get_result_store(self.store_url, self.store_url)
        try:
            data = store.read(self.key)
        except KeyError:
            raise SerializationError(
                f"The result {self.key!r} is no longer in {self.store_url}; "
                "it was deleted, or this process cannot see that storage."
            ) from None
        try:
            return _split(data)[1]
        except _CorruptRecord as exc:
            raise SerializationError(
                f"The result {self.key!r} in {self.store_url} is unreadable: {exc}."
            ) from None

    def _get_serializer(self) -> Serializer:
        if self._serializer is not None:
            return self._serializer
        try:
            return get_serializer(self.serializer)
        except ConfigurationError:
            raise SerializationError(
                f"The result {self.key!r} was written with the serializer {self.serializer!r}, "
                "which is unknown here; pass that Serializer object as result_serializer."
            ) from None

    def __repr__(self) -> str:
        return (
            f"PersistedResult(key={self.key!r}, store_url={self.store_url!r}, "
            f"serializer={self.serializer!r})"
        )


def write_result(
    store: ResultStore,
    key: str,
    value: Any,
    serializer: str | Serializer | None = None,
    expiration: datetime | None = None,
) -> PersistedResult:
    """Serialize `value` and store it under `key`; the returned reference holds the value."""
    ser = get_serializer(serializer)
    payload = ser.dumps(value)
    if expiration is not None and expiration.tzinfo is None:
        expiration = expiration.replace(tzinfo=UTC)
    created = get_clock().now()
    header = {
        "serializer": ser.name,
        "expiration": expiration.isoformat() if expiration else None,
        "created": created.isoformat(),
    }
    store.write(key, json.dumps(header, separators=(",", ":")).encode() + b"\n" + payload)
    return PersistedResult(
        key, store.url, ser.name, expiration, created, store=store, value=value, serializer_obj=ser
    )


def read_result(
    store: ResultStore, key: str, serializer: Serializer | None = None
) -> PersistedResult | None:
    """The result stored under `key`, or None when it is missing, expired or unreadable.

    Only the header is parsed here; the value is deserialized by `load()`.
    `serializer` is used to load it when its name matches the record's.
    """
    try:
        data = store.read(key)
    except KeyError:
        return None
    try:
        header, payload = _split(data)
        name, expiration, created = _parse_header(header)
    except _CorruptRecord as exc:
        logger.warning(
            "Ignoring the stored result %r in %s: %s; treating it as missing.", key, store.url, exc
        )
        return None
    if expiration is not None and expiration <= get_clock().now():
        return None
    return PersistedResult(
        key,
        store.url,
        name,
        expiration,
        created,
        store=store,
        payload=payload,
        serializer_obj=serializer if serializer is not None and serializer.name == name else None,
    )


class _CorruptRecord(Exception):
    pass


def _split(data: bytes) -> tuple[bytes, bytes]:
    header, sep, payload = data.partition(b"\n")
    if not sep:
        raise _CorruptRecord("it has no header line")
    return header, payload


def _parse_header(line: bytes) -> tuple[str, datetime | None, datetime | None]:
    try:
        header = json.loads(line)
    except ValueError:
        raise _CorruptRecord("its header line is not JSON") from None
    if not isinstance(header, dict) or not isinstance(header.get("serializer"), str):
        raise _CorruptRecord("its header line names no serializer")
    return header["serializer"], _parse_time(header, "expiration"), _parse_time(header, "created")


def _parse_time(header: dict[str, Any], field: str) -> datetime | None:
    raw = header.get(field)
    if raw is None:
        return None
    try:
        when = datetime.fromisoformat(raw)
    except (TypeError, ValueError):
        raise _CorruptRecord(f"its {field!r} is not an ISO 8601 time: {raw!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
