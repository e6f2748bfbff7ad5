"""Warmup batch sizes: the default warms 1 and max (and a TensorRT engine's opt); Model Analyzer builds warm at 1."""

from __future__ import annotations

import pytest

from tritonclf.repository import build_cli
from tritonclf.repository.models import BuildOptions


def test_default_warms_one_and_max():
    assert BuildOptions(max_batch_size=16).classifier_warmup_batch_sizes() == (1, 16)


def test_chosen_warmup_batch_sizes_replace_the_default():
    options = BuildOptions(max_batch_size=32, warmup_batch_sizes=(8, 1, 8))
    assert options.classifier_warmup_batch_sizes() == (1, 8)


def test_warmup_batch_size_above_max_batch_size_is_rejected():
    with pytest.raises(ValueError, match="warmup batch sizes"):
        BuildOptions(max_batch_size=4, warmup_batch_sizes=(8,))


def test_preferred_batch_sizes_reach_dynamic_batching_sorted():
    batching = BuildOptions(max_batch_size=16, preferred_batch_sizes=(8, 4)).dynamic_batching()
    assert batching.preferred_batch_sizes == (4, 8)


def test_preferred_batch_size_above_max_batch_size_is_rejected():
    with pytest.raises(ValueError, match="preferred batch sizes"):
        BuildOptions(max_batch_size=4, preferred_batch_sizes=(8,))


def test_build_cli_parses_batch_size_lists():
    args = build_cli.parse_args(["--export", "x", "--warmup-batch-sizes", "1", "--preferred-batch-sizes", "4,8"])
    assert args.warmup_batch_sizes == (1,)
    assert args.preferred_batch_sizes == (4, 8)


def test_build_cli_rejects_a_bad_batch_size_list(capsys):
    with pytest.raises(SystemExit):
        build_cli.parse_args(["--export", "x", "--warmup-batch-sizes", "one"])
    assert "comma-separated batch sizes" in capsys.readouterr().err
