"""End to end on a tiny synthetic dataset: train, checkpoint, resume, export, evaluate (also on the real server)."""

from __future__ import annotations

import json

import pytest
import timm
import torch

from tritonclf.repository.build import BuildOptions, build_repository
from tritonclf.serving.process import TritonProcess
from tritonclf.training import trainer as train_module
from tritonclf.training.checkpoint import load_checkpoint, read_model_card, save_checkpoint
from tritonclf.training.evaluate_cli import main as evaluate_main
from tritonclf.training.export_cli import main as export_main
from tritonclf.training.torch2onnx import export
from tritonclf.training.train_cli import main as train_main

from ..conftest import SAMPLE_PHOTOS
from ..training_data import write_colour_dataset

EPOCHS = 3
# Everything the loop offers at once (except AMP, which needs CUDA or is slow on CPU): a small
# resnet18 from random init still learns three colours in a few dozen steps.
TRAIN_ARGS = [
    "--model", "resnet18", "--init", "random", "--strategy", "full", "--input-size", "32",
    "--batch-size", "8", "--workers", "0", "--lr-head", "3e-3", "--lr-backbone", "3e-3",
    "--mixup", "0.2", "--cutmix", "0.2", "--label-smoothing", "0.1", "--ema-decay", "0.9",
    "--clip-grad", "5", "--warmup-epochs", "0.5", "--seed", "7",
]  # fmt: skip
TIMING_COLUMNS = {"train_images_per_s", "seconds"}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_colour_dataset(tmp_path_factory.mktemp("train") / "colours")


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "colours"
    assert train_main(["--data", str(data), "--output", str(out), "--epochs", str(EPOCHS), *TRAIN_ARGS]) == 0
    return out


@pytest.fixture(scope="module")
def exported(run, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "colours"
    export(None, out, weights=run / "best.pth", samples=SAMPLE_PHOTOS[:1])
    return out


def history(run) -> list[dict]:
    return json.loads((run / "metrics.json").read_text())


def test_a_short_run_lowers_the_loss_and_beats_chance(run):
    rows = history(run)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    # Validation loss: plain cross entropy on the served preprocessing (the mixed training loss is noisy).
    assert rows[-1]["val_loss"] < rows[0]["val_loss"] < 1.0986  # ln(3): a uniform guess
    assert max(r["val_top1"] for r in rows) >= 0.9  # chance: 1/3
    assert all(r["val_images"] == 18 and r["skipped_images"] == 0 for r in rows)
    assert (run / "curves.png").read_bytes().startswith(b"\x89PNG")
    assert (run / "metrics.csv").read_text().splitlines()[0].startswith("epoch,train_loss,train_top1,val_loss")
    assert (run / "labels.txt").read_text() == "blue\ngreen\nred\n"
    assert "ema_decay: 0.9" in (run / "config.yaml").read_text()


def test_checkpoints_round_trip_with_weights_only_loading(run, tmp_path):
    raw = torch.load(run / "best.pth", map_location="cpu", weights_only=True)
    card = read_model_card(load_checkpoint(run / "best.pth"))
    assert (card.model_name, card.class_names, card.preprocess.input_size) == (
        "resnet18",
        ("blue", "green", "red"),
        (32, 32),
    )
    assert raw["epoch"] == raw["best"]["epoch"] and raw["history"][-1]["epoch"] == raw["epoch"]
    assert load_checkpoint(run / "last.pth")["epoch"] == EPOCHS
    model = timm.create_model("resnet18", num_classes=3)
    model.load_state_dict(raw["state_dict_ema"])
    save_checkpoint(tmp_path / "copy.pth", raw)
    copy = load_checkpoint(tmp_path / "copy.pth")
    assert copy.keys() == raw.keys()
    assert all(torch.equal(copy["state_dict"][k], v) for k, v in raw["state_dict"].items())
    assert not list(tmp_path.glob(".copy.pth.*"))  # no temporary file left behind


def test_resume_continues_from_the_saved_epoch_as_if_never_interrupted(data, run, tmp_path, monkeypatch, capsys):
    out = tmp_path / "interrupted"
    args = ["--data", str(data), "--output", str(out), "--epochs", str(EPOCHS), *TRAIN_ARGS]
    real_train_epoch, calls = train_module.train_epoch, []

    def interrupted(*a, **kw):
        calls.append(1)
        if len(calls) == EPOCHS:
            raise KeyboardInterrupt
        return real_train_epoch(*a, **kw)

    monkeypatch.setattr(train_module, "train_epoch", interrupted)
    assert train_main(args) == 130
    assert "train: interrupted; continue with --resume" in capsys.readouterr().err
    assert load_checkpoint(out / "last.pth")["epoch"] == EPOCHS - 1
    monkeypatch.setattr(train_module, "train_epoch", real_train_epoch)
    # The run folder alone: its config.yaml holds the data, the model and every option.
    assert train_main(["--output", str(out), "--resume"]) == 0
    assert f"resumed from {out / 'last.pth'} after epoch {EPOCHS - 1}" in capsys.readouterr().out
    resumed, uninterrupted = load_checkpoint(out / "last.pth"), load_checkpoint(run / "last.pth")
    assert resumed["epoch"] == EPOCHS and resumed["step"] == uninterrupted["step"]
    strip = lambda rows: [{k: v for k, v in r.items() if k not in TIMING_COLUMNS} for r in rows]  # noqa: E731
    assert strip(resumed["history"]) == strip(uninterrupted["history"])
    for key in ("state_dict", "state_dict_ema"):
        for name, tensor in uninterrupted[key].items():
            torch.testing.assert_close(resumed[key][name], tensor, rtol=1e-5, atol=1e-6, msg=f"{key}.{name}")
    # Nothing left to do: a second resume says so and trains nothing.
    assert train_main([*args, "--resume"]) == 0
    assert "already trained 3 epochs" in capsys.readouterr().out


def test_each_unreadable_file_is_reported_once_by_name_and_counted_in_every_epoch(tmp_path, capfd):
    # 3 x 5 + 1 = 16 training images, two batches of 8: none is left out of an epoch by drop_last.
    data = write_colour_dataset(tmp_path / "colours", train_per_class=5, val_per_class=3)
    truncated = {}
    for split in ("train", "val"):
        good = (data / split / "red" / "000.png").read_bytes()
        truncated[split] = data / split / "red" / "zz-truncated.png"
        truncated[split].write_bytes(good[: len(good) // 2])  # the header reads; decoding fails
    args = ["--data", str(data), "--output", str(tmp_path / "run"), *TRAIN_ARGS, "--epochs", "2", "--workers", "2"]
    assert train_main(args) == 0
    out, err = capfd.readouterr()  # the loader's workers write to the file descriptor
    for path in truncated.values():
        assert err.count(f"warning: skipping {path}: ") == 1, err
    epoch_lines = [line for line in out.splitlines() if line.startswith("epoch ") and "/2:" in line]
    assert len(epoch_lines) == 2
    assert all(line.endswith("| 2 unreadable images skipped (1 train, 1 val)") for line in epoch_lines), epoch_lines
    assert [(r["skipped_images"], r["skipped_val_images"]) for r in history(tmp_path / "run")] == [(1, 1), (1, 1)]


def test_early_stopping_ends_the_run_after_patience_epochs_without_progress(data, tmp_path, capsys):
    # A frozen backbone (batch-norm statistics included) and a head that cannot move: nothing improves.
    args = ["--data", str(data), "--output", str(tmp_path), *TRAIN_ARGS, "--epochs", "5", "--patience", "2"]
    args += ["--strategy", "feature_extract", "--lr-head", "1e-12", "--ema-decay", "0", "--mixup", "0", "--cutmix", "0"]
    assert train_main(args) == 0
    assert "early stopping: no better val top-1 for 2 epochs" in capsys.readouterr().out
    assert [r["epoch"] for r in history(tmp_path)] == [1, 2, 3]
    assert load_checkpoint(tmp_path / "best.pth")["epoch"] == 1


def test_resuming_another_models_checkpoint_is_refused(data, run, tmp_path, capsys):
    args = ["--data", str(data), "--output", str(tmp_path), *TRAIN_ARGS, "--input-size", "48"]
    assert train_main([*args, "--resume", str(run / "last.pth")]) == 2
    assert "another model, classes or preprocessing" in capsys.readouterr().err


def test_best_checkpoint_exports_through_the_export_command_with_its_labels_and_spec(run, exported):
    metadata = json.loads((exported / "model.json").read_text())
    assert metadata["model_name"] == "resnet18"
    assert metadata["labels"] == ["blue", "green", "red"]
    assert metadata["preprocess"] == read_model_card(load_checkpoint(run / "best.pth")).preprocess.to_dict()
    assert metadata["preprocess"]["input_size"] == [32, 32]


def test_export_cli_names_its_output_after_the_run_and_refuses_a_contradicting_model(
    run, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    assert export_main(["--weights", str(run / "best.pth"), "--model", "resnet50"]) == 2
    assert "holds a resnet18, not a resnet50" in capsys.readouterr().err
    assert export_main(["--weights", str(run / "best.pth")]) == 0
    assert (tmp_path / "exports" / "colours" / "model.onnx").is_file()


def test_evaluate_checkpoint_and_onnx_agree(data, run, exported, tmp_path, capsys):
    args = ["--data", str(data), "--checkpoint", str(run / "best.pth"), "--onnx", str(exported / "model.onnx")]
    assert evaluate_main([*args, "--output", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    best = load_checkpoint(run / "best.pth")["best"]
    assert report["source"] == "onnx" and report["n"] == 18
    assert report["sources"]["checkpoint"]["top1"] == pytest.approx(best["top1"])
    assert report["top1"] == report["sources"]["checkpoint"]["top1"]
    assert report["agreement"] == {"onnx_vs_checkpoint": 1.0}
    assert (tmp_path / "confusion_onnx.png").read_bytes().startswith(b"\x89PNG")
    assert json.loads((tmp_path / "report.json").read_text())["n"] == 18


@pytest.mark.integration
def test_served_model_agrees_with_the_checkpoint(data, run, exported, tmp_path, capsys):
    repository = tmp_path / "model_repository"
    build_repository(exported, repository, BuildOptions(name="colours", max_queue_delay_microseconds=2000))
    with TritonProcess(repository, log_path=tmp_path / "server.log") as server:
        args = ["--data", str(data), "--checkpoint", str(run / "best.pth"), "--url", server.grpc_url]
        code = evaluate_main([*args, "--model", "colours", "--output", str(tmp_path), "--json", "--min-agreement", "1"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["source"] == "url" and report["n"] == 18
    assert report["top1"] == report["sources"]["checkpoint"]["top1"] >= 0.9
    assert report["top5"] == 1.0
    assert report["agreement"] == {"url_vs_checkpoint": 1.0}
