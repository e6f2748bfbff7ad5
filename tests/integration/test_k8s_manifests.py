"""The autoscaling queries name metrics and models that the real Triton exports."""

from __future__ import annotations

import re
import urllib.request

import pytest

from ..conftest import ROOT
from ..deployments import kustomize

K8S = ROOT / "deploy" / "k8s"
TARGETS = ("base", "overlays/gpu", "kserve")


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {target: kustomize(target) for target in TARGETS}


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
