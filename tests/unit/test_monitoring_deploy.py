"""deploy/monitoring: the rules pass promtool, name only metrics that exist, and are wired into the manifests."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

from tritonclf.monitoring.series import METRIC_NAMES

from ..deployments import DEPLOY, DEPLOYMENTS, kustomize, load_deployment

MONITORING = DEPLOY / "monitoring"
RULES = MONITORING / "alerts.yaml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")
# Triton's own metrics the rules and the dashboard use (docs/user_guide/metrics.md of Triton 24.10).
TRITON_METRICS = {
    "nv_inference_request_success",
    "nv_inference_request_failure",
    "nv_inference_request_duration_us",
    "nv_inference_queue_duration_us",
    "nv_inference_compute_infer_duration_us",
    "nv_cache_num_hits_per_model",
    "nv_cache_num_misses_per_model",
}


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        message = "promtool is needed (Debian's prometheus package: make test installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def rule_groups() -> list[dict]:
    return yaml.safe_load(RULES.read_text())["groups"]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def as_query(expr: str) -> str:
    """A dashboard expression with Grafana's variables filled in, as Prometheus receives it."""
    return expr.replace("$__rate_interval", "1m").replace("$ensemble", "efficientnet_lite0")


def metric_names(expr: str) -> set[str]:
    without_labels = re.sub(r"\{[^}]*\}", "", expr)
    words = set(re.findall(r"\b[a-z_][a-z0-9_:]*\b", without_labels))
    return {w for w in words if w.startswith(("tritonclf_", "nv_")) or ":" in w}


def test_the_rules_pass_promtool_check_and_their_unit_tests():
    tool = promtool()
    checked = subprocess.run(
        [tool, "check", "rules", str(RULES)], check=False, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [tool, "test", "rules", "alerts_test.yaml"],
        cwd=MONITORING,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_dashboard_queries_are_valid_promql(tmp_path):
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"panel:{i}", "expr": as_query(e)} for i, e in enumerate(dashboard_exprs())],
            }
        ]
    }
    path = tmp_path / "dashboard_rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    checked = subprocess.run(
        [promtool(), "check", "rules", str(path)], check=False, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_rules_and_dashboard_name_only_metrics_that_are_served():
    recorded = {rule["record"] for group in rule_groups() for rule in group["rules"] if "record" in rule}
    served = {f"{name}{suffix}" for name in METRIC_NAMES for suffix in ("", *HISTOGRAM_SUFFIXES)}
    exprs = [rule["expr"] for group in rule_groups() for rule in group["rules"]] + dashboard_exprs()
    used = set().union(*(metric_names(e) for e in exprs))
    assert used, "no metric names found"
    unknown = used - served - recorded - TRITON_METRICS
    assert not unknown, f"not served by the models or Triton, nor recorded by the rules: {sorted(unknown)}"


def test_the_prometheus_rule_is_the_rules_file():
    rule = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == rule_groups()


def test_the_monitoring_kustomization_selects_the_triton_pods_and_ships_rules_and_dashboard():
    docs = kustomize("../monitoring")
    kinds = {doc["kind"]: doc for doc in docs if doc["kind"] != "ConfigMap"}
    maps = {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "ConfigMap"}
    assert set(kinds) == {"PodMonitor", "PrometheusRule"}
    assert yaml.safe_load(maps["tritonclf-alert-rules"]["data"]["alerts.yaml"])["groups"] == rule_groups()
    dashboard = maps["tritonclf-grafana-dashboard"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["triton-image-classifier.json"]) == json.loads(DASHBOARD.read_text())
    (deployment,) = [doc for doc in kustomize("base") if doc["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]
    selector = kinds["PodMonitor"]["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]
    ports = {port["name"] for port in container["ports"]}
    assert {endpoint["port"] for endpoint in kinds["PodMonitor"]["spec"]["podMetricsEndpoints"]} <= ports
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "8002"


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_every_deployment_gives_triton_a_response_cache(name):
    args = load_deployment(name, "key").args
    (flag,) = [a for a in args if a.startswith("--cache-config=")]
    assert re.fullmatch(r"--cache-config=local,size=[1-9]\d{6,}", flag), flag
