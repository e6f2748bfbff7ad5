"""Security defaults against the real server: no model control by default, a key for it when on, gRPC TLS.

docs/SECURITY.md explains the posture; these tests keep the defaults and the flags it
documents honest (the flag names and header formats are Triton 2.51's).
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tritonclf.serving.process import TritonProcess

from ..conftest import CAT_CLASSES, ROOT, SAMPLES

pytestmark = pytest.mark.integration
MODEL = "efficientnet_lite0"
KEY = "test-admin-key"
RESTRICTED = "model-repository,shared-memory,trace,logging"
RESTRICTION_FLAGS = (
    f"--http-restricted-api={RESTRICTED}:admin-key={KEY}",
    f"--grpc-restricted-protocol={RESTRICTED}:admin-key={KEY}",
)
# Triton prefixes the gRPC header name with this.
GRPC_HEADER = "triton-grpc-protocol-admin-key"


@pytest.mark.parametrize("module", [grpcclient, httpclient], ids=["grpc", "http"])
def test_default_mode_none_refuses_loading_and_unloading_models(server, module):
    client = module.InferenceServerClient(server.grpc_url if module is grpcclient else server.http_url)
    for call in (client.load_model, client.unload_model):
        with pytest.raises(InferenceServerException, match="explicit model load / unload is not allowed"):
            call(MODEL)
    assert client.is_model_ready(MODEL)


@pytest.fixture(scope="module")
def explicit_server(repository, tmp_path_factory):
    """Explicit model control, as on one host for zero-downtime reloads, with the admin APIs behind a key."""
    log = tmp_path_factory.mktemp("explicit") / "tritonserver.log"
    flags = ("--model-control-mode=explicit", "--load-model=*", *RESTRICTION_FLAGS)
    with TritonProcess(repository, log_path=log, extra_args=flags) as server:
        yield server


def test_explicit_mode_model_control_needs_the_admin_key(explicit_server):
    http = httpclient.InferenceServerClient(explicit_server.http_url)
    grpc = grpcclient.InferenceServerClient(explicit_server.grpc_url)
    with pytest.raises(InferenceServerException, match="This API is restricted, expecting header 'admin-key'"):
        http.unload_model(MODEL)
    with pytest.raises(InferenceServerException, match=f"protocol is restricted, expecting header '{GRPC_HEADER}'"):
        grpc.unload_model(MODEL)
    assert grpc.is_model_ready(MODEL)
    http.load_model(MODEL, headers={"admin-key": KEY})
    grpc.load_model(MODEL, headers={GRPC_HEADER: KEY})


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.get_system_shared_memory_status(),
        lambda c: c.register_system_shared_memory("region", "/triton-test", 64),
        lambda c: c.update_trace_settings(settings={"trace_level": ["TIMESTAMPS"]}),
        lambda c: c.update_log_settings(settings={"log_verbose_level": 1}),
    ],
    ids=["shm-status", "shm-register", "trace", "logging"],
)
def test_explicit_mode_shared_memory_trace_and_logging_need_the_key(explicit_server, call):
    for client in (
        httpclient.InferenceServerClient(explicit_server.http_url),
        grpcclient.InferenceServerClient(explicit_server.grpc_url),
    ):
        with pytest.raises(InferenceServerException, match="restricted, expecting header"):
            call(client)


def test_inference_needs_no_key_but_the_client_must_name_the_model(explicit_server):
    def infer(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "clients/infer.py", str(SAMPLES / "chelsea.jpg"), "--url", explicit_server.grpc_url]
        return subprocess.run([*command, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)

    assert infer("--model", MODEL).returncode == 0
    unnamed = infer()
    assert unnamed.returncode == 2 and "Traceback" not in unnamed.stderr
    assert "cannot list the models" in unnamed.stderr and "pass --model" in unnamed.stderr


@pytest.fixture(scope="module")
def tls_server(repository, tmp_path_factory):
    """gRPC over TLS with a throwaway self-signed certificate for 127.0.0.1."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "server.key", folder / "server.crt"
    request = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    subprocess.run(
        [*request, "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    flags = ("--grpc-use-ssl=true", f"--grpc-server-cert={cert}", f"--grpc-server-key={key}")
    with TritonProcess(repository, log_path=folder / "tritonserver.log", extra_args=flags) as server:
        yield server, str(cert)


def test_grpc_tls_serves_clients_that_trust_the_certificate_and_no_plaintext_ones(tls_server):
    server, certificate_file = tls_server
    secure = grpcclient.InferenceServerClient(server.grpc_url, ssl=True, root_certificates=certificate_file)
    assert secure.is_model_ready(MODEL)
    tensor = grpcclient.InferInput("image", [1, 1], "BYTES")
    tensor.set_data_from_numpy(np.array([(SAMPLES / "chelsea.jpg").read_bytes()], dtype=np.object_).reshape(1, 1))
    assert int(secure.infer(MODEL, [tensor]).as_numpy("probabilities").argmax()) in CAT_CLASSES
    plaintext = grpcclient.InferenceServerClient(server.grpc_url)
    with pytest.raises(InferenceServerException):
        plaintext.is_server_live(client_timeout=5)
