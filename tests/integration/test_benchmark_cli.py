"""The benchmark and perf_analyzer commands end to end against the real server, with seconds-long runs."""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import tritonclient.grpc as grpcclient

from tritonclf.samples import sample_dir
from tritonclf_lab.bench import bench_cli as benchmark
from tritonclf_lab.bench import perf_cli as perf_sweep

pytestmark = pytest.mark.integration

SAMPLES = sample_dir()
TINY = ["--mix", "96x64:0.5,160x120:0.5", "--count", "4", "--warmup-s", "0", "--duration-s", "0.5"]


def test_benchmark_writes_report_csv_and_plot_with_every_reference(server, export_dir, tmp_path, capsys):
    """Every transfer (gRPC, gRPC + shared memory, HTTP, HTTP JSON), two levels, all three references; JSON = tables."""
    args = [*TINY, "--concurrency", "1,2", "--reference-duration-s", "0.3", "--output-dir", str(tmp_path)]
    args += ["--url", server.grpc_url, "--http-url", server.http_url, "--server-pid", str(server.process.pid)]
    args += ["--export", str(export_dir), "--model", "efficientnet_lite0"]

    assert benchmark.main(args) == 0

    (report,) = tmp_path.glob("benchmark-*.json")
    result = json.loads(report.read_text())
    assert [(lv["protocol"], lv["concurrency"]) for lv in result["served"]] == [
        ("grpc", 1),
        ("grpc", 2),
        ("grpc-shm", 1),
        ("grpc-shm", 2),
        ("http", 1),
        ("http", 2),
        ("http-json", 1),
        ("http-json", 2),
    ]
    for level in result["served"]:
        assert level["images"] > 0 and level["errors"] == 0
        assert [t["name"] for t in level["server_stats"]] == [
            "efficientnet_lite0",
            "efficientnet_lite0_preprocess",
            "efficientnet_lite0_model",
        ]
        assert level["server_rss_bytes"] > 0 and level["server_cpu_cores"] > 0
    assert result["served_large"] is None  # no 12 MP photos in this mix
    references = result["references"]
    assert references["limit"]["images_per_s"] > 0 and references["naive"]["images_per_s"] > 0
    assert [run["batch_size"] for run in references["inprocess"]] == [8, 1]
    assert result["comparison"]["served_vs_limit"] > 0
    rows = list(csv.DictReader(report.with_suffix(".csv").open()))
    # Base64 in JSON: the same images a third larger on the wire (plus the JSON around them).
    sizes = {lv["protocol"]: lv["request_bytes"] for lv in result["served"] if lv["concurrency"] == 1}
    assert sizes["grpc"] is None and 1.2 < sizes["http-json"] / sizes["http"] < 1.4
    assert len(rows) == 8 + 1 + 2 + 1  # served levels, limit, in-process x2, naive
    assert report.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert "served gRPC best" in out and "targets:" in out and "server time per request" in out
    assert "served gRPC + system shared memory best" in out
    assert "served HTTP, base64 in plain JSON best" in out
    # The image region was unregistered and freed: nothing left on the server or in /dev/shm.
    client = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        assert not client.get_system_shared_memory_status(as_json=True).get("regions")
    finally:
        client.close()
    assert not list(Path("/dev/shm").glob(f"bench-images-{os.getpid()}-*"))  # ours: other sessions' benches run too


def test_benchmark_starts_a_restricted_server_and_registers_shared_memory_with_its_key(
    repository, export_dir, tmp_path
):
    """``make bench`` starts its own server: admin APIs behind a key made for the run, which grpc-shm sends."""
    args = [*TINY, "--concurrency", "1", "--protocol", "grpc-shm", "--no-references", "--repository", str(repository)]
    assert benchmark.main([*args, "--export", str(export_dir), "--output-dir", str(tmp_path)]) == 0
    result = json.loads(next(tmp_path.glob("benchmark-*.json")).read_text())
    assert [(lv["protocol"], lv["errors"]) for lv in result["served"]] == [("grpc-shm", 0)]
    assert result["served"][0]["images"] > 0
    (log,) = tmp_path.glob("*-tritonserver.log")
    assert "APIs are open" not in log.read_text()  # the launcher says so in one line when any is


def test_benchmark_served_only_against_one_protocol(server, export_dir, tmp_path):
    """``--no-references`` for tuning loops: no references, no comparison, still a report."""
    args = [*TINY, "--concurrency", "1", "--protocol", "grpc", "--url", server.grpc_url, "--no-references"]
    assert benchmark.main([*args, "--export", str(export_dir), "--output-dir", str(tmp_path)]) == 0
    result = json.loads(next(tmp_path.glob("benchmark-*.json")).read_text())
    assert result["references"] == {} and "comparison" not in result


def own_photos(root: Path) -> Path:
    """A folder of class folders as users bring them: JPEG and PNG of many sizes, a few broken files."""
    from PIL import Image

    sources = [Image.open(path).convert("RGB") for path in sorted(SAMPLES.glob("*.jpg"))]
    for i in range(24):
        folder = root / ("cats", "dogs", "crème brûlée")[i % 3]
        folder.mkdir(parents=True, exist_ok=True)
        size = (200 + 37 * i, 150 + 29 * i) if i % 8 else (1700, 1300)
        image = sources[i % len(sources)].resize(size)
        image.save(folder / f"{i:02d}.{'png' if i % 4 == 0 else 'jpg'}")
    good = (root / "cats" / "03.jpg").read_bytes()
    (root / "dogs" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (root / "dogs" / "notes.jpg").write_text("not an image")
    return root


def test_benchmark_on_own_photos_names_broken_files_groups_sizes_and_names_results_after_the_ensemble(
    server, export_dir, tmp_path, capsys
):
    photos = own_photos(tmp_path / "photos")
    args = ["--images", str(photos), "--url", server.grpc_url, "--protocol", "grpc", "--concurrency", "1"]
    args += ["--warmup-s", "0", "--duration-s", "0.5", "--reference-duration-s", "0.3"]
    args += ["--export", str(export_dir), "--output-dir", str(tmp_path / "results")]
    assert benchmark.main(args) == 0
    out, err = capsys.readouterr()
    assert f"warning: leaving out {photos / 'dogs' / 'notes.jpg'}: not a decodable image" in err
    assert f"warning: leaving out {photos / 'dogs' / 'truncated.jpg'}: cannot decode JPEG image" in err
    (report,) = (tmp_path / "results").glob("benchmark-*.json")
    result = json.loads(report.read_text())
    assert result["images"]["count"] == 24
    assert list(result["images"]["sizes"]) == ["<0.5 MP", "0.5-2 MP", "2-10 MP"]  # 24 sizes in 3 groups
    assert all(level["errors"] == 0 for level in result["served"])
    assert result["references"]["limit"]["images_per_s"] > 0
    assert (tmp_path / "results" / "latest-efficientnet_lite0.json").is_file()
    report_lines = [line for line in out.splitlines() if not line.startswith("wrote ")]  # (long temporary paths)
    assert max(map(len, report_lines)) < 300, max(report_lines, key=len)
    assert len(result["references"]["limit"]["decode_cpu_ms_by_size"]) == 3


@pytest.mark.skipif(
    not (Path(sys.executable).parent / "perf_analyzer").exists() and not shutil.which("perf_analyzer"),
    reason="perf_analyzer is not installed (make perf-tools)",
)
def test_perf_sweep_writes_perf_analyzers_csv_for_ensemble_and_classifier(server, export_dir, tmp_path):
    """Real photos through the ensemble, preprocessed tensors through the classifier: no errors, a CSV each."""
    args = ["--url", server.grpc_url, "--export", str(export_dir), "--images", str(SAMPLES)]
    # Plumbing, not a measurement: accept any window, as other tests share the cores.
    args += ["--concurrency", "1", "--perf-args", "-p 500 -r 10 -s 100", "--output-dir", str(tmp_path)]
    assert perf_sweep.main(args) == 0
    for model in ("efficientnet_lite0", "efficientnet_lite0_model"):
        (path,) = tmp_path.glob(f"perf-*-{model}.csv")
        (row,) = list(csv.DictReader(path.open()))
        assert row["Concurrency"] == "1" and float(row["Inferences/Second"]) > 0
