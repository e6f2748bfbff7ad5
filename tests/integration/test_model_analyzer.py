"""NVIDIA's Model Analyzer, for real, on tiny searches: every config it derives loads and is measured.

One run of ``tritonclf analyze`` (both targets, ``--apply``) shared by the tests below.
Needs Model Analyzer's venv (``make analyzer-tools``; or TRITONCLF_MODEL_ANALYZER=path) and
perf_analyzer (``make perf-tools``); ``make test`` installs both.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from tritonclf.repository.pbtxt import parse
from tritonclf_lab.bench import analyze_cli
from tritonclf_lab.bench.analyzer_results import RESULTS_CSV, best, distinct_configs, read_config, read_measurements

from ..conftest import ROOT

MODEL_ANALYZER = Path(os.environ.get("TRITONCLF_MODEL_ANALYZER", ROOT / ".venv-analyzer" / "bin" / "model-analyzer"))
PERF_ANALYZER = shutil.which(str(Path(sys.executable).parent / "perf_analyzer")) or shutil.which("perf_analyzer")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.long,
    # make test-long names the venv (TRITONCLF_MODEL_ANALYZER): there a missing install fails instead of skipping.
    pytest.mark.skipif(
        not MODEL_ANALYZER.is_file() and "TRITONCLF_MODEL_ANALYZER" not in os.environ,
        reason="Model Analyzer is not installed (make analyzer-tools)",
    ),
    pytest.mark.skipif(PERF_ANALYZER is None, reason="perf_analyzer is not installed (make perf-tools)"),
    pytest.mark.timeout(1500),
]


@pytest.fixture(scope="module")
def analyzed(export_dir, tmp_path_factory):
    """(output dir, rebuilt repository, printed text) of one tiny analyze --apply run."""
    root = tmp_path_factory.mktemp("analyze")
    output, rebuilt = root / "analyzer", root / "model_repository"
    # Up to one instance, max_batch_size 1 and 2, concurrency 1-2: a handful of configs per target.
    argv = [
        "--export", str(export_dir), "--budget-s", "900", "--max-concurrency", "2", "--max-instances", "1",
        "--max-batch-size", "2", "--measurement-ms", "1000", "--count", "3",
        "--output-dir", str(output), "--repository", str(rebuilt), "--apply",
        "--model-analyzer", str(MODEL_ANALYZER), "--perf-analyzer", PERF_ANALYZER,
    ]  # fmt: skip
    code = analyze_cli.main(argv)
    assert code == 0, f"tritonclf analyze exited {code}; logs under {output}"
    return output, rebuilt


def configs_measured(run: Path) -> tuple[list[str], set[int]]:
    """Config names measured, and the max_batch_sizes among their (composing) configs."""
    measurements = read_measurements(run / RESULTS_CSV)
    assert all(m.throughput > 0 for m in measurements)
    repository = run / "output_model_repository"
    batch_sizes = {
        read_config(repository / name / "config.pbtxt").max_batch_size for m in measurements for name in m.config_names
    }
    return distinct_configs(measurements), batch_sizes


@pytest.mark.parametrize("target", ["classifier", "ensemble"])
def test_every_config_model_analyzer_derives_loads_and_is_measured(analyzed, target):
    run = analyzed[0] / target
    log = (run / "model-analyzer.log").read_text() + (run / "tritonserver.log").read_text()
    # With the default warmup (1 and max) the configs with a smaller max_batch_size fail here
    # ("Model ..._config_0 load failed") and only the default is measured.
    assert "failed to run warmup sample" not in log and "load failed" not in log
    configs, batch_sizes = configs_measured(run)
    assert len(configs) >= 2 and any(not c.endswith("_config_default") for c in configs), configs
    # The search lowered max_batch_size below the scratch build's 2, and those configs loaded.
    assert 1 in batch_sizes, batch_sizes
    assert (run / "reports" / "summaries").is_dir()
    assert any((run / "plots").rglob("*.png"))


def test_summary_prints_the_build_command_for_each_target(analyzed):
    summary = (analyzed[0] / "summary.md").read_text()
    assert summary.count("tritonclf build --export") == 2
    assert "; classifier " in summary  # an ensemble row: both composing models' instances and batch size
    assert "--preprocess-instances" in summary


def test_apply_rebuilds_the_repository_with_the_ensembles_winner_and_full_warmup(analyzed):
    output, rebuilt = analyzed
    run = output / "ensemble"
    chosen = best(read_measurements(run / RESULTS_CSV))
    winners = {
        name: read_config(run / "output_model_repository" / name / "config.pbtxt") for name in chosen.config_names
    }
    classifier = next(c for name, c in winners.items() if name.startswith("efficientnet_lite0_model"))
    preprocess = next(c for name, c in winners.items() if name.startswith("efficientnet_lite0_preprocess"))
    config = parse((rebuilt / "efficientnet_lite0_model" / "config.pbtxt").read_text())
    assert config.instance_group[0].count == classifier.instances
    assert config.max_batch_size == min(classifier.max_batch_size, preprocess.max_batch_size)
    # A production build warms at 1 and its max again, not the analysis build's 1 only.
    assert {w.batch_size for w in config.model_warmup} == {1, config.max_batch_size}
    pre = parse((rebuilt / "efficientnet_lite0_preprocess" / "config.pbtxt").read_text())
    assert pre.instance_group[0].count == preprocess.instances
