"""The preprocessing stub reuses its buffers: no page faults per image once warm.

Without ``keep_freed_memory`` glibc gave every image's buffers (the request bytes, the
decode, the float tensors) back to the kernel and faulted them in again for the next
image: about 600 page faults and 1 ms of CPU per phone photo, measured with
``clients/benchmark.py``. This test counts the stubs' minor page faults while the real
server classifies photos.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from tritonclf.serving.stub_health import stat_fields
from tritonclf_lab.bench.images import generate_mix
from tritonclf_lab.bench.procmem import descendants

from ..conftest import SAMPLE_PHOTOS

pytestmark = pytest.mark.integration
MODEL = "efficientnet_lite0"
ROUNDS = 3
# Was about 600 per image; what is left is the stub's own bookkeeping.
MAX_FAULTS_PER_IMAGE = 60


def preprocess_stub_pids(server) -> list[int]:
    pids = descendants(server.process.pid)
    return [pid for pid in pids if "_preprocess/" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")]


def minor_faults(pid: int) -> int:
    # Field 10 of /proc/PID/stat (minflt); stat_fields starts at field 3.
    return int(stat_fields(pid)[7])


def classify(client: grpcclient.InferenceServerClient, data: bytes) -> None:
    tensor = grpcclient.InferInput("image", [1, 1], "BYTES")
    tensor.set_data_from_numpy(np.array([data], dtype=np.object_).reshape(1, 1))
    client.infer(MODEL, [tensor], outputs=[grpcclient.InferRequestedOutput("probabilities")])


def test_preprocessing_stub_does_not_fault_its_buffers_in_per_image(server):
    photos = [p.read_bytes() for p in SAMPLE_PHOTOS]
    images = [image.data for image in generate_mix(photos, (((1280, 960), 0.5), ((4032, 3024), 0.5)), count=6)]
    stubs = preprocess_stub_pids(server)
    assert stubs, "no preprocessing stub found under the server"
    client = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        for data in images:  # warm: the first images of each size grow the heap once
            classify(client, data)
        before = sum(minor_faults(pid) for pid in stubs)
        for _ in range(ROUNDS):
            for data in images:
                classify(client, data)
        faults = sum(minor_faults(pid) for pid in stubs) - before
    finally:
        client.close()
    per_image = faults / (ROUNDS * len(images))
    assert per_image < MAX_FAULTS_PER_IMAGE, f"{per_image:.0f} page faults per image in the preprocessing stubs"
