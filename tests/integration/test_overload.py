"""Overload: past capacity, clients get a fast UNAVAILABLE from the queue policy, and say so."""

from __future__ import annotations

import asyncio
import io
import json
import statistics
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from PIL import Image
from tritonclient.grpc import model_config_pb2 as pb
from tritonclient.utils import InferenceServerException

from tritonclf.repository.build import build_repository
from tritonclf.repository.models import BuildOptions, classifier_spec, ensemble_spec, preprocess_spec
from tritonclf.repository.pbtxt import parse, to_model_config
from tritonclf.serving.process import TritonProcess
from tritonclf_lab.bench.images import BenchImage
from tritonclf_lab.bench.load import AsyncSender, Endpoint, closed_loop

from ..conftest import CAT_CLASSES, ROOT, SAMPLES

MODEL = "efficientnet_lite0"
QUEUED_MODELS = (preprocess_spec, classifier_spec)
BURST = 40


def test_queue_policy_bounds_both_queued_models_by_default(metadata):
    for factory in QUEUED_MODELS:
        batching = to_model_config(factory("clf", metadata, BuildOptions())).dynamic_batching
        policy = batching.default_queue_policy
        assert policy.timeout_action == pb.ModelQueuePolicy.TimeoutAction.REJECT
        assert policy.max_queue_size == 128
        assert policy.default_timeout_microseconds == 5_000_000
    # The ensemble has no queue of its own: its steps queue in the models above.
    assert not to_model_config(ensemble_spec("clf", metadata, BuildOptions())).HasField("dynamic_batching")


def test_zero_queue_bounds_leave_the_queue_unbounded(metadata):
    options = BuildOptions(max_queue_size=0, queue_timeout_microseconds=0)
    for factory in QUEUED_MODELS:
        assert not to_model_config(factory("clf", metadata, options)).dynamic_batching.HasField("default_queue_policy")


def test_build_flags_set_the_queue_policy(export_dir, tmp_path):
    repo = tmp_path / "repo"
    command = [sys.executable, "build/build_repository.py", "--export", str(export_dir), "--repository", str(repo)]
    options = ["--backend", "python-ort", "--max-queue-size", "7", "--queue-timeout-us", "250000", "--no-warmup"]
    subprocess.run([*command, *options], cwd=ROOT, check=True, capture_output=True, timeout=120)
    for name in (f"{MODEL}_preprocess", f"{MODEL}_model"):
        policy = parse((repo / name / "config.pbtxt").read_text()).dynamic_batching.default_queue_policy
        assert (policy.max_queue_size, policy.default_timeout_microseconds) == (7, 250_000)


# --- against the real server, built small on purpose: 1 preprocessing instance, batches of 2, 2 queued ---


@pytest.fixture(scope="module")
def small_server(export_dir, tmp_path_factory):
    repo = tmp_path_factory.mktemp("overload") / "model_repository"
    options = BuildOptions(
        max_batch_size=2, preprocess_instances=1, max_queue_size=2, max_queue_delay_microseconds=1_000
    )
    build_repository(export_dir, repo, options)
    with TritonProcess(repo, log_path=repo.parent / "tritonserver.log") as server:
        yield server


@pytest.fixture(scope="module")
def photo_jpeg() -> bytes:
    """A 1280x960 JPEG: enough decoding work that a burst outruns one preprocessing instance."""
    buffer = io.BytesIO()
    Image.open(SAMPLES / "chelsea.jpg").convert("RGB").resize((1280, 960)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def classify(url: str, image: bytes) -> tuple[int | None, InferenceServerException | None, float]:
    client = grpcclient.InferenceServerClient(url)
    tensor = grpcclient.InferInput("image", [1, 1], "BYTES")
    tensor.set_data_from_numpy(np.array([image], dtype=np.object_).reshape(1, 1))
    start = time.perf_counter()
    try:
        probabilities = client.infer(MODEL, [tensor]).as_numpy("probabilities")
        return int(probabilities.argmax()), None, time.perf_counter() - start
    except InferenceServerException as err:
        return None, err, time.perf_counter() - start
    finally:
        client.close()


def send_burst(url: str, image: bytes, count: int) -> list:
    """``count`` requests released at the same instant, one thread each."""
    gate = threading.Barrier(count)
    outcomes: list = [None] * count

    def one(slot: int) -> None:
        gate.wait()
        outcomes[slot] = classify(url, image)

    threads = [threading.Thread(target=one, args=(slot,)) for slot in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return outcomes


def test_requests_past_the_queue_get_a_fast_unavailable_and_the_rest_are_answered(small_server, photo_jpeg):
    outcomes = send_burst(small_server.grpc_url, photo_jpeg, BURST)
    answered = [(top1, latency) for top1, err, latency in outcomes if err is None]
    rejected = [(err, latency) for _, err, latency in outcomes if err is not None]
    assert answered and len(rejected) >= BURST // 2, f"{len(answered)} answered, {len(rejected)} rejected"
    assert all(top1 in CAT_CLASSES for top1, _ in answered)
    for err, _ in rejected:
        assert err.status() == "StatusCode.UNAVAILABLE"
        assert "Exceeds maximum queue size" in err.message() and "\n" not in err.message()
    rejection_latencies = [latency for _, latency in rejected]
    # Turned away at the door: no decoding, no waiting behind the queue.
    assert statistics.median(rejection_latencies) < 0.25, rejection_latencies
    assert statistics.median(rejection_latencies) < statistics.median(latency for _, latency in answered)
    # Past the burst the server is fine.
    assert small_server.is_ready()
    top1, err, _ = classify(small_server.grpc_url, photo_jpeg)
    assert err is None and top1 in CAT_CLASSES


@pytest.fixture
def photo_folder(photo_jpeg, tmp_path):
    for index in range(24):
        (tmp_path / f"photo{index:02d}.jpg").write_bytes(photo_jpeg)
    return tmp_path


def run_infer_all_at_once(url: str, folder, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "clients/infer.py", str(folder), "--url", url, "--concurrency", "24", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_infer_cli_reports_overload_rejections_as_unavailable(small_server, photo_folder):
    result = run_infer_all_at_once(small_server.grpc_url, photo_folder)
    assert result.returncode == 1, result.stderr
    rejected = [line for line in result.stderr.splitlines() if "error (UNAVAILABLE)" in line]
    assert rejected and all("Exceeds maximum queue size" in line for line in rejected)
    assert f"infer: {len(rejected)} of 24 images failed" in result.stderr
    assert "Traceback" not in result.stderr


def test_infer_cli_json_marks_rejections_with_their_status(small_server, photo_folder):
    result = run_infer_all_at_once(small_server.grpc_url, photo_folder, "--json")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 24
    statuses = {record.get("status", "OK") for record in records}
    assert "UNAVAILABLE" in statuses and statuses <= {"OK", "UNAVAILABLE"}


def test_benchmark_load_counts_overload_rejections_apart_from_errors(small_server, photo_jpeg):
    endpoint = Endpoint("grpc", small_server.grpc_url, MODEL, "image", (1, 1), "probabilities")
    images = [BenchImage(photo_jpeg, 1280, 960)]

    async def run():
        async with AsyncSender(endpoint, images, concurrency=24) as send:
            return await closed_loop(send, images, concurrency=24, duration_s=2.0)

    result = asyncio.run(run())
    assert result.unavailable > 0 and result.latencies_s
    assert result.other_errors == 0, result.first_error
