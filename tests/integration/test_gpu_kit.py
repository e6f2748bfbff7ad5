"""The GPU kit end to end on this CPU: the stdlib HTTP client against the real server, and
``run.sh --cpu-smoke`` from a copy of a freshly built kit (the carried, stripped tritonserver
serves the kit's CPU repository and labels the sample photos)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from tritonclf_lab.gpu_kit import gpu_kit_cli
from tritonclf_lab.gpu_kit.http_client import TritonHTTP, TritonHTTPError
from tritonclf_lab.gpu_kit.sweep import closed_loop

from ..conftest import CAT_CLASSES, SAMPLES


@pytest.fixture
def client(server, metadata):
    client = TritonHTTP("127.0.0.1", server.http_port, metadata.model_name)
    yield client
    client.close()


def test_stdlib_client_classifies_a_batch_of_sample_photos(client):
    chelsea, coffee = (SAMPLES / "chelsea.jpg").read_bytes(), (SAMPLES / "coffee.jpg").read_bytes()
    answers = client.classify([chelsea, coffee], top_k=3)
    assert [len(a) for a in answers] == [3, 3]
    assert answers[0][0].index in CAT_CLASSES and answers[0][0].label.startswith(("tabby", "tiger", "Egyptian"))
    assert answers[1][0].index == 967 and answers[1][0].score > answers[1][1].score


def test_stdlib_client_gets_the_servers_one_line_rejection(client):
    with pytest.raises(TritonHTTPError, match="not a decodable image: the bytes are text") as info:
        client.classify([b"definitely not a jpeg"])
    assert info.value.status == 400


def test_stdlib_client_reads_per_model_statistics_and_the_sweep_counts_every_answer(client, server, metadata):
    before = {m["name"]: m["inference_count"] for m in client.statistics()["model_stats"]}
    load = closed_loop(
        ("127.0.0.1", server.http_port), metadata.model_name, [(SAMPLES / "coffee.jpg").read_bytes()], 2, 2.0
    )
    after = {m["name"]: m["inference_count"] for m in client.statistics()["model_stats"]}
    assert load.errors == 0 and load.images > 0
    assert after[metadata.model_name] - before[metadata.model_name] == load.images
    assert load.summary()["p99_ms"] >= load.summary()["p50_ms"] > 0


def test_cpu_smoke_from_a_copy_of_the_kit_serves_the_sample_photos(export_dir, tmp_path):
    kit = tmp_path / "built" / "gpu-kit"
    started = time.monotonic()
    # -1: the same files, compressed fast; the size limit is make gpu-kit's business (-9e).
    code = gpu_kit_cli.main(
        [
            *("--export", str(export_dir), "--output", str(kit), "--xz-level", "-1", "--max-mib", "200"),
            *("--cache-dir", str(tmp_path / "cache")),
        ]
    )
    built_s = time.monotonic() - started
    assert code == 0
    copy = tmp_path / "elsewhere" / "gpu-kit"
    shutil.copytree(kit, copy, symlinks=True)
    shutil.rmtree(kit)  # nothing may point back at the folder it was built in
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHON"] = sys.executable
    started = time.monotonic()
    run = subprocess.run(
        ["bash", str(copy / "run.sh"), "--cpu-smoke", "--work", str(tmp_path / "work")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    smoke_s = time.monotonic() - started
    print(f"kit built in {built_s:.0f} s; cpu-smoke ran in {smoke_s:.0f} s")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "standalone: skipped: needs CUDA: skipped in --cpu-smoke" in run.stdout
    assert "accuracy: skipped: needs CUDA: skipped in --cpu-smoke" in run.stdout
    results = json.loads((copy / "results.json").read_text())
    assert results["served"]["labels_ok"] is True
    assert results["served"]["samples"]["coffee.jpg"][0] == 967
    assert results["served"]["samples"]["chelsea.jpg"][0] in CAT_CLASSES
    assert results["served"]["sweep"][0]["errors"] == 0 and results["served"]["sweep"][0]["images"] > 0
    assert results["phases"]["served"]["status"] == "ok" and results["preflight"]["checks"]["libpython"] is True
    assert "model.onnx" in results["run"]["kit"]["export_left_out"]
    assert (copy / "logs" / "tritonserver.log").is_file()


def test_accuracy_phase_code_runs_on_the_cpu_with_only_the_preprocessing_differing(export_dir):
    from tritonclf_lab.gpu_kit.phase_accuracy import compare

    report = compare(export_dir, "cpu")
    assert report["labels_ok"] is True
    assert report["images"] == 4 * 8 + 4 and report["flips"] == 0
    # Normalized units: torch's antialiased bicubic vs Pillow's differ most at sharp edges (0.63 measured).
    assert report["max_pixel_delta"] < 1.0


def test_standalone_phase_code_measures_every_row_on_the_cpu(export_dir, tmp_path):
    from tritonclf_lab.gpu_kit.context import Context
    from tritonclf_lab.gpu_kit.mix import write_mix
    from tritonclf_lab.gpu_kit.phase_standalone import measure
    from tritonclf_lab.gpu_kit.results import Results

    ctx = Context(tmp_path, Results(tmp_path / "results.json"), budget_s=10.0)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "export").symlink_to(export_dir)
    section = measure(ctx, write_mix(tmp_path / "mix", count=4, seed=2), "cpu", (1, 2))
    assert section["decode_and_model"]["images_per_s"] > 0
    assert set(section["model"]["eager"]) == {"1", "2"}  # as results.json keeps them
    assert section["decode_preprocess"]["mix_batch"] == 4
    assert Results(tmp_path / "results.json").section("standalone")["device"] == "cpu"
