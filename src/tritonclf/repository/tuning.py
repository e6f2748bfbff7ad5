"""Pick serving parameters by measuring them, in the spirit of Triton's Model Analyzer.

Each trial builds a repository with one combination of instance counts, ONNX
Runtime threads, batch size and queue delay, serves it with the real server,
drives it with the benchmark's closed loop (``bench/load.py``) of real JPEGs, and
records throughput and latency.
The best throughput whose p99 stays within the budget wins.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence


@dataclasses.dataclass(frozen=True)
class TrialConfig:
    """One point of the sweep: the serving parameters a repository build bakes in."""

    preprocess_instances: int
    classifier_instances: int
    intra_op_threads: int
    max_batch_size: int
    max_queue_delay_microseconds: int

    def label(self) -> str:
        """Compact description for tables."""
        return (
            f"pre={self.preprocess_instances} clf={self.classifier_instances} threads={self.intra_op_threads} "
            f"batch={self.max_batch_size} delay={self.max_queue_delay_microseconds}us"
        )


@dataclasses.dataclass(frozen=True)
class TrialResult:
    """What one trial measured."""

    config: TrialConfig
    images_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def sweep(
    preprocess_instances: Sequence[int] = (1, 2),
    classifier_instances: Sequence[int] = (1, 2),
    intra_op_threads: Sequence[int] = (1, 2),
    max_batch_sizes: Sequence[int] = (16,),
    queue_delays_us: Sequence[int] = (0, 2000),
) -> list[TrialConfig]:
    """Every combination of the given values."""
    return [
        TrialConfig(*values)
        for values in itertools.product(
            preprocess_instances, classifier_instances, intra_op_threads, max_batch_sizes, queue_delays_us
        )
    ]


def choose(results: Sequence[TrialResult], p99_budget_ms: float) -> TrialResult | None:
    """Highest throughput among error-free trials within the p99 budget; lower p99 breaks ties."""
    eligible = [r for r in results if r.errors == 0 and r.p99_ms <= p99_budget_ms]
    if not eligible:
        return None
    return max(eligible, key=lambda r: (round(r.images_per_s, 1), -r.p99_ms))


def format_table(results: Sequence[TrialResult], chosen: TrialResult | None, p99_budget_ms: float) -> str:
    """The table the choice was made from, best throughput first."""
    lines = [f"{'configuration':<58} {'images/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}"]
    for result in sorted(results, key=lambda r: -r.images_per_s):
        mark = " <- chosen" if result is chosen else ("  (p99 over budget)" if result.p99_ms > p99_budget_ms else "")
        lines.append(
            f"{result.config.label():<58} {result.images_per_s:>9.1f} {result.p50_ms:>8.1f} "
            f"{result.p99_ms:>8.1f} {result.errors:>6}{mark}"
        )
    return "\n".join(lines)
