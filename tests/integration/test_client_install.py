"""``pip install ".[client]"`` in a fresh venv: numpy 2, no torch/timm/ONNX Runtime, classifies a photo.

The venv uses another Python than the server's where pyenv has one (3.12), so the client
is shown to work beside, not inside, the server's numpy<2 environment.
"""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ..browser import ui_page
from ..conftest import CAT_CLASSES, ROOT

pytestmark = [pytest.mark.integration, pytest.mark.long]

MUST_NOT_INSTALL = ("torch", "timm", "onnxruntime", "onnx", "nvidia-pytriton")
PROBE = """
import importlib.metadata as md, json, sys
names = json.loads(sys.argv[1])
found = {}
for name in names:
    try:
        found[name] = md.version(name)
    except md.PackageNotFoundError:
        found[name] = None
print(json.dumps(found))
"""


def client_python() -> str:
    """pyenv's 3.12 where present (not the server's 3.11), else the running interpreter."""
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python")))
    return candidates[-1] if candidates else sys.executable


def clean_env() -> dict[str, str]:
    """No PYTHONPATH: the venv must run the installed wheel, not the checkout's src/."""
    return {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("client") / "venv"
    subprocess.run([client_python(), "-m", "venv", str(venv)], check=True)
    started = time.monotonic()
    # Non-editable, from the checkout: what a user's `pip install ".[client]"` gets.
    # pip's own cache (its default) keeps reruns fast.
    install = subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "install", "--quiet", f"{ROOT}[client]"],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=venv.parent,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-4000:]
    print(f"client install: {time.monotonic() - started:.1f} s with {client_python()}")
    return venv


def installed(venv: Path, names: tuple[str, ...]) -> dict[str, str | None]:
    result = subprocess.run(
        [str(venv / "bin/python"), "-c", PROBE, json.dumps(names)],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=True,
    )
    return json.loads(result.stdout)


def test_client_extra_installs_numpy2_without_torch_timm_or_onnxruntime(client_venv):
    versions = installed(client_venv, ("numpy", "tritonclient", "triton-image-classifier", *MUST_NOT_INSTALL))
    assert int(versions["numpy"].split(".")[0]) >= 2, versions
    assert versions["tritonclient"] and versions["triton-image-classifier"], versions
    assert {name: versions[name] for name in MUST_NOT_INSTALL} == dict.fromkeys(MUST_NOT_INSTALL), versions


def test_client_only_install_classifies_a_sample_photo_against_the_server(client_venv, server):
    python = str(client_venv / "bin/python")
    # The photo comes from the installed wheel: the samples are package data.
    chelsea = subprocess.run(
        [python, "-c", "from tritonclf.samples import sample_photo; print(sample_photo('chelsea'))"],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=True,
    ).stdout.strip()
    assert str(client_venv) in chelsea and Path(chelsea).is_file()
    result = subprocess.run(
        [str(client_venv / "bin/tritonclf"), "infer", chelsea, "--url", server.grpc_url],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=client_venv.parent,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # "  0.4130  tabby, tabby cat  (281)": the first class line is the top-1.
    top1 = re.search(r"^\s+[\d.]+\s+(.+?)\s+\((\d+)\)$", result.stdout, flags=re.MULTILINE)
    assert top1, result.stdout
    assert int(top1.group(2)) in CAT_CLASSES, result.stdout
    assert re.search(r"tabby|tiger|Egyptian", top1.group(1)), result.stdout


def run_tritonclf(venv: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(venv / "bin/tritonclf"), *args],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=venv.parent,
        timeout=120,
        check=False,
    )


def test_client_only_install_answers_help_for_every_job_without_torch(client_venv):
    # Jobs parse their options before importing torch: the help is there before the extras are.
    for job in ("train", "export", "evaluate", "train-demo", "preflight", "monitor"):
        result = run_tritonclf(client_venv, job, "--help")
        assert result.returncode == 0, (job, result.stderr)
        assert result.stdout.startswith(f"usage: tritonclf {job} "), (job, result.stdout)


def test_client_only_install_names_the_missing_package_for_other_jobs(client_venv, tmp_path):
    result = run_tritonclf(client_venv, "export", "--random-weights", "--output", str(tmp_path / "export"))
    assert result.returncode == 2, result
    assert result.stderr.count("\n") == 1, result.stderr
    assert re.match(r"tritonclf export: needs '(torch|timm|onnx)', which is not installed here", result.stderr)
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "export").exists()


def test_client_only_install_serves_the_page_from_its_package_data(client_venv, server):
    python = str(client_venv / "bin/python")
    with ui_page("--url", server.http_url, python=python, env=clean_env()) as url:
        with urllib.request.urlopen(url, timeout=30) as response:
            assert b'<script src="ui.js"' in response.read()
        with urllib.request.urlopen(url + "ui.js", timeout=30) as response:
            assert b"api/classify" in response.read()
        with urllib.request.urlopen(url + "api/models", timeout=30) as response:
            (model,) = json.loads(response.read())["models"]
        assert (model["name"], model["labels"]) == ("efficientnet_lite0", 1000)
