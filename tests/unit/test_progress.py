"""Long jobs show numbered steps: plain lines in a pipe or a log, one redrawn line on a terminal."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys

from tritonclf.progress import Progress

SCRIPT = """
from tritonclf.progress import Progress
progress = Progress("build", total=3)
progress.step("check the export")
progress.write("backend: python-ort (no GPU)")
progress.step("write the classifier")
progress.step("write the ensemble")
progress.finish("built")
"""


def run_script(stdout) -> None:
    subprocess.run([sys.executable, "-c", SCRIPT], stdout=stdout, check=True, timeout=60)


def test_piped_output_is_one_plain_line_per_step():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=60)
    lines = result.stdout.splitlines()
    assert lines[:4] == [
        "build [1/3] check the export",
        "backend: python-ort (no GPU)",
        "build [2/3] write the classifier",
        "build [3/3] write the ensemble",
    ]
    assert lines[4].startswith("build: built in ") and lines[4].endswith(" s")
    assert len(lines) == 5
    assert "\r" not in result.stdout and "\x1b" not in result.stdout
    assert result.stderr == ""


def test_terminal_output_redraws_one_status_line():
    leader, follower = pty.openpty()
    try:
        run_script(follower)
        os.close(follower)
        follower = -1
        output = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)
    text = output.decode()
    assert "backend: python-ort (no GPU)\r\n" in text
    # Step 2 and step 3 share one terminal line: step 3 clears and overwrites step 2.
    assert re.search(r"build \[2/3\] write the classifier  \(\d+ s\)\r\x1b\[Kbuild \[3/3\] write the ensemble", text)
    last_line = text.rstrip("\r\n").rsplit("\n", 1)[-1]
    assert last_line.rsplit("\r\x1b[K", 1)[-1].startswith("build: built in ")


def test_result_line_stays_whole_while_a_status_line_shows():
    stream = io.StringIO()
    progress = Progress("bench", total=2, stream=stream, interactive=True)
    progress.step("served grpc c=1")
    progress.write("served grpc c=1 mix: 80.0 images/s")
    text = stream.getvalue()
    # The status is cleared, the result is a whole line, then the status comes back.
    assert "\r\x1b[Kserved grpc c=1 mix: 80.0 images/s\nbench [1/2] served grpc c=1" in text


def test_close_ends_a_status_line_so_an_error_starts_its_own_line():
    stream = io.StringIO()
    with Progress("engine", total=2, stream=stream, interactive=True) as progress:
        progress.step("trtexec in the container")
    assert stream.getvalue().endswith("\n")


def test_unknown_total_counts_steps():
    stream = io.StringIO()
    progress = Progress("soak", stream=stream, interactive=False)
    progress.step("round")
    progress.step("round")
    assert stream.getvalue().splitlines() == ["soak [1] round", "soak [2] round"]


def test_quiet_progress_prints_results_but_no_steps():
    stream = io.StringIO()
    progress = Progress.quiet()
    progress.stream = stream
    progress.step("hidden")
    progress.write("a result")
    progress.finish()
    assert stream.getvalue() == "a result\n"
