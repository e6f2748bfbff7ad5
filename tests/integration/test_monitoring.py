"""The served metrics count what clients sent; the monitor and the alert tell a skewed stream from a normal one.

Real server, real photos (random crops of the sample photos, ``tritonclf_lab.drift_images``),
a reference recorded on 200 of them, and a real Prometheus scraping the server with the
rules of deploy/monitoring.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter

import pytest

from tritonclf import contract
from tritonclf.monitoring import monitor_cli
from tritonclf.monitoring import series as names
from tritonclf.monitoring.reference import load_reference
from tritonclf.monitoring.scrape import fetch_metrics, matching, sum_by
from tritonclf.monitoring.series import class_series
from tritonclf.monitoring.window import window_from_scrapes
from tritonclf.repository.build import BuildOptions, build_repository
from tritonclf.repository.models import CaptureOptions
from tritonclf.serving.process import TritonProcess
from tritonclf.training.validation_reference import record_reference
from tritonclf_lab.bad_images import BAD_INPUTS
from tritonclf_lab.drift_images import send, stream
from tritonclf_lab.prometheus_server import PrometheusProcess, prometheus_binary

from ..conftest import ROOT, SAMPLE_PHOTOS

MODEL = "efficientnet_lite0"
RULES = ROOT / "deploy" / "monitoring" / "alerts.yaml"


@pytest.fixture(scope="module")
def reference_export(export_dir, tmp_path_factory):
    """The session's export, copied, with a reference recorded on 200 crops of the sample photos."""
    copy = tmp_path_factory.mktemp("reference-export")
    for name in ("model.onnx", "model.json", "model.safetensors"):
        shutil.copy(export_dir / name, copy / name)
    validation = stream(200, seed=0)
    paths = []
    for i, (_, data) in enumerate(validation):
        path = copy / "validation" / f"{i:03d}.jpg"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        paths.append(path)
    record_reference(copy, paths, source="200 crops of the sample photos")
    return copy


@pytest.fixture(scope="module")
def monitored_server(reference_export, tmp_path_factory):
    repository = tmp_path_factory.mktemp("monitored") / "model_repository"
    build_repository(reference_export, repository, BuildOptions(max_queue_delay_microseconds=2000))
    with TritonProcess(repository, log_path=repository.parent / "tritonserver.log") as server:
        yield server


def metrics(server):
    return fetch_metrics(f"127.0.0.1:{server.metrics_port}")


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_metrics_count_every_prediction_and_every_rejection_by_reason(server, protocol):
    """The default build (make repository): predictions, scores, sizes and each rejection reason, per request sent."""
    from tritonclf.client.triton_client import ClassifierClient, InferenceFailed

    url = server.grpc_url if protocol == "grpc" else server.http_url
    client = ClassifierClient(url, protocol=protocol, model=MODEL, timeout_s=120)
    good = [p.read_bytes() for p in SAMPLE_PHOTOS] * 2
    before = metrics(server)
    for data in good:
        client.classify(data, top_k=1)
    for bad in BAD_INPUTS:
        with pytest.raises(InferenceFailed):
            client.classify(bad.make(), top_k=1)
    window = window_from_scrapes(before, metrics(server), MODEL, 1.0)
    assert window.predictions == len(good)
    assert window.scores == len(good)
    assert window.accepted == len(good)
    expected = Counter(bad.reason for bad in BAD_INPUTS)
    assert {k: v for k, v in window.rejected.items() if v} == expected
    # No reference in the session export: a 1000-class model counts its first 49 classes and "other".
    assert window.class_counts[names.OTHER_CLASS] == len(good)  # tabby, espresso, missile... are past index 49
    after = metrics(server)
    recorded = {(s.labels["model"], s.labels["version"]) for s in matching(after, names.PREDICTIONS, ensemble=MODEL)}
    assert recorded == {(contract.classifier_model_name(MODEL), "1")}
    inputs = {(s.labels["model"], s.labels["version"]) for s in matching(after, names.IMAGE_BYTES + "_count")}
    assert inputs == {(contract.preprocess_model_name(MODEL), "1")}
    assert len(matching(after, names.PREDICTIONS, ensemble=MODEL)) == 50  # bounded: 49 classes and "other"


def test_the_served_model_publishes_its_reference(monitored_server, reference_export):
    reference = load_reference(reference_export / contract.REFERENCE_FILENAME)
    series = class_series(reference.class_names, reference.predicted_shares)
    published = sum_by(matching(metrics(monitored_server), names.REFERENCE_CLASS_SHARE, ensemble=MODEL), "class")
    assert published == pytest.approx(series.shares(reference.predicted_shares))
    assert published["tabby, tabby cat"] > 0.05  # the cat crops: a class of its own, not "other"
    assert len(published) < 20  # the classes the reference predicts for at least 1% of it, and "other"


def run_monitor(server, state, capsys):
    code = monitor_cli.main(["--url", f"127.0.0.1:{server.metrics_port}", "--model", MODEL, "--state", str(state)])
    return code, capsys.readouterr().out


def test_the_monitor_is_quiet_on_a_stream_drawn_like_the_validation_set(monitored_server, tmp_path, capsys):
    state = tmp_path / "monitor.json"
    assert run_monitor(monitored_server, state, capsys)[0] == 0  # the first run records where to start
    assert send(monitored_server.grpc_url, MODEL, stream(200, seed=1)) == 200
    code, out = run_monitor(monitored_server, state, capsys)
    lines = out.splitlines()
    assert code == 0, out
    assert lines[1].startswith("OK    class distribution: PSI"), out
    assert lines[2].startswith("OK    low-confidence share"), out


def test_the_monitor_flags_a_skewed_stream(monitored_server, tmp_path, capsys):
    state = tmp_path / "monitor.json"
    run_monitor(monitored_server, state, capsys)
    assert send(monitored_server.grpc_url, MODEL, stream(150, seed=2, photos=["coffee"])) == 150
    code, out = run_monitor(monitored_server, state, capsys)
    assert code == 1, out
    assert "ALERT class distribution: PSI" in out
    assert "espresso" in out.splitlines()[1]  # named among the classes that moved most


def test_prometheus_fires_the_drift_alert_on_a_skewed_stream(monitored_server, tmp_path, capsys):
    try:
        prometheus_binary()
    except RuntimeError as err:
        pytest.skip(str(err))
    targets = [f"127.0.0.1:{monitored_server.metrics_port}"]
    # The rules as shipped, but firing as soon as their expression holds (for: 0s) instead of after 15 minutes.
    with PrometheusProcess(targets, workdir=tmp_path / "prometheus", rule_files=[RULES], alert_for_s=0) as prom:
        prom.wait_for_scrapes(2)
        assert send(monitored_server.grpc_url, MODEL, stream(150, seed=3, photos=["rocket"])) == 150
        deadline = time.monotonic() + 60
        while not prom.firing("TritonClassifierClassDrift") and time.monotonic() < deadline:
            time.sleep(0.5)
        (alert,) = prom.firing("TritonClassifierClassDrift")
        assert alert["labels"]["ensemble"] == MODEL
        assert float(alert["value"]) > 0.25
        code = monitor_cli.main(["--prometheus", prom.url, "--model", MODEL, "--window-s", "600"])
        out = capsys.readouterr().out
    assert code == 1, out
    assert "ALERT class distribution" in out


def test_capture_saves_unsure_images_and_the_response_cache_answers_repeats(export_dir, tmp_path):
    """A monitor step records the predictions; an unsure photo is saved; a repeated upload is a cache hit."""
    captured = tmp_path / "captured"
    options = BuildOptions(capture=CaptureOptions(str(captured), below=0.5), response_cache_bytes=16 << 20)
    repository = tmp_path / "model_repository"
    build_repository(export_dir, repository, options)
    chelsea = (ROOT / "src" / "tritonclf" / "samples" / "chelsea.jpg").read_bytes()  # tabby at 0.41
    coffee = (ROOT / "src" / "tritonclf" / "samples" / "coffee.jpg").read_bytes()  # espresso at 0.86
    with TritonProcess(repository, log_path=tmp_path / "tritonserver.log") as server:
        before = metrics(server)
        send(server.grpc_url, MODEL, [("chelsea", chelsea), ("coffee", coffee)], concurrency=1)
        send(server.http_url, MODEL, [("chelsea", chelsea)], protocol="http", concurrency=1)  # same bytes again
        deadline = time.monotonic() + 30
        while not list(captured.glob("*/*.jpg")) and time.monotonic() < deadline:
            time.sleep(0.2)
        after = metrics(server)
    window = window_from_scrapes(before, after, MODEL, 1.0)
    assert window.predictions == 2  # the repeat never reached the models
    assert window.cache_hits == 1
    recorders = {s.labels["model"] for s in matching(after, names.PREDICTIONS, ensemble=MODEL)}
    assert recorders == {contract.monitor_model_name(MODEL)}
    (saved,) = captured.glob("*/*.jpg")
    assert saved.parent.name == "tabby, tabby cat"
    assert saved.read_bytes() == chelsea
    assert "tabby, tabby cat" in (captured / "captures.jsonl").read_text()
