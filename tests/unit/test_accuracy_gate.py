"""The FP16 accuracy gate's arithmetic, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from tritonclf.repository.accuracy_gate import GateThresholds, compare


def test_compare_arithmetic_by_hand():
    reference = np.array([[0.7, 0.2, 0.1, 0, 0, 0], [0.1, 0.6, 0.3, 0, 0, 0]], dtype=np.float32)
    candidate = np.array([[0.6, 0.3, 0.1, 0, 0, 0], [0.1, 0.3, 0.6, 0, 0, 0]], dtype=np.float32)
    report = compare(reference, candidate)
    assert report.images == 2
    assert report.top1_agreement == 0.5
    assert report.max_abs_delta == pytest.approx(0.3)
    assert report.mean_abs_delta == pytest.approx((0.1 + 0.1 + 0.3 + 0.3) / 12)
    assert report.top5_overlap == 1.0
    assert report.failures(GateThresholds()) == [
        "top-1 agreement 50.00% is below 99.50%",
        f"mean |delta probability| {report.mean_abs_delta:.2e} is above 1e-03",
    ]
