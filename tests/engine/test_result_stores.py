"""Result stores: one contract every backend meets, and choosing a backend by URL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import fsspec
import pytest

from weir.engine.results import (
    FsspecStore,
    LocalFileStore,
    ResultStore,
    get_result_store,
)
from weir.exceptions import ConfigurationError, InvalidResultKey


@dataclass
class Backend:
    make: Callable[[], ResultStore]
    root_exists: Callable[[], bool]


def _local(tmp_path: Path) -> Backend:
    root = tmp_path / "results" / "nested"
    return Backend(lambda: LocalFileStore(root), root.exists)


def _memory(tmp_path: Path) -> Backend:
    root = f"/weir-test-{uuid.uuid4().hex}/prefix"
    memory = fsspec.filesystem("memory")
    return Backend(lambda: FsspecStore(f"memory://{root}"), lambda: memory.exists(root))


@pytest.fixture(params=[_local, _memory], ids=["local", "memory"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    b = request.param(tmp_path)
    yield b
    if request.param is _memory and b.root_exists():
        store = b.make()
        assert isinstance(store, FsspecStore)
        store._fs.rm(store._root, recursive=True)


@pytest.fixture
def store(backend: Backend) -> ResultStore:
    return backend.make()


def test_creating_a_store_touches_no_storage(backend: Backend) -> None:
    store = backend.make()
    assert not backend.root_exists()
    store.write("k", b"v")
    assert backend.root_exists()


def test_store_has_the_protocol(store: ResultStore) -> None:
    assert isinstance(store, ResultStore)
    assert "://" in store.url


def test_write_then_read(store: ResultStore) -> None:
    store.write("a", b"\x00bytes\xff")
    assert store.read("a") == b"\x00bytes\xff"
    assert store.exists("a")


def test_missing_key_raises_key_error(store: ResultStore) -> None:
    with pytest.raises(KeyError):
        store.read("absent")
    assert not store.exists("absent")


def test_write_overwrites(store: ResultStore) -> None:
    store.write("a", b"first, and longer")
    store.write("a", b"second")
    assert store.read("a") == b"second"


def test_empty_value(store: ResultStore) -> None:
    store.write("empty", b"")
    assert store.exists("empty")
    assert store.read("empty") == b""


def test_nested_keys(store: ResultStore) -> None:
    store.write("flow/task/one", b"1")
    store.write("flow/task/two", b"2")
    assert store.read("flow/task/one") == b"1"
    assert store.read("flow/task/two") == b"2"
    # a 'directory' of keys is not itself a key
    assert not store.exists("flow/task")
    with pytest.raises(KeyError):
        store.read("flow/task")


def test_delete(store: ResultStore) -> None:
    store.write("a", b"1")
    store.write("b", b"2")
    store.delete("a")
    assert not store.exists("a")
    assert store.read("b") == b"2"
    with pytest.raises(KeyError):
        store.read("a")


def test_delete_missing_key_is_a_no_op(store: ResultStore) -> None:
    store.delete("never/written")
    assert not store.exists("never/written")


@pytest.mark.parametrize("key", ["", "/etc/passwd", "../up", "a/../../b", "a//b", "./a", "a\\b"])
def test_keys_must_stay_inside_the_store(store: ResultStore, key: str) -> None:
    with pytest.raises(InvalidResultKey, match="not a relative path inside the result store"):
        store.write(key, b"x")
    with pytest.raises(ValueError):
        store.read(key)


def test_local_store_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    store.write("k", b"1")
    store.write("k", b"2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k"]


def test_local_store_url_is_an_absolute_file_url(tmp_path: Path) -> None:
    assert LocalFileStore(tmp_path).url == tmp_path.absolute().as_uri()


# -- get_result_store ---------------------------------------------------------


def test_none_means_the_default_url(tmp_path: Path) -> None:
    store = get_result_store(None, default_url=str(tmp_path / "default"))
    assert isinstance(store, LocalFileStore)
    assert store.path == tmp_path / "default"


def test_paths_and_file_urls_are_local_stores(tmp_path: Path) -> None:
    from_str = get_result_store(str(tmp_path / "r"), "unused://")
    from_path = get_result_store(tmp_path / "r", "unused://")
    from_url = get_result_store((tmp_path / "r").as_uri(), "unused://")
    for store in (from_str, from_path, from_url):
        assert isinstance(store, LocalFileStore)
        assert store.url == (tmp_path / "r").as_uri()


def test_tilde_expands_to_the_home_directory() -> None:
    store = get_result_store("~/weir-results", "unused://")
    assert store.url == (Path.home() / "weir-results").as_uri()


def test_relative_paths_are_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert get_result_store("rel", "unused://").url == (tmp_path / "rel").as_uri()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert get_result_store("rel", "unused://").url == (tmp_path / "elsewhere" / "rel").as_uri()


def test_other_schemes_are_fsspec_stores() -> None:
    store = get_result_store("memory://bucket/prefix", "unused://")
    assert isinstance(store, FsspecStore)
    assert store.url == "memory://bucket/prefix"


def test_stores_are_reused_per_url(tmp_path: Path) -> None:
    assert get_result_store(str(tmp_path), "x") is get_result_store(str(tmp_path), "x")
    assert get_result_store("memory://a", "x") is get_result_store("memory://a", "x")
    assert get_result_store("memory://a", "x") is not get_result_store("memory://b", "x")


def test_store_objects_are_used_as_they_are(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    assert get_result_store(store, "unused://") is store


def test_other_values_are_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="must be a path, a URL or a ResultStore"):
        get_result_store(42, "unused://")  # type: ignore[arg-type]


def test_unknown_protocol_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as info:
        get_result_store("nosuchproto://x", "unused://")
    assert "'nosuchproto://x'" in str(info.value)
    assert "unknown protocol 'nosuchproto'" in str(info.value)


def test_missing_backend_package_says_what_to_install() -> None:
    # gcsfs is not a dependency of weir or its test tools (s3fs is: see test_s3_results.py)
    with pytest.raises(ConfigurationError) as info:
        FsspecStore("gcs://bucket/prefix")
    assert str(info.value) == "Result storage 'gcs://bucket/prefix' needs gcsfs: pip install gcsfs"


def test_creating_a_local_store_does_not_touch_the_disk(tmp_path: Path) -> None:
    get_result_store(str(tmp_path / "lazy"), "unused://")
    assert not os.path.exists(tmp_path / "lazy")
