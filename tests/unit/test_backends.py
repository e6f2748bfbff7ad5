"""Backend choice, TensorRT versions and engine options: pure logic of the GPU path."""

from __future__ import annotations

import pytest

from tritonclf.repository.backends import GpuInfo, choose_backend, parse_nvidia_smi, tensorrt_missing_message
from tritonclf.repository.tensorrt import EngineOptions, parse_trtexec_version

H200 = GpuInfo("NVIDIA H200", "9.0", "560.35.03", "12.6")


def test_auto_picks_trt_only_with_both_gpu_and_tensorrt():
    assert choose_backend("auto", H200, "10.5.0") == ("trt", "GPU NVIDIA H200 (compute 9.0) and TensorRT 10.5.0 found")
    backend, why = choose_backend("auto", None, None)
    assert backend == "python-ort" and why == "no NVIDIA GPU and no TensorRT Python package on this machine"
    assert choose_backend("auto", H200, None)[0] == "python-ort"
    assert choose_backend("onnx", None, None) == ("onnx", "requested")
    with pytest.raises(ValueError, match="backend must be one of"):
        choose_backend("tvm", None, None)


def test_nvidia_smi_output_is_parsed():
    header = "| NVIDIA-SMI 560.35.03    Driver Version: 560.35.03    CUDA Version: 12.6     |"
    assert parse_nvidia_smi("NVIDIA H200, 9.0, 560.35.03\n", header) == H200
    assert parse_nvidia_smi("", header) is None


def test_missing_tensorrt_message_says_what_to_do():
    message = tensorrt_missing_message(None, None)
    assert (
        "no NVIDIA GPU" in message and "make engine TRITON_TAG=" in message and "--backend onnx|python-ort" in message
    )
    assert tensorrt_missing_message(H200, "10.5.0") is None


def test_trtexec_version_is_decoded():
    assert parse_trtexec_version("&&&& RUNNING TensorRT.trtexec [TensorRT v100500] # trtexec") == "10.5.0"
    assert parse_trtexec_version("nothing") is None


def test_engine_options_are_validated():
    with pytest.raises(ValueError, match="opt batch"):
        EngineOptions(max_batch_size=8, opt_batch_size=16)
    with pytest.raises(ValueError, match="hardware compatibility"):
        EngineOptions(hardware_compatibility="turing+")
