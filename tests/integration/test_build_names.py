"""Ensemble names: a name Triton cannot serve is refused before anything is written, and a
fine-tuned export lands beside the ImageNet model instead of replacing it."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tritonclf.export_metadata import load_metadata
from tritonclf.repository.build import build_repository
from tritonclf.repository.preflight_checks import check_repository

from ..conftest import ROOT

CLASSES = ("cat", "crème brûlée", "dog", "fox")


def run(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, timeout=600, check=False)


@pytest.fixture(scope="module")
def fine_tuned_export(tmp_path_factory):
    """A 4-class efficientnet_lite0 checkpoint of runs/gray (as training writes it), exported as a user would."""
    from tritonclf.training.checkpoint import ModelCard, save_checkpoint
    from tritonclf.training.export_cli import main as export_main
    from tritonclf.training.model import create_model, resolve_spec

    root = tmp_path_factory.mktemp("fine_tuned")
    model = create_model("efficientnet_lite0", len(CLASSES), init="bundled")
    card = ModelCard("efficientnet_lite0", CLASSES, resolve_spec(model))
    save_checkpoint(root / "runs" / "gray" / "best.pth", {**card.to_dict(), "state_dict": model.state_dict()})
    export = root / "exports" / "gray"
    assert export_main(["--weights", str(root / "runs" / "gray" / "best.pth"), "--output", str(export)]) == 0
    return export


@pytest.mark.parametrize("name", ["gray crème", "grayé", "gray;ls"])
def test_build_refuses_a_name_triton_cannot_serve_and_writes_nothing(export_dir, tmp_path, name):
    repository = tmp_path / "model_repository"
    result = run(
        "build/build_repository.py", "--export", str(export_dir), "--repository", str(repository), "--name", name
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and f"model name {name!r} has" in result.stderr
    assert "for example --name gray" in result.stderr
    assert not repository.exists() and not list(tmp_path.iterdir())


def test_preflight_reports_a_model_name_and_a_repository_path_the_stubs_cannot_start(export_dir, tmp_path):
    repository = tmp_path / "my models" / "model_repository"
    build_repository(export_dir, repository)  # warns about the path; the name is the default
    result = run("build/preflight.py", "--repository", str(repository))
    assert result.returncode == 1
    assert f"error: {repository}: its path '{repository}' has a space" in result.stderr
    plain = tmp_path / "plain"
    shutil.move(repository, plain)
    (plain / "efficientnet_lite0_preprocess").rename(plain / "prétraitement")
    findings = [str(f) for f in check_repository(plain) if f.severity == "error"]
    assert "error: prétraitement: the model name has a non-ASCII letter: model names are ASCII letters" in (
        " ".join(findings)
    )


def test_a_fine_tuned_export_is_built_beside_the_imagenet_model_without_a_name(export_dir, fine_tuned_export, tmp_path):
    repository = tmp_path / "model_repository"
    build_repository(export_dir, repository)
    imagenet_labels = (repository / "efficientnet_lite0" / "labels.txt").read_text()
    assert load_metadata(fine_tuned_export / "model.json").ensemble_name == "gray"
    result = run("build/build_repository.py", "--export", str(fine_tuned_export), "--repository", str(repository))
    assert result.returncode == 0, result.stderr
    assert "(ensemble: gray)" in result.stdout
    assert (repository / "gray" / "labels.txt").read_text() == "".join(f"{c}\n" for c in CLASSES)
    assert (repository / "efficientnet_lite0" / "labels.txt").read_text() == imagenet_labels
    assert sorted(p.name for p in (repository / "efficientnet_lite0").iterdir() if p.name.isdigit()) == ["1"]
    assert check_repository(repository) == []


def test_an_export_named_like_a_served_model_with_other_classes_needs_replace(export_dir, fine_tuned_export, tmp_path):
    """An export that carries no name of its own (written before exports named their run) is named
    after its architecture: building it must not turn the ImageNet ensemble into a 4-class one."""
    repository, older = tmp_path / "model_repository", tmp_path / "older_export"
    build_repository(export_dir, repository)
    shutil.copytree(fine_tuned_export, older)
    metadata = (older / "model.json").read_text().replace('"served_name": "gray"', '"served_name": ""')
    (older / "model.json").write_text(metadata)
    result = run("build/build_repository.py", "--export", str(older), "--repository", str(repository))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "already serves another model (1000 classes, 'tench, Tinca tinca'...) and this export has 4" in result.stderr
    assert "--name NAME" in result.stderr and "--replace" in result.stderr
    assert (repository / "efficientnet_lite0" / "labels.txt").read_text().count("\n") == 1000
    replaced = run("build/build_repository.py", "--export", str(older), "--repository", str(repository), "--replace")
    assert replaced.returncode == 0, replaced.stderr
    assert (repository / "efficientnet_lite0" / "labels.txt").read_text().count("\n") == len(CLASSES)


def test_export_refuses_a_name_triton_cannot_serve_before_loading_anything(tmp_path):
    result = run("training/export.py", "--name", "gray crème", "--output", str(tmp_path / "e"))
    assert result.returncode == 2 and "for example --name gray_creme" in result.stderr
    assert not (tmp_path / "e").exists()
