"""Base64 images in plain JSON through the served ensemble: classified like the raw file, bad ones fail alone."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import tritonclient.http as httpclient

from tritonclf_lab.bad_images import BAD_INPUTS, url_safe_base64_lines

from ..conftest import CAT_CLASSES, SAMPLES

pytestmark = pytest.mark.integration
MODEL = "efficientnet_lite0"
COFFEE = (SAMPLES / "coffee.jpg").read_bytes()
ESPRESSO = 967
# The catalogue's base64 and data URL rejections small enough to send as JSON in one batch.
BAD_NAMES = ("base64-url-quoted", "base64-bomb", "base64-tiff", "svg-data-url")
BAD_TEXT = [bad for bad in BAD_INPUTS if bad.name in BAD_NAMES]


def post_json(server, path: str, body: dict | None = None) -> tuple[int, dict]:
    """One plain-JSON request with the standard library, as any HTTP client sends it; (status, answer)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://{server.http_url}{path}", data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def classify_json(server, text: str) -> tuple[int, dict]:
    """The image as a JSON string in the ``image`` input; the probabilities back as JSON."""
    body = {
        "inputs": [{"name": "image", "shape": [1, 1], "datatype": "BYTES", "data": [text]}],
        "outputs": [{"name": "probabilities"}],
    }
    return post_json(server, f"/v2/models/{MODEL}/infer", body)


def probabilities(answer: dict) -> np.ndarray:
    """The ``probabilities`` output of a JSON answer."""
    (output,) = answer["outputs"]
    return np.asarray(output["data"], dtype=np.float32).reshape(output["shape"])


def binary_probabilities(server, image: bytes) -> np.ndarray:
    """The raw file through tritonclient's binary transfer: the reference answer."""
    client = httpclient.InferenceServerClient(server.http_url)
    try:
        tensor = httpclient.InferInput("image", [1, 1], "BYTES")
        tensor.set_data_from_numpy(np.array([image], dtype=np.object_).reshape(1, 1))
        return client.infer(MODEL, [tensor]).as_numpy("probabilities")
    finally:
        client.close()


def preprocess_counts(server) -> dict[str, int]:
    """The preprocessing model's inference and execution counts."""
    _, stats = post_json(server, f"/v2/models/{MODEL}_preprocess/stats")
    model = stats["model_stats"][0]
    return {key: int(model.get(key, 0)) for key in ("inference_count", "execution_count")}


GOOD_TEXT = {
    "standard": base64.b64encode(COFFEE).decode(),
    "url-safe-unpadded": base64.urlsafe_b64encode(COFFEE).decode().rstrip("="),
    "mime-lines": base64.encodebytes(COFFEE).decode(),
    "data-url": "data:image/jpeg;base64," + base64.b64encode(COFFEE).decode(),
}


@pytest.mark.parametrize("form", GOOD_TEXT)
def test_plain_json_base64_gets_the_same_answer_as_the_raw_file(server, form):
    status, answer = classify_json(server, GOOD_TEXT[form])
    assert status == 200, answer
    served = probabilities(answer)
    assert int(served.argmax()) == ESPRESSO
    np.testing.assert_allclose(served, binary_probabilities(server, COFFEE), atol=1e-6)


def test_base64_shares_a_batch_with_broken_base64_and_only_the_broken_fail(server):
    good = {**GOOD_TEXT, "cat-url-safe-lines": url_safe_base64_lines().decode()}
    requests = [*good.items(), *((bad.name, bad.make().decode()) for bad in BAD_TEXT)]
    before = preprocess_counts(server)
    # All sent within the test server's 50 ms queue delay: they land in shared execute() calls.
    with concurrent.futures.ThreadPoolExecutor(len(requests)) as pool:
        sent = pool.map(lambda request: classify_json(server, request[1]), requests)
        answers = dict(zip((name for name, _ in requests), sent, strict=True))
    deadline = time.monotonic() + 5
    while (after := preprocess_counts(server))["inference_count"] < before["inference_count"] + len(requests):
        assert time.monotonic() < deadline, "Triton did not count every request"
        time.sleep(0.05)
    assert after["execution_count"] - before["execution_count"] < len(requests) / 2, "requests were not batched"
    for name in good:
        status, answer = answers[name]
        assert status == 200, f"{name}: {answer}"
        top = int(probabilities(answer).argmax())
        assert top in CAT_CLASSES if name.startswith("cat") else top == ESPRESSO, name
    for bad in BAD_TEXT:
        assert answers[bad.name] == (400, {"error": f"in ensemble '{MODEL}', {bad.message}"}), bad.name
