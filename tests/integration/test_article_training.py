"""A real (tiny) training run under training/configs/article.yaml: the article's recipe end to end."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from tritonclf.training.train_cli import main as train_main

from ..conftest import ROOT
from ..training_data import write_colour_dataset

EPOCHS = 2
LR = 3e-3


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    data = write_colour_dataset(tmp_path_factory.mktemp("article") / "colours", train_per_class=8, val_per_class=4)
    out = tmp_path_factory.mktemp("runs") / "article"
    # The article's config, shrunk to a CPU test: a small model from scratch, 32 px, a higher LR.
    args = [
        "--config", str(ROOT / "training" / "configs" / "article.yaml"),
        "--data", str(data), "--output", str(out), "--epochs", str(EPOCHS),
        "--model", "resnet18", "--init", "random", "--input-size", "32", "--batch-size", "8", "--workers", "0",
        "--lr-head", str(LR), "--lr-backbone", str(LR), "--seed", "3",
    ]  # fmt: skip
    assert train_main(args) == 0
    return out


def test_the_article_config_trains_and_is_saved_with_its_recipe(run):
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert (saved["aug"], saved["drop_rate"], saved["schedule_unit"]) == ("article", 0.5, "epoch")
    assert (saved["mixup"], saved["cutmix"], saved["mixup_prob"], saved["label_smoothing"]) == (0.2, 0.0, 0.5, 0.1)
    assert saved["amp"] == "auto" and saved["weight_decay"] == 0.01
    rows = json.loads((run / "metrics.json").read_text())
    assert len(rows) == EPOCHS and all(math.isfinite(r["train_loss"]) for r in rows)
    assert (run / "best.pth").is_file()


def test_the_lr_follows_cosine_annealing_stepped_once_per_epoch(run):
    rows = json.loads((run / "metrics.json").read_text())
    # Every step of epoch e runs at LR * (1 + cos(pi * e / epochs)) / 2: the last step's LR is the epoch's.
    expected = [LR * 0.5 * (1 + math.cos(math.pi * e / EPOCHS)) for e in range(EPOCHS)]
    assert [r["lr_head"] for r in rows] == pytest.approx(expected)
