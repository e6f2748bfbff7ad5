"""Evaluation scoring (top-k, per-class precision/recall, agreement) and its command-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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


def _counted_by_hand(predictions: Predictions, class_names: tuple[str, ...], samples: tuple[Sample, ...]) -> dict:
    """The reference: the confusion matrix and precision/recall counted in a loop."""
    index = {name: i for i, name in enumerate(class_names)}
    confusion = np.zeros((len(class_names), len(class_names) + 1), dtype=np.int64)
    for sample, topk in zip(samples, predictions.topk, strict=True):
        if topk is not None:
            confusion[sample.label, index.get(topk[0], len(class_names))] += 1
    per_class = {}
    for i, name in enumerate(class_names):
        predicted, support = int(confusion[:, i].sum()), int(confusion[i].sum())
        per_class[name] = {
            "precision": round(float(confusion[i, i] / predicted), 6) if predicted else None,
            "recall": round(float(confusion[i, i] / support), 6) if support else None,
            "support": support,
        }
    return {"per_class": per_class, "confusion": confusion.tolist(), "top1": np.trace(confusion) / confusion.sum()}


def test_score_gives_the_hand_counted_numbers_on_a_random_evaluation():
    rng = np.random.default_rng(0)
    names = tuple(f"class{i}" for i in range(7))
    samples = tuple(Sample(Path(f"{i}.png"), int(rng.integers(6))) for i in range(500))  # class6 never occurs
    labels = [*names, "unknown"]
    topk = [None if rng.random() < 0.05 else list(rng.permutation(labels)[:5]) for _ in samples]
    result = score(Predictions("url", topk), names, samples)
    reference = _counted_by_hand(Predictions("url", topk), names, samples)
    assert result["confusion"] == reference["confusion"] and result["per_class"] == reference["per_class"]
    assert result["top1"] == pytest.approx(reference["top1"])
    assert result["per_class"]["class6"]["recall"] is None and result["per_class"]["class6"]["support"] == 0


def test_score_of_an_evaluation_where_every_image_was_rejected():
    result = score(Predictions("url", [None, None]), CLASSES, SAMPLES[:2])
    assert (result["n"], result["failed"], result["top1"]) == (0, 2, 0.0)
    assert result["per_class"]["cat"] == {"precision": None, "recall": None, "support": 0}
