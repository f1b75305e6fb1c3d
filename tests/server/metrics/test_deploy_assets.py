"""deploy/: the Grafana dashboard and the Prometheus alert rules use only metrics that
`/metrics` exposes, and have the shapes Grafana and Prometheus load."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
METRIC_NAME = re.compile(r"\bweir_[a-z_]+")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}

pytestmark = pytest.mark.anyio


async def exposed_names(client: httpx.AsyncClient) -> set[str]:
    """Every series name the scrape declares, samples or not (a labelled metric nothing
    has observed yet still has its HELP and TYPE lines)."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    names = set()
    for family in text_string_to_metric_families(response.text):
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "weir-dashboard.json").read_text())
    expressions = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            expressions.append(variable["definition"])
    return expressions


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_dashboard_and_alerts_use_exposed_metrics(metrics_client: httpx.AsyncClient) -> None:
    exposed = await exposed_names(metrics_client)
    assert "weir_flow_runs" in exposed and "weir_api_request_duration_seconds_bucket" in exposed
    sources = {
        "dashboard": dashboard_expressions(),
        "alerts": [rule["expr"] for rule in alert_rules()],
    }
    for source, expressions in sources.items():
        names = {name for expression in expressions for name in METRIC_NAME.findall(expression)}
        assert len(names) > 5, f"{source} uses hardly any weir metric: {names}"
        missing = names - exposed
        assert not missing, f"{source} uses metrics /metrics does not expose: {missing}"
    dashboard_names = {name for e in dashboard_expressions() for name in METRIC_NAME.findall(e)}
    # and the dashboard shows every weir family the server exposes (but the `_created`
    # timestamps prometheus-client adds to counters and histograms)
    families = {_family(name) for name in exposed if not name.endswith("_created")}
    shown = {_family(name) for name in dashboard_names}
    assert {name for name in families if name.startswith("weir_")} <= shown


def _family(name: str) -> str:
    return re.sub(r"_(bucket|sum|count|total)$", "", name)


def test_dashboard_is_a_grafana_dashboard() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "weir-dashboard.json").read_text())
    assert dashboard["uid"] and dashboard["title"] == "weir"
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    graphs = [panel for panel in panels if panel["type"] != "row"]
    titles = " | ".join(panel["title"] for panel in graphs)
    for needed in ["by state", "p50 / p95", "Task runs", "Late", "backlog", "Workers online",
                   "Scheduler lag", "Service errors", "API latency p95"]:  # fmt: skip
        assert needed in titles
    for panel in graphs:
        assert panel["targets"], panel["title"]
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys()
        assert all(target["refId"] and target["expr"] for target in panel["targets"])


def test_alert_rules_have_the_prometheus_rule_group_shape() -> None:
    document = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    assert set(document) == {"groups"}
    for group in document["groups"]:
        assert isinstance(group["name"], str) and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"])
            assert isinstance(rule["expr"], str) and rule["expr"].strip()
            if "for" in rule:
                assert re.fullmatch(r"\d+[smhd]", rule["for"])
            assert rule["annotations"]["summary"]
    names = {rule["alert"] for rule in alert_rules()}
    assert {"WeirLateFlowRuns", "WeirCrashedFlowRuns", "WeirWorkersOffline"} <= names
    assert {"WeirNoWorkerForBacklog", "WeirSchedulerStalled", "WeirServiceErrors"} <= names
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert scrape["rule_files"] == ["alerts.yml"]
    assert scrape["scrape_configs"][0]["metrics_path"] == "/metrics"
