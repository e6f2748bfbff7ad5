"""The reference recorded by evaluate and export lands beside the model, and the build serves it."""

from __future__ import annotations

import json
import shutil

from tritonclf import contract
from tritonclf.export_metadata import load_metadata
from tritonclf.monitoring.reference import load_reference
from tritonclf.repository.build import build_repository
from tritonclf.training import evaluate_cli, export_cli
from tritonclf_lab.drift_images import stream, write_image_folder


def copy_export(export_dir, target):
    target.mkdir()
    for name in ("model.onnx", "model.json", "model.safetensors"):
        shutil.copy(export_dir / name, target / name)
    return target


def test_evaluate_records_the_reference_beside_the_onnx_and_the_build_serves_it(export_dir, tmp_path, capsys):
    export = copy_export(export_dir, tmp_path / "export")
    data = write_image_folder(stream(40, seed=5), tmp_path / "data")
    code = evaluate_cli.main(
        ["--data", str(data), "--onnx", str(export / "model.onnx"), "--reference", "--output", str(tmp_path / "eval")]
    )
    assert code == 0
    assert "reference: 40 validation images" in capsys.readouterr().out
    assert load_metadata(export / contract.METADATA_FILENAME).reference_filename == contract.REFERENCE_FILENAME
    reference = load_reference(export / contract.REFERENCE_FILENAME)
    assert reference.n == 40
    assert reference.label_counts == ()  # the folders (chelsea, coffee, ...) are no ImageNet class names
    assert reference.predicted_counts[reference.class_names.index("espresso")] > 0
    repository = tmp_path / "model_repository"
    build_repository(export, repository)
    plan = json.loads(
        (repository / contract.classifier_model_name("efficientnet_lite0") / "1" / "metrics.json").read_text()
    )
    assert "espresso" in plan["classes"]
    assert plan["reference"]["n"] == 40
    assert abs(sum(plan["reference"]["class_shares"].values()) - 1) < 1e-9


def test_export_records_a_reference_and_a_new_export_drops_the_stale_one(tmp_path, capsys):
    data = write_image_folder(stream(20, seed=6), tmp_path / "data")
    output = tmp_path / "export"
    assert export_cli.main(["--output", str(output), "--reference-data", str(data)]) == 0
    assert "reference: 20 validation images" in capsys.readouterr().out
    assert (output / contract.REFERENCE_FILENAME).is_file()
    assert export_cli.main(["--output", str(output)]) == 0
    assert not (output / contract.REFERENCE_FILENAME).exists()
    assert load_metadata(output / contract.METADATA_FILENAME).reference_filename == ""
