"""TorchScript export and the ``pytorch_libtorch`` classifier.

The embedded tritonserver has no PyTorch backend, so the served side is checked in
process: the file loads with LibTorch's loader (``torch.jit.load``), its ``forward``
takes the config's input by name, and the generated config parses through Triton's
``model_config.proto`` with the values the PyTorch backend documents.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tritonclf import contract
from tritonclf.export_metadata import load_metadata
from tritonclf.files import sha256_file
from tritonclf.repository.build import BuildError, BuildOptions, build_repository
from tritonclf.repository.pbtxt import parse
from tritonclf.repository.preflight_checks import check_repository
from tritonclf.training.export_check import sample_batch
from tritonclf.training.export_cli import main
from tritonclf.training.torch2onnx import export
from tritonclf.training.torch2torchscript import forward_arguments, load_torchscript

from ..conftest import CAT_CLASSES, SAMPLE_PHOTOS


@pytest.fixture(scope="module")
def both_export(tmp_path_factory):
    out = tmp_path_factory.mktemp("export-both")
    metadata, _ = export("efficientnet_lite0", out, formats=("onnx", "torchscript"))
    return out, metadata


def test_export_both_writes_torchscript_that_agrees_with_onnx_on_real_photos(both_export):
    import onnxruntime as ort

    out, metadata = both_export
    assert metadata.formats == ("onnx", "torchscript")
    assert metadata.torchscript_filename == contract.TORCHSCRIPT_FILENAME
    assert metadata.torchscript_sha256 == sha256_file(out / "model.pt")
    assert load_metadata(out / "model.json") == metadata
    batch = sample_batch(metadata.preprocess, SAMPLE_PHOTOS)
    scripted = load_torchscript(out / "model.pt")
    with torch.no_grad():
        ts_probs = scripted(torch.from_numpy(batch)).numpy()
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_probs = session.run(None, {contract.PIXELS: batch})[0]
    assert np.abs(ts_probs - onnx_probs).max() < 1e-4
    top5 = lambda p: np.argsort(-p, axis=1)[:, :5]  # noqa: E731
    assert (top5(ts_probs) == top5(onnx_probs)).all()
    chelsea = next(i for i, p in enumerate(SAMPLE_PHOTOS) if p.stem == "chelsea")
    assert int(ts_probs[chelsea].argmax()) in CAT_CLASSES
    # The trace keeps the batch axis free: one image and a batch of three both run.
    with torch.no_grad():
        assert scripted(torch.from_numpy(batch[:1])).shape == (1, 1000)
        assert scripted(torch.from_numpy(batch[:3])).shape == (3, 1000)


def test_torchscript_forward_takes_the_served_input_name(both_export):
    out, _ = both_export
    assert forward_arguments(load_torchscript(out / "model.pt")) == (contract.PIXELS,)


def test_torchscript_backend_writes_a_libtorch_classifier_preflight_accepts(both_export, tmp_path):
    out, metadata = both_export
    repo = tmp_path / "repo"
    build_repository(out, repo, BuildOptions(backend="torchscript"))
    classifier = repo / contract.classifier_model_name("efficientnet_lite0")
    config = parse((classifier / "config.pbtxt").read_text())
    assert config.platform == "pytorch_libtorch"
    assert config.default_model_filename == "model.pt"
    assert config.parameters["INFERENCE_MODE"].string_value == "true"
    assert config.parameters["INTRA_OP_THREAD_COUNT"].string_value == "1"
    assert [t.name for t in config.input] == [contract.PIXELS]
    assert [t.name for t in config.output] == [contract.PROBABILITIES]
    assert list(config.input[0].dims) == [3, 224, 224] and config.max_batch_size == 32
    assert sha256_file(classifier / "1" / "model.pt") == metadata.torchscript_sha256
    # The ensemble answers the same whatever runs the classifier; a classifier outside the Python
    # backend hands its probabilities to the monitor step, which records the prediction metrics.
    ensemble = parse((repo / "efficientnet_lite0" / "config.pbtxt").read_text())
    last = ensemble.ensemble_scheduling.step[-1]
    assert last.model_name == contract.monitor_model_name("efficientnet_lite0")
    assert last.output_map[contract.PROBABILITIES] == contract.PROBABILITIES
    assert [f for f in check_repository(repo) if f.severity == "error"] == []


def test_preflight_catches_a_torchscript_file_whose_forward_takes_another_name(both_export, tmp_path):
    out, _ = both_export
    repo = tmp_path / "repo"
    build_repository(out, repo, BuildOptions(backend="torchscript"))
    version = repo / contract.classifier_model_name("efficientnet_lite0") / "1"

    class Other(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.softmax(x.mean((2, 3)), dim=-1)

    torch.jit.script(Other()).save(str(version / "model.pt"))
    messages = [str(f) for f in check_repository(repo) if f.severity == "error"]
    assert any("'pixel_values' is not an argument of the TorchScript forward(x)" in m for m in messages)
    assert any("model.pt does not match its manifest hash" in m for m in messages)


def test_building_torchscript_from_an_onnx_only_export_says_how_to_fix_it(export_dir, tmp_path):
    with pytest.raises(BuildError, match="re-run the export with --format torchscript"):
        build_repository(export_dir, tmp_path / "repo", BuildOptions(backend="torchscript"))


def test_cli_format_torchscript_writes_the_torchscript_file_and_no_onnx(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["--model", "resnet18", "--random-weights", "--format", "torchscript", "--output", str(out)]) == 0
    # The safetensors weights (for --backend torch) come with every export; no model.onnx.
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.pt", "model.safetensors"]
    metadata = load_metadata(out / "model.json")
    assert metadata.formats == ("torchscript",) and metadata.onnx_filename == ""
    assert "model.pt" in capsys.readouterr().out


def test_classifier_on_the_torchscript_file_agrees_with_onnx(both_export):
    from tritonclf import Classifier

    out, _ = both_export
    scripted, onnx_clf = Classifier.load(out, runtime="torchscript"), Classifier.load(out, runtime="onnx")
    assert (scripted.runtime, scripted.device) == ("torchscript", "cuda" if torch.cuda.is_available() else "cpu")
    for ts_answer, onnx_answer in zip(
        scripted.predict_batch(SAMPLE_PHOTOS), onnx_clf.predict_batch(SAMPLE_PHOTOS), strict=True
    ):
        assert [p.index for p in ts_answer] == [p.index for p in onnx_answer]
        np.testing.assert_allclose([p.score for p in ts_answer], [p.score for p in onnx_answer], atol=1e-4)
