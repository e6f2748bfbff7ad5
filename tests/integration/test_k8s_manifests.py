"""The autoscaling queries name metrics and models that the real Triton exports."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import urllib.request

import pytest
import yaml

from ..conftest import ROOT

K8S = ROOT / "deploy" / "k8s"
TARGETS = ("base", "overlays/gpu", "kserve")


def render(target: str) -> list[dict]:
    if not shutil.which("kubectl"):
        message = "kubectl is needed to render the kustomizations (kubectl kustomize works offline)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S / target)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {target: render(target) for target in TARGETS}


def one(docs: list[dict], kind: str) -> dict:
    found = [doc for doc in docs if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def scaling_queries(rendered) -> list[str]:
    return [
        trigger["metadata"]["query"]
        for docs in rendered.values()
        for doc in docs
        if doc["kind"] == "ScaledObject"
        for trigger in doc["spec"]["triggers"]
    ]


@pytest.mark.integration
def test_autoscaling_queries_name_metrics_and_models_the_real_triton_exports(rendered, server):
    with urllib.request.urlopen(server.metrics_url, timeout=10) as response:
        exported = response.read().decode()
    queries = scaling_queries(rendered)
    assert len(queries) == 2
    for query in queries:
        (metric,) = set(re.findall(r"\bnv_[a-z_]+\b", query))
        (models,) = re.findall(r'model=~"([^"]+)"', query)
        for model in models.split("|"):
            assert f'{metric}{{model="{model}",' in exported, f"Triton exports no {metric} for {model}"
