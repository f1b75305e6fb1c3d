"""Result storage: where persisted task and flow results live, chosen by URL.

A result store is a flat map from keys ('/'-separated relative paths) to
bytes. `get_result_store` turns a `result_storage=` value into a store: a path
or `file://` URL is a `LocalFileStore`, any other URL an `FsspecStore`, and an
object with the `ResultStore` methods is used as it is. What is written under
a key (a header line, then the serialized value) is `records.py`'s business.
"""

from __future__ import annotations

import os
from typing import Protocol, runtime_checkable
from urllib.parse import unquote

from weir.engine.results.fsspec import FsspecStore
from weir.engine.results.local import LocalFileStore, check_key
from weir.engine.results.records import PersistedResult, read_result, write_result
from weir.exceptions import ConfigurationError

__all__ = [
    "FsspecStore",
    "LocalFileStore",
    "PersistedResult",
    "ResultStore",
    "check_key",
    "get_result_store",
    "read_result",
    "write_result",
]


@runtime_checkable
class ResultStore(Protocol):
    """Bytes by key. `read` raises `KeyError` for a missing key; `delete` of one is a no-op."""

    url: str

    def write(self, key: str, data: bytes) -> None: ...

    def read(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...


# called once per persisted task run, so stores are made once per URL
_stores: dict[str, ResultStore] = {}
_MAX_CACHED = 64


def get_result_store(
    value: str | os.PathLike[str] | ResultStore | None, default_url: str
) -> ResultStore:
    """The store for a `result_storage=` value; None means `default_url`."""
    if value is None:
        value = default_url
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str):
        if "://" not in value and not value.startswith("~") and not os.path.isabs(value):
            value = os.path.abspath(value)  # a relative path means relative to the cwd of now
        store = _stores.get(value)
        if store is None:
            store = _make_store(value)
            if len(_stores) >= _MAX_CACHED:
                _stores.clear()
            _stores[value] = store
        return store
    if isinstance(value, ResultStore):
        return value
    raise ConfigurationError(
        f"result_storage must be a path, a URL or a ResultStore, not {type(value).__name__}."
    )


def _make_store(value: str) -> ResultStore:
    if "://" not in value:
        return LocalFileStore(value)
    if value.startswith("file://"):
        path = unquote(value[len("file://") :])
        if path.startswith("localhost/"):
            path = path[len("localhost") :]
        return LocalFileStore(path)
    return FsspecStore(value)
