"""Warmup really runs at load time: Triton pushes the real JPEG through the preprocessing model before ready."""

from __future__ import annotations

import shutil
import struct

import pytest
from PIL import Image

from tritonclf.repository.build import warmup_image_bytes
from tritonclf.serving.process import ServerStartError, TritonProcess

pytestmark = pytest.mark.integration


def test_warmup_file_is_one_serialized_jpeg():
    data = warmup_image_bytes()
    (length,) = struct.unpack("<I", data[:4])
    assert length == len(data) - 4
    assert data[4:6] == b"\xff\xd8"  # JPEG start-of-image marker


def test_a_broken_warmup_image_stops_the_model_from_loading(repository, tmp_path):
    copy = tmp_path / "repo"
    shutil.copytree(repository, copy)
    (copy / "efficientnet_lite0_preprocess" / "warmup" / "image.bytes").write_bytes(struct.pack("<I", 5) + b"hello")
    server = TritonProcess(copy, log_path=tmp_path / "server.log", ready_timeout_s=60)
    with pytest.raises(ServerStartError) as info:
        server.start()
    server.stop()
    log = (tmp_path / "server.log").read_text()
    # Triton 2.51 usually logs the failed warmup and exits 1; now and then it dies while the
    # failed instance is torn down, before logging it. Either way the model never serves.
    assert "failed to run warmup sample 'jpeg'" in log or "tritonserver exited" in str(info.value)


def test_warmup_image_decodes():
    import io

    Image.open(io.BytesIO(warmup_image_bytes()[4:])).verify()
