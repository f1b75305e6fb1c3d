"""Result storage in a local (or mounted) directory.

Writes are atomic: the bytes go to a temporary file in the target directory
which then replaces the target, so a reader sees the old result or the new
one, never half of one. Nothing touches the disk until the first write.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from weir.exceptions import InvalidResultKey


def check_key(key: str) -> str:
    """Return `key` if it is a relative, '/'-separated path that stays inside its store."""
    parts = key.split("/")
    if (
        not key
        or key.startswith("/")
        or "\\" in key
        or "\0" in key
        or (len(key) > 1 and key[1] == ":")
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise InvalidResultKey(
            f"Result key {key!r} is not a relative path inside the result store; "
            "use '/'-separated names without '..', '.', empty parts or a leading '/'."
        )
    return key


class LocalFileStore:
    """Results as files under one directory; keys are relative paths below it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser().absolute()
        self.url = self.path.as_uri()

    def _file(self, key: str) -> Path:
        return self.path.joinpath(*check_key(key).split("/"))

    def write(self, key: str, data: bytes) -> None:
        target = self._file(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read(self, key: str) -> bytes:
        try:
            return self._file(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyError(key) from None

    def exists(self, key: str) -> bool:
        return self._file(key).is_file()

    def delete(self, key: str) -> None:
        try:
            self._file(key).unlink()
        except (FileNotFoundError, NotADirectoryError):
            pass

    def __repr__(self) -> str:
        return f"LocalFileStore({str(self.path)!r})"
