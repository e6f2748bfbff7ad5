"""``tritonclf compare-models`` end to end on one small model: export, serve alone, measure, table and plot."""

from __future__ import annotations

import json
import subprocess
import sys

from ..conftest import ROOT


def test_compare_models_measures_a_model_and_writes_the_table_and_the_plot(tmp_path):
    out = tmp_path / "docs"
    command = ["compare-models", "--models", "test_efficientnet", "--duration-s", "1", "--warmup-s", "0.5"]
    result = subprocess.run(
        [sys.executable, "-m", "tritonclf", *command, "--workdir", str(tmp_path / "work"), "--output-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    row = json.loads((tmp_path / "work" / "rows" / "test_efficientnet.json").read_text())
    assert row["parameters"] > 0 and row["onnx_bytes"] > 0 and row["images_per_s"] > 0 and row["p50_ms"] > 0
    assert row["peak_server_rss_bytes"] > 0
    assert "| test_efficientnet |" in (out / "MODELS.md").read_text()
    assert (out / "models.png").read_bytes().startswith(b"\x89PNG")
