"""A bounded fuzz run over the preprocessing function (lab/src/tritonclf_lab/fuzz_cli.py has the rules).

CI runs it for ``FUZZ_SECONDS`` (default 60); ``FUZZ_SECONDS=3600 make test
PYTEST_ARGS="-k fuzz"`` is the long run. It runs in its own process because it caps
that process's address space.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

FUZZ_SECONDS = float(os.environ.get("FUZZ_SECONDS", "60"))


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
