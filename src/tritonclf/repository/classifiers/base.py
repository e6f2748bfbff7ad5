"""What a classifier backend says about itself; each backend is one module beside this one.

A backend is everything that differs between ways of running the classifier model
``NAME_model``: its config fields, the files of its version directory, which parsed
config is one of its own and what preflight checks for it, and whether ``--backend auto``
picks it. The ensemble, the preprocessing model and the tensor names never change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from tritonclient.grpc import model_config_pb2 as pb

from tritonclf.serving import backend_models

if TYPE_CHECKING:
    from tritonclf.export_metadata import ExportMetadata
    from tritonclf.repository.backends import GpuInfo
    from tritonclf.repository.build import PreparedEngine
    from tritonclf.repository.models import BuildOptions
    from tritonclf.repository.preflight_checks import Finding, LoadedModel

# The Python-backend models the build copies into version directories (self-contained files).
BACKEND_MODELS = Path(backend_models.__file__).parent


@dataclasses.dataclass(frozen=True)
class Machine:
    """What this machine has, for ``--backend auto`` and for preflight's compatibility checks."""

    gpu: GpuInfo | None = None
    tensorrt_version: str | None = None
    prebuilt_engine: str | None = None  # an engine built for this export (engine_build.matching_engine), described
    triton_tag: str | None = None  # the Triton release the deployment pins


class ClassifierBackend:
    """One way of serving the classifier. Subclasses set the class attributes and override what differs."""

    name: ClassVar[str]  # the --backend value
    summary: ClassVar[str]  # one line for --help and the docs
    export_format: ClassVar[str]  # the export file it serves: "onnx", "torchscript" or "safetensors"
    always_gpu: ClassVar[bool] = False  # KIND_GPU whatever --device says
    needs_engine: ClassVar[bool] = False  # the build prepares a TensorRT engine first (build_cli.resolve)
    auto_fallback: ClassVar[bool] = False  # what --backend auto picks when no backend claims the machine
    # A Python-backend model of ours that records the prediction metrics itself; the others get
    # a monitor step after them (metrics_files.py).
    records_predictions: ClassVar[bool] = False

    def validate(self, options: BuildOptions) -> None:
        """Raise ValueError for options this backend cannot serve."""

    def extra_profile_batch_sizes(self, options: BuildOptions) -> tuple[int, ...]:
        """Batch sizes besides 1 and max that the classifier is built and warmed for."""
        return ()

    def config_fields(
        self, metadata: ExportMetadata, options: BuildOptions, cc_model_filenames: Mapping[str, str]
    ) -> dict:
        """The ``ModelSpec`` fields of this backend: who runs the model, its file, its parameters."""
        raise NotImplementedError

    def version_files(
        self, export_dir: Path, metadata: ExportMetadata, engine: PreparedEngine | None
    ) -> tuple[dict[str, Path], dict[str, str]]:
        """(version directory name -> source file, cc_model_filenames); raise BuildError when an input is missing."""
        raise NotImplementedError

    def serves(self, config: pb.ModelConfig) -> bool:
        """Whether a parsed config is a classifier of this backend."""
        raise NotImplementedError

    def required_files(self, config: pb.ModelConfig) -> list[str]:
        """Files each version directory of such a config must hold."""
        return [config.default_model_filename] if config.default_model_filename else []

    def preflight(self, model: LoadedModel, machine: Machine) -> list[Finding]:
        """Backend-specific preflight findings beyond files, hashes and wiring."""
        return []

    def auto_choice(self, machine: Machine) -> tuple[bool, str]:
        """(picked, why) for ``--backend auto``; ``why`` also says what was missing when not picked."""
        return False, ""

    def __repr__(self) -> str:
        return f"<classifier backend {self.name}>"


def pixel_dims(metadata: ExportMetadata) -> tuple[int, int, int]:
    """The classifier input's CHW shape."""
    height, width = metadata.preprocess.input_size
    return (3, height, width)


def python_parameter(config: pb.ModelConfig, name: str) -> str | None:
    """A string parameter of a Python-backend config, or None."""
    value = config.parameters.get(name)
    return None if value is None else value.string_value
