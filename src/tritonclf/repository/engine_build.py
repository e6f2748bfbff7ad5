"""Get a gated TensorRT engine for an export: build it here, reuse a cached one, or take one built in a container.

Engines land in ``<export>/engine/``: ``model.plan`` and ``engine.json`` (what built
it, on which GPU, with which flags, and the accuracy-gate numbers). A build here is
cached under a key of everything that shapes the engine (ONNX hash, builder flags,
TensorRT version, GPU), so ``make repository`` does not spend minutes rebuilding
an identical engine.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from tritonclf import contract
from tritonclf.export_metadata import ExportMetadata
from tritonclf.files import sha256_file, write_atomic, write_json_atomic
from tritonclf.provenance import utc_timestamp
from tritonclf.repository.accuracy_gate import (
    GateThresholds,
    compare,
    gate_images,
    onnx_runner,
    run_in_batches,
    tensorrt_runner,
)
from tritonclf.repository.backends import GpuInfo, parse_nvidia_smi, probe_gpu, probe_tensorrt, tensorrt_missing_message
from tritonclf.repository.build import BuildError, PreparedEngine
from tritonclf.repository.tensorrt import EngineOptions, build_engine, parse_trtexec_version
from tritonclf.repository.tensorrt_versions import require_supported

ENGINE_DIR = "engine"
ENGINE_RECORD = "engine.json"


def engine_cache_key(onnx_sha256: str, options: EngineOptions, tensorrt_version: str, gpu: GpuInfo) -> str:
    """Everything that makes two engines differ, hashed."""
    payload = json.dumps(
        [onnx_sha256, options.to_manifest(), tensorrt_version, gpu.name, gpu.compute_capability], sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def gpu_record(gpu: GpuInfo | None) -> dict:
    """Manifest fields describing the GPU an engine was built on."""
    if gpu is None:
        return {}
    return {
        "gpu_name": gpu.name,
        "compute_capability": gpu.compute_capability,
        "driver_version": gpu.driver_version,
        "cuda_version": gpu.cuda_version,
    }


def container_build_record(engine_dir: Path, triton_tag: str, options: EngineOptions, *, onnx_sha256: str) -> dict:
    """The record of an engine built by trtexec in NVIDIA's container, from the files it left there.

    ``onnx_sha256`` ties the engine to its export: ``--backend auto`` serves it only for that ONNX.
    """

    def read(name: str) -> str:
        path = engine_dir / name
        return path.read_text(errors="replace") if path.is_file() else ""

    gpu = parse_nvidia_smi(read("gpu.txt"), read("nvidia-smi.txt"))
    return {
        "builder": f"trtexec in nvcr.io/nvidia/tritonserver:{triton_tag}",
        "triton_tag": triton_tag,
        "onnx_sha256": onnx_sha256,
        "tensorrt_version": parse_trtexec_version(read("trtexec.log")),
        **gpu_record(gpu),
        "builder_flags": options.to_manifest(),
        "built_at": utc_timestamp(),
    }


def matching_engine(export_dir: Path, onnx_sha256: str, gpu: GpuInfo | None) -> tuple[Path | None, str]:
    """``EXPORT/engine/model.plan`` if its record says it was built from this ONNX for this GPU, and why (not).

    ``(None, "")`` when there is no engine at all.
    """
    plan = Path(export_dir) / ENGINE_DIR / "model.plan"
    if not plan.is_file():
        return None, ""
    record_path = plan.with_name(ENGINE_RECORD)
    try:
        record = json.loads(record_path.read_text())
    except (OSError, json.JSONDecodeError):
        return None, f"{plan} has no readable {ENGINE_RECORD}: rebuild it with make engine"
    if record.get("onnx_sha256") != onnx_sha256:
        return None, f"{plan} was built for another ONNX (or before engines named theirs): rebuild it with make engine"
    built_on = record.get("compute_capability")
    if gpu is not None and built_on and built_on != gpu.compute_capability:
        return None, (
            f"{plan} was built for compute {built_on}, this GPU is compute {gpu.compute_capability}: "
            "rebuild it here with make engine"
        )
    builder = record.get("builder", "an unknown builder")
    where = f", compute {built_on}" if built_on else ""
    return plan, f"engine {plan} ({builder}{where}) built for this export's ONNX"


def run_gate(
    export_dir: Path,
    *,
    metadata: ExportMetadata,
    engine: bytes,
    thresholds: GateThresholds,
    photos: Sequence[Path],
    max_batch_size: int,
) -> dict:
    """Compare the engine with the FP32 ONNX model; raise BuildError past the thresholds."""
    pixels = gate_images(photos, metadata.preprocess)
    reference = run_in_batches(
        onnx_runner(export_dir / metadata.onnx_filename, contract.PIXELS, contract.PROBABILITIES),
        pixels,
        max_batch_size,
    )
    candidate = run_in_batches(tensorrt_runner(engine, contract.PIXELS, contract.PROBABILITIES), pixels, max_batch_size)
    report = compare(reference, candidate, thresholds.near_tie_margin)
    record = {"status": "passed", **report.__dict__, "thresholds": thresholds.__dict__}
    failures = report.failures(thresholds)
    if failures:
        counted = f"{report.images} images ({report.decisive_images} decisive, {report.near_tie_flips} near-tie flips)"
        raise BuildError(f"FP16 accuracy gate failed on {counted}: {'; '.join(failures)}")
    return record


def prepare_engine(
    export_dir: Path,
    metadata: ExportMetadata,
    options: EngineOptions,
    thresholds: GateThresholds,
    photos: Sequence[Path],
    *,
    engine_file: Path | None = None,
    extra_engines: dict[str, Path] | None = None,
) -> PreparedEngine:
    """A gated engine: the one given (built elsewhere), a cached one, or a fresh build here."""
    extra = dict(extra_engines or {})
    if engine_file is not None:
        return _prepared_from_file(
            Path(engine_file),
            export_dir=export_dir,
            metadata=metadata,
            thresholds=thresholds,
            photos=photos,
            options=options,
            extra=extra,
        )
    gpu, tensorrt_version = probe_gpu(), probe_tensorrt()
    problem = tensorrt_missing_message(gpu, tensorrt_version)
    if problem:
        raise BuildError(problem)
    require_supported(tensorrt_version, options.hardware_compatibility)
    engine_dir = export_dir / ENGINE_DIR
    key = engine_cache_key(metadata.onnx_sha256, options, tensorrt_version, gpu)
    plan, record_path = engine_dir / f"model-{key}.plan", engine_dir / f"model-{key}.json"
    if plan.is_file() and record_path.is_file():
        return PreparedEngine(plan, json.loads(record_path.read_text()), extra)
    engine, build = build_engine(export_dir / metadata.onnx_filename, contract.PIXELS, options)
    gate = run_gate(
        export_dir,
        metadata=metadata,
        engine=engine,
        thresholds=thresholds,
        photos=photos,
        max_batch_size=options.max_batch_size,
    )
    record = {
        **build,
        "onnx_sha256": metadata.onnx_sha256,
        **gpu_record(gpu),
        "builder_flags": options.to_manifest(),
        "built_at": utc_timestamp(),
        "accuracy_gate": gate,
    }
    write_atomic(plan, engine)  # only a gated engine is ever cached
    write_json_atomic(record_path, record)
    return PreparedEngine(plan, record, extra)


def _prepared_from_file(
    plan: Path,
    *,
    export_dir: Path,
    metadata: ExportMetadata,
    thresholds: GateThresholds,
    photos: Sequence[Path],
    options: EngineOptions,
    extra: dict[str, Path],
) -> PreparedEngine:
    if not plan.is_file():
        raise BuildError(f"no engine at {plan}: build one with make engine TRITON_TAG=...")
    record_path = plan.with_name(ENGINE_RECORD)
    record = json.loads(record_path.read_text()) if record_path.is_file() else {"builder": "unknown (no engine.json)"}
    record["plan_sha256"] = sha256_file(plan)
    if probe_tensorrt() is not None and probe_gpu() is not None:
        record["accuracy_gate"] = run_gate(
            export_dir,
            metadata=metadata,
            engine=plan.read_bytes(),
            thresholds=thresholds,
            photos=photos,
            max_batch_size=options.max_batch_size,
        )
    elif "accuracy_gate" not in record:
        # The gate needs TensorRT and a GPU; an engine from `make engine` was gated in its container.
        record["accuracy_gate"] = {"status": "not run", "reason": "no TensorRT or GPU where the repository was built"}
    return PreparedEngine(plan, record, extra)
