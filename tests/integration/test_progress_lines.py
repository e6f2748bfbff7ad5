"""The repository build shows its steps as plain lines when its output is not a terminal."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ..conftest import ROOT

pytestmark = pytest.mark.integration


def test_build_command_prints_numbered_steps_then_its_results_in_a_log(export_dir, tmp_path):
    repository = tmp_path / "model_repository"
    result = subprocess.run(
        [sys.executable, "build/build_repository.py", "--export", str(export_dir), "--repository", str(repository)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    steps = [line for line in lines if line.startswith("build [")]
    assert [line.split("]")[0] for line in steps] == [f"build [{i}/5" for i in range(1, 6)], result.stdout
    assert steps[1].startswith("build [2/5] check the export")
    assert steps[-1] == "build [5/5] write efficientnet_lite0 (ensemble)"
    assert any(line.startswith("build: built in ") for line in lines)
    assert "\r" not in result.stdout and "\x1b" not in result.stdout
    # The results follow the steps, unchanged.
    assert f"{repository}/efficientnet_lite0/1: written" in lines
