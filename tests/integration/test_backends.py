"""The GPU path on CPU with a real export: configs per backend, trtexec command lines, dry runs."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from tritonclient.grpc import model_config_pb2 as pb

from tritonclf.repository.backends import GpuInfo
from tritonclf.repository.models import BuildOptions, classifier_spec
from tritonclf.repository.pbtxt import parse, render, to_model_config
from tritonclf.repository.tensorrt import EngineOptions, fp32_node_names, trtexec_command

from ..conftest import ROOT

H200 = GpuInfo("NVIDIA H200", "9.0", "560.35.03", "12.6")


def test_backend_trt_fails_in_seconds_with_one_line_here(export_dir, tmp_path):
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "build/build_repository.py",
            "--export",
            str(export_dir),
            "--repository",
            str(tmp_path / "r"),
            "--backend",
            "trt",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "cannot build a TensorRT engine here" in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 30
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


@pytest.mark.parametrize(
    ("backend", "device", "platform", "kind"),
    [
        ("python-ort", "cpu", "", pb.ModelInstanceGroup.KIND_CPU),
        ("python-ort", "gpu", "", pb.ModelInstanceGroup.KIND_GPU),
        ("onnx", "cpu", "onnxruntime_onnx", pb.ModelInstanceGroup.KIND_CPU),
        ("onnx", "gpu", "onnxruntime_onnx", pb.ModelInstanceGroup.KIND_GPU),
        ("trt", "cpu", "tensorrt_plan", pb.ModelInstanceGroup.KIND_GPU),
    ],
)
def test_every_backend_config_round_trips_with_the_same_io_contract(metadata, backend, device, platform, kind):
    options = BuildOptions(backend=backend, device=device)
    config = to_model_config(classifier_spec("clf", metadata, options, {"8.0": "model_sm80.plan"}))
    assert parse(render(config)) == config
    assert config.platform == platform
    assert config.instance_group[0].kind == kind
    assert [(t.name, list(t.dims)) for t in config.input] == [("pixel_values", [3, 224, 224])]
    assert [(t.name, t.label_filename) for t in config.output] == [("probabilities", "labels.txt")]
    assert [w.batch_size for w in config.model_warmup] == [1, 32]
    if backend == "trt":
        assert config.default_model_filename == "model.plan"
        assert dict(config.cc_model_filenames) == {"8.0": "model_sm80.plan"}


def test_onnx_backend_tensorrt_accelerator_caches_engines(metadata):
    options = BuildOptions(backend="onnx", device="gpu", onnx_tensorrt_fp16=True, ort_trt_cache_dir="/cache/trt")
    config = to_model_config(classifier_spec("clf", metadata, options))
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt"
    assert accelerator.parameters["precision_mode"] == "FP16"
    assert accelerator.parameters["trt_engine_cache_enable"] == "1"
    assert accelerator.parameters["trt_engine_cache_path"] == "/cache/trt"
    with pytest.raises(ValueError, match="needs --backend onnx --device gpu"):
        BuildOptions(backend="onnx", device="cpu", onnx_tensorrt_fp16=True)


def test_trt_warmup_covers_every_profile_shape(metadata):
    options = BuildOptions(backend="trt", max_batch_size=64, engine=EngineOptions(max_batch_size=64, opt_batch_size=8))
    config = to_model_config(classifier_spec("clf", metadata, options))
    assert [w.batch_size for w in config.model_warmup] == [1, 8, 64]
    with pytest.raises(ValueError, match="engine's max batch size"):
        BuildOptions(backend="trt", max_batch_size=16)


def test_trtexec_command_keeps_softmax_fp32_and_spans_the_batch_profile(export_dir):
    options = EngineOptions(
        max_batch_size=32, opt_batch_size=8, workspace_bytes=1 << 30, hardware_compatibility="ampere+"
    )
    layers = fp32_node_names(export_dir / "model.onnx")
    assert layers == ["/Softmax"]
    command = trtexec_command(
        onnx_path="m.onnx", engine_path="m.plan", input_name="pixel_values", input_chw=(3, 224, 224),
        options=options, fp32_layers=layers, tensorrt_version="10.5.0",
    )  # fmt: skip
    assert "--minShapes=pixel_values:1x3x224x224" in command
    assert "--optShapes=pixel_values:8x3x224x224" in command
    assert "--maxShapes=pixel_values:32x3x224x224" in command
    assert "--fp16" in command and "--layerPrecisions=/Softmax:fp32" in command
    assert "--memPoolSize=workspace:1024M" in command
    assert "--hardwareCompatibilityLevel=ampere+" in command


def test_make_engine_dry_run_prints_the_container_command(export_dir):
    result = subprocess.run(
        [sys.executable, "build/onnx2trt.py", "--export", str(export_dir), "--dry-run", "--triton-tag", "24.10-py3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "nvcr.io/nvidia/tritonserver:24.10-py3" in result.stdout
    assert "/usr/src/tensorrt/bin/trtexec" in result.stdout


def test_gpu_check_script_dry_run_runs_its_cpu_parts(export_dir):
    result = subprocess.run(
        [sys.executable, "-m", "tritonclf.repository.gpu_check_cli", "--export", str(export_dir), "--dry-run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "--backend trt" in result.stdout and 'platform: "tensorrt_plan"' in result.stdout
    assert "gate batch (32, 3, 224, 224)" in result.stdout
