"""``--backend auto`` on a GPU host without the TensorRT Python package serves the engine ``make engine`` built."""

from __future__ import annotations

import json

from tritonclf.repository.backends import GpuInfo, choose_backend
from tritonclf.repository.engine_build import ENGINE_DIR, ENGINE_RECORD, container_build_record, matching_engine
from tritonclf.repository.tensorrt import EngineOptions

H200 = GpuInfo("NVIDIA H200", "9.0", "580.65.06", "13.0")
ONNX_SHA = "ab" * 32


def engine_from_container(export_dir, onnx_sha256=ONNX_SHA, compute_capability="9.0"):
    engine_dir = export_dir / ENGINE_DIR
    engine_dir.mkdir(parents=True)
    (engine_dir / "model.plan").write_bytes(b"serialized engine")
    (engine_dir / "gpu.txt").write_text(f"NVIDIA H200, {compute_capability}, 580.65.06\n")
    (engine_dir / "trtexec.log").write_text("&&&& RUNNING TensorRT.trtexec [TensorRT v100500] # trtexec\n")
    record = container_build_record(engine_dir, "24.10-py3", EngineOptions(), onnx_sha256=onnx_sha256)
    (engine_dir / ENGINE_RECORD).write_text(json.dumps(record))
    return engine_dir / "model.plan"


def test_container_build_record_names_the_onnx_it_was_built_from(tmp_path):
    engine_from_container(tmp_path)
    record = json.loads((tmp_path / ENGINE_DIR / ENGINE_RECORD).read_text())
    assert record["onnx_sha256"] == ONNX_SHA and record["compute_capability"] == "9.0"
    assert record["tensorrt_version"] == "10.5.0"


def test_a_matching_engine_is_found_and_described(tmp_path):
    plan = engine_from_container(tmp_path)
    found, why = matching_engine(tmp_path, ONNX_SHA, H200)
    assert found == plan
    assert "built for this export's ONNX" in why and "24.10-py3" in why and "compute 9.0" in why


def test_engine_for_another_onnx_or_gpu_or_without_a_record_does_not_match(tmp_path):
    engine_from_container(tmp_path / "other-onnx", onnx_sha256="cd" * 32)
    found, why = matching_engine(tmp_path / "other-onnx", ONNX_SHA, H200)
    assert found is None and "another ONNX" in why and "make engine" in why

    engine_from_container(tmp_path / "a100", compute_capability="8.0")
    found, why = matching_engine(tmp_path / "a100", ONNX_SHA, H200)
    assert found is None and "compute 8.0" in why and "9.0" in why

    engine_from_container(tmp_path / "no-record")
    (tmp_path / "no-record" / ENGINE_DIR / ENGINE_RECORD).unlink()
    assert matching_engine(tmp_path / "no-record", ONNX_SHA, H200)[0] is None

    assert matching_engine(tmp_path / "nothing", ONNX_SHA, H200) == (None, "")


def test_auto_picks_trt_on_a_gpu_host_with_a_matching_engine_and_no_tensorrt_package(tmp_path):
    plan = engine_from_container(tmp_path)
    _, why_engine = matching_engine(tmp_path, ONNX_SHA, H200)
    backend, why = choose_backend("auto", H200, None, prebuilt_engine=why_engine if plan else None)
    assert backend == "trt"
    assert why.startswith("GPU NVIDIA H200 (compute 9.0) and engine ") and "built for this export's ONNX" in why


def test_auto_without_a_gpu_ignores_a_matching_engine():
    backend, why = choose_backend("auto", None, None, prebuilt_engine="engine x built for this export's ONNX")
    assert backend == "python-ort" and "no NVIDIA GPU" in why


def test_auto_does_not_pick_trt_for_an_unsupported_tensorrt_package():
    backend, why = choose_backend("auto", H200, "11.0.0")
    assert backend == "python-ort" and "TensorRT 11.0.0" in why and "10.x" in why
