"""The GPU kit's pure parts on the CPU: phase plan and skips, results.json, the HTTP wire format,
the margin-aware agreement, the JPEG mix, the payload helpers and the load split."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest

from tritonclf_lab.gpu_kit import pack
from tritonclf_lab.gpu_kit.gpu_kit_cli import KIT_BUILD_ARGS, cpu_build_args
from tritonclf_lab.gpu_kit.http_client import (
    infer_request,
    parse_infer_response,
    parse_label,
    serialize_bytes,
)
from tritonclf_lab.gpu_kit.mix import megapixels, write_mix
from tritonclf_lab.gpu_kit.phase_accuracy import margin_agreement
from tritonclf_lab.gpu_kit.phase_served import check_labels, stats_delta
from tritonclf_lab.gpu_kit.plan import BUDGETS_S, PHASES, RUN_LIMIT_S, decide, parse_skips
from tritonclf_lab.gpu_kit.results import Results
from tritonclf_lab.gpu_kit.sweep import Load, latency_percentile_ms, split

ALL_PASSED = {"libpython": True, "libcuda": True, "stub_python": True, "shm": True, "cuda": True, "nvjpeg": True}


def test_phase_budgets_fit_the_run_limit_with_room_for_start_up():
    assert sum(BUDGETS_S.values()) <= RUN_LIMIT_S - 60


def test_every_phase_runs_when_preflight_passed():
    steps = [decide(p, [], ALL_PASSED, cpu_smoke=False, served_needs_cuda=True) for p in PHASES]
    assert all(step.runs for step in steps)


def test_failed_nvjpeg_skips_the_gpu_phases_and_a_gpu_served_repository():
    checks = {**ALL_PASSED, "nvjpeg": False}
    decided = {p: decide(p, [], checks, cpu_smoke=False, served_needs_cuda=True) for p in PHASES}
    assert decided["preflight"].runs
    assert [p for p, s in decided.items() if not s.runs] == ["standalone", "accuracy", "served"]
    assert decided["served"].reason == "preflight failed: nvjpeg"


@pytest.mark.parametrize("check", ["libpython", "stub_python", "libcuda"])
def test_a_server_check_that_failed_skips_only_served(check):
    checks = {**ALL_PASSED, check: False}
    skipped = [p for p in PHASES if not decide(p, [], checks, cpu_smoke=False, served_needs_cuda=True).runs]
    assert skipped == ["served"]
    assert decide("served", [], checks, cpu_smoke=False, served_needs_cuda=True).reason == f"preflight failed: {check}"


def test_a_cpu_repository_needs_no_libcuda():
    checks = {**ALL_PASSED, "libcuda": False}
    assert decide("served", [], checks, cpu_smoke=False, served_needs_cuda=False).runs


def test_cpu_smoke_skips_cuda_phases_in_one_line_each_and_serves_a_cpu_repository():
    checks = {"libpython": True, "libcuda": True, "stub_python": True, "shm": True}
    decided = {p: decide(p, [], checks, cpu_smoke=True, served_needs_cuda=False) for p in PHASES}
    assert decided["standalone"].reason == decided["accuracy"].reason == "needs CUDA: skipped in --cpu-smoke"
    assert decided["served"].runs and decided["preflight"].runs


def test_skip_flag_wins_and_an_unrun_preflight_blocks_nothing():
    assert decide("served", ["served"], None, cpu_smoke=False, served_needs_cuda=True).reason == (
        "skipped by --skip-served"
    )
    assert decide("standalone", ["preflight"], None, cpu_smoke=False, served_needs_cuda=True).runs


def test_parse_skips_takes_commas_and_rejects_unknown_phases():
    assert parse_skips(["served,accuracy", "preflight"]) == ["served", "accuracy", "preflight"]
    with pytest.raises(ValueError, match="unknown phase 'serve'"):
        parse_skips(["serve"])


def test_results_merge_sections_and_survive_as_valid_json_after_each_update(tmp_path):
    results = Results(tmp_path / "out" / "results.json")
    results.update("served", {"samples": {"a": 1}})
    results.update("served", {"sweep": [1, 2]})
    results.update("run", {"total_s": 3.5})
    on_disk = json.loads((tmp_path / "out" / "results.json").read_text())
    assert on_disk == {"served": {"samples": {"a": 1}, "sweep": [1, 2]}, "run": {"total_s": 3.5}}
    results.drop("served")
    assert results.load() == {"run": {"total_s": 3.5}}
    assert not list((tmp_path / "out").glob(".results-*"))


def test_bytes_tensor_is_length_prefixed_little_endian():
    assert serialize_bytes([b"ab", b""]) == struct.pack("<I", 2) + b"ab" + struct.pack("<I", 0)


def test_infer_request_puts_the_json_header_length_in_its_header():
    body, headers = infer_request("image", [1], "probabilities", [b"\xff\xd8jpeg", b"x"], top_k=3)
    length = int(headers["Inference-Header-Content-Length"])
    header = json.loads(body[:length])
    assert header["inputs"][0]["shape"] == [2, 1]
    assert header["inputs"][0]["parameters"]["binary_data_size"] == len(body) - length
    assert header["outputs"][0]["parameters"] == {"classification": 3, "binary_data": False}
    assert body[length:] == serialize_bytes([b"\xff\xd8jpeg", b"x"])


def test_infer_response_splits_top_k_per_image_and_keeps_colons_in_labels():
    data = ["0.9:281:tabby, tabby cat", "0.1:1:a:b", "0.8:967:espresso", "0.2:0:x"]
    document = {"outputs": [{"name": "p", "data": data}]}
    answer = parse_infer_response(json.dumps(document).encode(), None, "p", batch=2)
    assert [[label.index for label in image] for image in answer] == [[281, 1], [967, 0]]
    assert answer[0][1].label == "a:b"
    assert parse_label("0.5:3").label == "3"


def test_margin_agreement_counts_decisive_flips_and_reports_near_ties_apart():
    reference = np.array([[0.9, 0.1, 0.0], [0.51, 0.49, 0.0], [0.2, 0.7, 0.1]])
    candidate = np.array([[0.9, 0.1, 0.0], [0.49, 0.51, 0.0], [0.7, 0.2, 0.1]])
    report = margin_agreement(reference, candidate, margin=0.05)
    assert (report["flips"], report["near_tie_flips"], report["decisive_images"]) == (1, 1, 2)
    assert report["top1_agreement"] == 0.5


def test_check_labels_names_the_photo_with_the_wrong_class():
    good = {"chelsea.jpg": (282, "tiger cat", 0.5), "coffee.jpg": (967, "espresso", 0.8)}
    assert check_labels(good) == []
    wrong = check_labels({**good, "coffee.jpg": (504, "coffee mug", 0.6)})
    assert len(wrong) == 1 and wrong[0].startswith("coffee.jpg: top-1 'coffee mug' (504)")


def test_stats_delta_gives_per_model_requests_batches_and_mean_times():
    def stats(count, executions, inferences, queue_ns):
        return {
            "model_stats": [
                {
                    "name": "m",
                    "execution_count": executions,
                    "inference_count": inferences,
                    "inference_stats": {"success": {"count": count}, "queue": {"ns": queue_ns}},
                }
            ]
        }

    delta = stats_delta(stats(10, 5, 10, 1_000_000), stats(30, 10, 30, 5_000_000))
    assert delta["m"]["requests"] == 20 and delta["m"]["mean_batch"] == 4.0
    assert delta["m"]["mean_us_per_request"]["queue"] == 200.0


def nearest_rank(values, q):
    """The textbook nearest-rank percentile: the ceil(n q / 100)-th smallest value."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * q / 100)) - 1]


def test_latency_percentiles_are_nearest_rank_measured_values():
    assert latency_percentile_ms([1.0, 2.0, 3.0, 4.0], 50) == 2.0 and latency_percentile_ms([], 99) == 0.0
    assert latency_percentile_ms(list(range(1, 101)), 99) == 99
    rng = np.random.default_rng(3)
    for size in (1, 2, 7, 100, 1001):
        latencies = [round(x, 2) for x in rng.lognormal(2.0, 0.6, size)]
        load = Load(concurrency=2, images=size, errors=0, seconds=1.0, latencies_ms=tuple(latencies))
        summary = load.summary()
        assert summary["p50_ms"] == nearest_rank(latencies, 50) and summary["p99_ms"] == nearest_rank(latencies, 99)


def test_split_spreads_clients_over_cores():
    assert split(64, 16) == [4] * 16 and split(3, 16) == [1, 1, 1] and sum(split(10, 4)) == 10


def test_cpu_build_args_keep_the_options_and_move_every_model_to_the_cpu():
    args = cpu_build_args(KIT_BUILD_ARGS + " --device=gpu")
    assert "gpu" not in " ".join(args) and args.count("--device") == 1
    assert args[:4] == ["--preprocess", "torch", "--backend", "torch"]


def test_mix_has_the_three_phone_sizes_and_is_reused(tmp_path):
    paths = write_mix(tmp_path, count=10, seed=1)
    assert {round(megapixels(p), 1) for p in paths} == {0.3, 1.2, 12.2}
    assert all(p.read_bytes()[:2] == b"\xff\xd8" for p in paths)
    stamp = paths[0].stat().st_mtime_ns
    assert write_mix(tmp_path, count=10, seed=1)[0].stat().st_mtime_ns == stamp


def test_duplicates_become_hard_links_and_count_once(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    blob = np.random.default_rng(0).bytes(100_000)
    (tmp_path / "a" / "w").write_bytes(blob)
    (tmp_path / "b" / "w").write_bytes(blob)
    assert pack.link_duplicates(tmp_path) == 100_000
    assert (tmp_path / "a" / "w").stat().st_ino == (tmp_path / "b" / "w").stat().st_ino
    assert pack.folder_bytes(tmp_path) == 100_000


def test_triton_parts_leave_out_the_grafted_libpython_and_carry_each_stub():
    from tritonclf.serving import launcher

    root = launcher.binary_path().parents[2]
    names = [name for _, name in pack.triton_parts(root, launcher.library_dir(), ["3.11", "3.12"])]
    assert "triton/bin/tritonserver" in names
    assert "triton/backends/python/libtriton_python.so" in names
    stubs = {f"triton/stubs/{tag}/triton_python_backend_stub" for tag in ("3.11", "3.12")}
    assert stubs <= set(names)
    assert not [n for n in names if "libpython" in n]
    with pytest.raises(FileNotFoundError, match=r"no Python backend stub for Python 2\.7"):
        pack.triton_parts(root, launcher.library_dir(), ["2.7"])


def test_the_kit_carries_a_libpython_for_the_gpu_hosts_python_beside_the_stubs(tmp_path):
    from tritonclf.serving import launcher
    from tritonclf_lab.gpu_kit.gpu_kit_cli import KitError, carried_libpython, libpython_candidates

    found = libpython_candidates("3.12")
    if not found:
        pytest.skip("no shared libpython3.12 on this machine")
    assert carried_libpython(None, "3.12") == found[0]
    root = launcher.binary_path().parents[2]
    names = [name for _, name in pack.triton_parts(root, launcher.library_dir(), ["3.12"], {"3.12": found[0]})]
    assert "triton/libpython/3.12/libpython3.12.so.1.0" in names
    (tmp_path / "libz.so.1").write_bytes(b"")
    with pytest.raises(KitError, match=r"not a libpython3\.12\.so\.1\.0 file"):
        carried_libpython(tmp_path / "libz.so.1", "3.12")


def test_gpu_check_names_each_sample_photo_served_with_a_wrong_label():
    from tritonclf.repository.gpu_check_cli import wrong_labels

    assert wrong_labels({"chelsea.jpg": 285, "coffee.jpg": 967}) == []
    assert wrong_labels({"chelsea.jpg": 285, "coffee.jpg": 504}) == [
        "coffee.jpg: served class 504, expected one of [967]"
    ]
    assert len(wrong_labels({})) == 2


def test_the_run_unpacks_outside_the_kit_so_the_kit_stays_small_enough_to_travel(tmp_path):
    from tritonclf_lab.gpu_kit.runner import default_work

    work = default_work(tmp_path / "gpu-kit")
    assert tmp_path not in work.parents
    assert default_work(tmp_path / "gpu-kit") == work != default_work(tmp_path / "copy")
