"""`weir concurrency-limit …` against a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.cli.harness import fails, weir, weir_json
from weir.client.sync import SyncWeirClient
from weir.core.schemas.concurrency import SlotAcquire


def test_tag_and_global_limits(api: str) -> None:
    created = weir("concurrency-limit", "create", "database", "2")
    assert created.exit_code == 0, created.stderr
    assert "task runs tagged 'database'" in created.stdout
    created = weir("concurrency-limit", "create", "--global", "warehouse", "1")
    assert created.exit_code == 0, created.stderr

    limits = {c["name"]: c for c in weir_json("concurrency-limit", "ls")}
    assert set(limits) == {"tag:database", "warehouse"}
    assert limits["tag:database"]["limit"] == 2

    with SyncWeirClient(api) as client:
        answer = client.acquire_concurrency_slots(
            SlotAcquire(names=["tag:database"], holder="task-run-1")
        )
    assert answer.granted
    rows = {
        line.split()[0]: line.split()[1:]
        for line in weir("concurrency-limit", "ls").stdout.splitlines()[1:]
        if line.strip()
    }
    assert rows["database"] == ["tag", "1/2", "yes"]
    assert rows["warehouse"] == ["global", "0/1", "yes"]

    shown = weir_json("concurrency-limit", "inspect", "database")
    assert (shown["name"], shown["active_slots"], shown["holders"]) == (
        "tag:database",
        1,
        ["task-run-1"],
    )
    assert weir_json("concurrency-limit", "inspect", "warehouse")["name"] == "warehouse"
    text = weir("concurrency-limit", "inspect", "database").stdout
    assert "task-run-1" in text and "1/2" in text

    # create again: the number of slots changes
    assert weir("concurrency-limit", "create", "database", "5").exit_code == 0
    assert weir_json("concurrency-limit", "inspect", "database")["limit"] == 5

    deleted = weir("concurrency-limit", "delete", "database")
    assert deleted.exit_code == 0, deleted.stderr
    assert weir("concurrency-limit", "delete", "--global", "warehouse").exit_code == 0
    assert weir_json("concurrency-limit", "ls") == []


def test_a_tag_limit_is_found_before_a_global_limit_of_the_same_name(api: str) -> None:
    weir("concurrency-limit", "create", "db", "3")
    weir("concurrency-limit", "create", "--global", "db", "1")
    assert weir_json("concurrency-limit", "inspect", "db")["name"] == "tag:db"
    assert weir_json("concurrency-limit", "inspect", "db", "--global")["name"] == "db"
    weir("concurrency-limit", "delete", "db", "--global")
    assert [c["name"] for c in weir_json("concurrency-limit", "ls")] == ["tag:db"]


def test_bad_input_is_one_sentence(api: str) -> None:
    for args, sentence in [
        (("concurrency-limit", "inspect", "nothing"), "No concurrency limit for tag 'nothing'"),
        (("concurrency-limit", "delete", "nothing"), "No concurrency limit for tag 'nothing'"),
        (("concurrency-limit", "inspect", "nothing", "--global"), "nothing"),
        (("concurrency-limit", "create", "a/b", "1"), "must not contain '/'"),
        (("concurrency-limit", "create", "db", "--", "-1"), "limit"),
    ]:
        fails(weir(*args), sentence)
    assert weir_json("concurrency-limit", "ls") == []
