"""The benchmark's arithmetic: percentiles, ratios, the compute limit, Triton statistics diffs. No server."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

from tritonclf_lab.bench.stats import compute_limit, latency_summary, ratio, usable_cores
from tritonclf_lab.bench.triton_stats import diff_model_stats, diff_statistics, request_counts, stats_by_model


def _phase(count: int, ns: int) -> dict:
    # gRPC's as_json gives 64-bit integers as strings.
    return {"count": str(count), "ns": str(ns)} if count else {}


def _entry(name: str, requests: int, inferences: int, executions: int, ms: dict[str, float], batches: dict) -> dict:
    """A statistics entry shaped like Triton's gRPC JSON, with every phase at ``ms`` per request."""
    stats = {"success": _phase(requests, int(ms["success"] * 1e6 * requests)), "fail": {}}
    for phase in ("queue", "compute_input", "compute_infer", "compute_output"):
        stats[phase] = _phase(requests, int(ms[phase] * 1e6 * requests))
    return {
        "name": name,
        "version": "1",
        "inference_count": str(inferences),
        "execution_count": str(executions),
        "inference_stats": stats,
        "batch_stats": [
            {"batch_size": str(size), "compute_infer": _phase(count, int(ns))} for size, (count, ns) in batches.items()
        ],
    }


PHASES_1MS = {"success": 10.0, "queue": 1.0, "compute_input": 0.5, "compute_infer": 8.0, "compute_output": 0.5}


def test_latency_summary_is_numpys_percentile_in_milliseconds_whatever_the_order():
    """numpy's default (linear) percentiles of the seconds, reported in ms; order and ties change nothing."""
    values = [random.Random(seed).uniform(0, 1) for seed in range(37)]
    summary = latency_summary(values)
    for q in (50, 90, 99):
        assert summary[f"p{q}_ms"] == pytest.approx(np.percentile(values, q) * 1e3)
    assert latency_summary(sorted(values, reverse=True)) == pytest.approx(summary)
    assert latency_summary([0.25])["p99_ms"] == pytest.approx(250.0)


def test_latency_summary_reports_milliseconds():
    """Latencies are measured in seconds and reported in ms."""
    summary = latency_summary([0.010, 0.020, 0.030])
    assert summary["p50_ms"] == pytest.approx(20.0)
    assert summary["mean_ms"] == pytest.approx(20.0)
    assert latency_summary([]) == {"p50_ms": None, "p90_ms": None, "p99_ms": None, "mean_ms": None}


def test_ratio_is_none_when_either_side_is_missing_or_zero():
    """A missing reference gives no ratio rather than a crash or an infinite one."""
    assert ratio(90.0, 120.0) == pytest.approx(0.75)
    assert ratio(None, 1.0) is None and ratio(1.0, None) is None and ratio(1.0, 0.0) is None
    assert ratio(0.0, 2.0) == 0.0


def test_compute_limit_is_cores_times_images_per_core_second():
    """4 ms decode + 6 ms model per image on one core: 100 images/core-s, 200 on two cores."""
    limit = compute_limit(2, 0.004, 0.006)
    assert limit["cpu_ms_per_image"] == pytest.approx(10.0)
    assert limit["images_per_core_s"] == pytest.approx(100.0)
    assert limit["images_per_s"] == pytest.approx(200.0)
    assert (limit["decode_cpu_ms_per_image"], limit["infer_cpu_ms_per_image"]) == (
        pytest.approx(4.0),
        pytest.approx(6.0),
    )


@pytest.mark.parametrize(("cores", "decode_s", "infer_s"), [(0, 0.01, 0.01), (2, 0.0, 0.0), (2, -0.01, 0.0)])
def test_compute_limit_rejects_impossible_inputs(cores, decode_s, infer_s):
    """No cores or no CPU time would divide by zero: a clear error instead."""
    with pytest.raises(ValueError, match="positive"):
        compute_limit(cores, decode_s, infer_s)


def test_usable_cores_follows_the_affinity_mask():
    """What taskset allows, not the machine's core count."""
    assert usable_cores() == len(os.sched_getaffinity(0))


def test_diff_model_stats_averages_only_the_requests_between_snapshots():
    """Earlier traffic is subtracted; averages are per request, batch size is inferences / executions."""
    before = _entry("m", 100, 100, 100, PHASES_1MS, {1: (100, 800e6)})
    slow = {**PHASES_1MS, "queue": 5.0, "compute_infer": 20.0}
    # 40 more requests, run as 10 executions of batch 4 taking 20 ms each.
    after = _entry("m", 140, 140, 110, {k: 0.0 for k in PHASES_1MS}, {1: (100, 800e6), 4: (10, 200e6)})
    for phase, ms in slow.items():
        after["inference_stats"][phase] = _phase(140, int(PHASES_1MS[phase] * 1e6 * 100 + ms * 1e6 * 40))

    timing = diff_model_stats("m", before, after)

    assert (timing.requests, timing.inferences, timing.executions) == (40, 40, 10)
    assert timing.average_batch == pytest.approx(4.0)
    assert timing.queue_ms == pytest.approx(5.0)
    assert timing.compute_infer_ms == pytest.approx(20.0)
    assert timing.request_ms == pytest.approx(10.0)
    assert timing.executions_by_batch_size == {4: 10}
    # Ten 20 ms executions for 40 images: 5 ms of compute per image, not the 20 ms each request waited.
    assert timing.infer_ms_per_image == pytest.approx(5.0)


def test_diff_model_stats_of_a_model_first_seen_after_the_snapshot():
    """A model absent before counts from zero; an idle model gives no averages, not a division by zero."""
    after = _entry("m", 3, 3, 3, PHASES_1MS, {1: (3, 24e6)})
    timing = diff_model_stats("m", None, after)
    assert timing.requests == 3
    assert timing.compute_infer_ms == pytest.approx(8.0)

    idle = diff_model_stats("m", after, after)
    assert idle.requests == 0 and idle.queue_ms is None and idle.average_batch is None
    assert idle.infer_ms_per_image is None and idle.executions_by_batch_size == {}


def test_diff_model_stats_reads_http_integers_and_counts_failures():
    """HTTP's JSON has real integers; failed requests are reported apart from successes."""
    after = {
        "name": "m",
        "inference_count": 2,
        "execution_count": 1,
        "inference_stats": {"success": {"count": 2, "ns": 4_000_000}, "fail": {"count": 1, "ns": 1_000_000}},
    }
    timing = diff_model_stats("m", None, after)
    assert (timing.requests, timing.failures, timing.request_ms) == (2, 1, pytest.approx(2.0))
    assert timing.queue_ms is None


def test_diff_statistics_lists_the_ensemble_then_its_steps():
    """Pipeline order, other models on the server ignored, missing steps skipped."""
    names = ["other", "clf_model", "clf", "clf_preprocess"]
    response = {"model_stats": [_entry(n, 1, 1, 1, PHASES_1MS, {}) for n in names]}
    assert [t.name for t in diff_statistics(response, response, "clf")] == ["clf", "clf_preprocess", "clf_model"]
    partial = {"model_stats": [_entry("clf", 1, 1, 1, PHASES_1MS, {})]}
    assert [t.name for t in diff_statistics(partial, partial, "clf")] == ["clf"]


def test_stats_by_model_keeps_the_newest_version():
    """Two loaded versions of one model: the benchmark reads the newest."""
    old, new = _entry("m", 1, 1, 1, PHASES_1MS, {}), _entry("m", 9, 9, 9, PHASES_1MS, {})
    old["version"], new["version"] = "10", "2"
    assert stats_by_model({"model_stats": [old, new]})["m"] is old


def test_request_counts_track_successes_and_failures_per_model():
    """What settling compares between two polls: unchanged counts mean every answered request is recorded."""
    entry = _entry("m", 4, 4, 2, PHASES_1MS, {})
    entry["inference_stats"]["fail"] = _phase(1, 5)
    assert request_counts({"model_stats": [entry, _entry("idle", 0, 0, 0, PHASES_1MS, {})]}) == {
        "m": (4, 1),
        "idle": (0, 0),
    }
