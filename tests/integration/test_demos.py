"""``make demo`` and ``make train-demo`` end to end: the commands they run, on free ports and temporary folders."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tritonclf.serving.process import free_port

from ..conftest import CAT_CLASSES, ROOT

pytestmark = pytest.mark.integration


def tritonclf(*args: str, timeout: int) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "tritonclf", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)


def top1_after(output: str, filename: str) -> list[tuple[str, int]]:
    """(label, index) of the first prediction printed under each ``.../filename`` heading."""
    found = re.findall(rf"{re.escape(filename)}\n\s+[\d.]+%?\s+(.+?)\s+\((\d+)\)", output)
    return [(label, int(index)) for label, index in found]


def test_demo_serves_the_repository_and_classifies_the_samples_over_grpc_and_http(repository):
    ports = [str(free_port()) for _ in range(3)]
    result = tritonclf(
        "demo", "--repository", str(repository), "--model", "efficientnet_lite0",
        "--http-port", ports[0], "--grpc-port", ports[1], "--metrics-port", ports[2],
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "--protocol grpc" in out and "--protocol http" in out
    chelsea, coffee = top1_after(out, "chelsea.jpg"), top1_after(out, "coffee.jpg")
    assert len(chelsea) == len(coffee) == 2, out  # once per protocol
    assert all(index in CAT_CLASSES for _, index in chelsea), chelsea
    assert coffee == [("espresso", 967)] * 2
    assert "tritonserver stopped (exit code 0)" in out


# Fewer epochs than the demo's 5 that still pass its own thresholds (served top-1 >= 0.90,
# served and PyTorch top-1 agree on >= 99% of the images). Measured: 2 epochs reach a served
# top-1 of 0.908 (agreement 1.0), too close to 0.90 for other CPUs' rounding; 3 leave room.
TRAIN_DEMO_EPOCHS = "3"


@pytest.mark.long
@pytest.mark.timeout(1200)
def test_train_demo_trains_exports_builds_serves_and_evaluates_the_digits(tmp_path):
    repository = tmp_path / "repo" / "model_repository"
    result = tritonclf(
        "train-demo", "--data", str(tmp_path / "data"), "--run", str(tmp_path / "run"),
        "--export", str(tmp_path / "export"), "--repository", str(repository), "--name", "digits",
        "--epochs", TRAIN_DEMO_EPOCHS,
        timeout=1100,
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    for step in ("demo-data", "train", "export", "build", "evaluate"):
        assert f"\n$ tritonclf {step} " in out, step
    assert "train-demo passed" in out
    served = re.search(r"url: top-1 (\d\.\d+)", out)  # evaluate's row for the model Triton served
    assert served and float(served.group(1)) >= 0.90, out[-3000:]
    assert (repository / "digits" / "config.pbtxt").is_file() and (tmp_path / "export" / "model.onnx").is_file()


# train-demo's every step on a model that trains in seconds: timm's test_efficientnet (0.1 M
# parameters) from random init at 32 px,
# one epoch. No accuracy bar (--min-top1 0); evaluate still requires the served model and
# PyTorch to agree on >= 99% of the images, which does not depend on how well it learned.
SMALL_DEMO_CONFIG = """
model: test_efficientnet
init: random
strategy: full
epochs: 1
batch_size: 64
input_size: 32
aug: none
hflip: 0.0
workers: 0
seed: 42
"""


def test_train_demo_runs_every_step_end_to_end_on_a_small_model(tmp_path):
    config = tmp_path / "small.yaml"
    config.write_text(SMALL_DEMO_CONFIG)
    result = tritonclf(
        "train-demo", "--config", str(config), "--data", str(tmp_path / "data"), "--run", str(tmp_path / "run"),
        "--export", str(tmp_path / "export"), "--repository", str(tmp_path / "repo"), "--name", "digits",
        "--min-top1", "0",
        timeout=900,
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    for step in ("demo-data", "train", "export", "build", "evaluate"):
        assert f"\n$ tritonclf {step} " in out, step
    assert "train-demo passed" in out
    assert re.search(r"url: top-1 \d\.\d+", out), out[-3000:]
