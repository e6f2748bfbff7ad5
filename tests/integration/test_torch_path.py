"""``--preprocess torch --backend torch`` on the real server: PyTorch FP32 answers, the Pillow rejections."""

from __future__ import annotations

import concurrent.futures

import numpy as np
import pytest
import timm
import torch
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from safetensors.torch import load_model
from tritonclient.utils import InferenceServerException

from tritonclf import contract
from tritonclf.client.status import OK
from tritonclf.preprocess import preprocess_image
from tritonclf.repository.build import BuildError, BuildOptions, build_repository
from tritonclf.repository.preflight_checks import check_repository
from tritonclf.serving.process import TritonProcess
from tritonclf.torch_preprocess import preprocess_batch
from tritonclf_lab.bad_images import BAD_INPUTS, ODD_IMAGES

from ..conftest import SAMPLE_PHOTOS, TEST_QUEUE_DELAY_US
from ..hostile_requests import clean_one_line, grpc_pixels, hostile_pixel_requests

pytestmark = pytest.mark.integration
MODEL = "efficientnet_lite0"
PROTOCOLS = {"grpc": grpcclient, "http": httpclient}


@pytest.fixture(scope="module")
def torch_repository(export_dir, tmp_path_factory):
    repo = tmp_path_factory.mktemp("torch-repo") / "model_repository"
    options = BuildOptions(
        preprocess="torch",
        backend="torch",
        max_queue_delay_microseconds=TEST_QUEUE_DELAY_US,
        # Every stub imports torch (tens of seconds on a loaded 2-core machine): one of each is enough here.
        preprocess_instances=1,
        classifier_instances=1,
    )
    build_repository(export_dir, repo, options)
    return repo


@pytest.fixture(scope="module")
def torch_server(torch_repository, tmp_path_factory):
    log = tmp_path_factory.mktemp("torch-server") / "tritonserver.log"
    process = TritonProcess(torch_repository, log_path=log, ready_timeout_s=600)
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def torch_model(export_dir, metadata):
    """The exported weights in their timm architecture, FP32: the reference the server must match."""
    model = timm.create_model(metadata.model_name, pretrained=False, num_classes=metadata.num_classes)
    load_model(model, str(export_dir / contract.WEIGHTS_FILENAME))
    return model.eval()


def infer(module, url: str, image: bytes) -> np.ndarray:
    """Probabilities for one image, or the server's InferenceServerException raised."""
    client = module.InferenceServerClient(url)
    try:
        tensor = module.InferInput(contract.IMAGE_INPUT, [1, 1], "BYTES")
        tensor.set_data_from_numpy(np.array([image], dtype=np.object_).reshape(1, 1))
        result = client.infer(MODEL, [tensor], outputs=[module.InferRequestedOutput(contract.PROBABILITIES)])
        return result.as_numpy(contract.PROBABILITIES)[0]
    finally:
        client.close()


def torch_fp32(model, metadata, images: list[bytes]) -> np.ndarray:
    """In-process: the torch preprocessing, then the model and a softmax in FP32."""
    pixels = torch.stack(preprocess_batch(images, metadata.preprocess))
    with torch.inference_mode():
        return torch.softmax(model(pixels), dim=-1).numpy()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_torch_path_serves_pytorch_fp32_answers_on_real_photos(torch_server, torch_model, metadata, protocol):
    url = torch_server.grpc_url if protocol == "grpc" else torch_server.http_url
    images = [path.read_bytes() for path in SAMPLE_PHOTOS]
    served = np.stack([infer(PROTOCOLS[protocol], url, image) for image in images])
    np.testing.assert_allclose(served, torch_fp32(torch_model, metadata, images), atol=1e-5)


def test_torch_path_top1_equals_the_pillow_path_with_onnx_runtime(torch_server, onnx_session, metadata):
    for path in SAMPLE_PHOTOS:
        served = infer(grpcclient, torch_server.grpc_url, path.read_bytes())
        pillow_pixels = preprocess_image(path.read_bytes(), metadata.preprocess)[None]
        pillow_onnx = onnx_session.run(None, {contract.PIXELS: pillow_pixels})[0][0]
        assert served.argmax() == pillow_onnx.argmax(), path.name


def test_torch_classifier_equals_onnx_runtime_on_the_same_pixels(torch_server, onnx_session, metadata):
    images = [path.read_bytes() for path in SAMPLE_PHOTOS]
    pixels = torch.stack(preprocess_batch(images, metadata.preprocess)).numpy()
    onnx = onnx_session.run(None, {contract.PIXELS: pixels})[0]
    served = np.stack([infer(grpcclient, torch_server.grpc_url, image) for image in images])
    np.testing.assert_allclose(served, onnx, atol=1e-5)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_torch_path_rejects_every_hostile_input_with_the_pillow_paths_message(torch_server, protocol):
    url = torch_server.grpc_url if protocol == "grpc" else torch_server.http_url
    for bad in BAD_INPUTS:
        with pytest.raises(InferenceServerException) as caught:
            infer(PROTOCOLS[protocol], url, bad.make())
        assert caught.value.message() == f"in ensemble '{MODEL}', {bad.message}", bad.name


def test_bad_images_in_a_torch_batch_fail_only_their_own_requests(torch_server, torch_model, metadata):
    good = [make() for _, make in ODD_IMAGES.values()] + [path.read_bytes() for path in SAMPLE_PHOTOS]
    requests = [*good, *(bad.make() for bad in BAD_INPUTS)]

    def outcome(image):
        try:
            return infer(grpcclient, torch_server.grpc_url, image)
        except InferenceServerException as err:
            return err

    # Sent within the test server's 50 ms queue delay: they share execute() calls.
    with concurrent.futures.ThreadPoolExecutor(len(requests)) as pool:
        answers = list(pool.map(outcome, requests))
    expected = torch_fp32(torch_model, metadata, good)
    for i, answer in enumerate(answers[: len(good)]):
        assert isinstance(answer, np.ndarray), f"good image {i}: {answer}"
        np.testing.assert_allclose(answer, expected[i], atol=1e-5)
    for bad, answer in zip(BAD_INPUTS, answers[len(good) :], strict=True):
        assert isinstance(answer, InferenceServerException), bad.name
        assert answer.message() == f"in ensemble '{MODEL}', {bad.message}", bad.name


def test_torch_classifier_refuses_hostile_pixels_alone_while_good_requests_succeed(
    torch_server, onnx_session, metadata
):
    pixels = preprocess_image(SAMPLE_PHOTOS[0].read_bytes(), metadata.preprocess)[None]
    top1 = int(onnx_session.run(None, {contract.PIXELS: pixels})[0].argmax())
    classifier = contract.classifier_model_name(MODEL)
    hostile = hostile_pixel_requests(torch_server, classifier, pixels)
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        good = [pool.submit(grpc_pixels, torch_server.grpc_url, classifier, None, pixels) for _ in range(64)]
        refusals = []
        while not all(future.done() for future in good):  # one hostile request in flight at a time
            refusals += [(name, *send()) for name, send in hostile.items()]
        answers = [future.result() for future in good]
    assert [status for status, _, _ in answers] == [OK] * len(answers)
    assert {int(probabilities.argmax()) for _, _, probabilities in answers} == {top1}
    assert {name for name, _, _ in refusals} == set(hostile)
    for name, status, message in refusals:
        assert status == "INVALID_ARGUMENT" and clean_one_line(message), (name, status, message)
        assert message.startswith(
            "pixel_values must be [batch, 3, 224, 224] float32" if "batch" in name else "pixel_values holds NaN"
        )


def test_torch_repository_passes_preflight(torch_repository):
    assert [f for f in check_repository(torch_repository) if f.severity == "error"] == []


def test_backend_torch_refuses_an_export_without_its_weights(export_dir, tmp_path):
    copy = tmp_path / "export"
    copy.mkdir()
    for name in (contract.ONNX_FILENAME, contract.METADATA_FILENAME):
        (copy / name).write_bytes((export_dir / name).read_bytes())
    with pytest.raises(BuildError, match=r"model\.safetensors is missing: re-run the export"):
        build_repository(copy, tmp_path / "repo", BuildOptions(backend="torch"))
    assert not (tmp_path / "repo" / f"{MODEL}_model").exists()


def test_torch_models_count_predictions_and_rejections_like_the_pillow_ones(torch_server):
    from collections import Counter

    from tritonclf.monitoring.scrape import fetch_metrics
    from tritonclf.monitoring.window import window_from_scrapes

    scrape = f"127.0.0.1:{torch_server.metrics_port}"
    bad_inputs = [bad for bad in BAD_INPUTS if len(bad.make()) < 1 << 20]
    before = fetch_metrics(scrape)
    for photo in SAMPLE_PHOTOS:
        infer(grpcclient, torch_server.grpc_url, photo.read_bytes())
    for bad in bad_inputs:
        with pytest.raises(InferenceServerException):
            infer(httpclient, torch_server.http_url, bad.make())
    window = window_from_scrapes(before, fetch_metrics(scrape), MODEL, 1.0)
    assert window.predictions == window.scores == window.accepted == len(SAMPLE_PHOTOS)
    assert {k: v for k, v in window.rejected.items() if v} == Counter(bad.reason for bad in bad_inputs)
