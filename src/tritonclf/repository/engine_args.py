"""Command-line options shared by build/build_repository.py and build/onnx2trt.py (one definition each)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tritonclf.repository.accuracy_gate import GateThresholds
from tritonclf.repository.tensorrt import HARDWARE_COMPATIBILITY_LEVELS, EngineOptions


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """TensorRT builder and accuracy-gate options."""
    engine, gate = EngineOptions(), GateThresholds()
    group = parser.add_argument_group("TensorRT engine (--backend trt)")
    group.add_argument("--opt-batch-size", type=int, help="optimization profile's optimum (default: max batch size)")
    group.add_argument(
        "--workspace-mib",
        type=int,
        default=engine.workspace_bytes >> 20,
        help="builder workspace (default: %(default)s)",
    )
    group.add_argument(
        "--hardware-compatibility",
        choices=HARDWARE_COMPATIBILITY_LEVELS,
        default=engine.hardware_compatibility,
        help="ampere+: one engine for all Ampere-or-newer GPUs, slightly slower; same-compute-capability: "
        "TensorRT 10.9+ only, not 24.10's 10.5 (default: %(default)s)",
    )
    group.add_argument("--timing-cache", type=Path, help="reuse and update this TensorRT timing cache file")
    group.add_argument(
        "--min-top1-agreement", type=float, default=gate.min_top1_agreement, help="FP16 gate (default: %(default)s)"
    )
    group.add_argument(
        "--max-mean-delta", type=float, default=gate.max_mean_abs_delta, help="FP16 gate (default: %(default)s)"
    )
    group.add_argument(
        "--near-tie-margin",
        type=float,
        default=gate.near_tie_margin,
        help="FP16 gate: a top-1 flip counts only where FP32's top two classes differ by this much; "
        "closer ones are reported apart (default: %(default)s)",
    )


def engine_options(args: argparse.Namespace) -> EngineOptions:
    """EngineOptions from parsed arguments."""
    return EngineOptions(
        max_batch_size=args.max_batch_size,
        opt_batch_size=args.opt_batch_size,
        workspace_bytes=args.workspace_mib << 20,
        hardware_compatibility=args.hardware_compatibility,
        timing_cache=args.timing_cache,
    )


def gate_thresholds(args: argparse.Namespace) -> GateThresholds:
    """GateThresholds from parsed arguments."""
    return GateThresholds(
        min_top1_agreement=args.min_top1_agreement,
        max_mean_abs_delta=args.max_mean_delta,
        near_tie_margin=args.near_tie_margin,
    )
