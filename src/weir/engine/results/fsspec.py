"""Result storage at any fsspec URL: `s3://bucket/prefix`, `memory://name`, `gcs://…`.

fsspec, and the backend package a protocol needs (s3fs for `s3://`), are
imported when the store is created, not when weir is; a missing backend is
reported as a configuration error that says what to install. The filesystem
object itself is made on first use.
"""

from __future__ import annotations

from typing import Any

from weir.engine.results.local import check_key
from weir.exceptions import ConfigurationError

# backend packages that weir offers as an extra
_EXTRAS = {"s3fs": "'weir[s3]'"}


class FsspecStore:
    """Results as objects below an fsspec URL; keys are '/'-separated paths below it."""

    def __init__(self, url: str, **storage_options: Any) -> None:
        import fsspec

        self.url = url.rstrip("/")
        protocol, _ = fsspec.core.split_protocol(self.url)
        protocol = protocol or "file"
        try:
            self._fs_class = fsspec.get_filesystem_class(protocol)
        except ImportError:
            from fsspec.registry import known_implementations

            spec = known_implementations.get(protocol, {})
            package = str(spec.get("class", protocol)).split(".")[0]
            raise ConfigurationError(
                f"Result storage {self.url!r} needs {package}: "
                f"pip install {_EXTRAS.get(package, package)}"
            ) from None
        except ValueError:
            raise ConfigurationError(
                f"Result storage {self.url!r} uses the unknown protocol {protocol!r}; "
                "use a local path, a file:// URL, or an fsspec URL such as s3://bucket/prefix."
            ) from None
        self._root = str(self._fs_class._strip_protocol(self.url)).rstrip("/")
        self._storage_options = storage_options
        self._fs_instance: Any = None

    @property
    def _fs(self) -> Any:
        if self._fs_instance is None:
            self._fs_instance = self._fs_class(**self._storage_options)
        return self._fs_instance

    def _path(self, key: str) -> str:
        return f"{self._root}/{check_key(key)}"

    def write(self, key: str, data: bytes) -> None:
        # a single put is atomic on object stores
        self._fs.pipe_file(self._path(key), data)

    def read(self, key: str) -> bytes:
        try:
            return bytes(self._fs.cat_file(self._path(key)))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyError(key) from None

    def exists(self, key: str) -> bool:
        return bool(self._fs.isfile(self._path(key)))

    def delete(self, key: str) -> None:
        try:
            self._fs.rm_file(self._path(key))
        except FileNotFoundError:
            pass

    def __repr__(self) -> str:
        return f"FsspecStore({self.url!r})"
