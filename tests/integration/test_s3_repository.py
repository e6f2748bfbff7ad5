"""A repository in S3-compatible storage: upload it, serve it with the real Triton, roll out a new version.

The store is ``moto`` in server mode on a free loopback port; Triton reads it through
its own S3 client (``--model-repository s3://127.0.0.1:PORT/bucket/path``).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import threading
import time

import pytest
import tritonclient.grpc as grpcclient

from tritonclf.client.triton_client import ClassifierClient
from tritonclf.repository.build import BuildOptions, build_repository
from tritonclf.repository.object_store import (
    Operation,
    S3Location,
    make_client,
    parse_s3_url,
    read_local,
    upload_repository,
)
from tritonclf.serving.process import TritonProcess, free_port

from ..conftest import CAT_CLASSES, ROOT, SAMPLES, TEST_QUEUE_DELAY_US

pytestmark = pytest.mark.integration
BUCKET = "models"
CHELSEA = (SAMPLES / "chelsea.jpg").read_bytes()
NAME = "efficientnet_lite0"
# Dependencies before the ensemble, as the uploader orders them.
MODELS = (f"{NAME}_model", f"{NAME}_preprocess", NAME)


@pytest.fixture(scope="module")
def s3_endpoint():
    """An S3-compatible server on loopback, with the AWS variables Triton and boto3 both read."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = free_port()
    store = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            env.setenv(name, value)
        env.delenv("AWS_PROFILE", raising=False)
        store.start()
        try:
            make_client(S3Location(BUCKET, "", f"http://127.0.0.1:{port}")).create_bucket(Bucket=BUCKET)
            yield f"127.0.0.1:{port}"
        finally:
            store.stop()


@pytest.fixture(scope="module")
def s3_repository(s3_endpoint, repository, tmp_path_factory):
    """A private copy of the session repository, uploaded; the copy is rebuilt by the rollout test."""
    local = tmp_path_factory.mktemp("s3") / "model_repository"
    shutil.copytree(repository, local)
    url = f"s3://{s3_endpoint}/{BUCKET}/prod/model_repository"
    upload_repository(local, parse_s3_url(url))
    return local, url


@pytest.fixture(scope="module")
def s3_server(s3_repository, tmp_path_factory):
    """Triton serving straight from the store, with explicit model control for the rollout."""
    _, url = s3_repository
    log = tmp_path_factory.mktemp("s3-server") / "tritonserver.log"
    with TritonProcess(url, log_path=log, extra_args=("--model-control-mode=explicit", "--load-model=*")) as server:
        yield server


def test_triton_serves_the_uploaded_repository_and_chelsea_is_a_cat(s3_server):
    client = ClassifierClient(s3_server.grpc_url)
    assert client.model == NAME
    assert client.classify(CHELSEA, top_k=1)[0].index in CAT_CLASSES


def test_every_version_in_the_store_has_its_manifest_and_a_second_upload_writes_nothing(s3_repository):
    local, url = s3_repository
    location = parse_s3_url(url)
    keys = {item["Key"] for item in make_client(location).list_objects_v2(Bucket=BUCKET)["Contents"]}
    for name, model in read_local(local).items():
        for number in model.versions:
            assert location.key(f"{name}/{number}/manifest.json") in keys
    assert upload_repository(local, location) == []


def test_an_interrupted_upload_leaves_no_manifest_and_the_next_run_completes_it(s3_endpoint, repository):
    location = parse_s3_url(f"s3://{s3_endpoint}/{BUCKET}/interrupted")
    client = make_client(location)

    class Unplugged(RuntimeError):
        pass

    def unplug(op: Operation) -> None:
        if op.path.endswith("model.py"):
            raise Unplugged(op.path)

    with pytest.raises(Unplugged):
        upload_repository(repository, location, client=client, progress=unplug)
    keys = {item["Key"] for item in client.list_objects_v2(Bucket=BUCKET, Prefix="interrupted/")["Contents"]}
    # The files sorted before model.py, and no manifest: not complete, not served.
    assert keys == {f"interrupted/{NAME}_model/1/metrics.json", f"interrupted/{NAME}_model/1/model.onnx"}
    finished = upload_repository(repository, location, client=client)
    assert finished[0].path == f"{NAME}_model/1/metrics.json"
    assert upload_repository(repository, location, client=client) == []


def run_upload(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "build" / "upload_repository.py"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_cli_uploads_once_then_finds_the_store_up_to_date(s3_endpoint, repository):
    url = f"s3://{s3_endpoint}/{BUCKET}/cli"
    first = run_upload(str(repository), url)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[-1] == f"serve it: tritonserver --model-repository {url}"
    second = run_upload(str(repository), url)
    assert second.returncode == 0
    assert second.stdout.splitlines()[0] == "already up to date"


def test_cli_reports_a_missing_bucket_in_one_line(s3_endpoint, repository):
    result = run_upload(str(repository), f"s3://{s3_endpoint}/no-such-bucket/x")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "does not exist" in result.stderr


def test_new_version_rolls_out_through_explicit_load_without_failing_a_request(s3_repository, s3_server, export_dir):
    local, url = s3_repository
    # A changed serving option gives the preprocessing and classifier models a version 2.
    built = build_repository(export_dir, local, BuildOptions(max_queue_delay_microseconds=TEST_QUEUE_DELAY_US + 1))
    new_versions = {model.name: model.version for model in built if model.changed}
    assert new_versions == {f"{NAME}_model": 2, f"{NAME}_preprocess": 2}
    written = upload_repository(local, parse_s3_url(url))
    assert [op.path for op in written if op.path.endswith("manifest.json")] == [
        f"{NAME}_model/2/manifest.json",
        f"{NAME}_preprocess/2/manifest.json",
    ]

    client = ClassifierClient(s3_server.grpc_url)
    results: list[int] = []
    failures: list[str] = []
    done = threading.Event()

    def keep_classifying() -> None:
        deadline = time.monotonic() + 120
        while not done.is_set() and time.monotonic() < deadline and len(results) < 2000:
            try:
                results.append(client.classify(CHELSEA, top_k=1)[0].index)
            except Exception as err:
                failures.append(str(err))

    traffic = threading.Thread(target=keep_classifying)
    traffic.start()
    try:
        control = grpcclient.InferenceServerClient(s3_server.grpc_url)
        for model in MODELS:
            control.load_model(model)
    finally:
        done.set()
        traffic.join(timeout=150)
    assert not failures
    assert results and set(results) <= set(CAT_CLASSES)
    assert control.is_model_ready(f"{NAME}_model", "2")
    assert not control.is_model_ready(f"{NAME}_model", "1")
    assert client.classify(CHELSEA, top_k=1)[0].index in CAT_CLASSES
