"""Compare what the served model answered over a window with its reference: the monitor's findings.

The class distribution is compared with the population stability index,
``PSI = sum((live - ref) * ln(live / ref))`` over the class series (each share plus
``PSI_EPSILON``, so a class seen on one side only counts without dividing by zero). The usual
reading: under 0.1 no change, 0.1-0.25 a moderate one, above 0.25 a shift. Sampling noise
alone gives a PSI of about ``(series - 1) / predictions`` (plus the same for the reference's
own sample), so the class check waits for ``min_predictions`` (default: 10 per series).

The share of low-confidence answers (top-1 score at most ``low_confidence``) is compared
with the reference's as a difference in percentage points; the rejection rate is the share
of inputs the preprocessing refused. Each check is one finding: ``ok``, ``alert`` past its
threshold, or ``skip`` when the window has too little to judge.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from tritonclf.monitoring.reference import Reference
from tritonclf.monitoring.series import INTERNAL_ERROR, LOW_CONFIDENCE, OTHER_CLASS, bucket_label, unique_label_values

PSI_EPSILON = 0.001
PREDICTIONS_PER_SERIES = 10
MIN_SCORES = 100  # predictions before the low-confidence share is judged
MIN_INPUTS = 20  # inputs before the rejection rate is judged


@dataclasses.dataclass(frozen=True)
class Window:
    """What the served ensemble did over a window (counter increases)."""

    seconds: float
    class_counts: Mapping[str, float]  # class series -> top-1 predictions
    score_at_or_below: Mapping[str, float]  # ``le`` label -> predictions with top-1 score at most it
    scores: float  # predictions in the score histogram
    rejected: Mapping[str, float]  # reason -> inputs
    accepted: float  # images the preprocessing accepted
    cache_hits: float = 0.0  # answered by Triton's response cache: in no count above

    @property
    def predictions(self) -> float:
        """Top-1 predictions counted by class."""
        return sum(self.class_counts.values())


@dataclasses.dataclass(frozen=True)
class Expected:
    """The reference in the served series: class shares and cumulative score shares."""

    class_shares: Mapping[str, float]
    score_at_or_below: Mapping[str, float]  # ``le`` label -> share
    source: str  # where it was read: the metrics' gauges or a file


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Past these a finding is an alert."""

    max_psi: float = 0.25
    low_confidence: float = LOW_CONFIDENCE
    max_low_confidence_rise: float = 0.15  # share points above the reference's
    max_rejection_rate: float = 0.05
    min_predictions: int | None = None  # None: PREDICTIONS_PER_SERIES per class series


@dataclasses.dataclass(frozen=True)
class Finding:
    """One check's outcome and its line for the user."""

    check: str
    status: str  # "ok", "alert" or "skip"
    line: str
    value: float | None = None

    def to_dict(self) -> dict:
        """JSON-ready."""
        return dataclasses.asdict(self)


def psi(live_counts: Mapping[str, float], expected_shares: Mapping[str, float]) -> float:
    """Population stability index of live counts against expected shares, over the union of their keys."""
    total = sum(live_counts.values())
    expected_total = sum(expected_shares.values()) or 1.0
    value = 0.0
    for key in set(live_counts) | set(expected_shares):
        live = (live_counts.get(key, 0.0) / total if total else 0.0) + PSI_EPSILON
        expected = expected_shares.get(key, 0.0) / expected_total + PSI_EPSILON
        value += (live - expected) * math.log(live / expected)
    return value


def expected_from_reference(reference: Reference, live_series: set[str], source: str) -> Expected:
    """A reference file's shares in the live class series (classes without a series of their own -> ``other``)."""
    shares: dict[str, float] = {}
    for name, share in zip(unique_label_values(reference.class_names), reference.predicted_shares, strict=True):
        key = name if name in live_series or OTHER_CLASS not in live_series else OTHER_CLASS
        shares[key] = shares.get(key, 0.0) + share
    scores = dict(
        zip((bucket_label(b) for b in reference.score_buckets), reference.score_shares_at_or_below(), strict=True)
    )
    return Expected(shares, scores, source)


def _percent(share: float) -> str:
    return f"{100 * share:.1f}%"


def class_finding(window: Window, expected: Expected | None, thresholds: Thresholds) -> Finding:
    """PSI of the class distribution."""
    series = len(set(window.class_counts) | set(expected.class_shares if expected else {}))
    needed = thresholds.min_predictions or PREDICTIONS_PER_SERIES * max(series, 1)
    n = window.predictions
    if expected is None:
        return Finding(
            "class_distribution", "skip", "class distribution: no reference to compare with (see --reference)"
        )
    if n < needed:
        return Finding(
            "class_distribution",
            "skip",
            f"class distribution: {n:.0f} predictions, fewer than the {needed} needed to judge {series} class series",
        )
    value = psi(window.class_counts, expected.class_shares)
    status = "alert" if value > thresholds.max_psi else "ok"
    movers = sorted(
        window.class_counts,
        key=lambda k: -abs(window.class_counts[k] / n - expected.class_shares.get(k, 0.0)),
    )[:3]
    moved = ", ".join(
        f"{k} {_percent(window.class_counts[k] / n)} (ref {_percent(expected.class_shares.get(k, 0.0))})"
        for k in movers
    )
    return Finding(
        "class_distribution",
        status,
        f"class distribution: PSI {value:.3f} (threshold {thresholds.max_psi}) over {n:.0f} predictions "
        f"in {series} series; most changed: {moved}",
        value,
    )


def low_confidence_finding(window: Window, expected: Expected | None, thresholds: Thresholds) -> Finding:
    """Share of answers with top-1 score at most the threshold, against the reference's."""
    le = bucket_label(thresholds.low_confidence)
    if le not in window.score_at_or_below:
        return Finding("low_confidence", "skip", f"low-confidence share: {le} is not a bucket of the score histogram")
    if window.scores < MIN_SCORES:
        return Finding(
            "low_confidence", "skip", f"low-confidence share: {window.scores:.0f} predictions, fewer than {MIN_SCORES}"
        )
    live = window.score_at_or_below[le] / window.scores
    if expected is None or le not in expected.score_at_or_below:
        return Finding(
            "low_confidence", "skip", f"low-confidence share (top-1 <= {le}): {_percent(live)}, no reference", live
        )
    reference = expected.score_at_or_below[le]
    rise = live - reference
    status = "alert" if rise > thresholds.max_low_confidence_rise else "ok"
    return Finding(
        "low_confidence",
        status,
        f"low-confidence share (top-1 <= {le}): {_percent(live)} live vs {_percent(reference)} reference "
        f"({100 * rise:+.1f} points, threshold +{100 * thresholds.max_low_confidence_rise:.0f})",
        live,
    )


def rejection_finding(window: Window, thresholds: Thresholds) -> Finding:
    """Share of inputs refused (and failed inside the server), with the reasons."""
    rejected = sum(v for k, v in window.rejected.items() if k != INTERNAL_ERROR)
    internal = window.rejected.get(INTERNAL_ERROR, 0.0)
    inputs = window.accepted + rejected + internal
    reasons = ", ".join(f"{k} {v:.0f}" for k, v in sorted(window.rejected.items(), key=lambda kv: -kv[1]) if v >= 0.5)
    detail = f": {reasons}" if reasons else ""
    if inputs < MIN_INPUTS:
        return Finding(
            "rejection_rate", "skip", f"rejection rate: {inputs:.0f} inputs, fewer than {MIN_INPUTS}{detail}"
        )
    rate = (rejected + internal) / inputs
    status = "alert" if rate > thresholds.max_rejection_rate else "ok"
    return Finding(
        "rejection_rate",
        status,
        f"rejection rate: {_percent(rate)} ({rejected + internal:.0f} of {inputs:.0f} inputs; "
        f"threshold {_percent(thresholds.max_rejection_rate)}){detail}",
        rate,
    )


def assess(window: Window, expected: Expected | None, thresholds: Thresholds = Thresholds()) -> list[Finding]:
    """Every check on one window."""
    return [
        class_finding(window, expected, thresholds),
        low_confidence_finding(window, expected, thresholds),
        rejection_finding(window, thresholds),
    ]
