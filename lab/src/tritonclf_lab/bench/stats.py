"""The benchmark's arithmetic: latency summaries, rates, ratios and the machine's compute limit. Pure functions."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

PERCENTILES = (50, 90, 99)


def latency_summary(latencies_s: Sequence[float]) -> dict[str, float | None]:
    """Mean and p50/p90/p99 (numpy's linear interpolation) in milliseconds; None for an empty run (JSON has no NaN)."""
    if not len(latencies_s):
        return {**{f"p{q}_ms": None for q in PERCENTILES}, "mean_ms": None}
    values = np.percentile(latencies_s, PERCENTILES)
    summary = {f"p{q}_ms": float(value) * 1e3 for q, value in zip(PERCENTILES, values, strict=True)}
    summary["mean_ms"] = float(np.mean(latencies_s)) * 1e3
    return summary


def rate(count: float, elapsed_s: float) -> float:
    """Items per second; 0 for an empty interval."""
    return count / elapsed_s if elapsed_s > 0 else 0.0


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """Divide, giving None when either is missing or the denominator is zero."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask, which taskset and cpusets narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def compute_limit(cores: int, decode_cpu_s: float, infer_cpu_s: float) -> dict[str, float]:
    """Images/s the machine could do if every core ran only the decode and the model, nothing else.

    ``decode_cpu_s`` and ``infer_cpu_s`` are CPU seconds per image, measured on one
    thread; the limit is ``cores x images per core-second``. A server pays for more
    (requests, copies, its own threads), so it can approach the limit, not pass it.
    """
    cpu_s = decode_cpu_s + infer_cpu_s
    if cpu_s <= 0 or cores < 1:
        raise ValueError(f"need positive CPU time per image and cores, got {cpu_s} s and {cores} cores")
    per_core = 1.0 / cpu_s
    return {
        "cores": cores,
        "decode_cpu_ms_per_image": decode_cpu_s * 1e3,
        "infer_cpu_ms_per_image": infer_cpu_s * 1e3,
        "cpu_ms_per_image": cpu_s * 1e3,
        "images_per_core_s": per_core,
        "images_per_s": cores * per_core,
    }


def mean(values: Sequence[float]) -> float | None:
    """Arithmetic mean; None when empty."""
    return sum(values) / len(values) if values else None
