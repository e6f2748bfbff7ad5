"""``python-ort``: ONNX Runtime inside a Python-backend model (CPU, or its CUDA provider with ``--device gpu``).

What the embedded server of the nvidia-pytriton wheel (Python backend only) serves, and
what ``--backend auto`` builds where ``trt`` cannot be.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tritonclient.grpc import model_config_pb2 as pb

from tritonclf import contract
from tritonclf.repository.classifiers.base import BACKEND_MODELS, ClassifierBackend, python_parameter
from tritonclf.repository.export_files import exported_file

ONNX_FILENAME_PARAMETER = "onnx_filename"
# What model.py loads from beside itself (backend models stay self-contained).
HELPERS = ("ort_providers.py", "pixel_checks.py")


class PythonOrt(ClassifierBackend):
    """ONNX Runtime in a Python-backend model."""

    name = "python-ort"
    summary = "ONNX Runtime inside a Python-backend model (CUDA provider with --device gpu)"
    export_format = "onnx"
    auto_fallback = True
    records_predictions = True

    def config_fields(self, metadata, options, cc_model_filenames: Mapping[str, str]) -> dict:
        return {
            "backend": "python",
            "parameters": {
                "input_name": contract.PIXELS,
                "output_name": contract.PROBABILITIES,
                ONNX_FILENAME_PARAMETER: contract.ONNX_FILENAME,
                "intra_op_threads": str(options.intra_op_threads),
                "allow_spinning": "1" if options.ort_spinning else "0",
                "single_image_spinning": "1" if options.single_image_spinning else "0",
            },
        }

    def version_files(self, export_dir: Path, metadata, engine) -> tuple[dict[str, Path], dict[str, str]]:
        files = {
            "model.py": BACKEND_MODELS / "onnx_classifier_model.py",
            **{name: BACKEND_MODELS / name for name in HELPERS},
            contract.ONNX_FILENAME: exported_file(export_dir, metadata, self.export_format),
        }
        return files, {}

    def serves(self, config: pb.ModelConfig) -> bool:
        return config.backend == "python" and python_parameter(config, ONNX_FILENAME_PARAMETER) is not None

    def required_files(self, config: pb.ModelConfig) -> list[str]:
        return ["model.py", *HELPERS, python_parameter(config, ONNX_FILENAME_PARAMETER)]


BACKEND = PythonOrt()
