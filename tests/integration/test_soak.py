"""A bounded soak at saturation with good and hostile images: nothing lost, nothing leaked (tritonclf_lab.soak_cli).

``make test-long`` runs ``SOAK_SECONDS`` (default 75) with 16 senders; the long run is
``make soak`` (``tritonclf soak --seconds 1800``, or ``SOAK_SECONDS=1800 make test-long PYTEST_ARGS="-k soak"``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tritonclf.repository.build import build_repository
from tritonclf.serving.process import TritonProcess
from tritonclf_lab.soak_cli import expected_probabilities, soak, soak_images

pytestmark = pytest.mark.integration
SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "75"))
SOAK_CONCURRENCY = int(os.environ.get("SOAK_CONCURRENCY", "16"))
SOAK_ROUND_SECONDS = float(os.environ.get("SOAK_ROUND_SECONDS", "15"))


@pytest.mark.long
def test_soak_at_saturation_loses_nothing_answers_everything_right_and_does_not_grow(export_dir, metadata, tmp_path):
    images, bad_messages = soak_images()
    expected = expected_probabilities(images, bad_messages, export_dir / metadata.onnx_filename, metadata)
    repository = tmp_path / "model_repository"
    build_repository(export_dir, repository)  # the shipped defaults, queue policy included
    with TritonProcess(repository, log_path=tmp_path / "tritonserver.log") as server:
        result = soak(
            server,
            images,
            bad_messages,
            expected,
            seconds=SOAK_SECONDS,
            concurrency=SOAK_CONCURRENCY,
            round_s=SOAK_ROUND_SECONDS,
        )
    print(json.dumps(result, indent=2))
    assert result["problems"] == []
    assert result["good_sent"] > 0 and result["bad_sent"] > 0


def test_the_soak_command_builds_serves_and_reports_a_short_run(export_dir, tmp_path):
    """``tritonclf soak`` end to end for a few seconds: its own build and server, the JSON report, exit 0."""
    report = tmp_path / "soak.json"
    command = ["soak", "--export", str(export_dir), "--seconds", "4", "--round-seconds", "2", "--concurrency", "4"]
    result = subprocess.run(
        [sys.executable, "-m", "tritonclf", *command, "--output", str(report)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(report.read_text())
    assert summary["problems"] == [] and summary["good_sent"] > 0 and summary["bad_sent"] > 0
