"""Sweep serving parameters on this machine, pick the fastest within a p99 budget, write it into the repository.

    python build/tune.py --export exports/efficientnet_lite0 --repository model_repository
    python build/tune.py --export exports/efficientnet_lite0 --preprocess-instances 1,2,3 --threads 1,2 --dry-run

Every trial builds a repository in a temporary folder, starts the real server on
free loopback ports, warms it, and runs a closed loop of real JPEGs (the sample
photos at phone-camera sizes) at ``--concurrency`` for ``--duration-s``. The table
it chose from is printed; the winner is built into ``--repository`` (skip with
``--dry-run``).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import sys
import tempfile
from pathlib import Path

from PIL import Image

from tritonclf.client.triton_client import ClassifierClient
from tritonclf.repository.build import BuildError, build_repository
from tritonclf.repository.models import BuildOptions
from tritonclf.repository.tuning import (
    TrialConfig,
    TrialResult,
    choose,
    closed_loop,
    format_table,
    percentile,
    sweep,
)
from tritonclf.samples import sample_dir
from tritonclf.serving.process import ServerStartError, TritonProcess

SAMPLES = sample_dir()
# What phones and cameras send: mostly VGA and 1.2 MP, some 12 MP.
PHOTO_SIZES = ((640, 480), (640, 480), (1280, 960), (4032, 3024))


def photo_mix() -> list[bytes]:
    """The sample photos re-encoded at typical upload sizes (real content, real JPEG work)."""
    images = []
    for path in sorted(SAMPLES.glob("*.jpg")):
        for size in PHOTO_SIZES:
            buffer = io.BytesIO()
            Image.open(path).convert("RGB").resize(size, Image.Resampling.BICUBIC).save(buffer, "JPEG", quality=90)
            images.append(buffer.getvalue())
    return images


def options_for(config: TrialConfig, base: BuildOptions) -> BuildOptions:
    """A build with the trial's parameters on top of the user's other options."""
    return dataclasses.replace(
        base,
        max_batch_size=config.max_batch_size,
        preprocess_instances=config.preprocess_instances,
        classifier_instances=config.classifier_instances,
        intra_op_threads=config.intra_op_threads,
        max_queue_delay_microseconds=config.max_queue_delay_microseconds,
        # The trial's delay is the classifier's too, on a GPU as well (no GPU default on top).
        classifier_queue_delay_microseconds=config.max_queue_delay_microseconds,
    )


def run_trial(export: Path, config: TrialConfig, images: list[bytes], args: argparse.Namespace) -> TrialResult:
    """Build, serve, warm, measure."""
    with tempfile.TemporaryDirectory(prefix="tune-") as scratch:
        repository = Path(scratch) / "model_repository"
        build_repository(export, repository, options_for(config, BuildOptions()))
        with TritonProcess(repository, log_path=Path(scratch) / "server.log") as server:
            client = ClassifierClient(server.grpc_url, "grpc")
            classify = lambda image: client.classify(image, top_k=5)  # noqa: E731
            closed_loop(classify, images, args.concurrency, min(2.0, args.duration_s))  # warm caches and threads
            rate, latencies, errors = closed_loop(classify, images, args.concurrency, args.duration_s)
    return TrialResult(
        config=config,
        images_per_s=rate,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        errors=errors,
    )


def int_list(text: str) -> tuple[int, ...]:
    """``"1,2"`` -> ``(1, 2)``."""
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", type=Path, required=True, help="folder with model.onnx and model.json")
    parser.add_argument("--repository", type=Path, default=Path("model_repository"), help="where the winner is built")
    parser.add_argument("--preprocess-instances", type=int_list, default=(1, 2))
    parser.add_argument("--classifier-instances", type=int_list, default=(1, 2))
    parser.add_argument("--threads", type=int_list, default=(1, 2), help="ONNX Runtime intra-op threads")
    parser.add_argument("--max-batch-sizes", type=int_list, default=(16,))
    parser.add_argument("--queue-delays-us", type=int_list, default=(0, 2000))
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (default: %(default)s)")
    parser.add_argument("--duration-s", type=float, default=6.0, help="per trial (default: %(default)s)")
    parser.add_argument("--p99-budget-ms", type=float, default=250.0, help="latency budget (default: %(default)s)")
    parser.add_argument("--dry-run", action="store_true", help="measure and print, write nothing")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Sweep, print the table, build the winner."""
    args = parse_args(argv)
    configs = sweep(
        args.preprocess_instances, args.classifier_instances, args.threads, args.max_batch_sizes, args.queue_delays_us
    )
    images = photo_mix()
    print(f"{len(configs)} trials x ~{args.duration_s + 8:.0f} s, concurrency {args.concurrency}, {len(images)} photos")
    results = []
    try:
        for number, config in enumerate(configs, start=1):
            result = run_trial(args.export, config, images, args)
            results.append(result)
            print(f"[{number}/{len(configs)}] {config.label()}: {result.images_per_s:.1f} images/s, "
                  f"p99 {result.p99_ms:.0f} ms, {result.errors} errors", flush=True)  # fmt: skip
    except (BuildError, ServerStartError, FileNotFoundError) as err:
        print(f"tune: error: {err}", file=sys.stderr)
        return 1
    chosen = choose(results, args.p99_budget_ms)
    print("\n" + format_table(results, chosen, args.p99_budget_ms))
    if chosen is None:
        print(f"tune: no trial met the p99 budget of {args.p99_budget_ms:.0f} ms without errors", file=sys.stderr)
        return 1
    if not args.dry_run:
        built = build_repository(args.export, args.repository, options_for(chosen.config, BuildOptions()))
        print(
            f"\nwrote {chosen.config.label()} into {args.repository} "
            + ", ".join(f"{b.name}/{b.version}" for b in built)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
