"""An export's ``model.json`` for tests that build configs without exporting a model."""

from __future__ import annotations

from tritonclf import contract
from tritonclf.export_metadata import ExportMetadata
from tritonclf.preprocess import PreprocessSpec


def export_metadata(**fields) -> ExportMetadata:
    """Three classes at 224 px, an ONNX file of zero hash; ``fields`` replace any of it."""
    values = {
        "model_name": "efficientnet_lite0",
        "labels": ("cat", "dog", "fox"),
        "preprocess": PreprocessSpec(input_size=(224, 224)),
        "onnx_filename": contract.ONNX_FILENAME,
        "onnx_sha256": "0" * 64,
        "input_name": contract.PIXELS,
        "output_name": contract.PROBABILITIES,
        "opset": 17,
        "weights": "test",
        "versions": {},
    }
    return ExportMetadata(**{**values, **fields})
