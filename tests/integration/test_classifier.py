"""The in-process Classifier: same answers as the served ensemble, from every kind of input."""

from __future__ import annotations

import numpy as np
import pytest

from tritonclf import Classifier
from tritonclf.classifier import ClassifierError, ImageFailed
from tritonclf.client.triton_client import ClassifierClient

from ..conftest import CAT_CLASSES, SAMPLE_PHOTOS, photo


@pytest.fixture(scope="module")
def clf(export_dir):
    return Classifier.load(export_dir)


def test_predictions_equal_the_served_ensembles_on_real_photos(clf, server):
    client = ClassifierClient(server.grpc_url)
    try:
        for path in SAMPLE_PHOTOS:
            served = client.classify(path.read_bytes(), top_k=5)
            local = clf.predict(path, top_k=5)
            assert [(p.index, p.label) for p in local] == [(p.index, p.label) for p in served], path.name
            np.testing.assert_allclose([p.score for p in local], [p.score for p in served], atol=1e-5)
    finally:
        client.close()


def test_a_path_bytes_a_pil_image_and_an_array_are_all_classified(clf):
    path = next(p for p in SAMPLE_PHOTOS if p.stem == "chelsea")
    image = photo("chelsea")
    answers = [clf.predict(x, top_k=3) for x in (path, str(path), path.read_bytes(), image, np.asarray(image))]
    assert all(len(a) == 3 and a[0].index in CAT_CLASSES for a in answers)
    assert answers[0] == answers[1] == answers[2]  # the same bytes, the same decoder
    assert answers[3] == answers[4]  # the same decoded pixels
    assert answers[0][0].label == clf.labels[answers[0][0].index]
    assert answers[0][0].score >= answers[0][1].score >= answers[0][2].score


def test_predict_batch_equals_one_by_one_across_batch_boundaries(clf):
    batch = clf.predict_batch(SAMPLE_PHOTOS, top_k=2, batch_size=3)
    assert len(batch) == len(SAMPLE_PHOTOS)
    for path, answer in zip(SAMPLE_PHOTOS, batch, strict=True):
        single = clf.predict(path, top_k=2)
        assert [p.index for p in answer] == [p.index for p in single]
        np.testing.assert_allclose([p.score for p in answer], [p.score for p in single], atol=1e-6)
    assert clf.predict_batch([]) == []


def test_a_bad_image_in_a_batch_fails_alone_and_is_named_by_position_and_file(clf, server, tmp_path):
    good = SAMPLE_PHOTOS[0].read_bytes()
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good[: len(good) // 2])
    inputs = [SAMPLE_PHOTOS[0], truncated, SAMPLE_PHOTOS[1], tmp_path / "missing.jpg", b"<html>", SAMPLE_PHOTOS[2]]
    results = clf.predict_batch(inputs, top_k=3, batch_size=4)
    assert len(results) == len(inputs)
    failed = {i: r for i, r in enumerate(results) if isinstance(r, ImageFailed)}
    assert sorted(failed) == [1, 3, 4]
    assert str(failed[1]).startswith(f"image 1 ({truncated}): cannot decode JPEG image")
    assert str(failed[3]) == f"image 3 ({tmp_path / 'missing.jpg'}): No such file or directory"
    assert (failed[4].index, failed[4].source) == (4, "6 bytes") and "not a decodable image" in failed[4].reason
    for i in (0, 2, 5):
        alone = clf.predict(inputs[i], top_k=3)
        assert [p.index for p in results[i]] == [p.index for p in alone]
        np.testing.assert_allclose([p.score for p in results[i]], [p.score for p in alone], atol=1e-6)
    # The served ensemble answers the same inputs the same way: the broken one alone fails.
    client = ClassifierClient(server.grpc_url)
    try:
        with pytest.raises(Exception, match="cannot decode JPEG image"):
            client.classify(truncated.read_bytes())
        assert [p.index for p in client.classify(SAMPLE_PHOTOS[1].read_bytes(), 3)] == [p.index for p in results[2]]
    finally:
        client.close()
    with pytest.raises(ImageFailed, match=r"^image 1 \(.*truncated.jpg\): cannot decode"):
        clf.predict_batch(inputs, errors="raise")
    with pytest.raises(ImageFailed, match="image 1"):
        clf.probabilities(inputs)


def test_unusable_inputs_are_one_line_errors(clf, tmp_path):
    with pytest.raises(ClassifierError, match="pass a path, encoded bytes, a PIL image or an HWC uint8 array"):
        clf.predict(42)
    with pytest.raises(ClassifierError, match=r"HWC .* uint8"):
        clf.predict(np.zeros((32, 32, 3), np.float32))
    with pytest.raises(ValueError, match="not a decodable image"):
        clf.predict(b"<html>not an image</html>")
    with pytest.raises(ClassifierError, match="top_k must be at least 1"):
        clf.predict(SAMPLE_PHOTOS[0], top_k=0)


def test_an_onnx_only_export_asked_for_torchscript_says_how_to_fix_it(export_dir):
    with pytest.raises(ClassifierError, match="--format torchscript"):
        Classifier.load(export_dir, runtime="torchscript")


def test_cpu_is_used_where_onnxruntime_has_no_cuda_provider(clf):
    import onnxruntime as ort

    expected = "cuda" if "CUDAExecutionProvider" in ort.get_available_providers() else "cpu"
    assert (clf.runtime, clf.device) == ("onnx", expected)
