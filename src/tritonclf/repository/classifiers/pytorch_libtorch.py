"""``torchscript``: the TorchScript export (``--format torchscript``) on Triton's PyTorch (LibTorch) backend.

Served by NVIDIA's container (CPU or GPU). Preflight checks the config's tensor names
against the PyTorch backend's naming rules and, where torch is importable, the file's ``forward``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tritonclient.grpc import model_config_pb2 as pb

from tritonclf import contract
from tritonclf.repository.classifiers.base import ClassifierBackend
from tritonclf.repository.export_files import exported_file


class PytorchLibtorch(ClassifierBackend):
    """``platform: "pytorch_libtorch"``."""

    name = "torchscript"
    summary = "the TorchScript export on Triton's PyTorch (LibTorch) backend"
    export_format = "torchscript"

    def config_fields(self, metadata, options, cc_model_filenames: Mapping[str, str]) -> dict:
        """The config as the backend's 24.10 README documents it.

        The tensor names stay the served ones: the input binds to ``forward(pixel_values)``
        by argument name, and a single output needs no ``<name>__<index>`` suffix (the
        backend falls back to the config's order). ``INFERENCE_MODE`` is the backend's
        default, written out so the config says how the model runs.
        """
        params = {"INFERENCE_MODE": "true"}
        if options.intra_op_threads and options.classifier_kind == "KIND_CPU":
            # One instance per core, like the other CPU backends, instead of every instance on every core.
            params.update(INTRA_OP_THREAD_COUNT=str(options.intra_op_threads), INTER_OP_THREAD_COUNT="1")
        return {
            "platform": "pytorch_libtorch",
            "default_model_filename": contract.TORCHSCRIPT_FILENAME,
            "parameters": params,
        }

    def version_files(self, export_dir: Path, metadata, engine) -> tuple[dict[str, Path], dict[str, str]]:
        return {contract.TORCHSCRIPT_FILENAME: exported_file(export_dir, metadata, self.export_format)}, {}

    def serves(self, config: pb.ModelConfig) -> bool:
        return config.platform == "pytorch_libtorch" or config.backend == "pytorch"

    def required_files(self, config: pb.ModelConfig) -> list[str]:
        return [config.default_model_filename or contract.TORCHSCRIPT_FILENAME]

    def preflight(self, model, machine) -> list:
        from tritonclf.repository.preflight_checks import check_libtorch

        return check_libtorch(model)


BACKEND = PytorchLibtorch()
