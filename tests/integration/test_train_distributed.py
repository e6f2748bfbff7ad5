"""Two processes under torchrun (DDP over gloo on the CPU): rank 0 writes, metrics cover every rank's images."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tritonclf.training.checkpoint import load_checkpoint, read_model_card

from ..conftest import ROOT
from ..training_data import write_colour_dataset


@pytest.mark.long  # two torch processes
def test_torchrun_with_two_processes_trains_and_only_rank_zero_writes(tmp_path):
    data = write_colour_dataset(tmp_path / "data", train_per_class=8, val_per_class=3)
    out = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    command += ["training/train.py", "--data", str(data), "--output", str(out), "--model", "resnet18"]
    command += ["--init", "random", "--strategy", "gradual_unfreeze", "--epochs", "2", "--input-size", "32"]
    command += ["--batch-size", "4", "--workers", "0", "--ema-decay", "0.9"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "device cpu x2" in result.stdout
    # Unfreezing a stage re-wraps the model in DDP; every line is printed by rank 0 only.
    assert result.stdout.count("epoch 2: training") == 1
    assert result.stdout.count("epoch 2/2:") == 1
    rows = json.loads((out / "metrics.json").read_text())
    assert [r["val_images"] for r in rows] == [9, 9]  # 5 + 4 images on the two ranks, summed
    assert load_checkpoint(out / "last.pth")["epoch"] == 2
    assert read_model_card(load_checkpoint(out / "best.pth")).class_names == ("blue", "green", "red")
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
