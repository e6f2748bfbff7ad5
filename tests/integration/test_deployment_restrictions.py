"""Every shipped deployment's own tritonserver flags, on the real server: admin APIs need the key, serving does not.

The flags come from the rendered manifests, compose.yaml and the Dockerfile's entry script
(tests/deployments.py), with a test key where the Secret or the variable would put it. The
admin APIs are Triton's shared-memory, trace and logging groups, plus model-repository
where model control is on (tritonclf.serving.admin_apis).
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
import tritonclient.utils.shared_memory as system_shm
from tritonclient.utils import InferenceServerException

from tritonclf.serving.admin_apis import admin_apis
from tritonclf.serving.process import TritonProcess

from ..conftest import CAT_CLASSES, SAMPLES
from ..deployments import DEPLOYMENTS, Deployment, load_deployment

pytestmark = pytest.mark.integration
MODEL = "efficientnet_lite0"
KEY = "deployment-test-key"
REGION_BYTES = 64

# One admin call per API group: a change (or registration) that the key must guard, and its undo.
ADMIN_CALLS = {
    "shared-memory": (
        lambda c, region, h: c.register_system_shared_memory(region, f"/{region}", REGION_BYTES, headers=h),
        lambda c, region, h: c.unregister_system_shared_memory(region, headers=h),
    ),
    "logging": (
        lambda c, region, h: c.update_log_settings(settings={"log_verbose_level": 1}, headers=h),
        lambda c, region, h: c.update_log_settings(settings={"log_verbose_level": 0}, headers=h),
    ),
    "trace": (
        # The sampling rate: a level other than OFF would also need a trace file, which 2.51 wants set at start.
        lambda c, region, h: c.update_trace_settings(settings={"trace_rate": "500"}, headers=h),
        lambda c, region, h: c.update_trace_settings(settings={"trace_rate": "1000"}, headers=h),
    ),
    "model-repository": (
        lambda c, region, h: c.load_model(MODEL, headers=h),
        lambda c, region, h: None,  # reloading a loaded model changes nothing
    ),
}


class Served:
    """A deployment's server and a client of each protocol, with the headers that carry its key."""

    def __init__(self, deployment: Deployment, server: TritonProcess):
        self.deployment = deployment
        self.server = server
        self.clients = {
            "http": httpclient.InferenceServerClient(server.http_url),
            "grpc": grpcclient.InferenceServerClient(server.grpc_url),
        }
        http_header, grpc_header = deployment.headers
        self.header = {"http": http_header, "grpc": grpc_header}

    def key_headers(self, protocol: str) -> dict[str, str]:
        return {self.header[protocol]: KEY}


def server_environment(deployment: Deployment) -> dict[str, str] | None:
    """An entry script finds this environment's tritonserver launcher first on PATH, as the image's is."""
    if deployment.executable is None:
        return None
    path = os.pathsep.join((str(Path(sys.executable).parent), os.environ.get("PATH", "")))
    return {**os.environ, "PATH": path, **deployment.env}


@pytest.fixture(scope="module", params=DEPLOYMENTS)
def served(request, repository, tmp_path_factory):
    deployment = load_deployment(request.param, KEY)
    log = tmp_path_factory.mktemp(deployment.name) / "tritonserver.log"
    with TritonProcess(
        repository,
        log_path=log,
        extra_args=deployment.args,
        executable=deployment.executable,
        env=server_environment(deployment),
    ) as server:
        served = Served(deployment, server)
        yield served
        # Open client connections hold Triton's SIGTERM drain for its whole exit timeout (30 s).
        for client in served.clients.values():
            client.close()


@pytest.fixture(scope="module")
def region():
    """A real system shared-memory region (so a refusal is about the key, not a missing region)."""
    name = f"tritonclf-deploy-{os.getpid()}"
    handle = system_shm.create_shared_memory_region(name, f"/{name}", REGION_BYTES)
    yield name
    system_shm.destroy_shared_memory_region(handle)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_admin_apis_refuse_requests_without_the_key(served, region, protocol):
    client = served.clients[protocol]
    apis = admin_apis(served.deployment.args)
    assert {"shared-memory", "trace", "logging"} <= set(apis)
    for api in apis:
        change, _ = ADMIN_CALLS[api]
        with pytest.raises(InferenceServerException, match=f"expecting header '{served.header[protocol]}'"):
            change(client, region, None)
        with pytest.raises(InferenceServerException, match="restricted"):
            change(client, region, {served.header[protocol]: "not-the-key"})


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_admin_apis_work_with_the_key(served, region, protocol):
    client, headers = served.clients[protocol], served.key_headers(protocol)
    for api in admin_apis(served.deployment.args):
        change, undo = ADMIN_CALLS[api]
        change(client, region, headers)
        undo(client, region, headers)
    assert client.is_model_ready(MODEL)


def chelsea(module) -> list:
    tensor = module.InferInput("image", [1, 1], "BYTES")
    tensor.set_data_from_numpy(np.array([(SAMPLES / "chelsea.jpg").read_bytes()], dtype=np.object_).reshape(1, 1))
    return [tensor]


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_inference_health_metadata_and_statistics_need_no_key(served, protocol):
    client = served.clients[protocol]
    module = httpclient if protocol == "http" else grpcclient
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(MODEL)
    assert client.get_server_metadata()
    assert client.get_model_metadata(MODEL)
    probabilities = client.infer(MODEL, chelsea(module)).as_numpy("probabilities")
    assert int(probabilities.argmax()) in CAT_CLASSES
    assert client.get_inference_statistics(MODEL)


def test_metrics_port_needs_no_key(served):
    with urllib.request.urlopen(served.server.metrics_url, timeout=10) as response:
        assert f'nv_inference_request_success{{model="{MODEL}",' in response.read().decode()


def test_entry_script_restricts_the_repository_api_too_when_model_control_is_on(repository, tmp_path):
    deployment = load_deployment("dockerfile", KEY)
    with TritonProcess(
        repository,
        log_path=tmp_path / "tritonserver.log",
        extra_args=("--model-control-mode=explicit", "--load-model=*"),
        executable=deployment.executable,
        env=server_environment(deployment),
    ) as server:
        http = httpclient.InferenceServerClient(server.http_url)
        with pytest.raises(InferenceServerException, match="restricted"):
            http.unload_model(MODEL)
        http.load_model(MODEL, headers={deployment.headers[0]: KEY})
        assert http.is_model_ready(MODEL)
        http.close()


def run_launcher(*args: str) -> subprocess.CompletedProcess:
    launcher = Path(sys.executable).parent / "tritonserver"
    command = [str(launcher), "--model-repository=/nonexistent-tritonclf-repository", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_plain_launcher_says_in_one_line_which_admin_apis_are_open():
    result = run_launcher()
    assert result.returncode != 0  # no repository: Triton exits after parsing, which is all this needs
    (notice,) = [line for line in result.stderr.splitlines() if line.startswith("tritonserver: the ")]
    assert "shared-memory, trace, logging APIs are open" in notice and "unless SECURE=0" in notice
    restricted = run_launcher(
        "--http-restricted-api=shared-memory,trace,logging:admin-key=k",
        "--grpc-restricted-protocol=shared-memory,trace,logging:admin-key=k",
    )
    assert "APIs are open" not in restricted.stderr
