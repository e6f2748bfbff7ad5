"""Classify images with a model served by Triton and print the top-k classes.

    python clients/infer.py photo.jpg
    python clients/infer.py photos/ more.png --protocol http --top-k 3
    python clients/infer.py photos/ --json > predictions.jsonl

Each image is its own request, sent ``--concurrency`` at a time, so the server's
dynamic batcher groups them and one broken image fails only its own line. Results go
to stdout (``--json``: one object per image, nothing else); failures, a summary line
and, on a terminal, a progress line go to stderr. Exit status (as every command's,
``tritonclf.cli_options``): 0 when every image was classified, 1 when some were
rejected or failed, 2 when nothing could be sent (bad arguments, missing file, no
server, no model), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tritonclf.cli_options import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
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
from tritonclf.progress import Progress


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
    return json.dumps(record, ensure_ascii=False)


def classify_all(
    client: ClassifierClient, images: list[Path], top_k: int, concurrency: int
) -> Iterator[tuple[Path, list[Prediction] | None, InferenceFailed | None]]:
    """Yield (path, predictions, error) in input order, ``concurrency`` requests in flight.

    At most ``2 * concurrency`` requests are queued ahead of the one yielded, so stopping early
    (Ctrl-C, a closed pipe) waits for the few in flight, not for the whole folder.
    """

    def one(path: Path):
        try:
            return path, client.classify(path.read_bytes(), top_k), None
        except InferenceFailed as err:
            return path, None, err
        except OSError as err:  # unreadable file: report it like a rejection, keep going
            return path, None, InferenceFailed(f"cannot read {path}: {err.strerror}", "CLIENT_ERROR")

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=concurrency)
    pending: list[concurrent.futures.Future] = []
    queued = iter(images)
    try:
        for path in queued:
            pending.append(pool.submit(one, path))
            if len(pending) >= 2 * concurrency:
                yield pending.pop(0).result()
        while pending:
            yield pending.pop(0).result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


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


def summary(done: int, failures: int, total: int, seconds: float) -> str:
    """The last line on stderr: how many failed and were classified, in how long."""
    classified = f"{done - failures} classified in {seconds:.1f} s"
    if done < total:
        return f"infer: interrupted after {done} of {total} images ({failures} failed, {classified})"
    if failures:
        return f"infer: {failures} of {total} images failed ({classified})"
    return f"infer: {total} images classified in {seconds:.1f} s"


def classify_and_print(args: argparse.Namespace, client: ClassifierClient, images: list[Path]) -> int:
    """Print each image's answer as it comes; failures, progress and the summary on stderr."""
    started = time.monotonic()
    # Only on a terminal: a redirected stderr (a log) gets the failures and the summary, not a line per image.
    progress = Progress("infer", total=len(images), stream=sys.stderr, enabled=sys.stderr.isatty())
    done = failures = 0
    try:
        for path, predictions, error in classify_all(client, images, args.top_k, args.concurrency):
            progress.step(str(path))
            if args.json:
                progress.write(format_json(path, predictions, error), stream=sys.stdout)
            elif error is None:
                progress.write(format_text(path, predictions), stream=sys.stdout)
            else:
                progress.write(f"{path}: error ({error.status}): {error}", stream=sys.stderr)
            done += 1
            failures += error is not None
    except KeyboardInterrupt:
        progress.close()
        print(summary(done, failures, len(images), time.monotonic() - started), file=sys.stderr)
        return EXIT_INTERRUPTED
    progress.close()
    if len(images) > 1 or failures:
        print(summary(done, failures, len(images), time.monotonic() - started), file=sys.stderr)
    return EXIT_FAILED if failures else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Classify and print; see the module docstring for exit codes."""
    args = parse_args(argv)
    try:
        images = image_paths(args.images)
        client = ClassifierClient(args.url, args.protocol, args.model, timeout_s=args.timeout_s)
    except (ImageFilesError, ClientError) as err:
        return fail("infer", err)
    except KeyboardInterrupt:
        print("infer: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    try:
        return classify_and_print(args, client, images)
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
