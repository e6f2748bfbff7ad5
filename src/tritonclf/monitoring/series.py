"""The served metrics' names, buckets and labels, and which classes get a series of their own.

One source for the Python-backend models (the build writes a plan file beside them), the
monitor, the alerting rules and the dashboard in ``deploy/monitoring/`` (a unit test checks
that every name they use is defined here).

A 1000-class model must not make 1000 series per version: at most ``max_class_series``
series count predictions by class. A model with that many classes or fewer gets one per
class; a larger one gets one for each of the ``max_class_series - 1`` classes the reference
predicts most often on the validation set, among those it predicts for at least
``MIN_TRACKED_SHARE`` of it (classes it predicts once or twice would only add noise to the
drift measure), and ``other`` for the rest. Without a reference such a model's series are
its first classes by index and ``other``: record a reference.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from tritonclf.preprocess import REJECTION_REASONS

PREFIX = "tritonclf_"
PREDICTIONS = "tritonclf_predictions_total"  # counter {class}
TOP1_SCORE = "tritonclf_top1_score"  # histogram of the top-1 probability
REJECTED_INPUTS = "tritonclf_rejected_inputs_total"  # counter {reason}
IMAGE_BYTES = "tritonclf_image_bytes"  # histogram: the image file's size (base64 unwrapped)
IMAGE_MEGAPIXELS = "tritonclf_image_megapixels"  # histogram: width x height before any resize
PREPROCESS_SECONDS = "tritonclf_preprocess_seconds"  # histogram: decode + resize + crop + normalize
REFERENCE_CLASS_SHARE = "tritonclf_reference_class_share"  # gauge {class}: the validation set's share
REFERENCE_TOP1_SCORE_SHARE = "tritonclf_reference_top1_score_share"  # gauge {le}: share with top-1 <= le
CAPTURED_IMAGES = "tritonclf_captured_images_total"  # counter: low-confidence images saved
CAPTURE_SKIPPED = "tritonclf_capture_skipped_total"  # counter {reason}: low-confidence images not saved
METRIC_NAMES = (
    PREDICTIONS,
    TOP1_SCORE,
    REJECTED_INPUTS,
    IMAGE_BYTES,
    IMAGE_MEGAPIXELS,
    PREPROCESS_SECONDS,
    REFERENCE_CLASS_SHARE,
    REFERENCE_TOP1_SCORE_SHARE,
    CAPTURED_IMAGES,
    CAPTURE_SKIPPED,
)

# Every series carries these: the ensemble clients call, and the Triton model and version that
# record it (the same ``model`` and ``version`` as Triton's own nv_* metrics).
ENSEMBLE_LABEL, MODEL_LABEL, VERSION_LABEL = "ensemble", "model", "version"
CLASS_LABEL, REASON_LABEL = "class", "reason"
OTHER_CLASS = "other"
# Failures that are not the input's fault, counted beside the rejections.
INTERNAL_ERROR = "internal"
REASONS = (*REJECTION_REASONS, INTERNAL_ERROR)
CAPTURE_SKIP_REASONS = ("rate_limited", "queue_full", "disk_budget", "disk_full", "write_error")

DEFAULT_MAX_CLASS_SERIES = 50
MIN_TRACKED_SHARE = 0.01
# Upper bucket bounds (Prometheus ``le``). The low-confidence threshold of the monitor and the
# alerts must be one of the score bounds.
SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
LOW_CONFIDENCE = 0.5
BYTES_BUCKETS = tuple(float(4**k * 1024) for k in range(1, 9))  # 4 KiB .. 64 MiB
MEGAPIXELS_BUCKETS = (0.01, 0.1, 0.3, 1.0, 2.0, 5.0, 12.0, 24.0, 48.0, 64.0)
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def bucket_label(bound: float) -> str:
    """An ``le`` label value as Triton (prometheus-cpp) writes it: ``0.5``, ``1``, ``4096``."""
    return f"{bound:g}" if bound < 1e6 else str(int(bound))


@dataclasses.dataclass(frozen=True)
class ClassSeries:
    """Which class series a model has, and where each class index is counted."""

    names: tuple[str, ...]  # the ``class`` label values, ``other`` last when some classes share it
    index_to_series: tuple[int, ...]  # class index -> position in ``names``

    @property
    def has_other(self) -> bool:
        """Whether some classes are counted together under ``other`` (a class label ``other`` is renamed)."""
        return bool(self.names) and self.names[-1] == OTHER_CLASS

    def shares(self, class_shares: Sequence[float]) -> dict[str, float]:
        """Per-class shares (one per class index) summed into these series."""
        out = dict.fromkeys(self.names, 0.0)
        for index, share in enumerate(class_shares):
            out[self.names[self.index_to_series[index]]] += float(share)
        return out


def unique_label_values(labels: Sequence[str]) -> list[str]:
    """Class labels as label values; a label that repeats (ImageNet has two "crane"s) gets its index."""
    seen: dict[str, int] = {}
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
    return [label if seen[label] == 1 and label != OTHER_CLASS else f"{label} #{i}" for i, label in enumerate(labels)]


def class_series(
    labels: Sequence[str], reference_shares: Sequence[float] | None = None, max_series: int = DEFAULT_MAX_CLASS_SERIES
) -> ClassSeries:
    """Tracked classes for a model with these labels: all of them, or the most frequent and ``other``."""
    if max_series < 2:
        raise ValueError(f"at least 2 class series are needed (one class and {OTHER_CLASS}), not {max_series}")
    values = unique_label_values(labels)
    if len(values) <= max_series:
        return ClassSeries(tuple(values), tuple(range(len(values))))
    if reference_shares is None:
        tracked = list(range(max_series - 1))
    else:
        shares = list(reference_shares)
        if len(shares) != len(values):
            raise ValueError(f"the reference has {len(shares)} classes, the model {len(values)}")
        frequent = [i for i in range(len(values)) if shares[i] >= MIN_TRACKED_SHARE]
        tracked = sorted(sorted(frequent, key=lambda i: (-shares[i], i))[: max_series - 1])
    position = {index: k for k, index in enumerate(tracked)}
    other = len(tracked)
    return ClassSeries(
        (*(values[i] for i in tracked), OTHER_CLASS), tuple(position.get(i, other) for i in range(len(values)))
    )


def metrics_plan(
    *,
    ensemble: str,
    role: str,
    series: ClassSeries | None = None,
    reference: Mapping | None = None,
    capture: Mapping | None = None,
) -> dict:
    """What a Python-backend model records, as JSON for the file the build writes beside it.

    ``role`` is ``inputs`` (the preprocessing model) or ``predictions`` (the model that sees the
    probabilities). ``reference`` maps ``class_shares`` (per series) and ``top1_score_shares``
    (per score bucket) for the reference gauges.
    """
    plan: dict = {
        "ensemble": ensemble,
        "role": role,
        "labels": {"ensemble": ENSEMBLE_LABEL, "model": MODEL_LABEL, "version": VERSION_LABEL},
    }
    if role == "inputs":
        plan["families"] = {
            "rejected": REJECTED_INPUTS,
            "bytes": IMAGE_BYTES,
            "megapixels": IMAGE_MEGAPIXELS,
            "seconds": PREPROCESS_SECONDS,
        }
        plan["reason_label"] = REASON_LABEL
        plan["reasons"] = list(REASONS)
        plan["internal_reason"] = INTERNAL_ERROR
        plan["buckets"] = {
            "bytes": list(BYTES_BUCKETS),
            "megapixels": list(MEGAPIXELS_BUCKETS),
            "seconds": list(SECONDS_BUCKETS),
        }
        return plan
    if role != "predictions" or series is None:
        raise ValueError("a predictions plan needs the class series; role is inputs or predictions")
    plan["families"] = {
        "predictions": PREDICTIONS,
        "score": TOP1_SCORE,
        "reference_class": REFERENCE_CLASS_SHARE,
        "reference_score": REFERENCE_TOP1_SCORE_SHARE,
        "captured": CAPTURED_IMAGES,
        "capture_skipped": CAPTURE_SKIPPED,
    }
    plan["class_label"] = CLASS_LABEL
    plan["classes"] = list(series.names)
    plan["index_to_series"] = list(series.index_to_series)
    plan["buckets"] = {"score": list(SCORE_BUCKETS)}
    plan["bucket_labels"] = {"score": [bucket_label(b) for b in SCORE_BUCKETS]}
    plan["reference"] = dict(reference) if reference else None
    plan["capture"] = dict(capture) if capture else None
    plan["capture_skip_reasons"] = list(CAPTURE_SKIP_REASONS)
    plan["reason_label"] = REASON_LABEL
    return plan
