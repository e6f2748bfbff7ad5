"""Preflight: a good repository passes; each kind of damage gives one clear line naming what to rebuild."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

import pytest

from tritonclf.repository.backends import GpuInfo
from tritonclf.repository.build import build_repository
from tritonclf.repository.preflight_checks import check_repository

from ..conftest import ROOT

MODEL, PRE, CLF = "efficientnet_lite0", "efficientnet_lite0_preprocess", "efficientnet_lite0_model"
H100 = GpuInfo("NVIDIA H100", "9.0", "560.35.03", "12.6")
A10 = GpuInfo("NVIDIA A10", "8.6", "560.35.03", "12.6")


@pytest.fixture
def repo(export_dir, tmp_path):
    path = tmp_path / "repo"
    build_repository(export_dir, path)
    return path


def errors(findings):
    return [str(f) for f in findings if f.severity == "error"]


def test_a_fresh_build_passes(repo):
    assert check_repository(repo) == []


def test_corrupted_artifact_is_caught_by_its_hash(repo):
    with open(repo / CLF / "1" / "model.onnx", "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02")
    assert errors(check_repository(repo)) == [
        f"error: {CLF}: version 1: model.onnx does not match its manifest hash (corrupted?): rebuild"
    ]


def test_missing_files_are_named(repo):
    (repo / PRE / "1" / "preprocess.py").unlink()
    (repo / MODEL / "labels.txt").unlink()
    (repo / PRE / "warmup" / "image.bytes").unlink()
    found = errors(check_repository(repo))
    assert f"error: {PRE}: version 1: preprocess.py listed in the manifest is missing: rebuild" in found
    assert f"error: {MODEL}: label file labels.txt is missing: rebuild the repository" in found
    assert f"error: {PRE}: warmup file warmup/image.bytes is missing: rebuild" in found


def test_a_helper_a_backend_model_loads_on_start_is_required_even_without_a_manifest(repo):
    for model in (PRE, CLF):
        (repo / model / "1" / "manifest.json").unlink()
        (repo / model / "1" / "serving_metrics.py").unlink()
    (repo / CLF / "1" / "pixel_checks.py").unlink()
    found = errors(check_repository(repo))
    assert f"error: {PRE}: version 1 has no serving_metrics.py: rebuild the repository" in found
    assert f"error: {CLF}: version 1 has no serving_metrics.py: rebuild the repository" in found
    assert f"error: {CLF}: version 1 has no pixel_checks.py: rebuild the repository" in found


def test_broken_ensemble_wiring_is_explained(repo):
    config = (repo / MODEL / "config.pbtxt").read_text()
    (repo / MODEL / "config.pbtxt").write_text(config.replace('key: "pixel_values"', 'key: "pixels"', 1))
    assert errors(check_repository(repo)) == [
        f"error: {MODEL}: step 1 ({PRE}): the model has no output 'pixels'",
        f"error: {MODEL}: step 2 ({CLF}): 'pixel_values' is produced by no earlier step",
    ]


def test_shape_mismatch_between_steps_is_explained(repo):
    config = (repo / CLF / "config.pbtxt").read_text()
    (repo / CLF / "config.pbtxt").write_text(config.replace("dims: 224", "dims: 256", 1))
    found = errors(check_repository(repo))
    assert any("is TYPE_FP32[3, 224, 224], the model takes TYPE_FP32[3, 256, 224]" in f for f in found)


def test_config_that_does_not_parse(repo):
    (repo / PRE / "config.pbtxt").write_text('name: "x"\nbogus_field: 3\n')
    found = errors(check_repository(repo))
    assert any(f.startswith(f"error: {PRE}: config.pbtxt does not parse") for f in found)
    assert any("no model" in f for f in found)  # and the ensemble step that needed it


def fake_engine_repo(repo, engine_record):
    """Turn the classifier into a TensorRT model whose manifest records how its engine was built."""
    folder = repo / CLF / "1"
    (folder / "model.plan").write_bytes(b"engine bytes")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"] = {"model.plan": hashlib.sha256(b"engine bytes").hexdigest()}
    manifest["engine"] = engine_record
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "model.py").unlink()
    (folder / "model.onnx").unlink()
    config = (repo / CLF / "config.pbtxt").read_text().replace('backend: "python"', 'platform: "tensorrt_plan"')
    (repo / CLF / "config.pbtxt").write_text(config)


def test_engine_from_another_tensorrt_version_or_gpu_is_refused(repo):
    fake_engine_repo(repo, {"tensorrt_version": "10.3.0", "compute_capability": "9.0", "gpu_name": "NVIDIA H100"})
    assert errors(check_repository(repo, H100, "10.3.0")) == []
    (version_error,) = errors(check_repository(repo, H100, "10.5.0"))
    assert "engine built with TensorRT 10.3.0, this machine has 10.5.0; rebuild: make engine" in version_error
    (gpu_error,) = errors(check_repository(repo, A10, "10.3.0"))
    assert "built for compute capability 9.0 (NVIDIA H100), this GPU is 8.6 (NVIDIA A10)" in gpu_error


def test_engine_from_another_container_release_is_refused(repo):
    fake_engine_repo(repo, {"tensorrt_version": "10.3.0", "compute_capability": "9.0", "triton_tag": "24.08-py3"})
    (tag_error,) = errors(check_repository(repo, H100, "10.3.0", triton_tag="24.10-py3"))
    assert "engine built in the 24.08-py3 container, deployment pins 24.10-py3" in tag_error


def test_without_gpu_or_tensorrt_engine_checks_are_warnings(repo):
    fake_engine_repo(repo, {"tensorrt_version": "10.5.0", "compute_capability": "9.0"})
    findings = check_repository(repo, None, None)
    assert errors(findings) == []
    assert {f.severity for f in findings} == {"warning"}


def test_cli_exit_codes(repo, tmp_path):
    def run(path):
        return subprocess.run(
            [sys.executable, "build/preflight.py", "--repository", str(path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    ok = run(repo)
    assert ok.returncode == 0 and "is ready to serve" in ok.stdout
    shutil.rmtree(repo / PRE / "1")
    bad = run(repo)
    assert bad.returncode == 1 and "no version folder" in bad.stderr and "Traceback" not in bad.stderr
    assert run(tmp_path / "nowhere").returncode == 1
