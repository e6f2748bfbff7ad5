"""Record the reference beside an export: its ONNX model's top-1 predictions and scores on validation images.

Called by ``tritonclf export --reference-data DIR`` and ``tritonclf evaluate --onnx ... --reference``.
The images go through the served preprocessing (``tritonclf.preprocess``) and the exported
``model.onnx`` on ONNX Runtime's CPU provider, as the served pipeline would see them; the
result is ``reference.json`` (``tritonclf.monitoring.reference``), named in ``model.json`` so
that the repository build finds it.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tritonclf import contract
from tritonclf.export_metadata import load_metadata
from tritonclf.files import write_json_atomic
from tritonclf.monitoring.reference import Reference, reference_from_probabilities, save_reference
from tritonclf.preprocess import ImageRejected, preprocess_image

BATCH_SIZE = 32


class NoReference(ValueError):
    """No reference can be recorded from these inputs; one line for the user."""


def probabilities_of(
    onnx_path: Path, paths: Sequence[Path], metadata_spec, input_name: str, output_name: str
) -> tuple[np.ndarray, list[int]]:
    """(probabilities of every readable image, the indices of the images they belong to)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rows, kept = [], []
    for start in range(0, len(paths), BATCH_SIZE):
        pixels = []
        for i in range(start, min(start + BATCH_SIZE, len(paths))):
            try:
                pixels.append(preprocess_image(Path(paths[i]).read_bytes(), metadata_spec))
                kept.append(i)
            except (ImageRejected, OSError) as err:
                print(f"warning: reference skips {paths[i]}: {err}", file=sys.stderr)
        if pixels:
            rows.append(session.run([output_name], {input_name: np.stack(pixels)})[0])
    return (np.concatenate(rows) if rows else np.empty((0, 0), dtype=np.float32)), kept


def record_reference(
    export_dir: Path, paths: Sequence[Path], true_classes: Sequence[str] = (), *, source: str = ""
) -> Reference:
    """Run the export on the images, write ``reference.json`` and name it in ``model.json``.

    ``true_classes`` (one class name per image, optional) give the label frequencies; names that
    are not among the export's labels leave them out.
    """
    export_dir = Path(export_dir)
    metadata_path = export_dir / contract.METADATA_FILENAME
    metadata = load_metadata(metadata_path)
    if not metadata.onnx_filename:
        raise NoReference(f"{export_dir} has no ONNX export: the reference is recorded with model.onnx")
    if not paths:
        raise NoReference("no validation images to record a reference on")
    probabilities, kept = probabilities_of(
        export_dir / metadata.onnx_filename, paths, metadata.preprocess, metadata.input_name, metadata.output_name
    )
    if not kept:
        raise NoReference("none of the validation images could be read")
    index = {label: i for i, label in enumerate(metadata.labels)}
    truth = [true_classes[i] for i in kept] if true_classes else []
    labels = [index[name] for name in truth] if truth and all(name in index for name in truth) else []
    reference = reference_from_probabilities(probabilities, metadata.labels, labels, source=source)
    save_reference(export_dir / contract.REFERENCE_FILENAME, reference)
    updated = dataclasses.replace(metadata, reference_filename=contract.REFERENCE_FILENAME)
    write_json_atomic(metadata_path, updated.to_dict())
    return reference


def summary(reference: Reference) -> str:
    """One line about a recorded reference."""
    shares = reference.predicted_shares
    top = sorted(range(len(shares)), key=lambda i: -shares[i])[:3]
    common = ", ".join(f"{reference.class_names[i]} {shares[i]:.1%}" for i in top if shares[i] > 0)
    return (
        f"reference: {reference.n} validation images, top-1 <= 0.5 for {reference.share_at_or_below(0.5):.1%}; "
        f"most predicted: {common}"
    )


def record_from_folder(export_dir: Path, data: Path, *, val_fraction: float = 0.2, seed: int = 42) -> Reference:
    """The reference on a folder as ``evaluate`` reads it: a training folder's validation split, or DIR/<class>/*."""
    from tritonclf.training.evaluation import load_samples

    class_names, samples = load_samples(data, val_fraction=val_fraction, seed=seed)
    return record_reference(
        export_dir, [s.path for s in samples], [class_names[s.label] for s in samples], source=str(data)
    )
