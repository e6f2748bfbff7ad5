"""Hostile requests straight to the classifier (ONNX Runtime in the Python backend), on the real server.

A request of the wrong shape or with non-finite pixels must fail alone, with one line and
``INVALID_ARG``, however it is batched with others: the concurrent good requests all get their
answers. No error text carries a traceback or a server path. The torch classifier has the same
checks: tests/integration/test_torch_path.py.
"""

from __future__ import annotations

import concurrent.futures

import numpy as np
import pytest

from tritonclf.client.status import OK
from tritonclf.preprocess import preprocess_image

from ..conftest import SAMPLES
from ..hostile_requests import clean_one_line, grpc_pixels, hostile_pixel_requests

pytestmark = pytest.mark.integration
CLASSIFIER = "efficientnet_lite0_model"
GOOD_REQUESTS = 320


@pytest.fixture(scope="module")
def pixels(metadata) -> np.ndarray:
    """One real photo, preprocessed as the served preprocessing model does it: [1, 3, 224, 224]."""
    return preprocess_image((SAMPLES / "chelsea.jpg").read_bytes(), metadata.preprocess)[np.newaxis]


def expected_top1(onnx_session, pixels) -> int:
    return int(onnx_session.run(None, {"pixel_values": pixels})[0].argmax())


@pytest.mark.parametrize("name", ["http batch 2**63", "grpc batch -2**63", "NaN pixels", "one +Inf pixel"])
def test_a_hostile_classifier_request_gets_one_clean_line(server, pixels, name):
    status, message = hostile_pixel_requests(server, CLASSIFIER, pixels)[name]()
    assert status == "INVALID_ARGUMENT", (status, message)
    assert clean_one_line(message), message
    if "batch" in name:
        assert message.startswith("pixel_values must be [batch, 3, 224, 224] float32, batch 1 to 32;"), message
    else:
        assert message.startswith("pixel_values holds NaN or infinite values"), message


def test_hostile_requests_fail_alone_while_concurrent_good_requests_all_succeed(server, pixels, onnx_session):
    # One hostile request in flight at a time, so each lands in a dynamic batch of good ones. (Several
    # batch overflows at once can make Triton 2.51 itself fail a whole batch before the model runs:
    # docs/SECURITY.md.)
    top1 = expected_top1(onnx_session, pixels)
    hostile = hostile_pixel_requests(server, CLASSIFIER, pixels)
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        good = [pool.submit(grpc_pixels, server.grpc_url, CLASSIFIER, None, pixels) for _ in range(GOOD_REQUESTS)]
        refusals = []
        while not all(future.done() for future in good):
            refusals += [send() for send in hostile.values()]
        answers = [future.result() for future in good]
    failed = [(status, message) for status, message, _ in answers if status != OK]
    assert not failed, f"{len(failed)} of {GOOD_REQUESTS} good requests failed, e.g. {failed[0]}"
    assert {int(probabilities.argmax()) for _, _, probabilities in answers} == {top1}
    assert len(refusals) >= 2 * len(hostile)
    assert {status for status, _ in refusals} == {"INVALID_ARGUMENT"}, refusals
    assert all(clean_one_line(message) for _, message in refusals)
