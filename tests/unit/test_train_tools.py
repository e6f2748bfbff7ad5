"""The training benchmark's errors and the demo dataset writer."""

from __future__ import annotations

from PIL import Image

from tritonclf.training import demo_data_cli as demo_data
from tritonclf.training.data import load_splits
from tritonclf_lab import bench_train_cli as bench


def test_bench_rejects_an_unknown_strategy(capsys):
    assert bench.main(["--strategies", "everything"]) == 2
    assert "unknown strategy 'everything'" in capsys.readouterr().err


def test_demo_data_writes_the_digits_as_a_stratified_imagefolder(tmp_path, capsys):
    out = tmp_path / "digits"
    assert demo_data.main(["--output", str(out), "--size", "16"]) == 0
    splits = load_splits(out)
    assert splits.class_names == tuple(str(d) for d in range(10))
    assert (len(splits.train), len(splits.val)) == (1438, 359)
    assert all(30 <= sum(s.label == d for s in splits.val) <= 40 for d in range(10))
    with Image.open(splits.val[0].path) as image:
        assert (image.size, image.mode) == ((16, 16), "L")
    assert demo_data.main(["--output", str(out)]) == 0
    assert "already holds the digits dataset" in capsys.readouterr().out
