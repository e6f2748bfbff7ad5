r"""Evaluate a classifier on labelled images: a checkpoint, an ONNX export or a model served by Triton.

    python training/evaluate.py --data data/digits --checkpoint runs/digits/best.pth
    python training/evaluate.py --data data/digits --onnx exports/digits/model.onnx
    python training/evaluate.py --data data/digits --checkpoint runs/digits/best.pth \
        --url localhost:8001 --model digits --json            # + how often served top-1 == PyTorch top-1

The command is ``tritonclf evaluate``; the work is ``tritonclf.training.evaluation``. The
options and the files named are checked before torch is imported. ``--min-top1`` and
``--min-agreement`` turn the numbers into an exit code: 1 when one is missed, 2 when
nothing could be evaluated (``tritonclf.cli_options``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tritonclf.cli_options import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    add_concurrency,
    add_server_arguments,
    add_timeout,
    fail,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="training folder (uses val/) or DIR/<class>/*")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        help="a checkpoint of training/train.py (best.pth) or of timm's train.py (model_best.pth.tar)",
    )
    parser.add_argument("--onnx", type=Path, help="an exported model.onnx (model.json beside it)")
    add_server_arguments(parser, url_help="HOST:PORT of a Triton server serving the model (evaluates it)")
    add_concurrency(parser, 8)
    add_timeout(parser)
    parser.add_argument("--val-fraction", type=float, help="split of a folder without val/ (default: the run's)")
    parser.add_argument("--seed", type=int, help="seed of that split (default: the checkpoint's, else 42)")
    parser.add_argument("--output", type=Path, help="confusion PNGs and report.json (default: CHECKPOINT_DIR/eval)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the summary")
    parser.add_argument("--min-top1", type=float, help="exit 1 if the headline top-1 is below this")
    parser.add_argument("--min-agreement", type=float, help="exit 1 if any top-1 agreement is below this")
    parser.add_argument(
        "--reference", action="store_true", help="record reference.json beside --onnx from these images (drift)"
    )
    args = parser.parse_args(argv)
    if args.checkpoint is None and args.onnx is None and args.url is None:
        parser.error("give at least one of --checkpoint, --onnx, --url")
    return args


def check_inputs(args: argparse.Namespace) -> str | None:
    """What is missing among the folders and files named, before anything is loaded; None when nothing."""
    if not args.data.is_dir():
        return f"data folder {args.data} does not exist"
    for flag, path in (("--checkpoint", args.checkpoint), ("--onnx", args.onnx)):
        if path is not None and not path.is_file():
            return f"{flag} {path}: no such file"
    return None


def missed_thresholds(args: argparse.Namespace, report: dict) -> list[str]:
    """The ``--min-top1`` / ``--min-agreement`` the report falls short of."""
    missed = []
    if args.min_top1 is not None and report["top1"] < args.min_top1:
        missed.append(f"{report['source']} top-1 {report['top1']:.4f} < {args.min_top1}")
    if args.min_agreement is not None:
        missed += [
            f"{pair} agreement {value:.4f} < {args.min_agreement}"
            for pair, value in report["agreement"].items()
            if value is None or value < args.min_agreement
        ]
    return missed


def interrupted() -> int:
    """Ctrl-C: one line, the usual exit code."""
    print("evaluate: interrupted", file=sys.stderr)
    return EXIT_INTERRUPTED


def main(argv: list[str] | None = None) -> int:
    """Evaluate; exit codes as in ``tritonclf.cli_options``: missed thresholds 1, one-line errors 2."""
    args = parse_args(argv)
    problem = check_inputs(args)
    if problem:
        return fail("evaluate", problem)
    try:
        from tritonclf.training import evaluation
        from tritonclf.training.data import DataError
        from tritonclf.training.weights import WeightsError
    except KeyboardInterrupt:
        return interrupted()
    try:
        report = evaluation.evaluate(args)
    except (evaluation.EvaluateError, DataError, WeightsError, FileNotFoundError, ValueError) as err:
        return fail("evaluate", err)
    except KeyboardInterrupt:
        return interrupted()
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "output"}, ensure_ascii=False))
    else:
        evaluation.print_report(report)
    missed = missed_thresholds(args, report)
    if missed:
        return fail("evaluate", f"below threshold: {'; '.join(missed)}", EXIT_FAILED)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
