"""Build a Triton model repository from an exported classifier.

For ensemble name N it writes three models, sometimes four (configs in ``models.py``, the
classifier's fields and files from its backend in ``classifiers/``):

- ``N``: the ensemble, the public entry point: encoded image bytes in,
  probabilities out (with ``label_filename``, so ``class_count=k`` returns
  ``score:index:label``);
- ``N_preprocess``: Python backend, decode + resize + crop + normalize, with Pillow
  or with torch (``BuildOptions.preprocess``);
- ``N_model``: the classifier, run by the backend ``BuildOptions.backend`` names;
- ``N_monitor`` only where the classifier is not a Python-backend model, or with
  low-confidence capture: a Python step after it that records the prediction metrics
  (``metrics_files.py``) and passes the probabilities on.

Each model's new version is staged outside the repository and renamed into place,
so a server polling the repository never sees half a version. Rebuilding
unchanged inputs writes nothing; a changed build gets the next version number and
the oldest versions beyond ``keep_versions`` are removed. Every version directory
gets a ``manifest.json``: SHA-256 of each file, the source ONNX and its export,
and for engines how they were built and how they passed the accuracy gate.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import platform
import shutil
import struct
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from tritonclf import contract
from tritonclf import preprocess as preprocess_module
from tritonclf.export_metadata import ExportMetadata, load_metadata
from tritonclf.files import sha256_file, write_atomic, write_json_atomic
from tritonclf.progress import Progress
from tritonclf.provenance import project_version, utc_timestamp
from tritonclf.repository.classifiers.base import BACKEND_MODELS
from tritonclf.repository.export_files import BuildError
from tritonclf.repository.metrics_files import find_reference, metrics_files, monitor_dir
from tritonclf.repository.model_names import describe_name_problem, model_name_problem, repository_path_problem
from tritonclf.repository.models import (
    WARMUP_IMAGE_FILE,
    BuildOptions,
    classifier_spec,
    ensemble_spec,
    monitor_spec,
    preprocess_spec,
)
from tritonclf.repository.pbtxt import ModelSpec, render, to_model_config
from tritonclf.samples import sample_photo

__all__ = ["BuildError", "BuildOptions", "ModelBuild", "PreparedEngine", "build_repository"]

_PREPROCESS_SOURCE = Path(preprocess_module.__file__)
# Beside preprocess.py; not imported here: building needs no torch.
_TORCH_PREPROCESS_SOURCE = _PREPROCESS_SOURCE.with_name("torch_preprocess.py")
_WARMUP_JPEG = sample_photo("chelsea")
BUILD_STEPS = 4  # check the export, then the classifier, the preprocessing and the ensemble


@dataclasses.dataclass(frozen=True)
class PreparedEngine:
    """A TensorRT engine for the classifier, and the record of how it was built and gated."""

    plan: Path
    record: Mapping  # TensorRT/CUDA versions, GPU, builder flags, build time, accuracy gate
    extra_plans: Mapping[str, Path] = dataclasses.field(default_factory=dict)  # compute capability -> engine


@dataclasses.dataclass(frozen=True)
class ModelBuild:
    """What the build did for one model."""

    name: str
    version: int
    changed: bool


def warmup_image_bytes() -> bytes:
    """A real JPEG as one serialized BYTES element (4-byte little-endian length, then the bytes)."""
    jpeg = _WARMUP_JPEG.read_bytes() if _WARMUP_JPEG.is_file() else _synthetic_jpeg()
    return struct.pack("<I", len(jpeg)) + jpeg


def _synthetic_jpeg() -> bytes:
    # Only when the package runs without the checkout's sample photos.
    gradient = np.linspace(0, 255, 640 * 480 * 3).reshape(480, 640, 3).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(gradient, "RGB").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def labels_text(metadata: ExportMetadata) -> str:
    """One label per line, in class-index order, as Triton's ``label_filename`` expects."""
    for label in metadata.labels:
        if "\n" in label or not label.strip():
            raise BuildError(f"label {label!r} is empty or spans lines: fix the export's labels")
    return "\n".join(metadata.labels) + "\n"


def check_name(name: str | None) -> None:
    """A model name Triton can serve (``model_names``), else a one-line BuildError; None passes (the default)."""
    if name is None:
        return
    problem = model_name_problem(name)
    if problem:
        raise BuildError(describe_name_problem(name, problem))


def check_replacement(repository: Path, name: str, metadata: ExportMetadata, *, replace: bool) -> None:
    """Refuse to turn an ensemble serving other classes into this export's, unless asked to."""
    labels_file = Path(repository) / name / contract.LABELS_FILENAME
    if replace or not labels_file.is_file():
        return
    served = labels_file.read_text().splitlines()
    if served == list(metadata.labels):
        return
    first = f", {served[0]!r}..." if served else ""
    raise BuildError(
        f"{labels_file.parent} already serves another model ({len(served)} classes{first}) and this export has "
        f"{metadata.num_classes}: build it beside with --name NAME, or pass --replace to replace it"
    )


def _existing_versions(model_dir: Path) -> list[int]:
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def _fingerprint(files: dict[str, str], config_text: str, extra: dict[str, str]) -> str:
    """One hash over everything that defines a model version."""
    payload = json.dumps({"files": files, "config": config_text, "extra": extra}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _sha256_of(content: str | bytes) -> str:
    return hashlib.sha256(content.encode() if isinstance(content, str) else content).hexdigest()


def _read_manifest(version_dir: Path) -> dict:
    try:
        return json.loads((version_dir / contract.MANIFEST_FILENAME).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _build_info() -> dict[str, str]:
    return {
        "builder": f"triton-image-classifier {project_version()}",
        "python": platform.python_version(),
        "built_at": utc_timestamp(),
    }


def write_model(
    repository: Path,
    spec: ModelSpec,
    *,
    version_files: Mapping[str, Path | bytes],
    model_dir_files: Mapping[str, str | bytes],
    provenance: dict,
    keep_versions: int,
) -> ModelBuild:
    """Write one model: config + model-level files, and a new version only when something changed.

    ``version_files`` maps names inside the version directory to source files, or to the
    bytes of a generated one; ``model_dir_files`` maps names beside ``config.pbtxt`` to their text.
    """
    model_dir = repository / spec.name
    config_text = render(to_model_config(spec))
    file_hashes = {
        name: _sha256_of(src) if isinstance(src, bytes) else sha256_file(Path(src))
        for name, src in sorted(version_files.items())
    }
    dir_hashes = {name: _sha256_of(content) for name, content in sorted(model_dir_files.items())}
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
            if isinstance(src, bytes):
                (staged / name).write_bytes(src)
            else:
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
    stale = versions[: max(0, len(versions) + 1 - keep_versions)]
    if stale:
        # Moved out whole before deleting: a build killed midway never leaves half a version in place.
        trash = Path(tempfile.mkdtemp(prefix=f".{repository.name}-staging-", dir=repository.parent))
        for old in stale:
            os.rename(model_dir / str(old), trash / str(old))
        shutil.rmtree(trash, ignore_errors=True)
    return ModelBuild(spec.name, version, changed=True)


def _preprocess_files(options: BuildOptions, metadata: ExportMetadata) -> dict[str, Path]:
    """Version files of the preprocessing model: Pillow's, or torch's beside the shared header checks."""
    files = {"preprocess.py": _PREPROCESS_SOURCE}
    if options.preprocess == "pillow":
        return {"model.py": BACKEND_MODELS / "preprocess_model.py", **files}
    try:
        preprocess_module.check_torch_spec(metadata.preprocess)
    except ValueError as err:
        raise BuildError(str(err)) from None
    return {
        "model.py": BACKEND_MODELS / "torch_preprocess_model.py",
        **files,
        "torch_preprocess.py": _TORCH_PREPROCESS_SOURCE,
    }


def build_repository(
    export_dir: Path,
    repository: Path,
    options: BuildOptions = BuildOptions(),  # noqa: B008 - frozen dataclass, safe as a default
    engine: PreparedEngine | None = None,
    progress: Progress | None = None,
    *,
    replace: bool = False,
    reference: Path | None = None,
) -> list[ModelBuild]:
    """Export folder (``model.onnx`` and/or ``model.pt``, ``model.json``) -> three or four models in ``repository``.

    The ensemble is ``options.name``, else the export's own name (``ExportMetadata.ensemble_name``).
    An ensemble already there with other labels is replaced only with ``replace``.
    ``progress`` shows the ``BUILD_STEPS`` steps (the command passes one; callers in code stay quiet).
    ``reference`` (default: the one ``model.json`` names) is what the served metrics compare with.
    """
    progress = progress or Progress.quiet()
    export_dir, repository = Path(export_dir), Path(repository)
    check_name(options.name)
    progress.step(f"check the export in {export_dir}")
    metadata = load_metadata(export_dir / contract.METADATA_FILENAME)
    name = options.name or metadata.ensemble_name
    check_name(name)
    check_replacement(repository, name, metadata, replace=replace)
    path_problem = repository_path_problem(repository)
    if path_problem:
        progress.write(f"warning: {repository}: {path_problem}", stream=sys.stderr)
    repository.mkdir(parents=True, exist_ok=True)
    labels = {contract.LABELS_FILENAME: labels_text(metadata)}
    provenance = {
        "source": {
            "model_name": metadata.model_name,
            "onnx_sha256": metadata.onnx_sha256,
            "state_dict_sha256": metadata.state_dict_sha256,
            **({"torchscript_sha256": metadata.torchscript_sha256} if metadata.torchscript_sha256 else {}),
            "weights": metadata.weights,
            "export_versions": metadata.versions,
        }
    }
    # Every input is checked before anything is written.
    classifier_files, cc_map = options.classifier.version_files(export_dir, metadata, engine)
    preprocess_files = _preprocess_files(options, metadata)
    try:
        found_reference = find_reference(export_dir, metadata, reference)
    except (FileNotFoundError, ValueError) as err:
        raise BuildError(str(err)) from None
    metrics = metrics_files(name, metadata, options, found_reference)
    classifier_files.update(metrics.classifier)
    preprocess_files.update(metrics.preprocess)
    if found_reference is not None:
        provenance["source"]["reference"] = {"n": found_reference.n, "data": found_reference.source}
    classifier_provenance = {**provenance, "backend": options.backend}
    preprocess_provenance = {**provenance, "preprocess": options.preprocess}
    if engine is not None and options.classifier.needs_engine:
        classifier_provenance["engine"] = dict(engine.record)
    preprocess_dir_files: dict[str, str | bytes] = {}
    if options.warmup:
        preprocess_dir_files[f"warmup/{WARMUP_IMAGE_FILE}"] = warmup_image_bytes()
    keep = {"keep_versions": options.keep_versions}
    # Dependencies first, the ensemble last: it is the entry point clients call.
    classifier = classifier_spec(name, metadata, options, cc_map)
    progress.step(f"write {classifier.name} ({options.backend})")
    built = [
        write_model(
            repository,
            classifier,
            version_files=classifier_files,
            model_dir_files=labels,
            provenance=classifier_provenance,
            **keep,
        )
    ]
    if metrics.monitor is not None:
        built.append(
            write_model(
                repository,
                monitor_spec(name, metadata, options),
                version_files=metrics.monitor,
                model_dir_files={},
                provenance=provenance,
                **keep,
            )
        )
    preprocess = preprocess_spec(name, metadata, options)
    progress.step(f"write {preprocess.name} ({options.preprocess})")
    built.append(
        write_model(
            repository,
            preprocess,
            version_files=preprocess_files,
            model_dir_files=preprocess_dir_files,
            provenance=preprocess_provenance,
            **keep,
        )
    )
    ensemble = ensemble_spec(name, metadata, options)
    progress.step(f"write {ensemble.name} (ensemble)")
    built.append(
        write_model(
            repository,
            ensemble,
            version_files={},
            model_dir_files=labels,
            provenance=provenance,
            **keep,
        )
    )
    if metrics.monitor is None:
        _remove_model(repository, monitor_dir(repository, name))
    return built


def _remove_model(repository: Path, model_dir: Path) -> None:
    """Take away a model the new ensemble no longer calls (moved out whole, then deleted)."""
    if not model_dir.is_dir():
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{repository.name}-staging-", dir=repository.parent))
    os.rename(model_dir, trash / model_dir.name)
    shutil.rmtree(trash, ignore_errors=True)
