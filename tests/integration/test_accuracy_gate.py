"""The FP16 accuracy gate on real exports: an FP16 ONNX model that passes, a degraded one that fails."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
from onnx import numpy_helper

from tritonclf.repository.accuracy_gate import GateThresholds, compare, gate_images, onnx_runner, run_in_batches

from ..conftest import SAMPLE_PHOTOS


def test_gate_images_are_real_photos_through_serving_preprocessing(metadata):
    pixels = gate_images(SAMPLE_PHOTOS, metadata.preprocess)
    assert pixels.shape == (len(SAMPLE_PHOTOS) * 8, 3, 224, 224)
    assert len({p.tobytes() for p in pixels}) == len(pixels)  # every variant differs


def fp16_model(export_dir, tmp_path):
    from onnxconverter_common import float16

    model = onnx.load(str(export_dir / "model.onnx"))
    softmax = [n.name for n in model.graph.node if n.op_type == "Softmax"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns about every tiny weight it rounds
        half = float16.convert_float_to_float16(model, keep_io_types=True, node_block_list=softmax)
    path = tmp_path / "fp16.onnx"
    onnx.save(half, str(path))
    return path, half


def run_gate(export_dir, candidate_path, metadata):
    pixels = gate_images(SAMPLE_PHOTOS, metadata.preprocess)
    reference = run_in_batches(onnx_runner(export_dir / "model.onnx", "pixel_values", "probabilities"), pixels, 16)
    candidate = run_in_batches(onnx_runner(candidate_path, "pixel_values", "probabilities"), pixels, 16)
    return compare(reference, candidate)


def test_fp16_model_passes_the_gate(export_dir, metadata, tmp_path):
    path, _ = fp16_model(export_dir, tmp_path)
    report = run_gate(export_dir, path, metadata)
    assert report.failures(GateThresholds()) == []
    assert report.top1_agreement == 1.0 and report.mean_abs_delta < 1e-4


def test_degraded_fp16_model_fails_the_gate(export_dir, metadata, tmp_path):
    path, half = fp16_model(export_dir, tmp_path)
    # Damage the classifier head the way a bad precision choice would: coarse weights.
    head = max(half.graph.initializer, key=lambda t: np.prod(t.dims) if len(t.dims) == 2 else 0)
    weights = numpy_helper.to_array(head)
    coarse = (np.round(weights.astype(np.float32) * 8) / 8).astype(weights.dtype)
    head.CopyFrom(numpy_helper.from_array(coarse, head.name))
    onnx.save(half, str(path))
    failures = run_gate(export_dir, path, metadata).failures(GateThresholds())
    assert failures and any("agreement" in f or "mean |delta" in f for f in failures)
