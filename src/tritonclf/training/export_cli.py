"""Export a timm model + weights to ONNX (and/or TorchScript) with its labels and preprocessing spec.

    python training/export.py                                  # ImageNet EfficientNet-Lite0, offline
    python training/export.py --model resnet50 --pretrained    # timm's hub weights (needs a network)
    python training/export.py --model resnet50 --random-weights  # for speed measurements only
    python training/export.py --model convnext_tiny --weights ckpt.pth --labels labels.txt
    python training/export.py --weights runs/flowers/best.pth  # a training/train.py checkpoint -> exports/flowers
    python training/export.py --format both                    # model.onnx and model.pt (TorchScript)

The command is ``tritonclf export``. A training checkpoint's export is served as its run
(``runs/flowers`` -> the ensemble ``flowers``, beside the ImageNet model) unless ``--name``
says otherwise; other exports under the architecture's name. The options and the input
files are checked before torch is imported; the work is ``tritonclf.training.torch2onnx``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from shlex import quote

from tritonclf.cli_options import EXIT_INTERRUPTED, fail
from tritonclf.repository.model_names import describe_name_problem, model_name_problem, suggest_model_name
from tritonclf.training.choices import BUNDLED_MODEL, DEFAULT_OPSET, EXPORT_FORMATS


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", help=f"timm architecture (default: a training checkpoint's, else {BUNDLED_MODEL})")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--weights",
        "--checkpoint",
        dest="weights",
        type=Path,
        help="a checkpoint: ours (best.pth), timm train.py's (model_best.pth.tar), a state dict or .safetensors",
    )
    source.add_argument("--pretrained", action="store_true", help="download timm's pretrained weights")
    source.add_argument(
        "--random-weights", action="store_true", help="untrained weights (seed 0): for speed measurements only"
    )
    parser.add_argument("--labels", type=Path, help="class labels, one per line (default: ImageNet for 1000 classes)")
    parser.add_argument("--num-classes", type=int, help="classes of the checkpoint's head (default: from --labels)")
    parser.add_argument(
        "--output", type=Path, help="output folder (default: exports/MODEL; for a training checkpoint exports/RUN)"
    )
    parser.add_argument(
        "--name",
        help="the ensemble name tritonclf build serves it under (default: a checkpoint's run folder, else MODEL)",
    )
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset (default: %(default)s)")
    parser.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        default="onnx",
        help="onnx (model.onnx), torchscript (model.pt, for pytorch_libtorch) or both (default: %(default)s)",
    )
    parser.add_argument(
        "--reference-data",
        type=Path,
        metavar="DIR",
        help="validation images (a training folder's val split, or DIR/<class>/*): record reference.json, "
        "what the served metrics compare with",
    )
    return parser.parse_args(argv)


def check_inputs(args: argparse.Namespace) -> str | None:
    """What is wrong with the files and names given, before any model is created; None when nothing."""
    for flag, path in (("--weights", args.weights), ("--labels", args.labels)):
        if path is not None and not path.is_file():
            return f"{flag} {path}: no such file"
    if args.reference_data is not None and not args.reference_data.is_dir():
        return f"--reference-data {args.reference_data}: no such folder"
    if args.name is not None:
        problem = model_name_problem(args.name)
        if problem:
            return describe_name_problem(args.name, problem)
    return None


def default_served_name(args: argparse.Namespace, from_training_run: bool) -> str:
    """``--name``, else the run folder's name for a training checkpoint, else the architecture's (empty)."""
    if args.name is not None:
        return args.name
    if from_training_run:
        return suggest_model_name(args.weights.resolve().parent.name)
    return ""


def main(argv: list[str] | None = None) -> int:
    """Export and report; expected failures print one line and exit 2 (nothing exported)."""
    args = parse_args(argv)
    problem = check_inputs(args)
    if problem:
        return fail("export", problem)
    try:
        from tritonclf.progress import Progress
        from tritonclf.training import torch2onnx
        from tritonclf.training.data import DataError
        from tritonclf.training.validation_reference import NoReference, record_from_folder, summary
        from tritonclf.training.weights import WeightsError
    except KeyboardInterrupt:
        print("export: interrupted; nothing exported", file=sys.stderr)
        return EXIT_INTERRUPTED
    formats = EXPORT_FORMATS[args.format]
    progress = Progress("export", total=torch2onnx.export_steps(formats))
    try:
        card, timm_run = torch2onnx.inspect_weights(args.weights)
        from_run = bool(card or timm_run)
        output = args.output or Path("exports") / (
            args.weights.resolve().parent.name if from_run else args.model or BUNDLED_MODEL
        )
        metadata, check = torch2onnx.export(
            args.model,
            output,
            weights=args.weights,
            pretrained=args.pretrained,
            random_weights=args.random_weights,
            labels_file=args.labels,
            num_classes=args.num_classes,
            opset=args.opset,
            formats=formats,
            progress=progress,
            served_name=default_served_name(args, from_run),
        )
        progress.finish("exported")
        reference = record_from_folder(output, args.reference_data) if args.reference_data else None
    except (torch2onnx.ExportError, WeightsError, FileNotFoundError, NoReference, DataError) as err:
        progress.close()
        return fail("export", err)
    except KeyboardInterrupt:
        progress.close()
        print("export: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    files = ", ".join(str(output / f) for f in (metadata.onnx_filename, metadata.torchscript_filename) if f)
    print(
        f"exported {metadata.model_name} ({metadata.num_classes} classes, weights {metadata.weights}) to {files}\n"
        f"checked on {check.images} photos: max |{formats[0]} - torch| = {check.max_abs_diff:.2e}, "
        f"same top-5: {check.top5_equal}\n"
        f"served as {metadata.ensemble_name} by: tritonclf build --export {quote(str(output))}"
    )
    if reference is not None:
        print(summary(reference))
    return 0


if __name__ == "__main__":
    sys.exit(main())
