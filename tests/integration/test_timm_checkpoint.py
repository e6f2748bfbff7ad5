"""A checkpoint written by timm's own ``CheckpointSaver`` (as timm's train.py writes it) exports and evaluates."""

from __future__ import annotations

import argparse
import json
import pathlib
import pickle
import shutil

import numpy as np
import pytest
import timm
import torch
from timm.utils import CheckpointSaver, ModelEmaV3

from tritonclf.export_metadata import load_metadata
from tritonclf.training import evaluate_cli
from tritonclf.training.export_check import sample_batch
from tritonclf.training.export_cli import main as export_main
from tritonclf.training.weights import WeightsError, read_checkpoint

from ..conftest import SAMPLE_PHOTOS

CLASSES = ("cat", "coffee", "rocket")


def _timm_args(**overrides) -> argparse.Namespace:
    """The part of timm train.py's argument namespace a checkpoint carries (its defaults, a 3-class run)."""
    values = {
        "model": "resnet18",
        "num_classes": len(CLASSES),
        "img_size": 160,
        "input_size": None,
        "crop_pct": None,
        "mean": None,
        "std": None,
        "interpolation": "",
        "opt": "adamw",
        "lr": 1e-3,
        "epochs": 1,
        "mixup": 0.8,
        "cutmix": 1.0,
        "smoothing": 0.1,
        "model_ema": True,
        "output": "",
        "experiment": "",
    }
    return argparse.Namespace(**{**values, **overrides})


@pytest.fixture(scope="module")
def timm_run(tmp_path_factory):
    """output/train/RUN/ as timm train.py leaves it: model_best.pth.tar, with EMA weights unlike the model's."""
    run_dir = tmp_path_factory.mktemp("timm-run")
    torch.manual_seed(0)
    model = timm.create_model("resnet18", num_classes=len(CLASSES))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ema = ModelEmaV3(model, decay=0.9)
    with torch.no_grad():
        ema.module.fc.weight.mul_(3.0)  # the EMA is what must be exported, and it is told apart here
    saver = CheckpointSaver(
        model, optimizer, args=_timm_args(), model_ema=ema, checkpoint_dir=str(run_dir), recovery_dir=str(run_dir)
    )
    saver.save_checkpoint(epoch=0, metric=66.7)
    (run_dir / "labels.txt").write_text("".join(f"{c}\n" for c in CLASSES))
    return run_dir, model.eval(), ema.module.eval()


def test_timm_checkpoints_need_exactly_the_namespace_allowlisted(timm_run):
    run_dir, _, _ = timm_run
    best = run_dir / "model_best.pth.tar"
    with pytest.raises(pickle.UnpicklingError):
        torch.load(best, map_location="cpu", weights_only=True)
    checkpoint = read_checkpoint(best)
    expected = {"state_dict", "state_dict_ema", "arch", "args", "optimizer", "epoch", "version", "metric"}
    assert expected <= set(checkpoint)
    assert isinstance(checkpoint["args"], argparse.Namespace) and checkpoint["arch"] == "resnet18"


def test_a_checkpoint_pickling_any_other_class_is_still_refused(timm_run, tmp_path):
    run_dir, _, _ = timm_run
    checkpoint = read_checkpoint(run_dir / "model_best.pth.tar")
    checkpoint["args"].output = pathlib.PurePosixPath("/runs")  # any class beyond Namespace
    torch.save(checkpoint, tmp_path / "odd.pth.tar")
    with pytest.raises(WeightsError, match="not a loadable weights-only checkpoint"):
        read_checkpoint(tmp_path / "odd.pth.tar")


def test_export_of_a_timm_checkpoint_takes_its_arch_size_and_ema_weights(timm_run, tmp_path, capsys):
    run_dir, model, ema_model = timm_run
    out = tmp_path / "out"
    args = ["--checkpoint", str(run_dir / "model_best.pth.tar"), "--labels", str(run_dir / "labels.txt")]
    assert export_main([*args, "--output", str(out), "--format", "both"]) == 0
    metadata = load_metadata(out / "model.json")
    assert (metadata.model_name, metadata.labels) == ("resnet18", CLASSES)
    assert metadata.preprocess.input_size == (160, 160)  # the run's --img-size, not resnet18's 224
    import onnxruntime as ort

    batch = sample_batch(metadata.preprocess, SAMPLE_PHOTOS[:4])
    exported = ort.InferenceSession(str(out / "model.onnx")).run(None, {"pixel_values": batch})[0]
    with torch.no_grad():
        ema_probs = torch.softmax(ema_model(torch.from_numpy(batch)), -1).numpy()
        raw_probs = torch.softmax(model(torch.from_numpy(batch)), -1).numpy()
    np.testing.assert_allclose(exported, ema_probs, atol=1e-4)
    assert np.abs(exported - raw_probs).max() > 1e-3


def test_export_names_its_folder_after_the_timm_run(timm_run, tmp_path, monkeypatch):
    run_dir, _, _ = timm_run
    monkeypatch.chdir(tmp_path)
    labels = str(run_dir / "labels.txt")
    assert export_main(["--checkpoint", str(run_dir / "last.pth.tar"), "--labels", labels]) == 0
    assert (tmp_path / "exports" / run_dir.name / "model.onnx").is_file()
    # A checkpoint of another architecture than --model names: nothing exported, exit 2.
    assert export_main(["--checkpoint", str(run_dir / "last.pth.tar"), "--model", "resnet50"]) == 2


def test_evaluate_scores_a_timm_checkpoint_on_a_class_folder(timm_run, tmp_path, capsys):
    run_dir, _, _ = timm_run
    data = tmp_path / "data"
    for name, photo in zip(CLASSES, ("chelsea", "coffee", "rocket"), strict=True):
        (data / name).mkdir(parents=True)
        shutil.copy(next(p for p in SAMPLE_PHOTOS if p.stem == photo), data / name / f"{photo}.jpg")
    args = ["--data", str(data), "--checkpoint", str(run_dir / "model_best.pth.tar"), "--json"]
    assert evaluate_cli.main([*args, "--output", str(tmp_path / "eval")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 3 and report["class_names"] == list(CLASSES)
    assert report["source"] == "checkpoint" and 0.0 <= report["top1"] <= 1.0
