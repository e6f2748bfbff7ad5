"""A bounded fuzz run over the preprocessing function (lab/src/tritonclf_lab/fuzz_cli.py has the rules).

``make test-long`` runs it for ``FUZZ_SECONDS`` (default 60); ``make fuzz`` (an hour) is the
long run. It runs in its own process because it caps that process's address space.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

FUZZ_SECONDS = float(os.environ.get("FUZZ_SECONDS", "60"))


@pytest.mark.long
def test_fuzzed_images_are_accepted_or_rejected_within_time_and_memory_limits():
    result = subprocess.run(
        [sys.executable, "-m", "tritonclf_lab.fuzz_cli", "--seconds", str(FUZZ_SECONDS)],
        capture_output=True,
        text=True,
        timeout=FUZZ_SECONDS + 300,  # plus shrinking a finding
        check=False,
    )
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    print(json.dumps(summary))
    assert result.returncode == 0, f"{summary['finding']}; input (hex): {summary['failing_input_hex']}\n{result.stdout}"
    assert summary["examples"] > 0 and summary["accepted"] > 0 and summary["rejected"] > 0


def test_the_fuzz_command_runs_and_reports_in_one_json_line():
    """``tritonclf fuzz`` end to end for a few seconds: the job, not the search (make test-long runs that)."""
    result = subprocess.run(
        [sys.executable, "-m", "tritonclf", "fuzz", "--seconds", "4"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["finding"] is None and summary["runs"] > 0 and summary["examples"] > 0
