"""The benchmark's pure helpers: percentiles, Triton statistics diffs, tables, image generation. No server."""

from __future__ import annotations

import argparse
import io
import random
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clients.benchmark import (
    crop_box,
    diff_model_stats,
    diff_statistics,
    format_table,
    generate_images,
    latency_comparison,
    latency_summary,
    outside_server,
    parse_int_list,
    parse_size,
    percentile,
    preprocess_mismatches,
    request_counts,
    run_closed_loop,
    stats_by_model,
    throughput_table,
)
from clients.triton_client import InferenceFailed
from tritonclf.preprocess import DecodeLimits, PreprocessSpec

SAMPLES = Path(__file__).resolve().parents[1] / "clients" / "samples"


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


def test_percentile_matches_numpy_linear_interpolation():
    """Same numbers as numpy's default method, whatever the order of the input."""
    values = [random.Random(seed).uniform(0, 100) for seed in range(37)]
    for q in (0, 1, 50, 90, 99, 100):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q))


def test_percentile_of_one_value_and_of_nothing():
    """One sample is every percentile; an empty run has none (None, since JSON has no NaN)."""
    assert percentile([0.25], 99) == 0.25
    assert percentile([], 50) is None


def test_latency_summary_reports_milliseconds():
    """Latencies are measured in seconds and reported in ms."""
    summary = latency_summary([0.010, 0.020, 0.030])
    assert summary["p50_ms"] == pytest.approx(20.0)
    assert summary["mean_ms"] == pytest.approx(20.0)
    assert latency_summary([]) == {"p50_ms": None, "p90_ms": None, "p99_ms": None, "mean_ms": None}


def test_parse_size_and_levels_accept_the_documented_forms():
    """``1280x960`` and ``1,8`` as on the command line."""
    assert parse_size("1280x960") == (1280, 960)
    assert parse_int_list("1,8") == (1, 8)
    assert parse_int_list("4") == (4,)


@pytest.mark.parametrize("text", ["1280", "x960", "0x10", "axb"])
def test_parse_size_rejects_malformed_sizes(text):
    """argparse turns these into a one-line usage error."""
    with pytest.raises(argparse.ArgumentTypeError):
        parse_size(text)


@pytest.mark.parametrize("text", ["", "0,8", "1,eight", "-1"])
def test_parse_int_list_rejects_non_positive_or_non_integers(text):
    """Concurrency levels are positive integers."""
    with pytest.raises(argparse.ArgumentTypeError):
        parse_int_list(text)


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


def test_format_table_aligns_the_first_column_left_and_the_others_right():
    """Names read left to right, numbers line up on their last digit."""
    text = format_table(["name", "value"], [["a", "1.5"], ["longer", "10.25"]])
    assert text.splitlines() == ["name    value", "------  -----", "a         1.5", "longer  10.25"]


def _served(concurrency: int, images_per_s: float, p50_ms: float, mean_ms: float = 12.0) -> dict:
    latency = {"mean_ms": mean_ms, "p50_ms": p50_ms, "p90_ms": p50_ms * 2, "p99_ms": p50_ms * 3}
    ensemble = {"request_ms": 9.0}
    return {
        "protocol": "grpc",
        "concurrency": concurrency,
        "images_per_s": images_per_s,
        "latency": latency,
        "errors": 0,
        "server_stats": [ensemble],
    }


def _local(batch_size: int, images_per_s: float, p50_ms: float) -> dict:
    latency = {"mean_ms": p50_ms, "p50_ms": p50_ms, "p90_ms": p50_ms, "p99_ms": p50_ms}
    return {"batch_size": batch_size, "images_per_s": images_per_s, "batch_latency": latency}


def test_throughput_table_shows_served_over_in_process_ratios():
    """Each served level is divided by each in-process batch size's throughput."""
    served = [_served(1, 50.0, 15.0), _served(8, 80.0, 90.0)]
    table = throughput_table(served, [_local(1, 100.0, 8.0), _local(8, 160.0, 50.0)])
    rows = {line.split("  ")[0].strip(): line.split() for line in table.splitlines()[2:]}
    assert rows["served grpc c=1"][-2:] == ["0.50x", "0.31x"]
    assert rows["served grpc c=8"][-2:] == ["0.80x", "0.50x"]
    assert rows["in-process batch 8"][3] == "160.0"


def test_latency_comparison_uses_c1_p50_against_single_image_in_process():
    """The extra time one request pays for being served."""
    line = latency_comparison([_served(8, 80.0, 90.0), _served(1, 50.0, 15.0)], [_local(1, 100.0, 10.0)])
    assert "15.0 ms vs in-process 10.0 ms (+5.0 ms, 1.50x)" in line
    assert latency_comparison([_served(8, 80.0, 90.0)], [_local(1, 100.0, 10.0)]) is None


def test_outside_server_splits_client_latency_at_the_ensemble():
    """Client mean minus the ensemble's mean time inside Triton."""
    assert "12.00 ms at the client = 9.00 ms inside the ensemble +3.00 ms outside" in outside_server(_served(1, 1, 1))


def test_preprocess_mismatches_flags_a_server_decoding_differently():
    """No draft decode on the server would make the in-process reference unfair."""
    spec = PreprocessSpec(input_size=(224, 224))

    def as_config(params: dict[str, str]) -> dict:
        return {key: {"string_value": value} for key, value in params.items()}

    same = as_config({**spec.to_parameters(), **DecodeLimits().to_parameters()})
    assert preprocess_mismatches(same, spec, DecodeLimits()) == []
    no_draft = as_config({**spec.to_parameters(), **DecodeLimits(jpeg_draft=False).to_parameters()})
    assert len(preprocess_mismatches(no_draft, spec, DecodeLimits())) == 1
    other_size = as_config({**PreprocessSpec(input_size=(256, 256)).to_parameters(), **DecodeLimits().to_parameters()})
    assert "spec" in preprocess_mismatches(other_size, spec, DecodeLimits())[0]


def test_crop_box_keeps_the_target_aspect_inside_the_image():
    """Any crop fits in the photo and has (about) the output's aspect ratio."""
    for seed in range(50):
        left, top, right, bottom = crop_box(451, 300, 4 / 3, random.Random(seed))
        assert 0 <= left < right <= 451 and 0 <= top < bottom <= 300
        assert (right - left) / (bottom - top) == pytest.approx(4 / 3, rel=0.02)


def test_generate_images_makes_distinct_jpegs_of_the_exact_size_reproducibly():
    """Real photos, exact size, no two byte-identical, the same bytes on every call."""
    sources = [p.read_bytes() for p in sorted(SAMPLES.glob("*.jpg"))][:2]
    images = generate_images(sources, (160, 120), 6)
    assert len(images) == 6 and len(set(images)) == 6
    for data in images:
        with Image.open(io.BytesIO(data)) as image:
            assert (image.format, image.size) == ("JPEG", (160, 120))
    assert generate_images(sources, (160, 120), 6) == images


def test_closed_loop_stops_by_time_and_counts_failures_by_status():
    """A fake server: one image is rejected, the others answer in about 1 ms; nothing runs past the deadline."""

    def classify(image: bytes) -> None:
        time.sleep(0.001)
        if image == b"bad":
            raise InferenceFailed("not an image", "INVALID_ARGUMENT")
        if image == b"bug":
            raise KeyError("label")

    result = run_closed_loop(classify, [b"ok", b"bad", b"ok", b"bug"], concurrency=2, duration_s=0.2)

    assert 0.2 <= result.elapsed_s < 1.0
    assert result.latencies_s and all(latency >= 0.001 for latency in result.latencies_s)
    # Two threads with stride 2 over four images: one thread sends only "ok", the other alternates the bad ones.
    assert set(result.errors) == {"INVALID_ARGUMENT", "KeyError"}
    assert result.first_error.startswith(("INVALID_ARGUMENT: not an image", "KeyError"))
