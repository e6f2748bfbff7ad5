"""Evaluation scoring (top-k, per-class precision/recall, agreement) and its command-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tritonclf.training.data import Sample
from tritonclf.training.evaluate_cli import main
from tritonclf.training.evaluation import Predictions, agreement, load_samples, score

from ..training_data import write_colour_dataset

CLASSES = ("cat", "dog", "fox")
SAMPLES = tuple(Sample(Path(f"{i}.png"), label) for i, label in enumerate([0, 0, 1, 1, 2, 2]))


def test_score_counts_top1_top5_and_per_class_precision_recall():
    predictions = Predictions(
        "onnx",
        [
            ["cat", "dog"],
            ["dog", "cat"],  # a cat taken for a dog, cat in top-2
            ["dog", "fox"],
            ["dog", "cat"],
            ["wolf", "fox"],  # a label the dataset does not have
            None,  # rejected
        ],
    )
    result = score(predictions, CLASSES, SAMPLES)
    assert (result["n"], result["failed"]) == (5, 1)
    assert result["top1"] == pytest.approx(3 / 5) and result["top5"] == 1.0
    assert result["per_class"]["cat"] == {"precision": 1.0, "recall": 0.5, "support": 2}
    assert result["per_class"]["dog"] == {"precision": pytest.approx(2 / 3, abs=1e-6), "recall": 1.0, "support": 2}
    assert result["per_class"]["fox"] == {"precision": None, "recall": 0.0, "support": 1}
    assert result["confusion"] == [[1, 1, 0, 0], [0, 2, 0, 0], [0, 0, 0, 1]]


def test_agreement_compares_top1_where_both_sources_answered():
    a = Predictions("checkpoint", [["cat"], ["dog"], ["fox"], None])
    b = Predictions("url", [["cat"], ["cat"], ["fox"], ["dog"]])
    assert agreement(a, b) == pytest.approx(2 / 3)
    assert agreement(Predictions("x", [None]), Predictions("y", [["cat"]])) is None


def test_a_plain_class_folder_is_evaluated_whole(tmp_path):
    root = write_colour_dataset(tmp_path / "d", train_per_class=2, val_per_class=1)
    names, samples = load_samples(root / "train", val_fraction=0.2, seed=0)
    assert names == ("blue", "green", "red") and len(samples) == 6
    names, samples = load_samples(root, val_fraction=0.2, seed=0)  # a training folder: its val/
    assert len(samples) == 3


def test_cli_needs_a_source_and_reports_missing_files_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--data", str(tmp_path)])
    assert "give at least one of --checkpoint, --onnx, --url" in capsys.readouterr().err
    write_colour_dataset(tmp_path / "d", train_per_class=2, val_per_class=1)
    assert main(["--data", str(tmp_path / "d"), "--onnx", str(tmp_path / "none.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none.onnx: no such file" in err
    assert main(["--data", str(tmp_path / "d"), "--checkpoint", str(tmp_path / "none.pth")]) == 2
    assert "none.pth: no such file" in capsys.readouterr().err


def test_unreachable_server_is_a_one_line_error(tmp_path, capsys):
    write_colour_dataset(tmp_path / "d", train_per_class=2, val_per_class=1)
    assert main(["--data", str(tmp_path / "d"), "--url", "127.0.0.1:1", "--output", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot reach Triton" in err


def test_unreadable_validation_files_are_reported_whether_data_is_the_root_or_its_val(tmp_path, capsys):
    root = write_colour_dataset(tmp_path / "d", train_per_class=2, val_per_class=1)
    (root / "val" / "red" / "broken.jpg").write_bytes(b"not a jpeg")
    (root / "train" / "red" / "junk.jpg").write_bytes(b"not a jpeg either")
    for data in (root, root / "val"):
        load_samples(data, val_fraction=0.2, seed=0)
        err = capsys.readouterr().err
        assert f"warning: skipped 1 file(s): unreadable image (e.g. {root / 'val' / 'red' / 'broken.jpg'})" in err
        assert "junk.jpg" not in err  # a training file is no concern of the evaluation
