"""Security defaults against the real server: no model control by default, a key for it when on, gRPC TLS.

docs/SECURITY.md explains the posture; these tests keep the defaults and the flags it
documents honest (the flag names and header formats are Triton 2.51's).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
import tritonclient.utils.shared_memory as system_shm
from tritonclient.utils import InferenceServerException

from tritonclf.serving.process import TritonProcess, free_port

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


def wait_until_gone(leader: subprocess.Popen, timeout_s: float) -> bool:
    """Whether every process of ``leader``'s process group has exited within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        leader.poll()  # reaps the leader once it exits: a zombie still counts as the group's
        try:
            os.killpg(leader.pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def register_request(url: str, name: str, key: str, headers: dict[str, str]) -> urllib.request.Request:
    body = json.dumps({"key": key, "offset": 0, "byte_size": 64}).encode()
    return urllib.request.Request(
        f"http://{url}/v2/systemsharedmemory/region/{name}/register", data=body, method="POST", headers=headers
    )


def assert_grpc_shared_memory_refused(url: str, name: str) -> None:
    grpc = grpcclient.InferenceServerClient(url)
    try:
        with pytest.raises(InferenceServerException, match="restricted"):
            grpc.register_system_shared_memory(name, f"/{name}", 64)
        with pytest.raises(InferenceServerException, match="restricted"):
            grpc.get_system_shared_memory_status()
    finally:
        grpc.close()


def test_make_serve_puts_shared_memory_behind_a_key_by_default(repository, tmp_path):
    """The laptop default: registering any /dev/shm object by name (then reading it back through
    error texts, or writing outputs into it) needs the key that make serve generated."""
    ports = {name: free_port() for name in ("HTTP_PORT", "GRPC_PORT", "METRICS_PORT")}
    key_file = tmp_path / "admin-key"
    command = ["make", "serve", f"REPOSITORY={repository}", f"ADMIN_KEY_FILE={key_file}"]
    command += [f"{name}={port}" for name, port in ports.items()]
    env = {name: value for name, value in os.environ.items() if name != "TRITON_ADMIN_KEY"}
    log = tmp_path / "make-serve.log"
    with open(log, "wb") as out:
        make = subprocess.Popen(
            command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    http = f"127.0.0.1:{ports['HTTP_PORT']}"
    try:
        client = httpclient.InferenceServerClient(http)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and make.poll() is None:
            with contextlib.suppress(Exception):
                if client.is_server_ready():
                    break
            time.sleep(0.5)
        assert client.is_server_ready(), log.read_text()[-3000:]
        name = f"tritonclf-serve-{os.getpid()}"
        region = system_shm.create_shared_memory_region(name, f"/{name}", 64)
        try:
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(register_request(http, name, f"/{name}", {}), timeout=30)
            with refused.value:  # an open connection holds Triton's shutdown
                assert refused.value.code == 403 and "restricted" in refused.value.read().decode()
            assert_grpc_shared_memory_refused(f"127.0.0.1:{ports['GRPC_PORT']}", name)
            key = key_file.read_text().strip()
            assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key) == 64
            client.register_system_shared_memory(name, f"/{name}", 64, headers={"admin-key": key})
            client.unregister_system_shared_memory(name, headers={"admin-key": key})
        finally:
            system_shm.destroy_shared_memory_region(region)
        output = log.read_text()
        assert f"the key in {key_file}" in output and key not in output
        assert "APIs are open" not in output
    finally:
        client.close()
        os.killpg(make.pid, signal.SIGTERM)
        if not wait_until_gone(make, 60):
            os.killpg(make.pid, signal.SIGKILL)
        make.wait()


def test_make_serve_secure_0_runs_the_plain_launcher_which_warns():
    result = subprocess.run(
        ["make", "-n", "serve", "SECURE=0"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    (line,) = [line for line in result.stdout.splitlines() if "tritonserver" in line and "preflight" not in line]
    assert line.startswith(".venv/bin/tritonserver --model-repository") and "tritonserver-secure" not in line
