"""The stub check's pure parts and the watchdog's reading of Triton's own arguments."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tritonclf.serving import stub_health, supervisor
from tritonclf.serving.triton_args import model_control_mode

PREPROCESS = {"name": "m_preprocess", "backend": "python", "instance_group": [{"count": 2, "kind": "KIND_CPU"}]}
CLASSIFIER = {"name": "m_model", "backend": "python", "instance_group": [{"count": 1}, {"count": 2}]}
ENSEMBLE = {"name": "m", "platform": "ensemble"}
ONNX = {"name": "o", "backend": "onnxruntime", "instance_group": [{"count": 2}]}


def test_expected_stubs_are_named_like_triton_names_python_instances():
    expected = stub_health.expected_stubs({"m_preprocess": PREPROCESS, "m_model": CLASSIFIER, "m": ENSEMBLE, "o": ONNX})
    assert expected == {
        "m_preprocess": ["m_preprocess_0_0", "m_preprocess_0_1"],
        "m_model": ["m_model_0_0", "m_model_1_0", "m_model_1_1"],
    }


def test_dead_stubs_names_only_missing_instances():
    expected = {"a": ["a_0_0", "a_0_1"], "b": ["b_0_0"]}
    assert stub_health.dead_stubs(expected, ["a_0_0", "b_0_0", "other_0_0"]) == {"a": ["a_0_1"]}
    assert stub_health.dead_stubs(expected, ["a_0_0", "a_0_1", "b_0_0"]) == {}
    assert "a (a_0_1)" in stub_health.describe({"a": ["a_0_1"]})


def test_live_stub_instances_reads_children_of_the_server_from_proc(tmp_path):
    # A real child process whose argv looks like a stub's: the /proc reading is exercised for real.
    fake_stub = tmp_path / stub_health.STUB_EXECUTABLE
    fake_stub.symlink_to(sys.executable)
    child = subprocess.Popen(
        [str(fake_stub), "-c", "import time; time.sleep(30)", "m_preprocess_0_1", "DEFAULT"],
    )
    try:
        # the argv check reads argv[0] (the stub's path) and argv[-2] (the instance name)
        for _ in range(50):
            names = stub_health.live_stub_instances(os.getpid())
            if names:
                break
        assert names == ["m_preprocess_0_1"]
        assert stub_health.live_stub_instances(child.pid) == []
    finally:
        child.kill()
        child.wait()
    assert stub_health.live_stub_instances(os.getpid()) == []


def test_probe_without_a_server_exits_2_with_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "tritonclf.serving.stub_health", "--url", "127.0.0.1:9", "--timeout-s", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("stub check: ")


def test_watchdog_reads_triton_flags_in_both_spellings():
    args = ["--model-repository=r", "--http-port", "9000", "--model-control-mode=explicit"]
    assert supervisor.http_address(args) == "127.0.0.1:9000"
    assert model_control_mode(args) == "explicit"
    assert model_control_mode(["--model-repository=r"]) == "none"
    assert supervisor.http_address(["--allow-http=false"]) is None
    assert supervisor.http_address(["--http-address=10.0.0.5"]) == "10.0.0.5:8000"


def test_watchdog_reloads_with_the_key_the_repository_api_requires():
    args = ["--http-restricted-api=shared-memory,model-repository:admin-key=s3cret"]
    assert supervisor.repository_api_header(args) == ("admin-key", "s3cret")
    assert supervisor.repository_api_header(["--http-restricted-api=trace:k=v"]) is None
    request = supervisor.reload_request("127.0.0.1:8000", "m_model", CLASSIFIER, ("admin-key", "s3cret"))
    assert request.full_url == "http://127.0.0.1:8000/v2/repository/models/m_model/load"
    assert request.get_header("Admin-key") == "s3cret"
    config = json.loads(json.loads(request.data)["parameters"]["config"])
    # Everything of the model's config, plus the parameter that makes Triton load fresh instances.
    assert config["instance_group"] == CLASSIFIER["instance_group"]
    assert supervisor.RELOAD_PARAMETER in config["parameters"]


def test_watchdog_interval_comes_from_the_environment():
    assert supervisor.check_interval_s({}) == supervisor.DEFAULT_CHECK_INTERVAL_S
    assert supervisor.check_interval_s({"TRITONCLF_STUB_CHECK_S": "0"}) == 0
