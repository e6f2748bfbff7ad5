"""ONNX Runtime execution providers for a Python-backend classifier instance, and the refusal when CUDA is missing.

Copied beside ``model.py`` by the build and loaded from there (the stub has no
``tritonclf`` package); it imports nothing, so tests import it as is.

A KIND_GPU instance whose ONNX Runtime has no CUDA provider (the CPU ``onnxruntime``
wheel, or onnxruntime-gpu without its CUDA libraries) would otherwise run on the CPU
while the config, the metrics and every capacity plan say GPU: it fails to load instead.
"""


class MissingCudaProvider(RuntimeError):
    """A GPU instance, and no CUDA in this ONNX Runtime."""


def execution_providers(instance_kind, device_id, available):
    """ONNX Runtime's ``providers`` for an instance of kind ``"CPU"`` or ``"GPU"``; raise MissingCudaProvider."""
    if instance_kind != "GPU":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in available:
        raise MissingCudaProvider(
            "this model's instances are KIND_GPU but ONNX Runtime has no CUDAExecutionProvider "
            f"(available: {', '.join(available)}): install onnxruntime-gpu (make image PYTHON_ORT=gpu) "
            "with its CUDA libraries, or rebuild the repository with --device cpu"
        )
    return [("CUDAExecutionProvider", {"device_id": int(device_id)}), "CPUExecutionProvider"]
