"""`weir deploy` and `weir init` against a real server (SQLite and PostgreSQL): deploying
is declarative, and every mistake is one sentence and exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.harness import fails, weir, weir_json
from weir.client.sync import SyncWeirClient
from weir.core.schemas.work_pools import WorkPoolCreate

FLOWS = '''\
from weir import flow

@flow(name="etl")
def etl(region: str, days: int = 1) -> str:
    """Load a region.

    Args:
        region: the sales region.
    """
    return region * days
'''

WEIR_YAML = """\
deployments:
  - name: daily
    entrypoint: flows.py:etl
    parameters: {region: emea}
    tags: [finance]
    work_pool: {name: pool-a}
    schedules:
      - cron: "0 8 * * *"
        timezone: Europe/Oslo
      - interval: 3600
  - name: adhoc
    entrypoint: flows.py:etl
    work_pool: {name: pool-a, job_variables: {env: {A: "1"}}}
    concurrency_limit: {limit: 1, collision_strategy: CANCEL_NEW}
"""


@pytest.fixture
def project(api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "project"
    directory.mkdir()
    (directory / "flows.py").write_text(FLOWS)
    (directory / "weir.yaml").write_text(WEIR_YAML)
    monkeypatch.chdir(directory)
    with SyncWeirClient(api) as client:
        client.create_work_pool(WorkPoolCreate(name="pool-a"))
    return directory


def _deployments(api: str) -> dict[str, object]:
    with SyncWeirClient(api) as client:
        return {d.name: d for d in client.read_deployments()}


def test_deploy_all_twice_gives_the_same_deployments(api: str, project: Path) -> None:
    first = weir("deploy", "--all")
    assert first.exit_code == 0, first.stderr
    assert "Deployed 'etl/daily'" in first.stdout
    assert "Run it with: weir deployment run 'etl/daily'" in first.stdout
    before = _deployments(api)
    second = weir_json("deploy", "--all")
    assert sorted(d["name"] for d in second) == ["adhoc", "daily"]
    after = _deployments(api)
    assert {n: d.id for n, d in before.items()} == {n: d.id for n, d in after.items()}  # type: ignore[attr-defined]
    daily = after["daily"]
    assert daily.flow_name == "etl"  # type: ignore[attr-defined]
    assert daily.entrypoint == "flows.py:etl"  # type: ignore[attr-defined]
    assert daily.path == str(project)  # type: ignore[attr-defined]
    assert daily.parameters == {"region": "emea"}  # type: ignore[attr-defined]
    schema = daily.parameter_openapi_schema  # type: ignore[attr-defined]
    assert schema["required"] == ["region"]
    assert schema["properties"]["region"]["description"] == "the sales region."
    assert len(daily.schedules) == 2  # type: ignore[attr-defined]
    adhoc = after["adhoc"]
    assert (adhoc.concurrency_limit, adhoc.collision_strategy) == (1, "CANCEL_NEW")  # type: ignore[attr-defined]
    assert adhoc.job_variables == {"env": {"A": "1"}}  # type: ignore[attr-defined]


def test_a_schedule_removed_from_the_file_is_gone_from_the_server(api: str, project: Path) -> None:
    assert weir("deploy", "--name", "daily").exit_code == 0
    assert len(_deployments(api)["daily"].schedules) == 2  # type: ignore[attr-defined]
    (project / "weir.yaml").write_text(WEIR_YAML.replace("      - interval: 3600\n", ""))
    assert weir("deploy", "--name", "etl/daily").exit_code == 0
    schedules = _deployments(api)["daily"].schedules  # type: ignore[attr-defined]
    assert [s.schedule["cron"] for s in schedules] == ["0 8 * * *"]
    assert "adhoc" not in _deployments(api)


def test_deploy_an_entrypoint_with_options(api: str, project: Path) -> None:
    result = weir(
        "deploy", "flows.py:etl", "--name", "cli", "--pool", "pool-a", "--cron", "*/5 * * * *",
        "--timezone", "UTC", "--param", "region=amer", "--param", "days=3",
        "--params", '{"region": "apac"}', "--tag", "env:production", "--description", "From the CLI",
        "--version", "7", "--concurrency-limit", "2", "--job-variable", 'env={"B": "2"}',
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    deployment = _deployments(api)["cli"]
    assert deployment.parameters == {"region": "amer", "days": 3}  # type: ignore[attr-defined]
    assert deployment.tags == ["env:production"]  # type: ignore[attr-defined]
    assert (deployment.description, deployment.version) == ("From the CLI", "7")  # type: ignore[attr-defined]
    assert deployment.concurrency_limit == 2  # type: ignore[attr-defined]
    assert deployment.job_variables == {"env": {"B": "2"}}  # type: ignore[attr-defined]
    assert deployment.schedules[0].schedule["cron"] == "*/5 * * * *"  # type: ignore[attr-defined]


def test_catchup_and_max_lateness_from_the_file_and_the_command_line(
    api: str, project: Path
) -> None:
    policy = "    catchup: latest\n    max_lateness: 2h\n"
    (project / "weir.yaml").write_text(WEIR_YAML.replace("    tags: [finance]\n", policy))
    result = weir("deploy", "--name", "daily")
    assert result.exit_code == 0, result.stderr
    assert "  catch-up: latest, max lateness 2 h" in result.stdout
    daily = _deployments(api)["daily"]
    assert (daily.catchup, daily.max_lateness_seconds) == ("latest", 7200)  # type: ignore[attr-defined]

    overridden = weir_json(
        "deploy", "--name", "daily", "--catchup", "SKIP", "--max-lateness", "PT30M"
    )
    assert (overridden[0]["catchup"], overridden[0]["max_lateness_seconds"]) == ("skip", 1800)
    # deploying is declarative: without the keys, the defaults come back
    (project / "weir.yaml").write_text(WEIR_YAML)
    assert weir("deploy", "--name", "daily").exit_code == 0
    daily = _deployments(api)["daily"]
    assert (daily.catchup, daily.max_lateness_seconds) == ("all", None)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("keys", "sentence"),
    [
        ("max_lateness: soon", "line 5: deployments[0].max_lateness: 'soon' is not a duration"),
        ("catchup: never", "deployments[0].catchup: Input should be 'all', 'latest' or 'skip'"),
    ],
)
def test_a_bad_catchup_in_the_file_is_one_sentence(
    api: str, project: Path, keys: str, sentence: str
) -> None:
    (project / "weir.yaml").write_text(WEIR_YAML.replace("    tags: [finance]\n", f"    {keys}\n"))
    fails(weir("deploy", "--all"), sentence)


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (("deploy",), "has 2 deployments; pass --all or --name NAME (daily, adhoc)."),
        (("deploy", "--name", "nope"), "has no deployment named 'nope'; its deployments are daily, adhoc."),
        (("deploy", "--file", "missing.yaml", "--all"), "There is no missing.yaml; write one with `weir init`"),
        (("deploy", "flows.py:etl", "--name", "x"), "Deployment 'x' has no work pool; set 'work_pool: {name: POOL}' or pass --pool POOL."),
        (("deploy", "flows.py:etl", "--name", "x", "--pool", "no-such-pool"), "no-such-pool"),
        (("deploy", "flows.py:nope", "--name", "x", "--pool", "pool-a"), "Entrypoint 'flows.py:nope': flows.py has no attribute 'nope'."),
        (("deploy", "--all", "--cron", "0 8 * *"), "cron: '0 8 * *' is not a 5-field cron expression"),
        (("deploy", "--all", "--timezone", "UTC"), "timezone needs a cron, interval or rrule schedule."),
        (("deploy", "--all", "--param", "oops"), "--param 'oops' is not KEY=VALUE"),
        (("deploy", "--all", "--concurrency-limit", "1", "--collision-strategy", "drop"), "use ENQUEUE or CANCEL_NEW"),
        (("deploy", "--all", "--catchup", "sometimes"), "--catchup 'sometimes': use all, latest or skip."),
        (("deploy", "--all", "--max-lateness", "soon"), "--max-lateness: 'soon' is not a duration; use seconds (3600), or 90s"),
        (("deploy", "--all", "--max-lateness", "0"), "--max-lateness: the duration must be positive"),
    ],
)  # fmt: skip
def test_mistakes_are_one_sentence_and_exit_1(
    api: str, project: Path, args: tuple[str, ...], sentence: str
) -> None:
    fails(weir(*args), sentence)
    assert _deployments(api) == {}


def test_a_malformed_file_names_its_line(api: str, project: Path) -> None:
    (project / "weir.yaml").write_text(WEIR_YAML.replace('cron: "0 8 * * *"', 'cron: "0 8 * *"'))
    fails(weir("deploy", "--all"), "weir.yaml, line 8: deployments[0].schedules[0].cron:")
    (project / "weir.yaml").write_text("deployments: []\n")
    fails(weir("deploy", "--all"), "has no deployments; add one under 'deployments:'")


def test_prefect_yaml_is_read_when_there_is_no_weir_yaml(api: str, project: Path) -> None:
    (project / "weir.yaml").rename(project / "prefect.yaml")
    result = weir("deploy", "--name", "adhoc")
    assert result.exit_code == 0, result.stderr
    assert list(_deployments(api)) == ["adhoc"]


def test_init_writes_a_starter_and_refuses_to_overwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert weir("init").exit_code == 0
    assert "name: my-deployment" in (tmp_path / "weir.yaml").read_text()
    fails(weir("init"), "weir.yaml already exists; pass --force to overwrite it.")
    (tmp_path / "weir.yaml").write_text("changed")
    assert weir("init", "--force").exit_code == 0
    assert (tmp_path / "weir.yaml").read_text().startswith("# weir.yaml")


def test_schema_prints_the_json_schema() -> None:
    result = weir("deploy", "--schema")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["title"] == "weir.yaml"
