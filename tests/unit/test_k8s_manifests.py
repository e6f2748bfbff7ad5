"""Kubernetes manifests, rendered with kustomize and checked offline.

Built-in kinds are validated strictly against the Kubernetes schemas (kubernetes-validate,
no cluster). KEDA's ScaledObject and KServe's InferenceService are custom resources with
no schema there: they are checked structurally here (tests/integration checks the
autoscaling query against the metrics the real Triton exports).
"""

from __future__ import annotations

import copy
import re

import kubernetes_validate
import pytest
import yaml

from tritonclf.repository.object_store import parse_s3_url

from ..conftest import ROOT
from ..deployments import kustomize, one

K8S = ROOT / "deploy" / "k8s"
TARGETS = ("base", "overlays/gpu", "kserve")
# The oldest Kubernetes we claim to support, and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
CUSTOM_KINDS = {("keda.sh/v1alpha1", "ScaledObject"), ("serving.kserve.io/v1beta1", "InferenceService")}


def triton_tag() -> str:
    text = (ROOT / "deploy" / "triton.env").read_text()
    return re.search(r"^TRITON_TAG=(\S+)$", text, re.MULTILINE).group(1)


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {target: kustomize(target) for target in TARGETS}


def container(deployment: dict) -> dict:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_builtin_resource_validates_strictly_against_the_kubernetes_schemas(rendered, target, version):
    for doc in rendered[target]:
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_validator_rejects_a_misspelt_field(rendered):
    deployment = copy.deepcopy(one(rendered["base"], "Deployment"))
    container(deployment)["livenesProbe"] = container(deployment).pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


def test_custom_resources_are_the_only_kinds_without_a_schema(rendered):
    kinds = {(doc["apiVersion"], doc["kind"]) for docs in rendered.values() for doc in docs}
    assert kinds >= CUSTOM_KINDS  # the others were validated above, so they have schemas
    for api_version, kind in CUSTOM_KINDS:
        with pytest.raises(kubernetes_validate.SchemaNotFoundError):
            kubernetes_validate.validate({"apiVersion": api_version, "kind": kind}, KUBERNETES_VERSIONS[0])


def test_probes_use_triton_health_endpoints_and_the_service_exposes_every_port(rendered):
    docs = rendered["base"]
    deployment, service = one(docs, "Deployment"), one(docs, "Service")
    triton = container(deployment)
    assert triton["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
    # Liveness and readiness also fail on a dead Python stub (tests/integration/test_stub_healing.py runs them).
    assert "/opt/tritonclf/stub_health.py" in triton["livenessProbe"]["exec"]["command"]
    assert "--ready" in triton["readinessProbe"]["exec"]["command"]
    ports = {p["name"]: p["containerPort"] for p in triton["ports"]}
    assert ports == {"http": 8000, "grpc": 8001, "metrics": 8002}
    assert {p["targetPort"] for p in service["spec"]["ports"]} == set(ports)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_rollouts_never_drop_below_full_capacity(rendered):
    deployment = one(rendered["base"], "Deployment")
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert "preStop" in container(deployment)["lifecycle"]


def test_repository_url_comes_from_a_generated_config_map_that_triton_can_read(rendered):
    docs = rendered["base"]
    config_map = one(docs, "ConfigMap")
    triton = container(one(docs, "Deployment"))
    assert "--model-repository=$(MODEL_REPOSITORY)" in triton["args"]
    (ref,) = [e["valueFrom"]["configMapKeyRef"] for e in triton["env"] if e["name"] == "MODEL_REPOSITORY"]
    assert ref["name"] == config_map["metadata"]["name"] != "triton-repository"  # hashed: a new URL rolls out
    assert parse_s3_url(config_map["data"]["MODEL_REPOSITORY"]).bucket


def test_pods_run_as_triton_non_root_user(rendered):
    deployment = one(rendered["base"], "Deployment")
    pod_security = deployment["spec"]["template"]["spec"]["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert pod_security["runAsUser"] == 1000
    assert container(deployment)["securityContext"]["allowPrivilegeEscalation"] is False


def test_gpu_overlay_requests_a_gpu_and_leaves_the_replica_count_to_keda(rendered):
    docs = rendered["overlays/gpu"]
    deployment = one(docs, "Deployment")
    resources = container(deployment)["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == resources["requests"]["nvidia.com/gpu"] == 1
    assert "replicas" not in deployment["spec"]
    scaled = one(docs, "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert scaled["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]


def test_inference_service_uses_kserves_triton_runtime_with_the_repository_in_object_storage(rendered):
    docs = rendered["kserve"]
    service = one(docs, "InferenceService")
    predictor = service["spec"]["predictor"]
    model = predictor["model"]
    assert model["modelFormat"]["name"] == "triton"
    assert model["runtime"] == "kserve-tritonserver"
    assert model["protocolVersion"] == "v2"
    assert model["storageUri"].startswith("s3://")
    assert model["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert predictor["serviceAccountName"] == one(docs, "ServiceAccount")["metadata"]["name"]
    assert service["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "external"
    scaled = one(docs, "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == f"{service['metadata']['name']}-predictor"


def test_images_follow_the_one_triton_tag_pin(rendered):
    tag = triton_tag()
    base = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    assert [image["newTag"] for image in base["images"]] == [tag]
    assert container(one(rendered["base"], "Deployment"))["image"].endswith(f":{tag}")
    assert one(rendered["kserve"], "InferenceService")["spec"]["predictor"]["model"]["image"].endswith(f":{tag}")
