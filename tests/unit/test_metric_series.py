"""Which classes get a series of their own, and the plan the build writes for the served models."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tritonclf.monitoring.reference import Reference, reference_from_probabilities, score_bucket_counts
from tritonclf.monitoring.series import (
    OTHER_CLASS,
    REASONS,
    SCORE_BUCKETS,
    bucket_label,
    class_series,
    metrics_plan,
    unique_label_values,
)
from tritonclf.preprocess import REJECTION_REASONS


def test_a_small_model_gets_one_series_per_class():
    series = class_series(["cat", "dog", "fox"], max_series=3)
    assert series.names == ("cat", "dog", "fox")
    assert series.index_to_series == (0, 1, 2)
    assert not series.has_other


def test_a_1000_class_model_gets_the_reference_s_most_frequent_classes_and_other():
    labels = [f"class {i}" for i in range(1000)]
    shares = np.zeros(1000)
    shares[[7, 500, 999]] = [0.5, 0.3, 0.2]
    series = class_series(labels, shares, max_series=50)
    tracked = {labels[i] for i in range(1000) if series.index_to_series[i] != len(series.names) - 1}
    assert tracked == {"class 7", "class 500", "class 999"}  # classes the reference never predicts share "other"
    assert series.names == ("class 7", "class 500", "class 999", OTHER_CLASS)
    many = np.full(1000, 0.28 / 940)
    many[:60] = 0.012  # 60 classes above 1%: the 49 first of them get series
    assert len(class_series(labels, many, max_series=50).names) == 50
    many[10] = 0.02  # a more frequent one gets in first
    assert "class 10" in class_series(labels, many, max_series=2).names
    assert len(class_series(labels, many, max_series=50).names) == 50
    # Without a reference: the first classes by index.
    plain = class_series(labels, max_series=50)
    assert plain.names[:3] == ("class 0", "class 1", "class 2")
    assert plain.index_to_series[49] == 49  # "other"
    assert plain.shares([1 / 1000] * 1000)[OTHER_CLASS] == pytest.approx(951 / 1000)


def test_repeated_labels_stay_distinct_series():
    # ImageNet has two "crane" classes (a bird and a machine).
    assert unique_label_values(["crane", "dog", "crane", "other"]) == ["crane #0", "dog", "crane #2", "other #3"]


def test_bucket_labels_are_written_as_triton_writes_them():
    assert [bucket_label(b) for b in (0.1, 0.5, 1.0, 4096.0, 67108864.0)] == ["0.1", "0.5", "1", "4096", "67108864"]


def test_every_rejection_reason_and_internal_errors_are_counted():
    plan = metrics_plan(ensemble="m", role="inputs")
    assert plan["reasons"] == [*REJECTION_REASONS, "internal"] == list(REASONS)
    json.dumps(plan)


def test_predictions_plan_carries_the_reference_in_the_served_series():
    labels = ["cat", "dog", "fox"]
    probabilities = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.4, 0.35, 0.25], [0.8, 0.1, 0.1]])
    reference = reference_from_probabilities(probabilities, labels, [0, 1, 2, 0], source="val")
    assert reference.predicted_counts == (3, 1, 0)
    assert reference.label_counts == (2, 1, 1)
    assert reference.share_at_or_below(0.4) == pytest.approx(0.25)
    assert reference.share_at_or_below(0.8) == pytest.approx(0.75)  # 0.8 itself is "at most 0.8"
    series = class_series(labels)
    plan = metrics_plan(
        ensemble="m",
        role="predictions",
        series=series,
        reference={"class_shares": series.shares(reference.predicted_shares), "top1_score_shares": [0.0]},
    )
    assert plan["reference"]["class_shares"] == {"cat": 0.75, "dog": 0.25, "fox": 0.0}
    assert Reference.from_dict(json.loads(json.dumps(reference.to_dict()))) == reference


def test_scores_are_bucketed_like_a_prometheus_histogram():
    counts = score_bucket_counts(np.array([0.05, 0.1, 0.1000001, 0.5, 0.999, 1.0]))
    assert len(counts) == len(SCORE_BUCKETS) + 1
    assert counts[0] == 2  # 0.05 and 0.1 (le="0.1" is inclusive)
    assert counts[1] == 1
    assert counts[-1] == 2  # above 0.99


def test_a_reference_that_does_not_add_up_is_refused():
    with pytest.raises(ValueError, match="add up"):
        Reference(3, ("a", "b"), (1, 1), (), SCORE_BUCKETS, (3, *[0] * len(SCORE_BUCKETS)))
