"""The test session's own end: it fails when a stub, a tritonserver or a region it started is still there."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from ..conftest import ROOT

# A test that starts a process with a stub's argv (``<stub> <model.py> <region>``, SIGTERM ignored, as
# a stub does) and a region in /dev/shm, both named with the session's prefix, and leaves both.
LEAKY_TEST = """
import os, subprocess, sys
from pathlib import Path

def test_leaves_a_stub_and_a_region(tmp_path):
    prefix = os.environ["TRITONCLF_SHM_PREFIX"]
    program = tmp_path / "triton_python_backend_stub"
    program.symlink_to(sys.executable)
    model = tmp_path / "model.py"
    model.write_text("import signal, time\\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\\ntime.sleep(120)\\n")
    stub = subprocess.Popen([str(program), str(model), prefix + "region", "1024", "m_model_0_0", "DEFAULT"])
    Path(f"/dev/shm/{prefix}region").write_bytes(b"x" * 1024)
    Path(os.environ["REPORT"]).write_text(f"{stub.pid} {prefix}region")
    {cleanup}
"""
CLEANUP = """stub.kill(); stub.wait(); Path(f"/dev/shm/{prefix}region").unlink()"""


def run_session(tmp_path, cleanup: str) -> tuple[subprocess.CompletedProcess, int, str]:
    test = tmp_path / "test_leaky.py"
    test.write_text(textwrap.dedent(LEAKY_TEST).replace("{cleanup}", cleanup))
    report = tmp_path / "report.txt"
    command = [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-q", "--leftover-wait-s=1", str(test)]
    env = {**os.environ, "REPORT": str(report)}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    pid, region = report.read_text().split()
    return result, int(pid), region


def test_a_session_that_leaves_a_stub_and_a_region_fails_and_removes_them(tmp_path):
    result, pid, region = run_session(tmp_path, "pass")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the tests left 1 server processes and 1 shared-memory regions (removed):" in result.stdout
    assert f"pid {pid}:" in result.stdout and f"/dev/shm/{region}" in result.stdout
    assert "1 passed" in result.stdout  # the test itself passed: the session's end failed it
    assert not os.path.exists(f"/dev/shm/{region}")
    stat = Path(f"/proc/{pid}/stat")
    assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"  # killed; reaped or not


def test_a_session_that_cleans_up_passes(tmp_path):
    result, _, _ = run_session(tmp_path, CLEANUP)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the tests left" not in result.stdout
