"""`weir work-queue …` against a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.cli.harness import fails, weir, weir_json


def test_queues_of_the_only_pool_need_no_pool_option(api: str) -> None:
    fails(weir("work-queue", "ls", "--pool", "local"), "local")
    fails(weir("work-queue", "create", "fast"), "There are no work pools")
    weir("work-pool", "create", "local")

    created = weir("work-queue", "create", "fast", "--priority", "1", "--concurrency-limit", "2")
    assert created.exit_code == 0, created.stderr
    assert "Created work queue 'fast' in pool 'local'" in created.stdout
    assert weir("work-queue", "create", "slow", "--pool", "local", "-d", "big jobs").exit_code == 0

    queues = {q["name"]: q for q in weir_json("work-queue", "ls", "--pool", "local")}
    assert set(queues) == {"default", "fast", "slow"}
    assert (queues["fast"]["priority"], queues["fast"]["concurrency_limit"]) == (1, 2)
    assert queues["slow"]["description"] == "big jobs"

    fast = weir_json("work-queue", "inspect", "fast")
    assert fast["id"] == queues["fast"]["id"]
    shown = weir("work-queue", "inspect", "fast", "--pool", "local")
    assert "Priority:" in shown.stdout and "local" in shown.stdout


def test_pause_resume_limits_and_delete(api: str) -> None:
    weir("work-pool", "create", "local")
    weir("work-queue", "create", "fast", "--pool", "local")

    assert "Paused work queue 'fast' of pool 'local'" in weir("work-queue", "pause", "fast").stdout
    assert weir_json("work-queue", "inspect", "fast")["is_paused"] is True
    assert weir("work-queue", "resume", "fast", "--pool", "local").exit_code == 0
    assert weir_json("work-queue", "inspect", "fast")["is_paused"] is False

    assert (
        weir("work-queue", "set-concurrency-limit", "fast", "4", "--pool", "local").exit_code == 0
    )
    assert weir_json("work-queue", "inspect", "fast")["concurrency_limit"] == 4
    assert weir("work-queue", "clear-concurrency-limit", "fast").exit_code == 0
    assert weir_json("work-queue", "inspect", "fast")["concurrency_limit"] is None

    fails(weir("work-queue", "delete", "fast"), "pass --yes to confirm")
    deleted = weir("work-queue", "delete", "fast", "--pool", "local", "--yes")
    assert deleted.exit_code == 0, deleted.stderr
    names = [q["name"] for q in weir_json("work-queue", "ls", "--pool", "local")]
    assert names == ["default"]


def test_listing_across_pools(api: str) -> None:
    weir("work-pool", "create", "local")
    weir("work-pool", "create", "gpu")
    weir("work-queue", "create", "training", "--pool", "gpu")

    queues = weir_json("work-queue", "ls")
    assert sorted((q["work_pool_name"], q["name"]) for q in queues) == [
        ("gpu", "default"),
        ("gpu", "training"),
        ("local", "default"),
    ]
    table = weir("work-queue", "ls").stdout
    assert any(line.split()[:2] == ["gpu", "training"] for line in table.splitlines())

    # with two pools, a command on one queue must say which
    fails(weir("work-queue", "pause", "training"), "Name the work pool with --pool")
    assert "gpu" in weir("work-queue", "pause", "training").stderr


def test_bad_input_is_one_sentence(api: str) -> None:
    weir("work-pool", "create", "local")
    for args, sentence in [
        (("work-queue", "inspect", "nowhere", "--pool", "local"), "nowhere"),
        (("work-queue", "inspect", "default", "--pool", "nowhere"), "nowhere"),
        (("work-queue", "create", "default", "--pool", "local"), "default"),  # exists
        (("work-queue", "create", "q", "--priority", "0"), "priority"),
        (("work-queue", "delete", "nowhere", "--yes"), "nowhere"),
    ]:
        fails(weir(*args), sentence)
