"""Code outside tests/ runs on Python 3.10: NVIDIA's 24.10 container runs the build tools there.

``make lint`` runs vermin over the same files (APIs newer than 3.10); this compiles them
with a real 3.10 interpreter and runs the command's dispatcher on it, where one is found.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE_FOLDERS = ("src", "build", "clients", "training", "deploy")


def python310() -> str | None:
    """A working Python 3.10 interpreter from pyenv or PATH, if this machine has one."""
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.10*/bin/python")))
    candidates += [found] if (found := shutil.which("python3.10")) else []
    for candidate in candidates:
        # A pyenv shim exists on PATH even when that version is not installed.
        probe = [candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 10)"]
        if subprocess.run(probe, capture_output=True, check=False).returncode == 0:
            return candidate
    return None


@pytest.fixture(scope="module")
def py310() -> str:
    interpreter = python310()
    if interpreter is None:
        pytest.skip("no Python 3.10 on this machine (pyenv or python3.10 on PATH)")
    return interpreter


def sources() -> list[Path]:
    return sorted(p for folder in SOURCE_FOLDERS for p in (ROOT / folder).rglob("*.py"))


def test_every_module_outside_tests_compiles_on_python310(py310):
    files = [str(p) for p in sources()]
    assert len(files) > 50
    # compile() without writing .pyc beside the checkout's files.
    check = "import sys\nfor f in sys.argv[1:]:\n    compile(open(f, encoding='utf-8').read(), f, 'exec')\n"
    result = subprocess.run([py310, "-c", check, *files], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_tritonclf_command_lists_its_jobs_on_python310(py310):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [py310, "-m", "tritonclf", "--help"], capture_output=True, text=True, env=env, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "infer" in result.stdout
    assert "build" in result.stdout
