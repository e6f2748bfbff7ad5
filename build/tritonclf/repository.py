"""Build a Triton model repository from an exported classifier.

For ensemble name N it writes three models:

- ``N``: the ensemble, the public entry point: encoded image bytes in,
  probabilities out (with ``label_filename``, so ``class_count=k`` returns
  ``score:index:label``);
- ``N_preprocess``: Python backend, decode + resize + crop + normalize;
- ``N_model``: the classifier (here a Python-backend ONNX Runtime model).

Each model's new version is staged outside the repository and renamed into place,
so a server polling the repository never sees half a version. Rebuilding
unchanged inputs writes nothing; a changed build gets the next version number and
the oldest versions beyond ``keep_versions`` are removed.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path

from tritonclf import contract
from tritonclf.metadata import ExportMetadata, load_metadata, sha256_file, write_atomic, write_json_atomic
from tritonclf.model_config import (
    DynamicBatching,
    EnsembleStep,
    InstanceGroup,
    ModelSpec,
    Tensor,
    render,
    to_model_config,
)
from tritonclf.preprocess import DecodeLimits

_PACKAGE_DIR = Path(__file__).resolve().parent
_BACKEND_MODELS = _PACKAGE_DIR / "backend_models"


class BuildError(RuntimeError):
    """The repository cannot be built from these inputs."""


@dataclasses.dataclass(frozen=True)
class BuildOptions:
    """Serving choices baked into the generated configs."""

    name: str | None = None  # ensemble name; default: the exported model's name
    max_batch_size: int = 32
    preprocess_instances: int = 2
    classifier_instances: int = 1
    intra_op_threads: int = 0  # ONNX Runtime threads per classifier instance; 0 = its default
    max_queue_delay_microseconds: int = 0
    limits: DecodeLimits = dataclasses.field(default_factory=DecodeLimits)
    keep_versions: int = 2


@dataclasses.dataclass(frozen=True)
class ModelBuild:
    """What the build did for one model."""

    name: str
    version: int
    changed: bool


def preprocess_spec(name: str, metadata: ExportMetadata, options: BuildOptions) -> ModelSpec:
    """Config of the Python-backend preprocessing model."""
    height, width = metadata.preprocess.input_size
    return ModelSpec(
        name=contract.preprocess_model_name(name),
        backend="python",
        max_batch_size=options.max_batch_size,
        inputs=(Tensor(contract.IMAGE_INPUT, "TYPE_STRING", (1,)),),
        outputs=(Tensor(contract.PIXELS, "TYPE_FP32", (3, height, width)),),
        instance_groups=(InstanceGroup(options.preprocess_instances, "KIND_CPU"),),
        dynamic_batching=DynamicBatching(options.max_queue_delay_microseconds),
        parameters={
            "input_name": contract.IMAGE_INPUT,
            "output_name": contract.PIXELS,
            **metadata.preprocess.to_parameters(),
            **options.limits.to_parameters(),
        },
    )


def classifier_spec(name: str, metadata: ExportMetadata, options: BuildOptions) -> ModelSpec:
    """Config of the Python-backend ONNX Runtime classifier."""
    height, width = metadata.preprocess.input_size
    return ModelSpec(
        name=contract.classifier_model_name(name),
        backend="python",
        max_batch_size=options.max_batch_size,
        # FORMAT_NCHW: Triton's stock image clients can call the classifier directly.
        inputs=(Tensor(contract.PIXELS, "TYPE_FP32", (3, height, width), image_format="FORMAT_NCHW"),),
        outputs=(
            Tensor(
                contract.PROBABILITIES, "TYPE_FP32", (metadata.num_classes,), label_filename=contract.LABELS_FILENAME
            ),
        ),
        instance_groups=(InstanceGroup(options.classifier_instances, "KIND_CPU"),),
        dynamic_batching=DynamicBatching(options.max_queue_delay_microseconds),
        parameters={
            "input_name": contract.PIXELS,
            "output_name": contract.PROBABILITIES,
            "onnx_filename": contract.ONNX_FILENAME,
            "intra_op_threads": str(options.intra_op_threads),
        },
    )


def ensemble_spec(name: str, metadata: ExportMetadata, options: BuildOptions) -> ModelSpec:
    """Config of the ensemble joining preprocessing and classifier."""
    return ModelSpec(
        name=name,
        platform="ensemble",
        max_batch_size=options.max_batch_size,
        inputs=(Tensor(contract.IMAGE_INPUT, "TYPE_STRING", (1,)),),
        outputs=(
            Tensor(
                contract.PROBABILITIES, "TYPE_FP32", (metadata.num_classes,), label_filename=contract.LABELS_FILENAME
            ),
        ),
        ensemble_steps=(
            EnsembleStep(
                contract.preprocess_model_name(name),
                input_map={contract.IMAGE_INPUT: contract.IMAGE_INPUT},
                output_map={contract.PIXELS: contract.PIXELS},
            ),
            EnsembleStep(
                contract.classifier_model_name(name),
                input_map={contract.PIXELS: contract.PIXELS},
                output_map={contract.PROBABILITIES: contract.PROBABILITIES},
            ),
        ),
    )


def labels_text(metadata: ExportMetadata) -> str:
    """One label per line, in class-index order, as Triton's ``label_filename`` expects."""
    for label in metadata.labels:
        if "\n" in label or not label.strip():
            raise BuildError(f"label {label!r} is empty or spans lines: fix the export's labels")
    return "\n".join(metadata.labels) + "\n"


def _existing_versions(model_dir: Path) -> list[int]:
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def _fingerprint(files: dict[str, str], config_text: str, extra: dict[str, str]) -> str:
    """One hash over everything that defines a model version."""
    payload = json.dumps({"files": files, "config": config_text, "extra": extra}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _read_manifest(version_dir: Path) -> dict:
    try:
        return json.loads((version_dir / contract.MANIFEST_FILENAME).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _build_info() -> dict[str, str]:
    return {
        "builder": f"triton-image-classifier {importlib.metadata.version('triton-image-classifier')}",
        "python": platform.python_version(),
        "built_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def write_model(
    repository: Path,
    spec: ModelSpec,
    *,
    version_files: dict[str, Path],
    model_dir_files: dict[str, str],
    provenance: dict,
    keep_versions: int,
) -> ModelBuild:
    """Write one model: config + model-level files, and a new version only when something changed.

    ``version_files`` maps names inside the version directory to source files;
    ``model_dir_files`` maps names beside ``config.pbtxt`` to their text.
    """
    model_dir = repository / spec.name
    config_text = render(to_model_config(spec))
    file_hashes = {name: sha256_file(src) for name, src in sorted(version_files.items())}
    dir_hashes = {name: hashlib.sha256(text.encode()).hexdigest() for name, text in sorted(model_dir_files.items())}
    fingerprint = _fingerprint(file_hashes, config_text, dir_hashes)
    versions = _existing_versions(model_dir)
    if versions and _read_manifest(model_dir / str(versions[-1])).get("fingerprint") == fingerprint:
        return ModelBuild(spec.name, versions[-1], changed=False)

    version = (versions[-1] + 1) if versions else 1
    model_dir.mkdir(parents=True, exist_ok=True)
    # Staged beside the repository, not inside it: Triton would take a folder in the
    # repository for a model, and one in the model folder for a bad version.
    staging_root = Path(tempfile.mkdtemp(prefix=f".{repository.name}-staging-", dir=repository.parent))
    try:
        staged = staging_root / str(version)
        staged.mkdir()
        for name, src in version_files.items():
            shutil.copyfile(src, staged / name)
        manifest = {
            "model": spec.name,
            "version": version,
            "fingerprint": fingerprint,
            "files": file_hashes,
            "model_dir_files": dir_hashes,
            "config_sha256": hashlib.sha256(config_text.encode()).hexdigest(),
            **provenance,
            **_build_info(),
        }
        write_json_atomic(staged / contract.MANIFEST_FILENAME, manifest)
        os.chmod(staged, 0o755)
        # Model-level files first: the new version must never be visible with an old config.
        for name, text in model_dir_files.items():
            write_atomic(model_dir / name, text)
        write_atomic(model_dir / "config.pbtxt", config_text)
        os.rename(staged, model_dir / str(version))
    finally:
        shutil.rmtree(staging_root, ignore_errors=True)
    for old in versions[: max(0, len(versions) + 1 - keep_versions)]:
        shutil.rmtree(model_dir / str(old), ignore_errors=True)
    return ModelBuild(spec.name, version, changed=True)


def build_repository(export_dir: Path, repository: Path, options: BuildOptions = BuildOptions()) -> list[ModelBuild]:
    """Export folder (``model.onnx`` + ``model.json``) -> three models in ``repository``."""
    export_dir, repository = Path(export_dir), Path(repository)
    metadata = load_metadata(export_dir / contract.METADATA_FILENAME)
    onnx_path = export_dir / metadata.onnx_filename
    if not onnx_path.is_file():
        raise BuildError(f"{onnx_path} is missing: re-run the export")
    if sha256_file(onnx_path) != metadata.onnx_sha256:
        raise BuildError(f"{onnx_path} does not match the hash in its metadata: re-run the export")
    if options.max_batch_size < 1 or options.keep_versions < 1:
        raise BuildError("max_batch_size and keep_versions must be at least 1")
    name = options.name or metadata.model_name
    repository.mkdir(parents=True, exist_ok=True)
    labels = {contract.LABELS_FILENAME: labels_text(metadata)}
    provenance = {
        "source": {
            "model_name": metadata.model_name,
            "onnx_sha256": metadata.onnx_sha256,
            "weights": metadata.weights,
            "export_versions": metadata.versions,
        }
    }
    common = {"provenance": provenance, "keep_versions": options.keep_versions}
    # Dependencies first, the ensemble last: it is the entry point clients call.
    return [
        write_model(
            repository,
            classifier_spec(name, metadata, options),
            version_files={"model.py": _BACKEND_MODELS / "onnx_classifier_model.py", contract.ONNX_FILENAME: onnx_path},
            model_dir_files=labels,
            **common,
        ),
        write_model(
            repository,
            preprocess_spec(name, metadata, options),
            version_files={
                "model.py": _BACKEND_MODELS / "preprocess_model.py",
                "preprocess.py": _PACKAGE_DIR / "preprocess.py",
            },
            model_dir_files={},
            **common,
        ),
        write_model(
            repository, ensemble_spec(name, metadata, options), version_files={}, model_dir_files=labels, **common
        ),
    ]
