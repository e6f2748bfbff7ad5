"""The FP16 gate counts a top-1 flip only where FP32 was decisive; near-tie flips are reported apart."""

from __future__ import annotations

import numpy as np

from tritonclf.repository.accuracy_gate import GateThresholds, compare


def probabilities(top: float, second: float, classes: int = 10) -> np.ndarray:
    row = np.full(classes, (1.0 - top - second) / (classes - 2), dtype=np.float32)
    row[0], row[1] = top, second
    return row


def batch_with_one_flip(top: float, second: float, images: int = 32) -> tuple[np.ndarray, np.ndarray]:
    reference = np.stack([probabilities(0.8, 0.1)] * (images - 1) + [probabilities(top, second)])
    candidate = reference.copy()
    candidate[-1, [0, 1]] = candidate[-1, [1, 0]]  # the last image's top two swap places
    return reference, candidate


def test_one_near_tie_flip_in_32_images_passes_and_is_reported_apart():
    reference, candidate = batch_with_one_flip(0.401, 0.399)  # FP32 margin 0.002
    report = compare(reference, candidate)
    assert report.failures(GateThresholds()) == []
    assert report.top1_agreement == 1.0
    assert report.decisive_images == 31 and report.near_tie_flips == 1
    assert report.near_tie_margin == GateThresholds().near_tie_margin


def test_a_flip_where_fp32_was_decisive_still_fails():
    reference, candidate = batch_with_one_flip(0.6, 0.2)  # FP32 margin 0.4
    report = compare(reference, candidate)
    assert report.near_tie_flips == 0 and report.decisive_images == 32
    assert report.top1_agreement == 31 / 32
    assert report.failures(GateThresholds(max_mean_abs_delta=1.0)) == ["top-1 agreement 96.88% is below 99.50%"]


def test_the_near_tie_margin_is_a_threshold_of_its_own():
    reference, candidate = batch_with_one_flip(0.45, 0.35)  # FP32 margin 0.1
    assert compare(reference, candidate, near_tie_margin=0.2).near_tie_flips == 1
    assert compare(reference, candidate, near_tie_margin=0.05).near_tie_flips == 0


def test_with_only_near_ties_top1_agreement_has_nothing_to_fail_on():
    reference, candidate = batch_with_one_flip(0.401, 0.399, images=1)
    report = compare(reference, candidate)
    assert report.decisive_images == 0 and report.near_tie_flips == 1 and report.top1_agreement == 1.0
