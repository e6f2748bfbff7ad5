"""Warmup really runs at load time: Triton pushes the real JPEG through the preprocessing model before ready."""

from __future__ import annotations

import shutil
import struct

import pytest

from tritonclf.serving.process import ServerStartError, TritonProcess

pytestmark = pytest.mark.integration


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
