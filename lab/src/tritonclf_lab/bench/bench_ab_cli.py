"""Two builds of one export served side by side, measured in turns: what one build option costs or saves.

    tritonclf bench-ab --name metrics --variant "metrics on=" --variant "metrics off=--no-metrics"
    tritonclf bench-ab --name cache --variant "cache off=" --variant "cache on=--response-cache-bytes 268435456"

Each ``--variant "LABEL=BUILD ARGS"`` is built into its own repository (``tritonclf build``
with those arguments) and served by its own tritonserver; both servers run for the whole
measurement, and a closed loop at ``--concurrency`` alternates between them, A B B A A B ...,
``--rounds`` times each, so that a neighbour's load on a shared machine falls on both.
The images are the benchmark's mix (40 photos, cycled: every image is sent again and again,
a repeated-upload workload for the response cache). Per round: images/s and the server's
CPU per image; the result is the median of the per-round ratios B/A. JSON in ``--output-dir``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import statistics
import sys
from pathlib import Path

from tritonclf.cli_options import EXIT_OK, fail, positive_int
from tritonclf.files import write_json_atomic
from tritonclf.progress import Progress
from tritonclf.repository.build import BuildError, build_repository
from tritonclf.repository.build_cli import parse_args as build_arguments
from tritonclf.repository.build_cli import resolve
from tritonclf.samples import sample_photos
from tritonclf.serving.process import ServerStartError, TritonProcess
from tritonclf_lab.bench import images as bench_images
from tritonclf_lab.bench.load import BENCH_PROTOCOLS, wire_protocol
from tritonclf_lab.bench.served import measure_sweep, resolve_endpoint

SERVER_READY_TIMEOUT_S = 600.0


def parse_variant(text: str) -> tuple[str, list[str]]:
    """``"cache on=--response-cache-bytes 1000"`` -> ("cache on", ["--response-cache-bytes", "1000"])."""
    label, sep, args = text.partition("=")
    if not sep or not label.strip():
        raise argparse.ArgumentTypeError(f'a variant is "LABEL=BUILD ARGS", not {text!r}')
    return label.strip(), shlex.split(args)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--export", type=Path, default=Path("exports/efficientnet_lite0"), help="default: %(default)s")
    parser.add_argument("--name", default="ab", help="names the result files (default: %(default)s)")
    parser.add_argument(
        "--variant", dest="variants", type=parse_variant, action="append", required=True, help="LABEL=BUILD ARGS, twice"
    )
    parser.add_argument("--concurrency", type=positive_int, default=8, help="requests in flight (default: %(default)s)")
    parser.add_argument("--protocol", choices=BENCH_PROTOCOLS, default="grpc", help="default: %(default)s")
    parser.add_argument("--rounds", type=positive_int, default=6, help="runs of each variant (default: %(default)s)")
    parser.add_argument("--duration-s", type=float, default=10.0, help="measured s per run (default: %(default)s)")
    parser.add_argument("--warmup-s", type=float, default=2.0, help="unmeasured s before each (default: %(default)s)")
    parser.add_argument("--count", type=positive_int, default=40, help="images in the mix (default: %(default)s)")
    parser.add_argument("--output-dir", type=Path, default=Path("benchmarks/results"), help="default: %(default)s")
    args = parser.parse_args(argv)
    if len(args.variants) != 2:
        parser.error("give exactly two --variant")
    return args


def build_variant(export: Path, repository: Path, build_args: list[str]) -> str:
    """Build one variant's repository; the ensemble's name."""
    args = build_arguments(["--export", str(export), "--repository", str(repository), *build_args])
    options, engine = resolve(args)
    built = build_repository(args.export, args.repository, options, engine, reference=args.reference)
    return built[-1].name


def turns(rounds: int) -> list[int]:
    """A B B A A B B A ...: each variant as often first as second."""
    order = []
    for i in range(rounds):
        order += [0, 1] if i % 2 == 0 else [1, 0]
    return order


def summarize(labels: list[str], runs: list[dict]) -> dict:
    """Medians per variant and the median of the per-round ratios B/A."""

    def of(variant: int, key: str) -> list[float]:
        return [r[key] for r in runs if r["variant"] == variant and r.get(key)]

    rounds = max(r["round"] for r in runs) + 1
    ratios: dict[str, list[float]] = {"images_per_s": [], "server_cpu_s_per_image": [], "compute_s_per_image": []}
    for i in range(rounds):
        pair = {r["variant"]: r for r in runs if r["round"] == i}
        for key, values in ratios.items():
            if pair[0].get(key) and pair[1].get(key):
                values.append(pair[1][key] / pair[0][key])
    return {
        "variants": {
            label: {key: statistics.median(of(v, key)) if of(v, key) else None for key in ratios}
            for v, label in enumerate(labels)
        },
        "ratio_b_over_a": {key: statistics.median(values) if values else None for key, values in ratios.items()},
        "ratio_spread": {key: [min(values), max(values)] if values else None for key, values in ratios.items()},
    }


def run(args: argparse.Namespace) -> dict:
    """Build, serve both, measure in turns."""
    labels = [label for label, _ in args.variants]
    root = args.output_dir / f"ab-{args.name}"
    progress = Progress("bench-ab", total=2 + 2 + 2 * args.rounds)
    photos = [p.read_bytes() for p in sample_photos()]
    images = bench_images.generate_mix(photos, bench_images.DEFAULT_MIX, args.count, 0)
    servers, models = [], []
    try:
        for i, (label, build_args) in enumerate(args.variants):
            progress.step(f"build {label}: tritonclf build {' '.join(build_args)}")
            models.append(build_variant(args.export, root / f"repository-{i}", build_args))
        for i, label in enumerate(labels):
            progress.step(f"start tritonserver for {label}")
            server = TritonProcess(
                root / f"repository-{i}",
                log_path=root / f"tritonserver-{i}.log",
                extra_args=("--model-control-mode=explicit", f"--load-model={models[i]}"),
                ready_timeout_s=SERVER_READY_TIMEOUT_S,
            )
            server.start()
            servers.append(server)
        endpoints = []
        for server, model in zip(servers, models, strict=True):
            url = server.grpc_url if wire_protocol(args.protocol) == "grpc" else server.http_url
            endpoints.append(resolve_endpoint(url, args.protocol, model))
        runs = []
        for n, variant in enumerate(turns(args.rounds)):
            progress.step(f"round {n // 2 + 1}: {labels[variant]}")
            (level,) = measure_sweep(
                endpoints[variant],
                images,
                [args.concurrency],
                duration_s=args.duration_s,
                warmup_s=args.warmup_s,
                server_pid=servers[variant].process.pid,
                timeout_s=60.0,
            )
            cpu_s = level.get("server_cpu_cores", 0.0) * level["duration_s"]
            # Triton's compute time per image of the composing models: the models' own work, metric calls included.
            steps = [t for t in level["server_stats"] if t["name"] != models[variant]]
            compute = sum(t["infer_ms_per_image"] or 0.0 for t in steps) / 1000
            runs.append(
                {
                    "round": n // 2,
                    "variant": variant,
                    "images_per_s": level["images_per_s"],
                    "server_cpu_s_per_image": cpu_s / level["images"] if level["images"] else None,
                    "compute_s_per_image": compute or None,
                    "p50_ms": level["latency"]["p50_ms"],
                    "errors": level["errors"],
                    "other_cpu_cores": level.get("other_cpu_cores"),
                }
            )
    finally:
        for server in servers:
            server.stop()
    progress.finish("measured")
    return {
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "name": args.name,
        "variants": [{"label": label, "build_args": build_args} for label, build_args in args.variants],
        "settings": {
            "concurrency": args.concurrency,
            "protocol": args.protocol,
            "rounds": args.rounds,
            "duration_s": args.duration_s,
            "images": len(images),
            "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "loadavg_end": os.getloadavg()[0],
        },
        "runs": runs,
        "summary": summarize(labels, runs),
    }


def print_report(result: dict) -> None:
    """One line per run, then the medians and the ratio."""
    labels = [v["label"] for v in result["variants"]]
    for r in result["runs"]:
        print(
            f"round {r['round'] + 1} {labels[r['variant']]:>12}: {r['images_per_s']:6.1f} images/s, "
            f"p50 {r['p50_ms']:.1f} ms, server {_ms(r['server_cpu_s_per_image'])} CPU-ms/image, "
            f"models {_ms(r.get('compute_s_per_image'))} compute-ms/image, others {r['other_cpu_cores'] or 0:.2f} cores"
        )
    summary = result["summary"]
    for label, values in summary["variants"].items():
        print(
            f"median {label:>12}: {values['images_per_s']:.1f} images/s, "
            f"{_ms(values['server_cpu_s_per_image'])} server CPU-ms/image, "
            f"{_ms(values['compute_s_per_image'])} compute-ms/image"
        )
    for key, what in (
        ("images_per_s", "images/s"),
        ("server_cpu_s_per_image", "server CPU per image"),
        ("compute_s_per_image", "models' compute per image"),
    ):
        ratio, spread = summary["ratio_b_over_a"][key], summary["ratio_spread"][key]
        if ratio is not None:
            print(f"{labels[1]} / {labels[0]}, {what}: x{ratio:.3f} (rounds {spread[0]:.3f}-{spread[1]:.3f})")


def _ms(seconds: float | None) -> str:
    return "-" if not seconds else f"{1000 * seconds:.2f}"


def main(argv: list[str] | None = None) -> int:
    """Measure and write ``OUTPUT_DIR/ab-NAME.json``."""
    args = parse_args(argv)
    try:
        result = run(args)
    except (BuildError, ServerStartError, FileNotFoundError, ValueError) as err:
        return fail("bench-ab", err)
    print_report(result)
    write_json_atomic(args.output_dir / f"ab-{args.name}.json", result)
    print(f"results: {args.output_dir / f'ab-{args.name}.json'}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
