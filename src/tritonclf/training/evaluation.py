"""Evaluate a classifier on labelled images: a checkpoint, an ONNX export or a model served by Triton.

    args = evaluate_cli.parse_args(["--data", "data/digits", "--checkpoint", "runs/digits/best.pth"])
    print_report(evaluate(args))

The work of ``tritonclf evaluate`` (``training/evaluate_cli.py``, whose help shows the command).
``--data`` is a training folder (its ``val/``, or the same seeded split training
made when there is none) or a plain ``DIR/<class>/*`` folder (every image). Each
source reports top-1/top-5, per-class precision and recall, and a confusion-matrix
PNG in ``--output``. With several sources, the share of images on which their top-1
agrees is the train/serve skew detector: anything below 1.0 means the served model
does not see what the checkpoint saw. ``--json`` prints one object whose ``top1``,
``top5`` and ``n`` are those of the served model (else the ONNX file, else the
checkpoint). Files that cannot be read are reported on stderr whichever way ``--data`` is
given: skipped by the scan (one line per kind) or rejected when decoded (one line each).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import sys
from collections.abc import Callable
from itertools import combinations
from pathlib import Path

import numpy as np

from tritonclf import contract
from tritonclf.export_metadata import load_metadata
from tritonclf.files import write_atomic
from tritonclf.preprocess import DecodeLimits, ImageRejected, PreprocessSpec, preprocess_image
from tritonclf.training.data import DataError, Sample, ScanReport, load_splits, scan_class_folders
from tritonclf.training.weights import WeightsError


class EvaluateError(RuntimeError):
    """The evaluation cannot run as asked; one line for the user."""


@dataclasses.dataclass(frozen=True)
class Predictions:
    """Top-k labels per image (None where the source rejected the image)."""

    source: str
    topk: list[list[str] | None]


def load_samples(data: Path, *, val_fraction: float, seed: int) -> tuple[tuple[str, ...], tuple[Sample, ...]]:
    """(class names, samples): the validation split of a training folder, or every image of a class folder."""
    data = Path(data)
    if not data.is_dir():
        raise DataError(f"data folder {data} does not exist")
    if (data / "train").is_dir():
        splits = load_splits(data, val_fraction=val_fraction, seed=seed)
        for line in splits.val_warnings:
            print(f"warning: {line}", file=sys.stderr)
        return splits.class_names, splits.val
    report = ScanReport()
    classes = scan_class_folders(data, DecodeLimits(), report)
    for line in report.warnings():
        print(f"warning: {line}", file=sys.stderr)
    names = tuple(classes)
    samples = tuple(Sample(p, i) for i, name in enumerate(names) for p in classes[name])
    if not samples:
        raise DataError(f"{data} has no images in class folders: expected {data}/<class>/<image>")
    return names, samples


def _batched_topk(
    samples: tuple[Sample, ...], spec: PreprocessSpec, labels: tuple[str, ...], run: Callable, batch_size: int = 32
) -> list[list[str] | None]:
    """Served preprocessing per image, ``run(batch) -> probabilities`` per batch, top-5 labels out."""
    k = min(5, len(labels))
    results: list[list[str] | None] = [None] * len(samples)
    for start in range(0, len(samples), batch_size):
        pixels, indices = [], []
        for i in range(start, min(start + batch_size, len(samples))):
            try:
                pixels.append(preprocess_image(samples[i].path.read_bytes(), spec))
                indices.append(i)
            except (ImageRejected, OSError) as err:
                print(f"warning: skipping {samples[i].path}: {err}", file=sys.stderr)
        if pixels:
            scores = run(np.stack(pixels))
            for i, row in zip(indices, np.argsort(-scores, axis=1)[:, :k], strict=True):
                results[i] = [labels[j] for j in row]
    return results


def predict_checkpoint(path: Path, samples: tuple[Sample, ...], class_names: tuple[str, ...]) -> Predictions:
    """A training/train.py or timm train.py checkpoint, on the CPU, with the weights the export would use.

    A timm checkpoint holds no class names: its indices are taken to be the dataset's
    sorted class folders, the order timm's ImageFolder gives them.
    """
    import torch
    from timm.data import resolve_data_config

    from tritonclf.training import weights as weights_lib
    from tritonclf.training.checkpoint import read_model_card
    from tritonclf.training.model import create_model
    from tritonclf.training.timm_checkpoint import read_timm_checkpoint

    checkpoint = weights_lib.read_checkpoint(path)
    card, timm_run = read_model_card(checkpoint), read_timm_checkpoint(checkpoint)
    if card is not None:
        model = create_model(card.model_name, len(card.class_names), init="random", head="keep")
        spec, labels = card.preprocess, card.class_names
    elif timm_run is not None:
        model = create_model(timm_run.arch, timm_run.num_classes or len(class_names), init="random", head="keep")
        spec = PreprocessSpec.from_timm_config(resolve_data_config(timm_run.data_config, model=model))
        labels = class_names
        if model.num_classes != len(labels):
            raise EvaluateError(f"{path} has {model.num_classes} classes, {len(labels)} class folders here")
    else:
        raise WeightsError(f"{path} is neither a training/train.py nor a timm train.py checkpoint")
    weights_lib.load_weights_file(model, path)
    model.eval()

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(model(torch.from_numpy(batch)).float(), dim=-1).numpy()

    return Predictions("checkpoint", _batched_topk(samples, spec, labels, run))


def predict_onnx(path: Path, samples: tuple[Sample, ...]) -> Predictions:
    """An exported ``model.onnx`` with the labels and spec of the ``model.json`` beside it."""
    import onnxruntime as ort

    if not Path(path).is_file():
        raise EvaluateError(f"no ONNX file at {path}")
    metadata = load_metadata(Path(path).parent / contract.METADATA_FILENAME)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(batch: np.ndarray) -> np.ndarray:
        return session.run([metadata.output_name], {metadata.input_name: batch})[0]

    return Predictions("onnx", _batched_topk(samples, metadata.preprocess, metadata.labels, run))


def predict_served(
    url: str,
    samples: tuple[Sample, ...],
    *,
    protocol: str,
    model: str | None,
    concurrency: int,
    timeout_s: float = 60.0,
) -> Predictions:
    """The served ensemble, one request per image (Triton batches them), ``concurrency`` in flight."""
    from tritonclf.client.triton_client import ClassifierClient, ClientError, InferenceFailed

    try:
        client = ClassifierClient(url, protocol=protocol, model=model, timeout_s=timeout_s)
    except ClientError as err:
        raise EvaluateError(str(err)) from None

    def classify(sample: Sample) -> list[str] | None:
        try:
            return [p.label for p in client.classify(sample.path.read_bytes(), top_k=5)]
        except InferenceFailed as err:
            print(f"warning: the server rejected {sample.path}: {err}", file=sys.stderr)
            return None

    with concurrent.futures.ThreadPoolExecutor(max(1, concurrency)) as pool:
        return Predictions("url", list(pool.map(classify, samples)))


def score(predictions: Predictions, class_names: tuple[str, ...], samples: tuple[Sample, ...]) -> dict:
    """Top-1/top-5, per-class precision/recall and the confusion matrix (last column: other labels), by sklearn."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    index = {name: i for i, name in enumerate(class_names)}
    classes, other = list(range(len(class_names))), len(class_names)  # other: a label the dataset does not have
    answered = [(sample, topk) for sample, topk in zip(samples, predictions.topk, strict=True) if topk is not None]
    truth = [sample.label for sample, _ in answered]
    top1 = [index.get(topk[0], other) for _, topk in answered]
    n = len(answered)
    per_class = {name: {"precision": None, "recall": None, "support": 0} for name in class_names}
    confusion = np.zeros((other, other + 1), dtype=np.int64)
    if n:
        confusion = confusion_matrix(truth, top1, labels=[*classes, other])[:other]
        precision, recall, _, support = precision_recall_fscore_support(
            truth, top1, labels=classes, zero_division=np.nan
        )
        for i, name in enumerate(class_names):
            per_class[name] = {
                "precision": None if np.isnan(precision[i]) else round(float(precision[i]), 6),
                "recall": None if np.isnan(recall[i]) else round(float(recall[i]), 6),
                "support": int(support[i]),
            }
    return {
        "n": n,
        "top1": float(np.trace(confusion)) / n if n else 0.0,
        "top5": sum(class_names[sample.label] in topk[:5] for sample, topk in answered) / n if n else 0.0,
        "failed": sum(t is None for t in predictions.topk),
        "per_class": per_class,
        "confusion": confusion.tolist(),
    }


def agreement(a: Predictions, b: Predictions) -> float | None:
    """Share of images both sources classified on which their top-1 labels are the same."""
    pairs = [(x[0], y[0]) for x, y in zip(a.topk, b.topk, strict=True) if x is not None and y is not None]
    return sum(x == y for x, y in pairs) / len(pairs) if pairs else None


def plot_confusion(confusion: list[list[int]], class_names: tuple[str, ...], title: str, path: Path) -> None:
    """The confusion matrix as a PNG (rows: true class, columns: predicted; last column: other labels)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(confusion)
    if not matrix[:, -1].any():
        matrix = matrix[:, :-1]
    columns = [*class_names, "other"][: matrix.shape[1]]
    size = min(4 + 0.4 * len(class_names), 30)
    figure, axis = plt.subplots(figsize=(size, size * 0.85), constrained_layout=True)
    axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(len(columns)), columns, rotation=90)
    axis.set_yticks(range(len(class_names)), class_names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    if len(class_names) <= 30:
        threshold = matrix.max() / 2
        for (row, col), value in np.ndenumerate(matrix):
            if value:
                color = "white" if value > threshold else "black"
                axis.text(col, row, str(value), ha="center", va="center", color=color)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    write_atomic(path, buffer.getvalue())


def evaluate(args: argparse.Namespace) -> dict:
    """Predict with every source asked for, score each, compare them; returns the report."""
    val_fraction, seed = args.val_fraction, args.seed
    if args.checkpoint is not None:
        from tritonclf.training.checkpoint import load_checkpoint

        config = load_checkpoint(args.checkpoint).get("config") or {}
        val_fraction = val_fraction if val_fraction is not None else config.get("val_fraction")
        seed = seed if seed is not None else config.get("seed")
    class_names, samples = load_samples(
        args.data, val_fraction=0.2 if val_fraction is None else val_fraction, seed=42 if seed is None else seed
    )
    predictions = []
    if args.checkpoint is not None:
        predictions.append(predict_checkpoint(args.checkpoint, samples, class_names))
    if args.onnx is not None:
        predictions.append(predict_onnx(args.onnx, samples))
    if args.url is not None:
        predictions.append(
            predict_served(
                args.url,
                samples,
                protocol=args.protocol,
                model=args.model,
                concurrency=args.concurrency,
                timeout_s=args.timeout_s,
            )
        )
    sources = {p.source: score(p, class_names, samples) for p in predictions}
    headline = predictions[-1].source
    report = {
        "data": str(args.data),
        "source": headline,
        "n": sources[headline]["n"],
        "top1": sources[headline]["top1"],
        "top5": sources[headline]["top5"],
        "agreement": {f"{b.source}_vs_{a.source}": agreement(b, a) for a, b in combinations(predictions, 2)},
        "class_names": list(class_names),
        "sources": sources,
    }
    out = args.output or (args.checkpoint.parent / "eval" if args.checkpoint else Path("evaluation"))
    for name, result in sources.items():
        title = f"{name}: top-1 {result['top1']:.4f} on {result['n']} images"
        plot_confusion(result["confusion"], class_names, title, out / f"confusion_{name}.png")
    if getattr(args, "reference", False):
        report["reference"] = record_evaluated_reference(args.onnx, samples, class_names)
    write_atomic(out / "report.json", json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    report["output"] = str(out)
    return report


def record_evaluated_reference(onnx: Path | None, samples: tuple[Sample, ...], class_names: tuple[str, ...]) -> str:
    """``reference.json`` beside the evaluated ONNX export, from the same images; its summary line."""
    from tritonclf.training.validation_reference import record_reference, summary

    if onnx is None:
        raise EvaluateError("--reference records next to an export: give --onnx")
    reference = record_reference(
        Path(onnx).parent, [s.path for s in samples], [class_names[s.label] for s in samples], source="evaluate"
    )
    return summary(reference)


def print_report(report: dict) -> None:
    """Human-readable summary: one line per source, per-class table, agreement."""
    for name, result in report["sources"].items():
        failed = f", {result['failed']} rejected" if result["failed"] else ""
        print(f"{name:>10}: top-1 {result['top1']:.4f}  top-5 {result['top5']:.4f}  n {result['n']}{failed}")
    headline = report["sources"][report["source"]]["per_class"]
    print(f"\nper class ({report['source']}):  precision  recall  support")
    for name, row in headline.items():
        cells = [f"{row[k]:.3f}" if row[k] is not None else "  -  " for k in ("precision", "recall")]
        print(f"  {name[:24]:<24} {cells[0]:>9} {cells[1]:>7} {row['support']:>8}")
    for pair, value in report["agreement"].items():
        print(f"top-1 agreement {pair.replace('_vs_', ' vs ')}: {value:.4f}" if value is not None else f"{pair}: -")
    print(f"confusion matrices and report.json: {report['output']}")
    if report.get("reference"):
        print(report["reference"])
