"""perf_analyzer input data for a real export: the pixels are the export's preprocessing."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np

from tritonclf.files import write_json_atomic
from tritonclf.preprocess import PreprocessSpec, preprocess_image
from tritonclf.samples import sample_dir
from tritonclf_lab.bench import perf_input_cli as perf_input

from ..export_metadata import export_metadata

SAMPLES = sample_dir()


def _sent_bytes(entry: dict, input_name: str) -> bytes:
    """The raw tensor content perf_analyzer sends for one ``--input-data`` entry."""
    return base64.b64decode(entry[input_name]["b64"])


def _fake_export(folder: Path, spec: PreprocessSpec) -> Path:
    metadata = export_metadata(model_name="m", labels=("a", "b"), preprocess=spec)
    write_json_atomic(folder / "model.json", metadata.to_dict())
    return folder


def test_command_pixels_are_the_exports_preprocessing_of_each_image(tmp_path):
    """``--pixels``: the classifier alone gets the tensors it would get inside the ensemble."""
    spec = PreprocessSpec(input_size=(64, 64))
    export = _fake_export(tmp_path, spec)
    photo = SAMPLES / "coffee.jpg"
    output = tmp_path / "classifier.json"
    assert perf_input.main([str(photo), "--pixels", "--export", str(export), "--output", str(output)]) == 0
    (entry,) = json.loads(output.read_text())["data"]
    assert entry["pixel_values"]["shape"] == [3, 64, 64]
    sent = np.frombuffer(_sent_bytes(entry, "pixel_values"), dtype="<f4").reshape(3, 64, 64)
    np.testing.assert_array_equal(sent, preprocess_image(photo.read_bytes(), spec))
