"""The training benchmark runs every strategy and unfreezing phase (tens of seconds on CPU)."""

from __future__ import annotations

import json

from tritonclf_lab import bench_train_cli as bench


def test_bench_reports_images_per_second_for_each_strategy_and_unfreezing_phase(capsys):
    args = ["--model", "resnet18", "--input-size", "32", "--batch-size", "4", "--steps", "1", "--json"]
    assert bench.main([*args, "--strategies", "feature_extract,gradual_unfreeze,full"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["strategy"], r["unfrozen_stages"]) for r in rows] == [
        ("feature_extract", None),
        *[("gradual_unfreeze", k) for k in range(6)],
        ("full", None),
    ]
    assert all(r["images_per_s"] > 0 for r in rows)
    assert rows[0]["trainable_params"] == rows[1]["trainable_params"] < rows[-1]["trainable_params"]
    assert rows[-2]["trainable_params"] == rows[-1]["trainable_params"]
