"""The real tritonserver serving a built repository: answers, labels, per-request errors, liveness."""

from __future__ import annotations

import concurrent.futures

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tritonclf.preprocess import preprocess_image

from ..conftest import CAT_CLASSES, SAMPLES, encode, photo

pytestmark = pytest.mark.integration
MODEL = "efficientnet_lite0"
CHELSEA = (SAMPLES / "chelsea.jpg").read_bytes()


def image_input(module, images: list[bytes]):
    tensor = module.InferInput("image", [len(images), 1], "BYTES")
    tensor.set_data_from_numpy(np.array(images, dtype=np.object_).reshape(-1, 1))
    return tensor


def infer_probabilities(client, module, images: list[bytes]) -> np.ndarray:
    result = client.infer(MODEL, [image_input(module, images)], outputs=[module.InferRequestedOutput("probabilities")])
    return result.as_numpy("probabilities")


def classify_top(client, module, image: bytes, k: int) -> list[str]:
    output = module.InferRequestedOutput("probabilities", class_count=k)
    result = client.infer(MODEL, [image_input(module, [image])], outputs=[output])
    return [entry.decode() for entry in result.as_numpy("probabilities").reshape(-1)]


@pytest.fixture(scope="module")
def grpc(server):
    return grpcclient.InferenceServerClient(server.grpc_url)


@pytest.fixture(scope="module")
def http(server):
    return httpclient.InferenceServerClient(server.http_url)


def test_chelsea_is_a_cat_with_identical_scores_over_grpc_and_http(grpc, http):
    over_grpc = infer_probabilities(grpc, grpcclient, [CHELSEA])
    over_http = infer_probabilities(http, httpclient, [CHELSEA])
    assert over_grpc.shape == (1, 1000)
    assert int(over_grpc.argmax()) in CAT_CLASSES
    np.testing.assert_array_equal(over_grpc, over_http)


def test_served_probabilities_match_onnx_runtime_in_process(grpc, onnx_session, metadata):
    served = infer_probabilities(grpc, grpcclient, [CHELSEA])
    local = onnx_session.run(None, {"pixel_values": preprocess_image(CHELSEA, metadata.preprocess)[None]})[0]
    np.testing.assert_allclose(served, local, atol=1e-6)


def test_class_count_returns_score_index_label_from_the_label_file(grpc, http, metadata):
    probabilities = infer_probabilities(grpc, grpcclient, [CHELSEA])[0]
    for client, module in ((grpc, grpcclient), (http, httpclient)):
        entries = classify_top(client, module, CHELSEA, 3)
        assert len(entries) == 3
        expected_order = np.argsort(-probabilities)[:3]
        for entry, index in zip(entries, expected_order, strict=True):
            score, idx, label = entry.split(":", 2)
            assert int(idx) == index
            assert label == metadata.labels[index]
            assert float(score) == pytest.approx(probabilities[index], abs=1e-6)


def test_broken_images_fail_alone_in_a_shared_dynamic_batch(server, grpc):
    good = [CHELSEA, encode(photo("coffee"), "PNG"), (SAMPLES / "rocket.jpg").read_bytes()]
    broken = [b"", b"not an image at all", CHELSEA[: len(CHELSEA) // 2]]
    mixed = [good[0], broken[0], good[1], broken[1], good[2], broken[2]]
    before = preprocess_stats(grpc)
    # Sent together within the test server's 50 ms queue delay: they share an execute().
    with concurrent.futures.ThreadPoolExecutor(len(mixed)) as pool:
        outcomes = list(pool.map(lambda data: try_infer(server.grpc_url, data), mixed))
    after = preprocess_stats(grpc)
    assert after["inference_count"] - before["inference_count"] == len(mixed)
    assert after["execution_count"] - before["execution_count"] < len(mixed), "requests were not batched"
    for data, (probabilities, error) in zip(mixed, outcomes, strict=True):
        if data in good:
            assert error is None and probabilities.shape == (1, 1000)
        else:
            assert probabilities is None
            assert error.status() == "StatusCode.INVALID_ARGUMENT"
            assert "\n" not in error.message()
    # The first good image still answers exactly as when sent alone.
    np.testing.assert_allclose(outcomes[0][0], infer_probabilities(grpc, grpcclient, [CHELSEA]), atol=1e-6)
    assert server.is_live() and server.is_ready()


def test_one_broken_item_fails_only_its_own_multi_image_request(grpc):
    with pytest.raises(InferenceServerException, match="image 1 of the request: empty input"):
        infer_probabilities(grpc, grpcclient, [CHELSEA, b""])
    assert infer_probabilities(grpc, grpcclient, [CHELSEA, CHELSEA]).shape == (2, 1000)


def test_classifier_alone_accepts_client_side_preprocessing(grpc, metadata):
    pixels = preprocess_image(CHELSEA, metadata.preprocess)[None]
    tensor = grpcclient.InferInput("pixel_values", list(pixels.shape), "FP32")
    tensor.set_data_from_numpy(pixels)
    direct = grpc.infer("efficientnet_lite0_model", [tensor]).as_numpy("probabilities")
    np.testing.assert_allclose(direct, infer_probabilities(grpc, grpcclient, [CHELSEA]), atol=1e-6)


def test_server_is_still_live_after_the_bad_inputs(server, grpc):
    assert server.is_live() and server.is_ready()
    assert grpc.is_model_ready(MODEL)


def try_infer(url: str, data: bytes):
    client = grpcclient.InferenceServerClient(url)
    try:
        return infer_probabilities(client, grpcclient, [data]), None
    except InferenceServerException as err:
        return None, err
    finally:
        client.close()


def preprocess_stats(client) -> dict[str, int]:
    stats = client.get_inference_statistics(f"{MODEL}_preprocess", as_json=True)["model_stats"][0]
    return {
        "inference_count": int(stats.get("inference_count", 0)),
        "execution_count": int(stats.get("execution_count", 0)),
    }
