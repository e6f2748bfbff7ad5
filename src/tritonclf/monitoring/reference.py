"""The validation set as the served model should see it: the reference that drift is measured against.

Recorded next to the export (``reference.json``, named in ``model.json``) by
``tritonclf export --reference-data DIR`` or ``tritonclf evaluate --onnx ... --reference``:
how often the model predicts each class on the validation images (the distribution live
top-1 predictions are compared with), how often each class is the true one, and the
top-1 score distribution in the served histogram's buckets.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tritonclf.files import write_json_atomic
from tritonclf.monitoring.series import SCORE_BUCKETS

REFERENCE_FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Reference:
    """Top-1 predictions and scores of the exported model on its validation images."""

    n: int
    class_names: tuple[str, ...]
    predicted_counts: tuple[int, ...]  # per class index: validation images predicted as it
    label_counts: tuple[int, ...]  # per class index: validation images whose true class it is
    score_buckets: tuple[float, ...]  # upper bounds, as the served histogram's
    score_counts: tuple[int, ...]  # images with top-1 score in each bucket; the last one is above every bound
    source: str = ""  # the data it was computed on, for the record

    def __post_init__(self) -> None:
        """Catch a reference that does not add up before anything compares with it."""
        k = len(self.class_names)
        if len(self.predicted_counts) != k or len(self.label_counts) not in (0, k):
            raise ValueError(f"reference counts do not match its {k} classes")
        if len(self.score_counts) != len(self.score_buckets) + 1:
            raise ValueError("reference score counts need one bucket more than its bounds")
        if sum(self.predicted_counts) != self.n or sum(self.score_counts) != self.n:
            raise ValueError(f"reference counts do not add up to its {self.n} images")

    @property
    def predicted_shares(self) -> list[float]:
        """Share of validation images predicted as each class."""
        return [c / self.n for c in self.predicted_counts] if self.n else [0.0] * len(self.predicted_counts)

    def score_shares_at_or_below(self) -> list[float]:
        """For each score bound, the share of validation images whose top-1 score is at most it."""
        cumulative = np.cumsum(self.score_counts[:-1])
        return [float(c) / self.n if self.n else 0.0 for c in cumulative]

    def share_at_or_below(self, bound: float) -> float:
        """Share of validation images with top-1 score at most ``bound`` (one of the bucket bounds)."""
        if bound not in self.score_buckets:
            raise ValueError(f"{bound} is not a score bucket bound ({', '.join(map(str, self.score_buckets))})")
        return self.score_shares_at_or_below()[self.score_buckets.index(bound)]

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        data = dataclasses.asdict(self)
        data["class_names"] = list(self.class_names)
        data["format_version"] = REFERENCE_FORMAT_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Reference:
        """Inverse of :meth:`to_dict`."""
        if data.get("format_version") != REFERENCE_FORMAT_VERSION:
            raise ValueError(f"reference format {data.get('format_version')!r} is not {REFERENCE_FORMAT_VERSION}")
        return cls(
            n=int(data["n"]),
            class_names=tuple(data["class_names"]),
            predicted_counts=tuple(int(c) for c in data["predicted_counts"]),
            label_counts=tuple(int(c) for c in data["label_counts"]),
            score_buckets=tuple(float(b) for b in data["score_buckets"]),
            score_counts=tuple(int(c) for c in data["score_counts"]),
            source=str(data.get("source", "")),
        )


def score_bucket_counts(scores: np.ndarray, bounds: Sequence[float] = SCORE_BUCKETS) -> list[int]:
    """Scores per bucket as a Prometheus histogram counts them (``le``: at most the bound), plus one above all."""
    positions = np.searchsorted(np.asarray(bounds, dtype=np.float64), np.asarray(scores, dtype=np.float64), "left")
    return np.bincount(positions, minlength=len(bounds) + 1).tolist()


def reference_from_probabilities(
    probabilities: np.ndarray, class_names: Sequence[str], true_labels: Sequence[int] = (), source: str = ""
) -> Reference:
    """The reference of a model from its probabilities on the validation images (one row per image)."""
    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 2 or probabilities.shape[1] != len(class_names):
        raise ValueError(f"expected probabilities of shape (images, {len(class_names)}), got {probabilities.shape}")
    k = len(class_names)
    top1 = probabilities.argmax(axis=1)
    labels = np.bincount(np.asarray(true_labels, dtype=np.int64), minlength=k).tolist() if len(true_labels) else []
    return Reference(
        n=len(probabilities),
        class_names=tuple(class_names),
        predicted_counts=tuple(np.bincount(top1, minlength=k).tolist()),
        label_counts=tuple(labels),
        score_buckets=SCORE_BUCKETS,
        score_counts=tuple(score_bucket_counts(probabilities.max(axis=1))),
        source=source,
    )


def save_reference(path: Path, reference: Reference) -> None:
    """Write ``reference.json`` atomically."""
    write_json_atomic(path, reference.to_dict())


def load_reference(path: Path) -> Reference:
    """Read a ``reference.json``; one-line errors."""
    try:
        return Reference.from_dict(json.loads(Path(path).read_text()))
    except FileNotFoundError:
        raise FileNotFoundError(f"no reference at {path}: record one with tritonclf evaluate --reference") from None
    except (KeyError, TypeError, json.JSONDecodeError) as err:
        raise ValueError(f"reference {path} is malformed ({err}): record it again") from None
