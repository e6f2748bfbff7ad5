"""The tuner's choice: best throughput within the p99 budget, error-free; its sweep and its table."""

from __future__ import annotations

import numpy as np
import pytest

from tritonclf.repository.tuning import TrialConfig, TrialResult, choose, closed_loop, format_table, percentile, sweep

A = TrialConfig(1, 1, 2, 16, 0)
B = TrialConfig(2, 1, 1, 16, 0)
C = TrialConfig(2, 2, 1, 16, 2000)


def test_sweep_is_the_full_product():
    configs = sweep((1, 2), (1,), (1, 2), (8, 16), (0,))
    assert len(configs) == 8 and len(set(configs)) == 8
    assert TrialConfig(2, 1, 2, 16, 0) in configs


def test_choose_takes_the_fastest_within_budget_and_without_errors():
    results = [
        TrialResult(A, 90.0, 80, 120, 0),
        TrialResult(B, 120.0, 90, 400, 0),  # fastest, but over the budget
        TrialResult(C, 110.0, 85, 200, 0),
        TrialResult(TrialConfig(3, 1, 1, 16, 0), 130.0, 70, 100, 2),  # errors disqualify
    ]
    assert choose(results, p99_budget_ms=250).config == C
    assert choose(results, p99_budget_ms=50) is None


def test_ties_prefer_lower_p99():
    results = [TrialResult(A, 100.0, 80, 200, 0), TrialResult(B, 100.04, 80, 150, 0)]
    assert choose(results, 250).config == B


def test_percentile_matches_numpy():
    values = list(np.random.default_rng(1).random(101))
    for q in (0, 50, 90, 99, 100):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q))


def test_table_marks_the_choice_and_the_budget():
    results = [TrialResult(A, 90.0, 80, 120, 0), TrialResult(B, 120.0, 90, 400, 0)]
    table = format_table(results, results[0], 250)
    assert table.splitlines()[1].endswith("(p99 over budget)")
    assert table.splitlines()[2].endswith("<- chosen")


def test_closed_loop_counts_successes_and_errors():
    calls = []

    def classify(image):
        calls.append(image)
        if image == b"bad":
            raise RuntimeError("rejected")

    rate, latencies, errors = closed_loop(classify, [b"good", b"bad"], concurrency=2, duration_s=0.2)
    assert errors > 0 and len(latencies) > 0 and rate > 0
    assert len(calls) == errors + len(latencies)
