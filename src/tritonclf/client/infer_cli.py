"""Classify images with a model served by Triton and print the top-k classes.

    python clients/infer.py photo.jpg
    python clients/infer.py photos/ more.png --protocol http --top-k 3
    python clients/infer.py photos/ --json > predictions.jsonl

Each image is its own request, sent ``--concurrency`` at a time, so the server's
dynamic batcher groups them and one broken image fails only its own line. Exit
status (as every command's, ``tritonclf.cli_options``): 0 when every image was
classified, 1 when some were rejected or failed, 2 when nothing could be sent (bad
arguments, missing file, no server, no model).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from tritonclf.cli_options import (
    EXIT_FAILED,
    EXIT_OK,
    add_concurrency,
    add_server_arguments,
    add_timeout,
    fail,
    positive_int,
)
from tritonclf.client.triton_client import (
    ClassifierClient,
    ClientError,
    InferenceFailed,
    Prediction,
)
from tritonclf.image_files import ImageFilesError, image_paths


def format_text(path: Path, predictions: list[Prediction]) -> str:
    """Human-readable block: the path, then one line per class."""
    lines = [str(path)]
    lines += [f"  {p.score:7.4f}  {p.label}  ({p.index})" for p in predictions]
    return "\n".join(lines)


def format_json(path: Path, predictions: list[Prediction] | None = None, error: InferenceFailed | None = None) -> str:
    """One JSON object per image: ``path`` and ``predictions`` (or ``error`` and ``status``)."""
    record: dict = {"path": str(path)}
    if error is None:
        record["predictions"] = [{"label": p.label, "index": p.index, "score": p.score} for p in predictions or []]
    else:
        record["error"] = str(error)
        record["status"] = error.status
    return json.dumps(record)


def classify_all(
    client: ClassifierClient, images: list[Path], top_k: int, concurrency: int
) -> Iterator[tuple[Path, list[Prediction] | None, InferenceFailed | None]]:
    """Yield (path, predictions, error) in input order, ``concurrency`` requests in flight."""

    def one(path: Path):
        try:
            return path, client.classify(path.read_bytes(), top_k), None
        except InferenceFailed as err:
            return path, None, err
        except OSError as err:  # unreadable file: report it like a rejection, keep going
            return path, None, InferenceFailed(f"cannot read {path}: {err.strerror}", "CLIENT_ERROR")

    with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
        yield from pool.map(one, images)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument("images", nargs="+", help="image files or folders")
    add_server_arguments(parser)
    parser.add_argument("--top-k", type=positive_int, default=5, help="classes per image (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per image (JSON Lines)")
    add_concurrency(parser, 8)
    add_timeout(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Classify and print; see the module docstring for exit codes."""
    args = parse_args(argv)
    try:
        images = image_paths(args.images)
        client = ClassifierClient(args.url, args.protocol, args.model, timeout_s=args.timeout_s)
    except (ImageFilesError, ClientError) as err:
        return fail("infer", err)
    failures = 0
    for path, predictions, error in classify_all(client, images, args.top_k, args.concurrency):
        if args.json:
            print(format_json(path, predictions, error), flush=True)
        elif error is None:
            print(format_text(path, predictions), flush=True)
        else:
            print(f"{path}: error ({error.status}): {error}", file=sys.stderr, flush=True)
        failures += error is not None
    if failures and not args.json:
        print(f"infer: {failures} of {len(images)} images failed", file=sys.stderr)
    return EXIT_FAILED if failures else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
