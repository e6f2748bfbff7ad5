"""The ``tritonserver`` console script runs the real binary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_console_script_runs_the_real_binary():
    script = Path(sys.executable).parent / "tritonserver"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert "--model-repository" in result.stdout + result.stderr
