"""From numbers to report: served over each reference, the performance targets, tables and CSV. No server."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tritonclf_lab.bench.compare import best_level, compare, images_per_core_s
from tritonclf_lab.bench.report import comparison_lines, format_table, outside_server, throughput_table
from tritonclf_lab.bench.results_csv import CSV_COLUMNS, to_csv


def _level(protocol: str, concurrency: int, images_per_s: float, p50_ms: float, subset: str = "mix") -> dict:
    return {
        "protocol": protocol,
        "concurrency": concurrency,
        "subset": subset,
        "images": 100,
        "images_per_s": images_per_s,
        "latency": {"p50_ms": p50_ms, "p90_ms": p50_ms * 2, "p99_ms": p50_ms * 3, "mean_ms": 12.0},
        "errors": 3,
        "unavailable": 2,
        "other_errors": 1,
        "client_cpu_cores": 0.05,
        "server_cpu_cores": 1.8,
        "other_cpu_cores": 0.1,
        "server_rss_bytes": 512 * 1024 * 1024,
        "server_stats": [{"request_ms": 9.0}],
        "first_error": None,
    }


def _run(batch_size: int, images_per_s: float, p50_ms: float) -> dict:
    latency = {"mean_ms": p50_ms, "p50_ms": p50_ms, "p90_ms": p50_ms, "p99_ms": p50_ms}
    return {
        "batch_size": batch_size,
        "images": 50,
        "images_per_s": images_per_s,
        "batch_latency": latency,
        "decode_ms_per_image": 5.0,
        "infer_ms_per_image": 4.0,
        "client_cpu_cores": 1.9,
        "other_cpu_cores": 0.3,
    }


REFERENCES = {
    "limit": {
        "cores": 2,
        "images_per_core_s": 60.0,
        "images_per_s": 120.0,
        "decode_cpu_ms_per_image": 10.0,
        "infer_cpu_ms_per_image": 6.7,
        "decode_cpu_ms_by_size": {"640x480": 4.0},
        "large": {"images_per_s": 50.0},
    },
    "inprocess": [_run(8, 80.0, 100.0), _run(1, 60.0, 10.0)],
    "naive": _run(1, 40.0, 25.0),
    "naive_large": _run(1, 10.0, 100.0),
}
SERVED = [_level("grpc", 1, 50.0, 12.0), _level("grpc", 8, 100.0, 80.0), _level("http", 8, 90.0, 85.0)]
LARGE = _level("grpc", 8, 35.0, 200.0, subset="large")


def test_best_level_picks_the_fastest_of_a_protocol_and_subset():
    """HTTP and the 12 MP run do not compete with the gRPC mix levels."""
    assert best_level(SERVED, "grpc")["concurrency"] == 8
    assert best_level([*SERVED, _level("grpc", 2, 500.0, 1.0, subset="large")], "grpc")["images_per_s"] == 100.0
    assert best_level(SERVED, "grpc", subset="large") is None


def test_compare_divides_the_best_grpc_level_by_each_reference():
    """100 images/s served: 0.83x a 120 limit, 1.25x in-process batched (80), 2.5x naive (40)."""
    comparison = compare(SERVED, LARGE, REFERENCES)
    assert comparison["best"]["grpc"] == {"concurrency": 8, "images_per_s": 100.0}
    assert comparison["served_vs_limit"] == pytest.approx(100 / 120)
    assert comparison["served_vs_inprocess"] == pytest.approx(100 / 80)
    assert comparison["served_vs_naive"] == pytest.approx(2.5)
    assert comparison["large"]["served_vs_naive"] == pytest.approx(3.5)
    assert comparison["large"]["served_vs_limit"] == pytest.approx(0.7)
    # c=1 p50 12 ms against the batch-1 in-process loop's 10 ms.
    assert comparison["latency"]["ratio"] == pytest.approx(1.2)


def test_per_core_efficiency_ignores_cores_taken_by_other_processes():
    """Served images per core-second of server + client CPU, against the limit's images per core-second."""
    assert images_per_core_s({"images_per_s": 90.0, "server_cpu_cores": 1.4, "client_cpu_cores": 0.1}) == 60.0
    assert images_per_core_s({"images_per_s": 30.0, "client_cpu_cores": 0.5}) == 60.0  # a reference: no server
    assert images_per_core_s({"images_per_s": 30.0}) is None  # not measured
    per_core = compare(SERVED, LARGE, REFERENCES)["per_core"]
    assert per_core["served_images_per_core_s"] == pytest.approx(100 / 1.85)
    assert per_core["served_vs_limit"] == pytest.approx(100 / 1.85 / 60)


def test_targets_are_met_missed_or_not_measured():
    """The performance targets' thresholds; a missing measurement is neither met nor missed."""
    met = {t["name"]: t["met"] for t in compare(SERVED, LARGE, REFERENCES)["targets"]}
    assert all(met.values())
    slow = [_level("grpc", 1, 50.0, 14.0), _level("grpc", 8, 70.0, 80.0)]
    missed = {t["name"]: t["met"] for t in compare(slow, None, REFERENCES)["targets"]}
    assert missed == {
        "served gRPC / limit": False,  # 0.58 < 0.80
        "served gRPC / in-process": False,  # 70 < 80
        "served gRPC / naive": True,
        "12 MP served gRPC / naive": None,  # no 12 MP run
        "c=1 p50 / in-process single image": False,  # 1.4 > 1.3
    }


def test_comparison_lines_print_ratios_and_verdicts():
    """The headline a reader checks first."""
    text = "\n".join(comparison_lines(compare(SERVED, LARGE, REFERENCES)))
    assert "served gRPC best 100.0 images/s (c=8): 0.83x limit, 1.25x in-process, 2.50x naive" in text
    assert "12 MP only: served gRPC c=8 35.0 images/s vs naive 10.0 = 3.50x" in text
    assert "c=1 p50: served gRPC 12.0 ms vs in-process single image 10.0 ms = 1.20x" in text
    assert text.count("MET (target") == 5
    assert "per core (whatever else runs on the machine): served gRPC c=8 54.1 images per core-second" in text


def test_throughput_table_puts_served_and_references_side_by_side():
    """Ratios per served row; the 12 MP row is compared with the 12 MP references."""
    table = throughput_table(SERVED, LARGE, REFERENCES)
    rows = {line.split("  ")[0].strip(): line.split() for line in table.splitlines()[2:]}
    grpc8 = rows["served grpc c=8"]
    assert grpc8[3:] == [
        "100.0",
        "80.0",
        "160.0",
        "240.0",
        "1",
        "2",
        "0.05",
        "1.80",
        "0.10",
        "54.1",  # 100 images/s on 1.85 cores of server + client
        "512",
        "0.83x",
        "1.25x",
        "2.50x",
    ]
    assert rows["served grpc c=8 12MP"][-3:] == ["0.70x", "-", "3.50x"]
    assert "limit (2 cores x 60.0/core-s)" in rows
    # References: their own CPU and the neighbours' (a busy machine explains a slow reference).
    assert rows["in-process batch 8"][3:] == ["80.0", "100.0", "100.0", "100.0", "1.90", "0.30", "42.1"]
    assert rows["limit (2 cores x 60.0/core-s)"][-1] == "60.0"


def test_csv_has_one_row_per_level_and_reference():
    """Parsable by csv, every column present, references without served-only fields."""
    result = {"served": SERVED, "served_large": LARGE, "references": REFERENCES}
    rows = list(csv.DictReader(io.StringIO(to_csv(result))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [(r["kind"], r["name"], r["subset"]) for r in rows] == [
        ("served", "grpc c=1", "mix"),
        ("served", "grpc c=8", "mix"),
        ("served", "http c=8", "mix"),
        ("served", "grpc c=8", "large"),
        ("reference", "limit", "mix"),
        ("reference", "limit", "large"),
        ("reference", "in-process batch 8", "mix"),
        ("reference", "in-process batch 1", "mix"),
        ("reference", "naive", "mix"),
        ("reference", "naive", "large"),
    ]
    assert rows[1]["unavailable"] == "2" and rows[1]["p99_ms"] == "240.0" and rows[1]["server_cpu_cores"] == "1.8"
    assert rows[6]["other_cpu_cores"] == "0.3" and rows[6]["batch_size"] == "8"
    assert float(rows[1]["images_per_core_s"]) == pytest.approx(100 / 1.85)
    assert rows[4]["images_per_core_s"] == "60.0"
    assert rows[4]["images_per_s"] == "120.0" and rows[4]["p50_ms"] == ""


def test_outside_server_splits_client_latency_at_the_ensemble():
    """Client mean minus the ensemble's mean time inside Triton."""
    line = outside_server(_level("grpc", 1, 1.0, 1.0))
    assert "12.00 ms at the client = 9.00 ms inside the ensemble +3.00 ms outside" in line


def test_format_table_aligns_the_first_column_left_and_the_others_right():
    """Names read left to right, numbers line up on their last digit."""
    text = format_table(["name", "value"], [["a", "1.5"], ["longer", "10.25"]])
    assert text.splitlines() == ["name    value", "------  -----", "a         1.5", "longer  10.25"]


def _result(model: str, served_scale: float) -> dict:
    served = [{**level, "images_per_s": level["images_per_s"] * served_scale} for level in SERVED]
    return {
        "export": {"model_name": model},
        "served": served,
        "served_large": LARGE,
        "references": REFERENCES,
        "command": ["clients/benchmark.py", "--model", model],
        "wall_s": 61.2,
    }


def test_summary_has_one_row_per_model_with_its_ratios():
    from tritonclf_lab.bench.bench_summary_cli import HEADERS, summary, summary_row

    row = dict(zip(HEADERS, summary_row(_result("efficientnet_lite0", 1.0)), strict=True))
    assert row["served gRPC img/s (c)"] == "100.0 (8)"
    assert (row["limit"], row["in-process"], row["naive"]) == ("120.0", "80.0", "40.0")
    # 100/120, 100/80, 100/40; 12 MP 35/10; c=1 p50 12 ms over the single-image 10 ms.
    assert (row["vs limit"], row["vs in-process"], row["vs naive"]) == ("0.83x", "1.25x", "2.50x")
    assert row["12 MP vs naive"] == "3.50x"
    assert row["c=1 p50 ms (vs in-process)"] == "12.0 (1.20x)"
    assert row["server MiB (peak)"] == "512"
    slower = dict(zip(HEADERS, summary_row(_result("resnet50", 0.5)), strict=True))
    assert slower["vs limit"] == "0.42x" and slower["served gRPC img/s (c)"] == "50.0 (8)"
    text = summary([_result("efficientnet_lite0", 1.0), _result("resnet50", 0.5)])
    assert text.count("\n| efficientnet_lite0 |") == 1 and text.count("\n| resnet50 |") == 1
    assert "`clients/benchmark.py --model resnet50` (61 s)" in text


def test_bench_summary_command_reads_result_files_and_writes_the_table(tmp_path, capsys):
    from tritonclf_lab.bench.bench_summary_cli import main, summary

    results = [_result("efficientnet_lite0", 1.0), _result("resnet50", 0.5)]
    files = []
    for result in results:
        files.append(tmp_path / f"latest-{result['export']['model_name']}.json")
        files[-1].write_text(json.dumps(result))
    assert main([*map(str, files), "--output", str(tmp_path / "summary.md")]) == 0
    assert (tmp_path / "summary.md").read_text() == summary(results) + "\n"
    assert summary(results) in capsys.readouterr().out
    assert main([str(tmp_path / "missing.json")]) == 2
    assert "bench-summary: error: cannot read a result" in capsys.readouterr().err
