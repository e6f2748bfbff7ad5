"""A python-ort classifier built for the GPU refuses to load where ONNX Runtime has no CUDA provider.

Its config says KIND_GPU; silently running on the CPU would make every latency and
capacity number a lie. The refusal is a pure function (``ort_providers``, copied beside
``model.py``), tested here as is. The served path goes as far as this machine allows:
without a GPU, Triton itself refuses a KIND_GPU instance group before the model's
``initialize`` runs, so the one line can only be seen served on a GPU host without
onnxruntime-gpu (not run here: there is no GPU).
"""

from __future__ import annotations

import json
import urllib.request

import pytest

from tritonclf import contract
from tritonclf.repository.build import BuildOptions, build_repository
from tritonclf.serving.backend_models.ort_providers import MissingCudaProvider, execution_providers
from tritonclf.serving.process import TritonProcess

CPU_ONLY = ["AzureExecutionProvider", "CPUExecutionProvider"]


def test_gpu_instance_without_cuda_provider_is_refused_in_one_line():
    with pytest.raises(MissingCudaProvider) as caught:
        execution_providers("GPU", "0", CPU_ONLY)
    message = str(caught.value)
    assert "\n" not in message
    assert "KIND_GPU" in message and "CUDAExecutionProvider" in message and "onnxruntime-gpu" in message
    assert "--device cpu" in message


def test_providers_for_each_instance_kind():
    assert execution_providers("CPU", "0", CPU_ONLY) == ["CPUExecutionProvider"]
    assert execution_providers("GPU", "1", ["CUDAExecutionProvider", *CPU_ONLY]) == [
        ("CUDAExecutionProvider", {"device_id": 1}),
        "CPUExecutionProvider",
    ]


def repository_index(server: TritonProcess) -> list[dict]:
    request = urllib.request.Request(f"http://{server.http_url}/v2/repository/index", data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_served_python_ort_gpu_model_is_unavailable_here_and_carries_the_provider_check(export_dir, metadata, tmp_path):
    repository = tmp_path / "repository"
    build_repository(export_dir, repository, BuildOptions(device="gpu", warmup=False))
    classifier_name = contract.classifier_model_name(metadata.model_name)
    assert (repository / classifier_name / "1" / "ort_providers.py").is_file()
    log = tmp_path / "tritonserver.log"
    # Keep the server up past the failed load, so its reason can be read back over HTTP.
    with TritonProcess(
        repository, log_path=log, extra_args=("--exit-on-error=false", "--strict-readiness=false")
    ) as server:
        states = {entry["name"]: entry for entry in repository_index(server)}
    classifier = states[classifier_name]
    assert classifier["state"] == "UNAVAILABLE"
    # Triton's own refusal on a machine without GPUs; on a GPU host ours comes next (see above).
    assert "KIND_GPU but no GPUs are available" in classifier["reason"]
    assert states[contract.preprocess_model_name(metadata.model_name)]["state"] == "READY"
