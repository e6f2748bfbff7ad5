"""NVIDIA's Model Analyzer, for real, on a tiny search of our classifier: every config it derives loads and is measured.

Needs Model Analyzer's venv (``make analyzer-tools``; or TRITONCLF_MODEL_ANALYZER=path) and
perf_analyzer (``make perf-tools``); ``make test`` installs both.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from tritonclf.bench import analyze_cli
from tritonclf.bench.analyzer_results import RESULTS_CSV, distinct_configs, read_config, read_measurements
from tritonclf.repository.pbtxt import parse

from ..conftest import ROOT

pytestmark = pytest.mark.integration

MODEL_ANALYZER = Path(os.environ.get("TRITONCLF_MODEL_ANALYZER", ROOT / ".venv-analyzer" / "bin" / "model-analyzer"))
PERF_ANALYZER = shutil.which(str(Path(sys.executable).parent / "perf_analyzer")) or shutil.which("perf_analyzer")


@pytest.mark.skipif(not MODEL_ANALYZER.is_file(), reason="Model Analyzer is not installed (make analyzer-tools)")
@pytest.mark.skipif(PERF_ANALYZER is None, reason="perf_analyzer is not installed (make perf-tools)")
@pytest.mark.timeout(900)
def test_model_analyzer_loads_and_measures_smaller_batch_configs_and_the_best_rebuilds(export_dir, tmp_path, capsys):
    output, rebuilt = tmp_path / "analyzer", tmp_path / "model_repository"
    # One instance, max_batch_size 1 and 2, concurrency 1: the default config plus two of the search's.
    code = analyze_cli.main(
        [
            "--export",
            str(export_dir),
            "--targets",
            "classifier",
            "--budget-s",
            "420",
            "--max-concurrency",
            "1",
            "--max-instances",
            "1",
            "--max-batch-size",
            "2",
            "--measurement-ms",
            "1000",
            "--count",
            "3",
            "--output-dir",
            str(output),
            "--repository",
            str(rebuilt),
            "--apply",
            "--model-analyzer",
            str(MODEL_ANALYZER),
            "--perf-analyzer",
            PERF_ANALYZER,
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed

    run = output / "classifier"
    log = (run / "model-analyzer.log").read_text() + (run / "tritonserver.log").read_text()
    assert "failed to run warmup sample" not in log
    measurements = read_measurements(run / RESULTS_CSV)
    configs = distinct_configs(measurements)
    searched = [name for name in configs if not name.endswith("_config_default")]
    assert len(configs) >= 2 and searched, configs
    # The search lowered max_batch_size below the scratch build's 2 and the config still loaded.
    batch_sizes = {
        read_config(run / "output_model_repository" / name / "config.pbtxt").max_batch_size for name in configs
    }
    assert 1 in batch_sizes, batch_sizes
    assert all(m.throughput > 0 for m in measurements)

    assert (run / "reports" / "summaries").is_dir()
    assert any((run / "plots").rglob("*.png"))
    assert "tritonclf build --export" in printed
    assert (output / "summary.md").read_text().count("efficientnet_lite0_model_config") >= 2

    # --apply rebuilt the repository with the winner and our default warmup (1 and its max).
    chosen = analyze_cli.summarize("classifier", run, "efficientnet_lite0")[0]
    winner = read_config(run / "output_model_repository" / chosen.config_names[0] / "config.pbtxt")
    config = parse((rebuilt / "efficientnet_lite0_model" / "config.pbtxt").read_text())
    assert config.max_batch_size == winner.max_batch_size
    assert config.instance_group[0].count == winner.instances
    assert {w.batch_size for w in config.model_warmup} == {1, winner.max_batch_size}
