"""Stored results: header + payload records, expiry, corrupt files, memoized loads."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from weir.core.clock import use_clock
from weir.core.states import Completed, ResultReference
from weir.engine.results import LocalFileStore, PersistedResult, read_result, write_result
from weir.exceptions import SerializationError

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


class FrozenClock:
    """A clock that stands still until the test moves it."""

    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        return self.current.timestamp()

    def sleep(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


class CountingSerializer:
    """JSON, counting how often it deserializes."""

    name = "counting"

    def __init__(self) -> None:
        self.loads_calls = 0

    def dumps(self, obj: Any) -> bytes:
        return json.dumps(obj).encode()

    def loads(self, data: bytes) -> Any:
        self.loads_calls += 1
        return json.loads(data)


@pytest.fixture
def store(tmp_path: Path) -> LocalFileStore:
    return LocalFileStore(tmp_path)


@pytest.mark.parametrize(
    ("serializer", "value"),
    [("pickle", {"rows": [1, 2], "when": T0, "raw": b"\x00"}), ("json", {"rows": [1, 2]})],
)
def test_round_trip(store: LocalFileStore, serializer: str, value: Any) -> None:
    write_result(store, "k", value, serializer)
    found = read_result(store, "k")
    assert found is not None
    assert found.serializer == serializer
    assert found.load() == value


def test_record_is_a_header_line_then_the_payload(store: LocalFileStore, tmp_path: Path) -> None:
    with use_clock(FrozenClock(T0)):
        write_result(store, "k", [1], "json", expiration=T0 + timedelta(hours=1))
    header, payload = (tmp_path / "k").read_bytes().split(b"\n", 1)
    assert json.loads(header) == {
        "serializer": "json",
        "expiration": "2030-01-01T13:00:00+00:00",
        "created": "2030-01-01T12:00:00+00:00",
    }
    assert payload == b"[1]"


def test_written_result_holds_its_value_without_io(store: LocalFileStore, tmp_path: Path) -> None:
    value = {"a": 1}
    result = write_result(store, "k", value, "pickle")
    (tmp_path / "k").unlink()
    assert result.load() is value


def test_persisted_result_is_a_result_reference_states_load(store: LocalFileStore) -> None:
    write_result(store, "k", 41, "json")
    found = read_result(store, "k")
    assert isinstance(found, ResultReference)
    assert Completed(data=found).result() == 41


def test_load_deserializes_once(store: LocalFileStore) -> None:
    counting = CountingSerializer()
    write_result(store, "k", [1, 2], counting)
    found = read_result(store, "k", serializer=counting)
    assert found is not None
    assert counting.loads_calls == 0  # reading checks the header only
    first = found.load()
    assert found.load() is first
    assert counting.loads_calls == 1


def test_missing_result_is_none(store: LocalFileStore) -> None:
    assert read_result(store, "absent") is None


def test_expired_result_is_none(store: LocalFileStore) -> None:
    clock = FrozenClock(T0)
    with use_clock(clock):
        write_result(store, "k", 1, "json", expiration=T0 + timedelta(minutes=5))
        clock.sleep(299)
        assert read_result(store, "k") is not None
        clock.sleep(1)
        assert read_result(store, "k") is None


def test_result_without_expiration_never_expires(store: LocalFileStore) -> None:
    clock = FrozenClock(T0)
    with use_clock(clock):
        write_result(store, "k", 1, "json")
        clock.sleep(10 * 365 * 24 * 3600)
        found = read_result(store, "k")
    assert found is not None
    assert found.expiration is None


def test_naive_expiration_is_taken_as_utc(store: LocalFileStore) -> None:
    clock = FrozenClock(T0)
    with use_clock(clock):
        write_result(store, "k", 1, "json", expiration=datetime(2030, 1, 1, 12, 30))
        found = read_result(store, "k")
        assert found is not None
        assert found.expiration == T0 + timedelta(minutes=30)


@pytest.mark.parametrize(
    "content",
    [
        b"no header line at all",
        b"{not json\n payload",
        b'["a list"]\npayload',
        b'{"expiration": null}\npayload',
        b'{"serializer": "json", "expiration": "next tuesday"}\n1',
    ],
)
def test_corrupt_record_is_none_with_a_warning(
    store: LocalFileStore,
    tmp_path: Path,
    content: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    (tmp_path / "k").write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="weir.results"):
        assert read_result(store, "k") is None
    [record] = caplog.records
    assert record.name == "weir.results"
    assert "'k'" in record.getMessage()
    assert "treating it as missing" in record.getMessage()


def test_reference_made_elsewhere_loads_from_its_store_url(
    store: LocalFileStore, tmp_path: Path
) -> None:
    write_result(store, "deep/k", {"x": 1}, "json")
    reference = PersistedResult("deep/k", tmp_path.as_uri(), "json")
    assert reference.load() == {"x": 1}


def test_reference_to_a_deleted_result_raises_a_clear_error(
    store: LocalFileStore, tmp_path: Path
) -> None:
    reference = PersistedResult("gone", tmp_path.as_uri(), "pickle")
    with pytest.raises(SerializationError, match="'gone' is no longer in"):
        reference.load()


def test_unknown_serializer_name_raises_on_load(store: LocalFileStore) -> None:
    write_result(store, "k", [1], CountingSerializer())
    found = read_result(store, "k")  # header is fine; the serializer is not known here
    assert found is not None
    with pytest.raises(SerializationError, match="serializer 'counting'"):
        found.load()


def test_unserializable_value_is_not_written(store: LocalFileStore) -> None:
    with pytest.raises(SerializationError, match="result_serializer='pickle'"):
        write_result(store, "k", b"bytes", "json")
    assert not store.exists("k")


def test_reference_survives_pickling_before_and_after_load(store: LocalFileStore) -> None:
    import pickle

    write_result(store, "k", {"x": 1}, "json")
    unloaded = read_result(store, "k")
    assert unloaded is not None
    assert pickle.loads(pickle.dumps(unloaded)).load() == {"x": 1}
    unloaded.load()
    assert pickle.loads(pickle.dumps(unloaded)).load() == {"x": 1}


def test_forget_value_makes_the_next_load_read_the_store(
    store: LocalFileStore, tmp_path: Path
) -> None:
    value = {"x": 1}
    result = write_result(store, "k", value, "pickle")
    result.forget_value()
    loaded = result.load()
    assert loaded == value
    assert loaded is not value
    (tmp_path / "k").unlink()
    assert result.load() is loaded  # loaded once more, then kept
