"""The GPU host's Python on this CPU: the kit unpacked and run by Python 3.12 with numpy 2.

The GPU host runs ``run.sh`` with its own Python 3.12 and numpy 2.5, which the server's
stubs find first on ``PATH``; numpy 2 in a stub corrupts BYTES inputs and the server dies
during the first warmup. The twin here is a fresh Python 3.12 venv with the host's numpy 2.5
and onnxruntime 1.30 (``gpu_host_twin.txt``; no torch, several GB from the index), so the
kit is built with ``--backend python-ort`` and its CPU repository serves Pillow + ONNX
Runtime. The run must classify the sample photos, and the preflight's probe must report,
from inside a stub, the kit's numpy 1.26 first in the stubs' prefix, with the stub linking
the host's libpython and, forced, the kit's carried one.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tritonclf_lab.gpu_kit import gpu_kit_cli

from ..conftest import CAT_CLASSES

pytestmark = [pytest.mark.integration, pytest.mark.long]
REQUIREMENTS = Path(__file__).with_name("gpu_host_twin.txt")


def python312() -> str | None:
    """A Python 3.12: TRITONCLF_PYTHON312, else pyenv's newest 3.12, else python3.12 on PATH (not a pyenv shim)."""
    pyenv = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")))
    on_path = shutil.which("python3.12")
    on_path = None if on_path and "/shims/" in on_path else on_path
    return os.environ.get("TRITONCLF_PYTHON312") or (pyenv[-1] if pyenv else None) or on_path


def clean_env() -> dict[str, str]:
    """No PYTHONPATH or venv of ours: the twin sees only its own packages (run.sh adds the kit's src/)."""
    return {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}


@pytest.fixture(scope="module")
def twin(tmp_path_factory) -> Path:
    """A fresh Python 3.12 venv with gpu_host_twin.txt; its interpreter."""
    base = python312()
    if base is None:
        pytest.skip("no Python 3.12 here (pyenv install 3.12, or set TRITONCLF_PYTHON312)")
    venv = tmp_path_factory.mktemp("twin") / "venv"
    subprocess.run([base, "-m", "venv", str(venv)], check=True, env=clean_env())
    install = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)]
    done = subprocess.run(install, capture_output=True, text=True, env=clean_env(), check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    version = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import numpy, sys; print(sys.version.split()[0], numpy.__version__)"],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=True,
    ).stdout.split()
    assert version[0].startswith("3.12.") and version[1].startswith("2."), version
    return venv / "bin" / "python"


@pytest.fixture(scope="module")
def ort_kit(export_dir, tmp_path_factory) -> Path:
    """A kit whose repositories serve Pillow + ONNX Runtime (xz -1: the same files, compressed fast)."""
    tmp = tmp_path_factory.mktemp("ort-kit")
    argv = ["--export", str(export_dir), "--output", str(tmp / "gpu-kit"), "--build-args", "--backend python-ort"]
    argv += ["--xz-level", "-1", "--max-mib", "200", "--cache-dir", str(tmp / "cache")]
    assert gpu_kit_cli.main(argv) == 0
    return tmp / "gpu-kit"


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """The twin's unpacked kit, shared by both runs."""
    return tmp_path_factory.mktemp("twin-work")


@pytest.mark.parametrize("libpython", ["auto", "carried"])
def test_gpu_host_twin_classifies_the_sample_photos_with_the_kits_numpy_in_every_stub(
    twin, ort_kit, work, tmp_path, libpython
):
    results_path = tmp_path / "results.json"
    command = ["bash", str(ort_kit / "run.sh"), "--cpu-smoke", "--work", str(work), "--results", str(results_path)]
    started = time.monotonic()
    run = subprocess.run(
        [*command, "--libpython", libpython],
        env={**clean_env(), "PYTHON": str(twin)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    print(f"cpu-smoke on {twin} (--libpython {libpython}) ran in {time.monotonic() - started:.0f} s")
    print(run.stdout)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-3000:]
    results = json.loads(results_path.read_text())
    assert results["run"]["python"].startswith("3.12.")
    details = results["preflight"]["details"]
    stub = details["stub_python"]["report"]
    assert stub["python"].startswith("3.12.") and stub["prefix"] == str(work / "stub-python")
    assert stub["numpy"]["version"] == "1.26.4"
    assert Path(stub["numpy"]["folder"]).is_relative_to(work / "numpy")
    assert stub["bytes_intact"] is True
    expected_source = {"auto": "host", "carried": "carried"}[libpython]
    assert details["libpython"]["source"] == expected_source
    carried_lib = work / "triton" / "libpython" / "3.12" / "libpython3.12.so.1.0"
    assert (stub["libpython"] == str(carried_lib)) == (libpython == "carried"), stub["libpython"]
    served = results["served"]
    assert served["labels_ok"] is True and served["samples"]["coffee.jpg"][0] == 967
    assert served["samples"]["chelsea.jpg"][0] in CAT_CLASSES
    assert served["sweep"][0]["errors"] == 0 and served["sweep"][0]["images"] > 0
