"""The export's files as a repository build reads them: present and matching ``model.json``'s hashes."""

from __future__ import annotations

from pathlib import Path

from tritonclf.export_metadata import ExportMetadata
from tritonclf.files import sha256_file


class BuildError(RuntimeError):
    """The repository cannot be built from these inputs."""


def exported_file(export_dir: Path, metadata: ExportMetadata, fmt: str) -> Path:
    """The export's file of one format (``onnx``, ``torchscript``, ``safetensors``), checked against its hash."""
    filename, digest = {
        "onnx": (metadata.onnx_filename, metadata.onnx_sha256),
        "torchscript": (metadata.torchscript_filename, metadata.torchscript_sha256),
        "safetensors": (metadata.state_dict_filename, metadata.state_dict_sha256),
    }[fmt]
    if not filename:
        raise BuildError(f"{export_dir} has no {fmt} export: re-run the export with --format {fmt} (or both)")
    path = Path(export_dir) / filename
    if not path.is_file():
        raise BuildError(f"{path} is missing: re-run the export")
    if sha256_file(path) != digest:
        raise BuildError(f"{path} does not match the hash in its metadata: re-run the export")
    return path
