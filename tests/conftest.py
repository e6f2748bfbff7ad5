"""Shared fixtures: one real export, one built repository and one real server per test session.

tests/unit and tests/integration both import from here. Torch, timm and ONNX Runtime are
imported inside the fixtures that need them, so collecting tests/unit imports none of them.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image

from tritonclf.export_metadata import ExportMetadata, load_metadata
from tritonclf.samples import sample_dir
from tritonclf.serving.leftovers import PREFIX_START_VARIABLE

from . import session_leftovers

if TYPE_CHECKING:
    import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = sample_dir()
SAMPLE_PHOTOS = sorted(SAMPLES.glob("*.jpg"))
# ImageNet classes 281-285 are the domestic cats (tabby, tiger cat, Persian, Siamese, Egyptian).
CAT_CLASSES = range(281, 286)
# Long enough that requests sent together by a test land in one dynamic batch.
TEST_QUEUE_DELAY_US = 50_000


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory) -> Path:
    """The default model (EfficientNet-Lite0, bundled ImageNet weights) exported to ONNX."""
    from tritonclf.training.torch2onnx import export

    out = tmp_path_factory.mktemp("export")
    export("efficientnet_lite0", out)
    return out


@pytest.fixture(scope="session")
def metadata(export_dir) -> ExportMetadata:
    return load_metadata(export_dir / "model.json")


@pytest.fixture(scope="session")
def onnx_session(export_dir) -> ort.InferenceSession:
    import onnxruntime as ort

    return ort.InferenceSession(str(export_dir / "model.onnx"), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="session")
def repository(export_dir, tmp_path_factory) -> Path:
    from tritonclf.repository.build import BuildOptions, build_repository

    repo = tmp_path_factory.mktemp("repo") / "model_repository"
    build_repository(export_dir, repo, BuildOptions(max_queue_delay_microseconds=TEST_QUEUE_DELAY_US))
    return repo


@pytest.fixture(scope="session")
def server(repository, tmp_path_factory):
    """The real tritonserver serving the test repository on free loopback ports."""
    from tritonclf.serving.process import TritonProcess

    log = tmp_path_factory.mktemp("server") / "tritonserver.log"
    process = TritonProcess(repository, log_path=log)
    process.start()
    yield process
    process.stop()


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    """Encode a Pillow image in memory."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def photo(name: str = "chelsea") -> Image.Image:
    """One of the bundled real photos as an RGB image."""
    return Image.open(SAMPLES / f"{name}.jpg").convert("RGB")


def top1(session: ort.InferenceSession, pixels: np.ndarray) -> int:
    """Class index the exported model gives one preprocessed image."""
    return int(session.run(None, {"pixel_values": pixels[None]})[0].argmax())


def pytest_addoption(parser):
    """``--leftover-wait-s``: how long the session's end waits for servers that are still stopping."""
    parser.addoption("--leftover-wait-s", type=float, default=30.0, help="default: %(default)s")


def pytest_configure(config):
    """Tag every server this session starts: its stubs and shared memory are found by the tag at the end."""
    config.session_prefix = session_leftovers.new_session_prefix()
    os.environ[PREFIX_START_VARIABLE] = config.session_prefix


def pytest_sessionfinish(session, exitstatus):
    """Fail the session if a tritonserver, a stub or a shared-memory region it started is still there; remove them."""
    prefix = getattr(session.config, "session_prefix", None)
    if prefix is None:
        return
    processes, regions = session_leftovers.find_leftovers(prefix, session.config.getoption("leftover_wait_s"))
    if not (processes or regions):
        return
    session_leftovers.remove(processes, regions)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"the tests left {len(processes)} server processes and {len(regions)} shared-memory regions (removed):"]
    lines += [f"  pid {pid}: {command}" for pid, command in sorted(processes.items())]
    lines += [f"  /dev/shm/{path.name}" for path in regions]
    for line in lines:
        (reporter.write_line if reporter else print)(line)
    if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_collection_modifyitems(config, items):
    """Mark every test under tests/integration, so ``-m "not integration"`` works from any path."""
    integration = Path(__file__).parent / "integration"
    for item in items:
        if integration in Path(item.fspath).parents:
            item.add_marker(pytest.mark.integration)


def timm_reference(data: bytes, spec) -> np.ndarray:
    """timm's own eval transform for the same spec, on the same decoded image (imports timm)."""
    from timm.data import create_transform

    transform = create_transform(
        input_size=(3, *spec.input_size),
        interpolation=spec.interpolation,
        crop_pct=spec.crop_pct,
        crop_mode=spec.crop_mode,
        mean=spec.mean,
        std=spec.std,
    )
    return transform(Image.open(io.BytesIO(data)).convert("RGB")).numpy()
