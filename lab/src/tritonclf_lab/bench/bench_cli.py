"""Benchmark the served classifier against the same work without a server, on the same images, in one run.

    python clients/benchmark.py                                   # starts tritonserver on model_repository
    python clients/benchmark.py --duration-s 3 --concurrency 1,8 --protocol grpc
    python clients/benchmark.py --images photos/ --url localhost:8001 --http-url localhost:8000
    python clients/benchmark.py --no-references --duration-s 5      # served numbers only (tuning loops)

Served: a closed loop with asyncio gRPC and HTTP clients at each concurrency level
(``--duration-s`` measured after ``--warmup-s``), then the 12 MP photos alone at the
best gRPC level. Throughput, p50/p90/p99, errors (UNAVAILABLE rejections apart),
client CPU, server memory, and Triton's statistics per composing model (queue,
compute input/infer/output, batch sizes) diffed around every level.

References, after the server has stopped so they have the cores to themselves:
``limit`` (cores x images per core-second of the served decode and the same ONNX
model, from single-threaded CPU time), ``in-process`` (one plain loop, batched) and
``naive`` (OpenCV full decode, squash resize, batch 1). Prints the ratios and the
performance targets (``compare``); writes JSON, CSV and a throughput-vs-latency PNG to ``--output-dir``.

Images: ``--images DIR`` (every image file in it and its class folders; files the served
preprocessing rejects are named and left out), else ``--count`` photos in the ``--mix`` made
from the sample photos shipped in ``tritonclf/samples``. Only loopback traffic unless URLs are given.
The newest result of each served ensemble is also written as ``latest-ENSEMBLE.json``.
The server it starts has its admin APIs behind a key made for the run, which ``grpc-shm`` sends
to register its region; against a running server (``--url``) it sends ``TRITON_ADMIN_KEY``.
Flags and exit codes as every command's (``tritonclf.cli_options``): 2 when nothing could be measured.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import secrets
import subprocess
import sys
import time
from pathlib import Path

from tritonclf import contract
from tritonclf.cli_options import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    add_concurrency,
    add_server_arguments,
    add_timeout,
    fail,
    positive_int,
)
from tritonclf.client.triton_client import ClientError
from tritonclf.export_metadata import ExportMetadata, load_metadata
from tritonclf.files import write_atomic, write_json_atomic
from tritonclf.preprocess import DecodeLimits, PreprocessSpec
from tritonclf.progress import Progress
from tritonclf.provenance import installed_versions
from tritonclf.samples import sample_dir, sample_photos
from tritonclf.serving.process import ServerStartError, TritonProcess
from tritonclf_lab.bench import images as bench_images
from tritonclf_lab.bench.compare import best_level, compare
from tritonclf_lab.bench.load import BENCH_PROTOCOLS
from tritonclf_lab.bench.report import (
    comparison_lines,
    mix_line,
    outside_server,
    reference_breakdown,
    throughput_table,
    timing_table,
)
from tritonclf_lab.bench.results_csv import to_csv
from tritonclf_lab.bench.served import (
    DEFAULT_VARIANT,
    measure_sweep,
    preprocess_parameters,
    resolve_endpoint,
    served_model_configs,
    serving_variant,
)
from tritonclf_lab.bench.stats import usable_cores
from tritonclf_lab.bench.transfers import protocol_help, wire_protocol

DEFAULT_LEVELS = (1, 2, 4, 8, 16)
SERVER_READY_TIMEOUT_S = 600.0


class BenchmarkError(RuntimeError):
    """An expected setup problem; the message is one line for the user."""


def parse_mix(text: str) -> tuple:
    """Parse ``--mix`` for argparse: see :func:`clients.bench.images.parse_mix`."""
    try:
        return bench_images.parse_mix(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def parse_protocols(text: str) -> tuple[str, ...]:
    """``"grpc,http"`` -> ("grpc", "http")."""
    protocols = tuple(p.strip() for p in text.split(",") if p.strip())
    if not protocols or any(p not in BENCH_PROTOCOLS for p in protocols):
        raise argparse.ArgumentTypeError(f"protocols are a comma-separated subset of {','.join(BENCH_PROTOCOLS)}")
    return protocols


def preprocess_mismatches(parameters: dict[str, str], spec: PreprocessSpec) -> list[str]:
    """Where the served preprocessing spec differs from the export's (the references would decode differently)."""
    try:
        served_spec = PreprocessSpec.from_parameters(parameters)
    except (KeyError, ValueError) as err:
        return [f"cannot read the served preprocessing parameters ({err})"]
    if served_spec != spec:
        return [f"served preprocessing spec {served_spec} differs from the export's {spec}"]
    return []


def result_name(result: dict) -> str:
    """The served ensemble's name (two fine-tuned models of one architecture differ), with a non-default variant."""
    server = result.get("server", {})
    variant = server.get("variant", DEFAULT_VARIANT)
    name = server.get("model") or result["export"]["model_name"]
    return name if variant == DEFAULT_VARIANT else f"{name}-{variant}"


# Files of an --images folder named one by one; more are counted.
SKIPPED_SHOWN = 5


def load_images(args: argparse.Namespace, spec: PreprocessSpec) -> list[bench_images.BenchImage]:
    """``--images`` (without the files the served preprocessing rejects, each named) or the generated mix."""
    if args.images:
        try:
            images, skipped = bench_images.load_folder(args.images, spec)
        except FileNotFoundError as err:
            raise BenchmarkError(str(err)) from None
        for file in skipped[:SKIPPED_SHOWN]:
            print(f"warning: leaving out {file}", file=sys.stderr, flush=True)
        if len(skipped) > SKIPPED_SHOWN:
            print(f"warning: leaving out {len(skipped) - SKIPPED_SHOWN} more unreadable files", file=sys.stderr)
        return images
    sources = sample_photos()
    if not sources:
        raise BenchmarkError(f"no sample photos in {sample_dir()}: reinstall the package or pass --images")
    try:
        return bench_images.generate_mix([p.read_bytes() for p in sources], args.mix, args.count, args.seed)
    except ValueError as err:
        raise BenchmarkError(str(err)) from None


def load_export(export: Path) -> tuple[ExportMetadata, Path]:
    """The export's metadata and ONNX file, for the references."""
    try:
        metadata = load_metadata(export / contract.METADATA_FILENAME)
    except (FileNotFoundError, ValueError) as err:
        raise BenchmarkError(f"{err} (or pass --export)") from None
    onnx_path = export / metadata.onnx_filename
    if not onnx_path.is_file():
        raise BenchmarkError(f"no {metadata.onnx_filename} in {export}: run training/export.py first")
    return metadata, onnx_path


def default_model(repository: Path, metadata: ExportMetadata) -> str | None:
    """The ensemble the build names after the export, if the repository has it."""
    name = metadata.ensemble_name
    return name if (repository / name / "config.pbtxt").is_file() else None


def start_server(args: argparse.Namespace, model: str | None, log_path: Path) -> TritonProcess:
    """Start tritonserver on free loopback ports; with a model name, only that ensemble and its steps are loaded."""
    repository = args.repository
    if not repository.is_dir() or not any(repository.glob("*/config.pbtxt")):
        raise BenchmarkError(f"no models in {repository}: run make repository first (or pass --url)")
    # Other models in the repository would hold memory and stub processes the numbers should not include.
    extra = ("--model-control-mode=explicit", f"--load-model={model}") if model else ()
    # Generous: every stub of a torch model imports torch first, minutes on a loaded 2-core machine.
    # Restricted as every shipped server is: grpc-shm registers its region with this run's own key.
    server = TritonProcess(
        repository,
        log_path=log_path,
        extra_args=extra,
        ready_timeout_s=SERVER_READY_TIMEOUT_S,
        admin_key=secrets.token_hex(16),
    )
    try:
        server.start()
    except ServerStartError as err:
        raise BenchmarkError(f"{str(err).splitlines()[0]} (log: {log_path})") from None
    return server


def run_served(
    args: argparse.Namespace,
    images: list,
    metadata: ExportMetadata,
    urls: dict,
    pid: int | None,
    *,
    progress: Progress | None = None,
    admin_key: str | None = None,
) -> dict:
    """Every protocol's sweep, then the 12 MP subset at the best gRPC level; returns levels and server info.

    ``admin_key``: the server's key for the shared-memory API (grpc-shm), where it is restricted.
    """
    progress = progress or Progress.quiet()
    endpoints = {
        protocol: resolve_endpoint(urls[wire_protocol(protocol)], protocol, args.model, admin_key)
        for protocol in args.protocols
    }
    first = endpoints[args.protocols[0]]
    configs = served_model_configs(first)
    parameters = preprocess_parameters(configs, first.model)
    if parameters is None:
        warnings = [f"no {contract.preprocess_model_name(first.model)} on the server: references use default limits"]
        limits = DecodeLimits()
    else:
        warnings = preprocess_mismatches(parameters, metadata.preprocess)
        # The references decode as the server is configured to (draft or not), whatever that is today.
        limits = DecodeLimits.from_parameters(parameters)
    for warning in warnings:
        progress.write(f"warning: {warning}", stream=sys.stderr)
    served = []
    timing = {"duration_s": args.duration_s, "warmup_s": args.warmup_s}
    for endpoint in endpoints.values():
        served += measure_sweep(
            endpoint, images, args.concurrency, server_pid=pid, timeout_s=args.timeout_s, progress=progress, **timing
        )
    large_images = [image for image in images if image.is_large]
    served_large = None
    best = best_level(served, "grpc")
    if large_images and "grpc" in endpoints and best:
        concurrency = args.large_concurrency or best["concurrency"]
        served_large = measure_sweep(
            endpoints["grpc"],
            large_images,
            [concurrency],
            subset="large",
            server_pid=pid,
            timeout_s=args.timeout_s,
            progress=progress,
            **timing,
        )[0]
    info = {
        "urls": urls,
        "model": first.model,
        "variant": serving_variant(configs, first.model),
        "configs": configs,
        "decode_limits": limits.to_parameters(),
        "warnings": warnings,
    }
    return {"served": served, "served_large": served_large, "server": info, "limits": limits}


def environment() -> dict:
    """Versions, machine and commit, so results from different runs can be told apart."""
    versions = installed_versions(
        ("numpy", "pillow", "onnxruntime", "opencv-python-headless", "tritonclient", "nvidia-pytriton")
    )
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cores": usable_cores(),
        "loadavg_end": os.getloadavg()[0],
        "commit": commit,
        **versions,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_argument_group("images")
    source.add_argument("--images", type=Path, help="folder of images (default: the generated --mix)")
    source.add_argument(
        "--mix",
        type=parse_mix,
        default=bench_images.DEFAULT_MIX,
        help="WxH:share,... (default: 640x480:0.5,1280x960:0.3,4032x3024:0.2)",
    )
    source.add_argument("--count", type=int, default=40, help="generated images (default: %(default)s)")
    source.add_argument("--seed", type=int, default=0, help="generated images' seed (default: %(default)s)")
    load = parser.add_argument_group("load")
    add_concurrency(load, DEFAULT_LEVELS, levels=True)
    load.add_argument(
        "--protocol",
        dest="protocols",
        type=parse_protocols,
        default=BENCH_PROTOCOLS,
        help=f"comma-separated (default: {','.join(BENCH_PROTOCOLS)}; {protocol_help()})",
    )
    load.add_argument("--duration-s", type=float, default=10.0, help="measured s per run (default: %(default)s)")
    load.add_argument("--warmup-s", type=float, default=2.0, help="unmeasured s before each (default: %(default)s)")
    load.add_argument(
        "--large-concurrency", type=positive_int, help="level of the 12 MP run (default: the best gRPC level)"
    )
    add_timeout(load)
    server = parser.add_argument_group("server")
    server.add_argument("--repository", type=Path, default=Path("model_repository"), help="default: %(default)s")
    add_server_arguments(
        server,
        url_help="gRPC HOST:PORT of a running server (default: start one on --repository)",
        protocols=None,
        model_help="ensemble (default: the export's model name, else the only ensemble)",
    )
    server.add_argument("--http-url", metavar="HOST:PORT", help="HTTP address of the same running server")
    server.add_argument("--server-pid", type=int, help="pid of that server, to report its memory")
    refs = parser.add_argument_group("references")
    refs.add_argument("--export", type=Path, default=Path("exports/efficientnet_lite0"), help="default: %(default)s")
    refs.add_argument("--no-references", action="store_true", help="served numbers only")
    refs.add_argument("--reference-duration-s", type=float, help="measured s per reference (default: --duration-s)")
    refs.add_argument("--cores", type=int, help="cores for the limit (default: this process's CPU affinity)")
    parser.add_argument("--output-dir", type=Path, default=Path("benchmarks/results"), help="default: %(default)s")
    args = parser.parse_args(argv)
    if args.count < 1 or args.duration_s <= 0 or args.warmup_s < 0:
        parser.error("--count and --duration-s must be positive, --warmup-s not negative")
    if args.url or args.http_url:
        missing = [p for p in args.protocols if not running_server_urls(args)[wire_protocol(p)]]
        if missing:
            flag = "--url" if wire_protocol(missing[0]) == "grpc" else "--http-url"
            parser.error(f"with a running server, give {flag} or leave {missing[0]} out of --protocol")
    return args


def running_server_urls(args: argparse.Namespace) -> dict[str, str | None]:
    """{wire protocol: address} of the running server the user named."""
    return {"grpc": args.url, "http": args.http_url}


def settings_record(args: argparse.Namespace) -> dict:
    """The resolved options, JSON-ready."""
    settings = {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()}
    settings["mix"] = [[list(size), share] for size, share in args.mix]
    return settings


def bench_steps(args: argparse.Namespace, images: list, own_server: bool) -> int:
    """Steps of a run: the server's start, each served level, the 12 MP level, the references."""
    large = "grpc" in args.protocols and any(image.is_large for image in images)
    return own_server + len(args.protocols) * len(args.concurrency) + large + (not args.no_references)


def run(args: argparse.Namespace, started: datetime.datetime, stamp: str) -> dict:
    """Images, served sweep, references; the whole result."""
    metadata, onnx_path = load_export(args.export)
    images = load_images(args, metadata.preprocess)
    image_info = bench_images.describe(images)
    print(mix_line(image_info), flush=True)
    own_server = not (args.url or args.http_url)
    progress = Progress("bench", total=bench_steps(args, images, own_server))
    server = None
    if own_server:
        model = args.model or default_model(args.repository, metadata)
        args.model = model
        progress.step(f"start tritonserver on {args.repository}")
        server = start_server(args, model, args.output_dir / f"{stamp}-tritonserver.log")
        urls, pid, admin_key = {"grpc": server.grpc_url, "http": server.http_url}, server.process.pid, server.admin_key
    else:
        # A running server's key (make serve's is in .triton-admin-key), for grpc-shm.
        urls, pid, admin_key = running_server_urls(args), args.server_pid, os.environ.get("TRITON_ADMIN_KEY")
    try:
        served = run_served(args, images, metadata, urls, pid, progress=progress, admin_key=admin_key)
    finally:
        progress.close()
        if server:
            server.stop()
    references = {}
    if not args.no_references:
        # After the server is gone, so the references do not share the cores with it.
        progress.step("references in this process: limit, in-process, naive")
        usable = images
        if served["limits"] != DecodeLimits():
            usable, rejected = bench_images.decodable(images, metadata.preprocess, served["limits"])
            if rejected:
                progress.write(
                    f"warning: the references leave out {rejected} images the server's decode limits reject",
                    stream=sys.stderr,
                )
        if usable:
            references = measure_references_for(args, metadata, onnx_path, usable, served["limits"])
    progress.finish("measured")
    return {
        "started": started.isoformat(),
        "settings": settings_record(args),
        "environment": environment(),
        "images": image_info,
        "export": {"path": str(args.export), "model_name": metadata.model_name, "onnx_sha256": metadata.onnx_sha256},
        "server": served["server"],
        "served": served["served"],
        "served_large": served["served_large"],
        "references": references,
    }


def measure_references_for(
    args: argparse.Namespace, metadata: ExportMetadata, onnx_path: Path, images: list, limits: DecodeLimits
) -> dict:
    """The references, decoding with the server's decode limits."""
    from tritonclf_lab.bench.references import measure_references

    return measure_references(
        onnx_path,
        metadata,
        limits,
        images,
        cores=args.cores or usable_cores(),
        duration_s=args.reference_duration_s or args.duration_s,
        warmup_s=min(args.warmup_s, 1.0),
    )


def print_report(result: dict) -> None:
    """Tables and the headline lines."""
    env = result["environment"]
    print(f"\n{result['server']['model']}, {mix_line(result['images'])}")
    print(f"{env['cores']} cores, load average {env['loadavg_start']:.1f} at start and {env['loadavg_end']:.1f} at end")
    print(throughput_table(result["served"], result["served_large"], result["references"]))
    print("(in-process and naive latencies are per batch; unavail = UNAVAILABLE rejections, errors = all others)")
    if result["references"]:
        print()
        for line in comparison_lines(result["comparison"]):
            print(line)
    for level in [*result["served"], *([result["served_large"]] if result["served_large"] else [])]:
        print(f"\nserver time per request (ms), {level['protocol']} c={level['concurrency']} {level['subset']}:")
        print(timing_table(level["server_stats"]))
        split = outside_server(level)
        if split:
            print(split)
        if level["first_error"]:
            print(f"first error: {level['first_error']}")
    if result["references"]:
        print()
        print(reference_breakdown(result["references"]))


def main(argv: list[str] | None = None) -> int:
    """Run everything, print the report, write JSON, CSV and PNG."""
    args = parse_args(argv)
    started = datetime.datetime.now(datetime.timezone.utc)
    stamp = f"benchmark-{started.strftime('%Y%m%dT%H%M%SZ')}"
    begin = time.monotonic()
    # Other work on the machine takes cores from the server and the references alike: say so in the record.
    load_start = os.getloadavg()[0]
    if load_start > usable_cores() / 2:
        print(f"warning: load average {load_start:.1f} at start on {usable_cores()} cores: expect low numbers")
    try:
        result = run(args, started, stamp)
    except (BenchmarkError, ClientError) as err:
        return fail("bench", err)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    result["command"] = ["clients/benchmark.py", *(sys.argv[1:] if argv is None else argv)]
    result["wall_s"] = time.monotonic() - begin
    result["environment"]["loadavg_start"] = load_start
    if result["references"]:
        result["comparison"] = compare(result["served"], result["served_large"], result["references"])
    print_report(result)
    base = args.output_dir / stamp
    write_json_atomic(base.with_suffix(".json"), result)
    write_atomic(base.with_suffix(".csv"), to_csv(result))
    written = [base.with_suffix(".json"), base.with_suffix(".csv")]
    # The newest run of each model and serving variant under a fixed name, for `tritonclf bench-summary`.
    latest = args.output_dir / f"latest-{result_name(result)}.json"
    write_json_atomic(latest, result)
    written.append(latest)
    try:
        from tritonclf_lab.bench.plot import plot_throughput_latency

        written.append(plot_throughput_latency(result, base.with_suffix(".png")))
    except ImportError:
        print("no plot: matplotlib is not installed (pip install matplotlib)", file=sys.stderr)
    print(f"\nwrote {', '.join(str(p) for p in written)} in {result['wall_s']:.0f} s")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
