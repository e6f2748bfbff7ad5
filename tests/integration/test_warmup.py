"""Warmup really runs at load time: Triton pushes the real JPEG through the preprocessing model before ready.

Triton 2.51 (the embedded binary) often dies of a SIGSEGV while it tears down the instance
whose warmup failed, before it logs the model's load error. Its verbose log names the
warmup sample as it runs it and as it fails, before that teardown: the test reads those
lines, so it sees the failure itself whichever way the server ends.
"""

from __future__ import annotations

import re
import shutil
import struct

import pytest

from tritonclf.serving.process import ServerStartError, TritonProcess

pytestmark = pytest.mark.integration
PREPROCESS = "efficientnet_lite0_preprocess"
RUNNING = re.compile(rf"instance {PREPROCESS}_0_\d is running warmup sample 'jpeg'")
FAILED = re.compile(rf"instance {PREPROCESS}_0_\d failed to run warmup sample 'jpeg'")


def verbose_server(repository, log) -> TritonProcess:
    return TritonProcess(repository, log_path=log, extra_args=("--log-verbose=1",), ready_timeout_s=60)


def test_the_warmup_jpeg_runs_through_preprocessing_before_the_server_is_ready(repository, tmp_path):
    log = tmp_path / "server.log"
    with verbose_server(repository, log) as server:
        assert server.is_ready()
    text = log.read_text()
    assert RUNNING.search(text) and not FAILED.search(text)


def test_a_broken_warmup_image_stops_the_model_from_loading(repository, tmp_path):
    copy = tmp_path / "repo"
    shutil.copytree(repository, copy)
    (copy / PREPROCESS / "warmup" / "image.bytes").write_bytes(struct.pack("<I", 5) + b"hello")
    log = tmp_path / "server.log"
    server = verbose_server(copy, log)
    with pytest.raises(ServerStartError):
        server.start()
    server.stop()
    text = log.read_text()
    assert RUNNING.search(text) and FAILED.search(text), text[-3000:]
    # Then Triton either reports why and exits 1, or crashes tearing the instance down (its bug), or
    # (seen once in CI: the log ended at the warmup failure) ends by a signal without logging it; the
    # launcher then exits with 128 + the signal. In no case does the model serve.
    code = server.process.returncode
    reported = f"failed to load '{PREPROCESS}' version 1: Invalid argument: failed to run warmup sample 'jpeg'"
    assert code != 0
    assert reported in text or "Signal (11) received." in text or code > 128, (code, text[-3000:])
