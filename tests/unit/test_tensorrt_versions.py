"""TensorRT versions: options each release has, the TensorRT 10 gate, and the trtexec container's paths.

Names checked against TensorRT's own sources (NVIDIA/TensorRT, samples/common/sampleOptions.cpp
and python/src/infer/pyCore.cpp): trtexec's ``--hardwareCompatibilityLevel`` takes ``none`` and
``ampere+`` through 10.8 and adds ``sameComputeCapability`` in 10.9, as does the Python enum's
``SAME_COMPUTE_CAPABILITY``; TensorRT 11 drops ``--fp16``, ``--precisionConstraints``,
``--layerPrecisions`` and the Python ``BuilderFlag.FP16`` / ``OBEY_PRECISION_CONSTRAINTS``.
"""

from __future__ import annotations

import shlex
import sys
import types
from pathlib import Path

import pytest

from tritonclf.repository.tensorrt import EngineOptions, build_engine, container_command, trtexec_command
from tritonclf.repository.tensorrt_versions import (
    UnsupportedTensorRT,
    container_tensorrt_version,
    parse_tensorrt_version,
    require_supported,
)

CHW = (3, 224, 224)


def command(version: str, **options) -> list[str]:
    return trtexec_command(
        onnx_path="/work/model.onnx",
        engine_path="/work/engine/model.plan",
        input_name="pixel_values",
        input_chw=CHW,
        options=EngineOptions(**options),
        fp32_layers=["/Softmax"],
        tensorrt_version=version,
    )


def test_same_compute_capability_renders_trtexecs_spelling_where_the_version_has_it():
    assert "--hardwareCompatibilityLevel=sameComputeCapability" in command(
        "10.9.0", hardware_compatibility="same-compute-capability"
    )
    assert "--hardwareCompatibilityLevel=ampere+" in command("10.5.0", hardware_compatibility="ampere+")
    assert not any(arg.startswith("--hardwareCompatibilityLevel") for arg in command("10.5.0"))


def test_same_compute_capability_is_refused_on_tensorrt_10_5_with_one_line():
    with pytest.raises(UnsupportedTensorRT) as caught:
        command("10.5.0", hardware_compatibility="same-compute-capability")
    message = str(caught.value)
    assert "\n" not in message
    assert "same-compute-capability needs TensorRT 10.9 or newer" in message and "10.5.0" in message
    assert "ampere+" in message  # what to use instead


@pytest.mark.parametrize("version", ["11.0.0", "11.1.0.7", "8.6.1"])
def test_other_tensorrt_majors_are_refused_with_the_way_forward(version):
    with pytest.raises(UnsupportedTensorRT) as caught:
        command(version)
    message = str(caught.value)
    assert "\n" not in message and f"TensorRT {version}" in message
    assert "TensorRT 10" in message and "24.10-py3" in message


def test_tensorrt_version_parsing():
    assert parse_tensorrt_version("10.5.0") == (10, 5)
    assert parse_tensorrt_version("10.9.0.34") == (10, 9)
    assert parse_tensorrt_version("11.0") == (11, 0)
    with pytest.raises(UnsupportedTensorRT, match="cannot read"):
        parse_tensorrt_version("ten")
    require_supported("10.13.3.9", "ampere+")


def test_container_tensorrt_version_is_known_for_the_pinned_tag_only():
    assert container_tensorrt_version("24.10-py3") == "10.5.0"
    assert container_tensorrt_version("99.01-py3") is None


def test_python_api_build_refuses_tensorrt_11_before_touching_its_builder(monkeypatch, tmp_path):
    # Only the version gate is exercised: the real TensorRT cannot be installed here.
    fake = types.ModuleType("tensorrt")
    fake.__version__ = "11.0.0.8"
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    with pytest.raises(UnsupportedTensorRT, match=r"TensorRT 11\.0\.0\.8 .*TensorRT 10"):
        build_engine(tmp_path / "model.onnx", "pixel_values", EngineOptions())


def test_python_api_build_refuses_same_compute_capability_on_10_5(monkeypatch, tmp_path):
    fake = types.ModuleType("tensorrt")
    fake.__version__ = "10.5.0"
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    with pytest.raises(UnsupportedTensorRT, match=r"needs TensorRT 10\.9"):
        build_engine(
            tmp_path / "model.onnx", "pixel_values", EngineOptions(hardware_compatibility="same-compute-capability")
        )


def test_timing_cache_is_mounted_and_passed_as_the_containers_path(tmp_path):
    export, cache = tmp_path / "export", tmp_path / "caches" / "trt.cache"
    inner = command("10.5.0", timing_cache=Path("/timing-cache/trt.cache"))
    docker = container_command("24.10-py3", export, inner, timing_cache=cache)
    assert f"{cache.parent.resolve()}:/timing-cache" in docker
    assert docker[docker.index(f"{cache.parent.resolve()}:/timing-cache") - 1] == "-v"
    shell = docker[-1]
    assert "--timingCacheFile=/timing-cache/trt.cache" in shlex.split(shell.split("2>&1")[0].split("&& ", 1)[1])
    assert str(cache) not in shell  # a host path means nothing inside the container
