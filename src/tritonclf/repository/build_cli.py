"""Build (or update) a Triton model repository from an exported classifier.

    python build/build_repository.py --export exports/efficientnet_lite0                 # --backend auto
    python build/build_repository.py --export exports/efficientnet_lite0 --backend onnx --device gpu
    python build/build_repository.py --export exports/efficientnet_lite0 --backend trt  # GPU + TensorRT
    python build/build_repository.py --export exports/efficientnet_lite0 --preprocess torch --backend torch

Writes the ensemble ``NAME`` (image bytes in, probabilities out), its Python-backend
preprocessing model ``NAME_preprocess`` and the classifier ``NAME_model`` for the
chosen backend. Unchanged inputs write nothing; changed ones get a new version
directory, staged and renamed into place.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from shlex import quote

from tritonclf.cli_options import fail
from tritonclf.export_metadata import load_metadata
from tritonclf.image_files import list_images
from tritonclf.preprocess import DecodeLimits
from tritonclf.progress import Progress
from tritonclf.repository import classifiers
from tritonclf.repository.backends import BACKENDS, choose_backend, probe_gpu, probe_tensorrt
from tritonclf.repository.build import (
    BUILD_STEPS,
    BuildError,
    BuildOptions,
    PreparedEngine,
    build_repository,
    check_name,
    check_replacement,
)
from tritonclf.repository.engine_args import add_engine_arguments, engine_options, gate_thresholds
from tritonclf.repository.models import DEVICES, GPU_QUEUE_DELAY_US, PREPROCESSORS, CaptureOptions
from tritonclf.samples import sample_dir

SAMPLES = sample_dir()


def batch_sizes(text: str) -> tuple[int, ...]:
    """``"1,8"`` -> ``(1, 8)``; empty text -> ``()``."""
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated batch sizes, got {text!r}") from None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options; defaults come from BuildOptions and DecodeLimits."""
    defaults, limits = BuildOptions(), DecodeLimits()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--export", type=Path, required=True, help="folder with model.onnx and model.json")
    add("--repository", type=Path, default=Path("model_repository"), help="default: %(default)s")
    add(
        "--name",
        help="ensemble name of ASCII letters, digits, _ - . (default: the export's: a fine-tuned model's run name)",
    )
    add("--replace", action="store_true", help="let the build replace an ensemble that serves other classes")
    add(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="classifier backend (default: %(default)s): "
        + "; ".join(f"{b.name}: {b.summary}" for b in classifiers.BACKENDS.values()),
    )
    add(
        "--device",
        choices=DEVICES,
        default=defaults.device,
        help="python-ort/onnx/torch classifier and torch preprocessing instances (default: %(default)s)",
    )
    add(
        "--preprocess",
        choices=PREPROCESSORS,
        default=defaults.preprocess,
        help="pillow, or torch: batched JPEG decode (nvJPEG on a GPU) and torch ops (default: %(default)s)",
    )
    add("--max-batch-size", type=int, default=defaults.max_batch_size, help="default: %(default)s")
    add("--preprocess-instances", type=int, default=defaults.preprocess_instances, help="default: %(default)s")
    add("--classifier-instances", type=int, default=defaults.classifier_instances, help="default: %(default)s")
    add("--intra-op-threads", type=int, default=defaults.intra_op_threads, help="ONNX Runtime threads, 0 = its default")
    add("--max-queue-delay-us", type=int, default=defaults.max_queue_delay_microseconds, help="dynamic batching delay")
    add(
        "--preferred-batch-sizes",
        type=batch_sizes,
        default=(),
        metavar="N,N",
        help="dynamic batching's preferred batch sizes (default: none)",
    )
    add(
        "--classifier-queue-delay-us",
        type=int,
        help=f"the classifier's batching delay (default: {GPU_QUEUE_DELAY_US} on a GPU, else --max-queue-delay-us)",
    )
    add(
        "--no-cuda-graphs",
        dest="cuda_graphs",
        action="store_false",
        help="trt and torch on a GPU: do not capture CUDA graphs for the batch sizes they serve (default: captured)",
    )
    add(
        "--max-queue-size",
        type=int,
        default=defaults.max_queue_size,
        help="requests waiting per model before UNAVAILABLE (0: unbounded; default: %(default)s)",
    )
    add(
        "--queue-timeout-us",
        type=int,
        default=defaults.queue_timeout_microseconds,
        help="longest wait in a model's queue before UNAVAILABLE (0: none; default: %(default)s)",
    )
    add("--max-image-bytes", type=int, default=limits.max_image_bytes, help="default: %(default)s")
    add("--max-image-pixels", type=int, default=limits.max_image_pixels, help="default: %(default)s")
    add(
        "--allowed-formats", default=",".join(limits.allowed_formats), help="Pillow format names (default: %(default)s)"
    )
    add("--no-jpeg-draft", action="store_true", help="always decode JPEGs at full size (slower, bit-exact with timm)")
    add("--no-warmup", action="store_true", help="do not generate model_warmup (first requests will be slow)")
    add(
        "--warmup-batch-sizes",
        type=batch_sizes,
        default=(),
        metavar="N,N",
        help="classifier warmup batch sizes (default: 1, max and a TensorRT engine's opt); "
        "1 for Model Analyzer, whose search lowers max_batch_size but keeps the warmup",
    )
    add("--keep-versions", type=int, default=defaults.keep_versions, help="default: %(default)s")
    add("--onnx-tensorrt-fp16", action="store_true", help="onnx backend on GPU: ONNX Runtime's TensorRT EP in FP16")
    add("--ort-trt-cache-dir", default=defaults.ort_trt_cache_dir, help="engine cache of --onnx-tensorrt-fp16")
    add("--engine", type=Path, help="a prebuilt engine (make engine); default: EXPORT/engine/model.plan if present")
    add(
        "--extra-engine",
        action="append",
        default=[],
        metavar="CC=FILE",
        help="engine for another GPU architecture, e.g. 8.0=a100.plan (cc_model_filenames); repeatable",
    )
    add("--gate-images", type=Path, default=SAMPLES, help="real photos for the FP16 accuracy gate")
    add_engine_arguments(parser)
    add_monitoring_arguments(parser, defaults)
    return parser.parse_args(argv)


def add_monitoring_arguments(parser: argparse.ArgumentParser, defaults: BuildOptions) -> None:
    """Metrics, the response cache and the low-confidence capture."""
    group = parser.add_argument_group("monitoring (docs/MONITORING.md)")
    add = group.add_argument
    add("--no-metrics", dest="metrics", action="store_false", help="no prediction or input metrics")
    add(
        "--metrics-classes",
        type=int,
        default=defaults.metrics_class_series,
        metavar="N",
        help="most class series per model version; past it the rest count as 'other' (default: %(default)s)",
    )
    add("--reference", type=Path, help="reference.json to compare with (default: the one model.json names)")
    add(
        "--response-cache-bytes",
        type=int,
        default=defaults.response_cache_bytes,
        metavar="BYTES",
        help="Triton's response cache on the ensemble, this size (the server needs --cache-config "
        "local,size=BYTES; our tritonserver adds it); 0: off (default)",
    )
    add("--capture-dir", type=Path, help="save low-confidence user images under DIR/<predicted label>/ (off)")
    capture = CaptureOptions("/")
    add("--capture-below", type=float, default=capture.below, help="top-1 score to capture under (%(default)s)")
    add("--capture-per-minute", type=int, default=capture.per_minute, help="per instance (default: %(default)s)")
    add("--capture-max-bytes", type=int, default=capture.max_bytes, help="the tree's total (default: %(default)s)")
    add(
        "--capture-min-free-bytes",
        type=int,
        default=capture.min_free_bytes,
        help="free space the capture leaves on its disk (default: %(default)s)",
    )


def capture_options(args: argparse.Namespace) -> CaptureOptions | None:
    """The capture settings, or None without --capture-dir."""
    if args.capture_dir is None:
        return None
    return CaptureOptions(
        str(args.capture_dir.resolve()),
        below=args.capture_below,
        per_minute=args.capture_per_minute,
        max_bytes=args.capture_max_bytes,
        min_free_bytes=args.capture_min_free_bytes,
    )


def parse_extra_engines(values: list[str]) -> dict[str, Path]:
    """``["8.0=a100.plan"]`` -> ``{"8.0": Path("a100.plan")}``."""
    engines = {}
    for value in values:
        capability, sep, path = value.partition("=")
        if not sep or not capability.replace(".", "").isdigit():
            raise BuildError(f"--extra-engine takes CC=FILE with a compute capability like 8.0, not {value!r}")
        engines[capability] = Path(path)
    return engines


def resolve(args: argparse.Namespace, progress: Progress | None = None) -> tuple[BuildOptions, PreparedEngine | None]:
    """Options and, for trt, the prepared engine."""
    progress = progress or Progress.quiet()
    gpu, tensorrt_version, prebuilt, plan = None, None, None, None
    if args.backend == "auto":
        from tritonclf.repository.engine_build import matching_engine

        gpu, tensorrt_version = probe_gpu(), probe_tensorrt()
        metadata = load_metadata(args.export / "model.json")
        plan, engine_note = matching_engine(args.export, metadata.onnx_sha256, gpu)
        prebuilt = engine_note if plan else None
        if engine_note and not plan and gpu is not None:
            print(f"not serving {engine_note}")
    backend, why = choose_backend(args.backend, gpu, tensorrt_version, prebuilt_engine=prebuilt)
    if args.backend == "auto":
        progress.write(f"backend: {backend} ({why})")
    options = BuildOptions(
        name=args.name,
        backend=backend,
        device=args.device,
        preprocess=args.preprocess,
        max_batch_size=args.max_batch_size,
        preprocess_instances=args.preprocess_instances,
        classifier_instances=args.classifier_instances,
        intra_op_threads=args.intra_op_threads,
        max_queue_delay_microseconds=args.max_queue_delay_us,
        preferred_batch_sizes=args.preferred_batch_sizes,
        classifier_queue_delay_microseconds=args.classifier_queue_delay_us,
        cuda_graphs=args.cuda_graphs,
        max_queue_size=args.max_queue_size,
        queue_timeout_microseconds=args.queue_timeout_us,
        limits=DecodeLimits(
            max_image_bytes=args.max_image_bytes,
            max_image_pixels=args.max_image_pixels,
            allowed_formats=tuple(f.strip().upper() for f in args.allowed_formats.split(",") if f.strip()),
            jpeg_draft=not args.no_jpeg_draft,
        ),
        keep_versions=args.keep_versions,
        warmup=not args.no_warmup,
        warmup_batch_sizes=args.warmup_batch_sizes,
        onnx_tensorrt_fp16=args.onnx_tensorrt_fp16,
        ort_trt_cache_dir=args.ort_trt_cache_dir,
        engine=engine_options(args),
        metrics=args.metrics,
        metrics_class_series=args.metrics_classes,
        response_cache_bytes=args.response_cache_bytes,
        capture=capture_options(args),
    )
    if not options.classifier.needs_engine:
        return options, None
    from tritonclf.repository.engine_build import ENGINE_DIR, prepare_engine

    engine_file = args.engine or (plan if prebuilt else None)
    default_engine = args.export / ENGINE_DIR / "model.plan"
    if engine_file is None and default_engine.is_file() and probe_tensorrt() is None:
        engine_file = default_engine
    metadata = load_metadata(args.export / "model.json")
    photos = list_images(args.gate_images, recursive=False)
    engine = prepare_engine(
        args.export,
        metadata,
        options.engine,
        gate_thresholds(args),
        photos,
        engine_file=engine_file,
        extra_engines=parse_extra_engines(args.extra_engine),
    )
    gate = engine.record.get("accuracy_gate", {})
    if gate.get("status") == "passed":
        agreement, delta = gate["top1_agreement"], gate["mean_abs_delta"]
        ties = f", {gate['near_tie_flips']} near-tie flips apart" if gate.get("near_tie_flips") else ""
        progress.write(f"FP16 accuracy gate passed: top-1 agreement {agreement:.2%}, mean |delta| {delta:.1e}{ties}")
    else:
        warning = f"warning: FP16 accuracy gate {gate.get('status', 'unknown')}: {gate.get('reason', '')}"
        progress.write(warning, stream=sys.stderr)
    return options, engine


def main(argv: list[str] | None = None) -> int:
    """Build and print one line per model."""
    args = parse_args(argv)
    progress = Progress("build", total=1 + BUILD_STEPS)
    try:
        # The name and what it would replace are checked first: choosing the backend can mean
        # building and gating a TensorRT engine for minutes.
        check_name(args.name)
        metadata = load_metadata(args.export / "model.json")
        ensemble = args.name or metadata.ensemble_name
        check_name(ensemble)
        check_replacement(args.repository, ensemble, metadata, replace=args.replace)
        progress.step(f"resolve the classifier backend ({args.backend})")
        options, engine = resolve(args, progress)
        built = build_repository(
            args.export,
            args.repository,
            options,
            engine,
            progress=progress,
            replace=args.replace,
            reference=args.reference,
        )
        progress.finish("built")
    except (BuildError, FileNotFoundError, ValueError) as err:
        progress.close()
        return fail("build", err)
    for model in built:
        state = "written" if model.changed else "up to date"
        print(f"{args.repository}/{model.name}/{model.version}: {state}")
    print(f"serve it: tritonserver --model-repository {quote(str(args.repository))}  (ensemble: {ensemble})")
    if options.response_cache_bytes:
        print(f"response cache: NVIDIA's tritonserver needs --cache-config=local,size={options.response_cache_bytes}")
    if options.capture is not None:
        print(f"capture: low-confidence user images go to {options.capture.directory} (docs/MONITORING.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
