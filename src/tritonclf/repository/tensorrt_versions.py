"""Which TensorRT releases this project drives, and which builder options each one has.

Names as TensorRT's own sources spell them (NVIDIA/TensorRT: samples/common/sampleOptions.cpp
for trtexec, python/src/infer/pyCore.cpp for the Python API):

- ``--hardwareCompatibilityLevel`` takes ``none`` and ``ampere+``; ``sameComputeCapability``
  (Python: ``HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY``) arrived in 10.9, after the
  10.5 of NVIDIA's 24.10 container.
- TensorRT 11 removed ``BuilderFlag.FP16``, ``OBEY_PRECISION_CONSTRAINTS`` and trtexec's
  ``--fp16`` / ``--precisionConstraints`` / ``--layerPrecisions``: networks are strongly
  typed, so FP16 with an FP32 softmax has to come from the ONNX file itself. Until the
  export writes such a file, engines are built with TensorRT 10 only.
"""

from __future__ import annotations

import re

SUPPORTED_MAJOR = 10
PINNED_TAG = "24.10-py3"

# CLI name -> (trtexec's value, the Python enum member, the first TensorRT (major, minor) that has it).
HARDWARE_COMPATIBILITY = {
    "none": ("none", "NONE", (8, 6)),
    "ampere+": ("ampere+", "AMPERE_PLUS", (8, 6)),
    "same-compute-capability": ("sameComputeCapability", "SAME_COMPUTE_CAPABILITY", (10, 9)),
}
HARDWARE_COMPATIBILITY_LEVELS = tuple(HARDWARE_COMPATIBILITY)

# NVIDIA's Triton container tag -> the TensorRT its trtexec is (release notes; ENVIRONMENT.md).
# Other tags: pass --tensorrt-version, which trtexec prints as [TensorRT vMMmmpp] in its log.
CONTAINER_TENSORRT = {"24.10": "10.5.0"}


class UnsupportedTensorRT(ValueError):
    """This TensorRT cannot build what was asked for; the message says what to use instead."""


def parse_tensorrt_version(version: str) -> tuple[int, int]:
    """``"10.9.0.34"`` -> ``(10, 9)``."""
    match = re.match(r"^\s*(\d+)\.(\d+)", version)
    if not match:
        raise UnsupportedTensorRT(f"cannot read a TensorRT version from {version!r}: expected MAJOR.MINOR, e.g. 10.5.0")
    return int(match.group(1)), int(match.group(2))


def require_supported(version: str, hardware_compatibility: str) -> None:
    """Raise UnsupportedTensorRT (one line) unless this TensorRT builds these options."""
    major, minor = parse_tensorrt_version(version)
    if major != SUPPORTED_MAJOR:
        raise UnsupportedTensorRT(
            f"TensorRT {version} is not supported: engines are built with TensorRT 10 only (its FP16 flag and "
            "FP32 softmax layers are gone from TensorRT 11's strongly typed networks); use TensorRT 10 "
            f"(make engine TRITON_TAG={PINNED_TAG}, or pip install 'tensorrt-cu12>=10,<11' for --local), "
            "or serve --backend onnx"
        )
    _, _, since = HARDWARE_COMPATIBILITY[hardware_compatibility]
    if (major, minor) < since:
        raise UnsupportedTensorRT(
            f"--hardware-compatibility {hardware_compatibility} needs TensorRT {since[0]}.{since[1]} or newer, "
            f"and this build uses TensorRT {version}: use ampere+ (any Ampere-or-newer GPU) or none"
        )


def trtexec_hardware_compatibility(level: str) -> str:
    """How trtexec spells a hardware compatibility level."""
    return HARDWARE_COMPATIBILITY[level][0]


def python_hardware_compatibility(level: str) -> str:
    """The member name of ``tensorrt.HardwareCompatibilityLevel`` for a level."""
    return HARDWARE_COMPATIBILITY[level][1]


def container_tensorrt_version(triton_tag: str) -> str | None:
    """The TensorRT inside NVIDIA's Triton container of this tag, where known."""
    return CONTAINER_TENSORRT.get(triton_tag.split("-", 1)[0])
