"""Which classifier backend to build, and what this machine has to build it with.

The backends themselves (same ensemble, same tensor names, only the classifier model
differs) are the modules of ``classifiers/``; ``auto`` asks each whether this machine
suits it (``trt``: a GPU and TensorRT 10, or a GPU and an engine ``make engine`` built
for this export) and otherwise builds ``python-ort``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
import subprocess

from tritonclf.repository import classifiers

BACKENDS = ("auto", *classifiers.names())


@dataclasses.dataclass(frozen=True)
class GpuInfo:
    """The first GPU as ``nvidia-smi`` reports it."""

    name: str
    compute_capability: str  # e.g. "9.0"
    driver_version: str
    cuda_version: str  # the driver's CUDA version


def parse_nvidia_smi(query_output: str, header: str = "") -> GpuInfo | None:
    """``nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv,noheader`` -> GpuInfo.

    ``header`` is plain ``nvidia-smi`` output, which carries "CUDA Version: X.Y".
    """
    lines = [line for line in query_output.strip().splitlines() if line.strip()]
    if not lines:
        return None
    fields = [f.strip() for f in lines[0].split(",")]
    if len(fields) < 3:
        return None
    cuda = ""
    if "CUDA Version:" in header:
        cuda = header.split("CUDA Version:", 1)[1].split(maxsplit=1)[0]
    return GpuInfo(name=fields[0], compute_capability=fields[1], driver_version=fields[2], cuda_version=cuda)


def probe_gpu() -> GpuInfo | None:
    """This machine's first NVIDIA GPU, or None (no driver, no GPU, or nvidia-smi failing)."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        query = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,compute_cap,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
        header = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=20, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_nvidia_smi(query, header)


def probe_tensorrt() -> str | None:
    """The TensorRT Python package's version, or None when it is not importable."""
    if importlib.util.find_spec("tensorrt") is None:
        return None
    try:
        import tensorrt

        return str(tensorrt.__version__)
    except Exception:  # a stub wheel or missing libnvinfer raises at import: treat as absent
        return None


def choose_backend(
    requested: str, gpu: GpuInfo | None, tensorrt_version: str | None, prebuilt_engine: str | None = None
) -> tuple[str, str]:
    """(backend, why) for a requested backend, given what the machine has.

    ``prebuilt_engine`` describes an engine built for this export (``engine_build.matching_engine``):
    on a GPU host with Docker but without the TensorRT Python package, that is what ``trt`` serves.
    """
    if requested not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {requested!r}")
    if requested != "auto":
        return requested, "requested"
    machine = classifiers.Machine(gpu=gpu, tensorrt_version=tensorrt_version, prebuilt_engine=prebuilt_engine)
    backend, why = classifiers.choose_auto(machine)
    return backend.name, why


def tensorrt_missing_message(gpu: GpuInfo | None, tensorrt_version: str | None) -> str | None:
    """One line saying why ``--backend trt`` cannot build here, or None if it can."""
    if gpu is not None and tensorrt_version is not None:
        return None
    missing = []
    if gpu is None:
        missing.append("no NVIDIA GPU (nvidia-smi not found or failing)")
    if tensorrt_version is None:
        missing.append("no TensorRT Python package")
    return (
        f"cannot build a TensorRT engine here: {' and '.join(missing)}. Build it in NVIDIA's Triton container "
        "(make engine TRITON_TAG=...) and pass --engine FILE, or use --backend onnx|python-ort"
    )
