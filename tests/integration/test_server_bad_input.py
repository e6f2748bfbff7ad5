"""Hostile and odd images through the served ensemble: exact one-line rejections, batch neighbours unharmed."""

from __future__ import annotations

import concurrent.futures
import time

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tritonclf.preprocess import preprocess_image
from tritonclf_lab.bad_images import BAD_INPUTS, NOT_RECOGNISABLE, ODD_IMAGES, encode, photo
from tritonclf_lab.bench.procmem import descendants

from ..conftest import CAT_CLASSES, SAMPLES

pytestmark = pytest.mark.integration
MODEL = "efficientnet_lite0"
PROTOCOLS = {"grpc": grpcclient, "http": httpclient}
HTTP_STATUS = {"grpc": "StatusCode.INVALID_ARGUMENT", "http": "400"}


def infer(module, url: str, image: bytes) -> tuple[np.ndarray | None, InferenceServerException | None, float]:
    """One image, one request, on a fresh connection (so concurrent calls are independent)."""
    client = module.InferenceServerClient(url)
    tensor = module.InferInput("image", [1, 1], "BYTES")
    tensor.set_data_from_numpy(np.array([image], dtype=np.object_).reshape(1, 1))
    start = time.perf_counter()
    try:
        result = client.infer(MODEL, [tensor], outputs=[module.InferRequestedOutput("probabilities")])
        return result.as_numpy("probabilities"), None, time.perf_counter() - start
    except InferenceServerException as err:
        return None, err, time.perf_counter() - start
    finally:
        client.close()


def stub_pids(server) -> set[int]:
    """The Python-backend stub processes of this server (a crash would replace or drop one)."""
    return set(descendants(server.process.pid)) - {server.process.pid}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("bad", BAD_INPUTS, ids=lambda bad: bad.name)
def test_bad_input_gets_its_one_line_invalid_argument_fast(server, bad, protocol):
    url = server.grpc_url if protocol == "grpc" else server.http_url
    probabilities, err, latency = infer(PROTOCOLS[protocol], url, bad.make())
    assert probabilities is None
    assert str(err.status()) == HTTP_STATUS[protocol]
    assert err.message() == f"in ensemble '{MODEL}', {bad.message}"
    # The test server waits up to 50 ms to form a batch; the rest is transfer and a header check.
    assert latency < 1.0


def test_bad_and_odd_images_share_a_batch_and_only_the_bad_ones_fail(server, onnx_session, metadata):
    before = preprocess_stats(server)
    good = {name: make() for name, (_, make) in ODD_IMAGES.items()}
    good["plain-jpeg"] = (SAMPLES / "chelsea.jpg").read_bytes()
    bad = {item.name: item for item in BAD_INPUTS}
    requests = [*good.items(), *((name, item.make()) for name, item in bad.items())]
    # All sent within the test server's 50 ms queue delay: they land in shared execute() calls.
    with concurrent.futures.ThreadPoolExecutor(len(requests)) as pool:
        answers = pool.map(lambda request: infer(grpcclient, server.grpc_url, request[1]), requests)
        outcomes = dict(zip((name for name, _ in requests), answers, strict=True))
    after = preprocess_stats(server, expected_inferences=before["inference_count"] + len(requests))
    assert after["inference_count"] - before["inference_count"] == len(requests)
    assert after["execution_count"] - before["execution_count"] < len(requests) / 2, "requests were not batched"
    for name, data in good.items():
        probabilities, err, _ = outcomes[name]
        assert err is None, f"{name}: {err}"
        local = onnx_session.run(None, {"pixel_values": preprocess_image(data, metadata.preprocess)[None]})[0]
        np.testing.assert_allclose(probabilities, local, atol=1e-6, err_msg=name)
    for name, item in bad.items():
        _, err, _ = outcomes[name]
        assert err is not None and err.message() == f"in ensemble '{MODEL}', {item.message}", name


@pytest.mark.parametrize("name", sorted(ODD_IMAGES.keys() - NOT_RECOGNISABLE))
def test_odd_encodings_of_the_cat_are_still_a_cat(server, name):
    probabilities, err, _ = infer(grpcclient, server.grpc_url, ODD_IMAGES[name][1]())
    assert err is None and int(probabilities.argmax()) in CAT_CLASSES


def test_exif_rotated_jpeg_gets_the_same_answer_as_the_upright_photo(server):
    upright, _, _ = infer(grpcclient, server.grpc_url, encode(photo(), "JPEG", quality=92))
    rotated, _, _ = infer(grpcclient, server.grpc_url, ODD_IMAGES["exif-rotated-jpeg"][1]())
    # Same classes; the scores differ a little because JPEG compresses turned pixels differently.
    assert int(rotated.argmax()) == int(upright.argmax()) in CAT_CLASSES
    assert set(np.argsort(-rotated[0])[:3]) == set(np.argsort(-upright[0])[:3])
    np.testing.assert_allclose(rotated, upright, atol=0.05)


def test_server_and_its_stubs_survive_every_bad_input(server):
    stubs = stub_pids(server)
    for bad in BAD_INPUTS:
        infer(grpcclient, server.grpc_url, bad.make())
    assert stub_pids(server) == stubs
    assert server.is_live() and server.is_ready()
    probabilities, err, _ = infer(grpcclient, server.grpc_url, (SAMPLES / "chelsea.jpg").read_bytes())
    assert err is None and int(probabilities.argmax()) in CAT_CLASSES


def preprocess_stats(server, expected_inferences: int = 0, timeout_s: float = 5.0) -> dict[str, int]:
    """The preprocessing model's counts; waits for ``expected_inferences`` (Triton counts after answering)."""
    client = grpcclient.InferenceServerClient(server.grpc_url)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            stats = client.get_inference_statistics(f"{MODEL}_preprocess", as_json=True)["model_stats"][0]
            counts = {key: int(stats.get(key, 0)) for key in ("inference_count", "execution_count")}
            if counts["inference_count"] >= expected_inferences or time.monotonic() > deadline:
                return counts
            time.sleep(0.05)
    finally:
        client.close()
