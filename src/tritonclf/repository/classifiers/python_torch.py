"""``torch``: the export's weights in their timm architecture, run by torch in a Python-backend model.

FP16 with CUDA graphs on a GPU, FP32 on a CPU: the fast GPU classifier where TensorRT is
missing. The server's Python needs torch, timm and safetensors (preflight warns otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tritonclient.grpc import model_config_pb2 as pb

from tritonclf import contract
from tritonclf.repository.classifiers.base import BACKEND_MODELS, ClassifierBackend, python_parameter
from tritonclf.repository.export_files import exported_file

WEIGHTS_FILENAME_PARAMETER = "weights_filename"
# Python models that take their input where the previous step left it (on the GPU after torch
# preprocessing) instead of Triton copying it to the host first: python_backend's parameter.
FORCE_CPU_ONLY_INPUT_TENSORS = "FORCE_CPU_ONLY_INPUT_TENSORS"
SERVER_IMPORTS = ("torch", "timm", "safetensors")
# What model.py loads from beside itself (backend models stay self-contained).
HELPERS = ("cuda_graphs.py", "pixel_checks.py")


class PythonTorch(ClassifierBackend):
    """torch in a Python-backend model."""

    name = "torch"
    summary = "the export's safetensors in its timm architecture, torch in a Python-backend model"
    export_format = "safetensors"
    records_predictions = True

    def config_fields(self, metadata, options, cc_model_filenames: Mapping[str, str]) -> dict:
        parameters = {
            "input_name": contract.PIXELS,
            "output_name": contract.PROBABILITIES,
            WEIGHTS_FILENAME_PARAMETER: contract.WEIGHTS_FILENAME,
            "timm_model": metadata.model_name,
            "num_classes": str(metadata.num_classes),
            "torch_threads": str(options.intra_op_threads),
            # The pixels stay where the preprocessing left them; the model moves them if needed.
            FORCE_CPU_ONLY_INPUT_TENSORS: "no",
        }
        if options.device == "gpu" and options.cuda_graphs:
            parameters["cuda_graph_batch_sizes"] = ",".join(map(str, options.cuda_graph_batch_sizes()))
        return {"backend": "python", "parameters": parameters}

    def version_files(self, export_dir: Path, metadata, engine) -> tuple[dict[str, Path], dict[str, str]]:
        weights = exported_file(export_dir, metadata, self.export_format)
        files = {
            "model.py": BACKEND_MODELS / "torch_classifier_model.py",
            **{name: BACKEND_MODELS / name for name in HELPERS},
            contract.WEIGHTS_FILENAME: weights,
        }
        return files, {}

    def serves(self, config: pb.ModelConfig) -> bool:
        return config.backend == "python" and python_parameter(config, WEIGHTS_FILENAME_PARAMETER) is not None

    def required_files(self, config: pb.ModelConfig) -> list[str]:
        return ["model.py", *HELPERS, python_parameter(config, WEIGHTS_FILENAME_PARAMETER)]

    def preflight(self, model, machine) -> list:
        from tritonclf.repository.preflight_checks import check_torch_imports

        return check_torch_imports(model, SERVER_IMPORTS)


BACKEND = PythonTorch()
