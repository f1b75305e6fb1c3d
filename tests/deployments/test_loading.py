"""weir.yaml loading: prefect.yaml files as users write them, and bad files reported as
one sentence with the file, line and field at fault."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from weir.core.schemas.deployments import CollisionStrategy
from weir.core.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule
from weir.deployments.loading import find_config, load_config, parse_config
from weir.exceptions import DeploymentConfigError

PREFECT_YAML = """\
# Welcome to your prefect.yaml file!
name: finance-report
prefect-version: 3.1.5

build: null
push: null

pull:
- prefect.deployments.steps.git_clone:
    id: clone-step
    repository: https://github.com/acme/finance-report.git
    branch: main
- prefect.deployments.steps.run_shell_script:
    script: pip install -r requirements.txt
    stream_output: false

definitions:
  work_pools:
    k8s: &prod_pool
      name: prod-pool
      work_queue_name: critical
      job_variables:
        env:
          LOG_LEVEL: INFO
  schedules:
    every_morning: &every_morning
      cron: "0 8 * * 1-5"
      timezone: Europe/Oslo
      day_or: false

deployments:
- name: daily-report
  version: 1.2.0
  tags: [finance, "env:production"]
  description: The daily finance report.
  entrypoint: flows/report.py:daily_report
  parameters:
    region: emea
    dry_run: false
  work_pool: *prod_pool
  schedules:
    - *every_morning
    - interval: 3600
      anchor_date: "2024-01-01T00:30:00Z"
      active: false
      parameters: {region: amer}
    - rrule: "FREQ=MONTHLY;BYMONTHDAY=1"
  concurrency_limit:
    limit: 1
    collision_strategy: CANCEL_NEW
  enforce_parameter_schema: true
- name: backfill
  entrypoint: finance.flows:backfill
  schedule:
    interval: PT30M
  work_pool:
    name: prod-pool
    work_queue_name: null
    job_variables: {}
  concurrency_limit: 3
  pull:
    - prefect.deployments.steps.set_working_directory:
        directory: /opt/finance
"""


def test_a_realistic_prefect_yaml_loads() -> None:
    config = parse_config(PREFECT_YAML, "prefect.yaml")
    assert config.name == "finance-report"
    assert [next(iter(step)) for step in config.pull] == [
        "prefect.deployments.steps.git_clone",
        "prefect.deployments.steps.run_shell_script",
    ]
    daily, backfill = config.deployments
    assert daily.tags == ["finance", "env:production"]
    assert daily.work_pool.name == "prod-pool"
    assert daily.work_pool.work_queue_name == "critical"
    assert daily.work_pool.job_variables == {"env": {"LOG_LEVEL": "INFO"}}
    cron, interval, rrule = (entry.to_create() for entry in daily.schedules)
    assert cron.schedule == CronSchedule(cron="0 8 * * 1-5", timezone="Europe/Oslo", day_or=False)
    assert isinstance(interval.schedule, IntervalSchedule)
    assert interval.schedule.interval == timedelta(hours=1)
    assert interval.schedule.anchor_date is not None
    assert (interval.active, interval.parameters) == (False, {"region": "amer"})
    assert isinstance(rrule.schedule, RRuleSchedule)
    assert daily.concurrency_limit is not None
    assert daily.concurrency_limit.collision_strategy is CollisionStrategy.CANCEL_NEW
    # the older single `schedule:` key, an integer limit, and a deployment's own pull steps
    assert backfill.schedules[0].to_create().schedule.interval == timedelta(minutes=30)  # type: ignore[union-attr]
    assert backfill.concurrency_limit is not None and backfill.concurrency_limit.limit == 3
    assert config.pull_steps(backfill) == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "/opt/finance"}}
    ]
    assert config.pull_steps(daily) == config.pull
    assert config.ignored_sections() == []


def test_non_empty_build_and_push_are_accepted_and_named_as_ignored() -> None:
    config = parse_config(
        "build:\n  - prefect_docker.deployments.steps.build_docker_image: {image_name: x}\n"
        "deployments:\n  - name: a\n    push: [{x: {}}]\n"
    )
    assert config.ignored_sections() == ["build", "deployments[0].push"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "deployments:\n  - name: a\n    schedules:\n      - cron: '0 8 * *'\n",
            "weir.yaml, line 4: deployments[0].schedules[0].cron: '0 8 * *' is not a "
            "5-field cron expression",
        ),
        (
            "deployments:\n  - name: a\n    shedules: []\n",
            "weir.yaml, line 3: deployments[0].shedules: unknown key; did you mean 'schedules'?",
        ),
        ("pull: []\nbogus: 1\n", "weir.yaml, line 2: bogus: unknown key; use one of name,"),
        (
            "deployments:\n  - entrypoint: a.py:f\n",
            "weir.yaml, line 2: deployments[0].name: this key is required.",
        ),
        (
            "deployments:\n  - name: a\n    schedules:\n      - interval: 60\n"
            "        timezone: Mars/Olympus\n",
            "weir.yaml, line 5: deployments[0].schedules[0].timezone: unknown time zone "
            "'Mars/Olympus'",
        ),
        (
            "deployments:\n  - name: a\n    schedules:\n      - {cron: '* * * * *', interval: 5}\n",
            "weir.yaml, line 4: deployments[0].schedules[0]: a schedule needs exactly one of "
            "cron, interval or rrule, not cron and interval.",
        ),
        (
            "deployments:\n  - name: a\n    concurrency_limit: {limit: 1, collision_strategy: X}\n",
            "line 3: deployments[0].concurrency_limit.collision_strategy: Input should be "
            "'ENQUEUE' or 'CANCEL_NEW' (got 'X').",
        ),
        (
            "pull:\n  - git_clon:\n      repository: x\n",
            "weir.yaml, line 2: pull[0]: unknown step 'git_clon'; use set_working_directory, "
            "git_clone, run_shell_script.",
        ),
        (
            "pull:\n  - git_clone:\n      branch: main\n",
            "weir.yaml, line 2: pull[0]: git_clone needs 'repository'.",
        ),
        ("deployments: [\n  {name: a\n", "weir.yaml, line 3:"),
        ("- just\n- a list\n", "weir.yaml, line 1: the file must be a mapping"),
    ],
)
def test_a_malformed_file_is_one_sentence_with_its_line(text: str, expected: str) -> None:
    with pytest.raises(DeploymentConfigError) as caught:
        parse_config(text)
    message = str(caught.value)
    assert message.startswith(expected) or expected in message, message
    assert "\n" not in message


def test_an_error_in_a_merged_anchor_points_at_the_key_written_here() -> None:
    text = (
        "definitions:\n"
        "  base: &base\n"
        "    cron: '0 8 * * *'\n"
        "deployments:\n"
        "  - name: a\n"
        "    schedules:\n"
        "      - <<: *base\n"
        "        cron: '0 8 * *'\n"
    )
    with pytest.raises(DeploymentConfigError, match=r"^weir.yaml, line 8: "):
        parse_config(text)


def test_files_are_found_and_named_in_errors(tmp_path: Path) -> None:
    assert find_config(tmp_path) is None
    (tmp_path / "prefect.yaml").write_text("deployments: []\n")
    assert find_config(tmp_path) == tmp_path / "prefect.yaml"
    (tmp_path / "weir.yaml").write_text("deployments:\n  - name: a\n    tags: 5\n")
    assert find_config(tmp_path) == tmp_path / "weir.yaml"
    with pytest.raises(DeploymentConfigError, match=r"weir.yaml, line 3: deployments\[0\].tags"):
        load_config(tmp_path / "weir.yaml")
    with pytest.raises(DeploymentConfigError, match=r"There is no .*nope\.yaml; write one with"):
        load_config(tmp_path / "nope.yaml")


def test_an_empty_file_has_no_deployments() -> None:
    assert parse_config("").deployments == []
    assert parse_config("deployments:\n").deployments == []
