"""``tritonclf infer`` as a user runs it: output, JSON, and one-line errors with the right exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ..conftest import ROOT, SAMPLES

pytestmark = pytest.mark.integration


def run_infer(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "clients/infer.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_prints_top_k_for_each_image_of_a_folder(server, protocol):
    url = server.grpc_url if protocol == "grpc" else server.http_url
    result = run_infer(str(SAMPLES), "--url", url, "--protocol", protocol, "--top-k", "3")
    assert result.returncode == 0, result.stderr
    blocks = result.stdout.strip().split("\n" + str(SAMPLES))
    assert len(blocks) == 4
    chelsea = result.stdout.split("chelsea.jpg\n", 1)[1].splitlines()[:3]
    assert "tabby, tabby cat  (281)" in chelsea[0]


def test_json_output_has_path_and_predictions_and_errors(server, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"<html>")
    result = run_infer(str(SAMPLES / "coffee.jpg"), str(bad), "--url", server.grpc_url, "--json", "--top-k", "2")
    assert result.returncode == 1
    good_line, bad_line = (json.loads(line) for line in result.stdout.splitlines())
    assert good_line["path"].endswith("coffee.jpg")
    assert good_line["predictions"][0] == {"label": "espresso", "index": 967, "score": pytest.approx(0.86, abs=0.02)}
    assert len(good_line["predictions"]) == 2
    assert bad_line["status"] == "INVALID_ARGUMENT" and "not a decodable image" in bad_line["error"]


def test_uses_the_only_ensemble_when_no_model_is_given(server):
    result = run_infer(str(SAMPLES / "chelsea.jpg"), "--url", server.grpc_url, "--json")
    assert json.loads(result.stdout)["predictions"][0]["index"] in range(281, 286)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jpg"], "no such file or folder: missing.jpg"),
        (["clients/samples/chelsea.jpg", "--url", "127.0.0.1:9"], "cannot reach Triton over grpc at 127.0.0.1:9"),
        (
            ["clients/samples/chelsea.jpg", "--url", "127.0.0.1:9", "--protocol", "http"],
            "cannot reach Triton over http",
        ),
    ],
    ids=["missing-file", "no-grpc-server", "no-http-server"],
)
def test_expected_failures_are_one_line_without_traceback(args, message):
    result = run_infer(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_model_is_one_line(server):
    result = run_infer("clients/samples/chelsea.jpg", "--url", server.grpc_url, "--model", "nope")
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"infer: error: model 'nope' is not ready on {server.grpc_url} (unknown, or failed to load)"
    )


def test_preprocess_model_is_refused_as_a_target(server):
    result = run_infer("clients/samples/chelsea.jpg", "--url", server.grpc_url, "--model", "efficientnet_lite0_model")
    assert result.returncode == 2 and "call its ensemble instead" in result.stderr


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_client_timeout_is_one_clear_line_per_image(server, protocol):
    # The test server waits 50 ms to form a batch: a 10 ms timeout always expires.
    url = server.grpc_url if protocol == "grpc" else server.http_url
    result = run_infer("clients/samples/chelsea.jpg", "--url", url, "--protocol", protocol, "--timeout-s", "0.01")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "clients/samples/chelsea.jpg: error (DEADLINE_EXCEEDED): no answer within 0.01 s (the client's timeout)",
        "infer: 1 of 1 images failed",
    ]
