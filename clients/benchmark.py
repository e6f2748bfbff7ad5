"""Benchmark the served classifier against the same work done in one process.

    python clients/benchmark.py                                   # starts tritonserver on model_repository
    python clients/benchmark.py --url localhost:8001 --duration-s 5
    python clients/benchmark.py --images photos/ --concurrency 1,4,8 --output benchmarks/results/run.json

Served: a closed loop per concurrency level, N threads each sending one JPEG per
request (top-5 through Triton's classification extension) for ``--duration-s``
after a warmup; images/s, p50/p90/p99 latency and errors, plus Triton's own
statistics per composing model (queue, compute input/infer/output, executions vs
inferences) diffed around the level. In-process reference: the same decode
(``preprocess_image`` with the export's spec) and the same ONNX file in one ONNX
Runtime session, at batch 1 and batch 8, over the same images. Prints a
comparison table and writes everything to JSON.

By default the images are ``--count`` JPEGs of ``--size`` made in memory from the
sample photos in ``clients/samples``. Only loopback traffic; every loop stops by time.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime
import importlib.metadata
import io
import os
import platform
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(_ROOT), str(_ROOT / "build")]  # run as a script from a checkout

from clients.triton_client import PROTOCOLS, ClassifierClient, ClientError, InferenceFailed  # noqa: E402
from tritonclf import contract  # noqa: E402
from tritonclf.metadata import ExportMetadata, load_metadata, write_json_atomic  # noqa: E402
from tritonclf.preprocess import DecodeLimits, PreprocessSpec, preprocess_image  # noqa: E402
from tritonclf.serving import ServerStartError, TritonProcess  # noqa: E402

SAMPLES_DIR = _ROOT / "clients" / "samples"
TOP_K = 5
JPEG_QUALITY = 90
INPROCESS_BATCH_SIZES = (1, 8)
REQUEST_TIMEOUT_S = 30.0  # bounds the last request of a loop when the server stalls


class BenchmarkError(RuntimeError):
    """An expected setup problem; the message is one line for the user."""


# ---------------------------------------------------------------- pure helpers


def parse_size(text: str) -> tuple[int, int]:
    """``"1280x960"`` -> (width, height)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1280x960, not {text!r}") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"size must be positive, not {text!r}")
    return width, height


def parse_int_list(text: str) -> tuple[int, ...]:
    """``"1,8"`` -> (1, 8); every value positive."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 1,8, not {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers like 1,8, not {text!r}")
    return values


def crop_box(width: int, height: int, aspect: float, rng: random.Random) -> tuple[int, int, int, int]:
    """A random crop of a (width, height) image with the target aspect ratio, 80-100% of the largest such box."""
    box_w = min(width, round(height * aspect))
    box_h = min(height, round(box_w / aspect))
    zoom = rng.uniform(0.8, 1.0)
    crop_w, crop_h = max(1, round(box_w * zoom)), max(1, round(box_h * zoom))
    left = round((width - crop_w) * rng.random())
    top = round((height - crop_h) * rng.random())
    return left, top, left + crop_w, top + crop_h


def generate_images(sources: Sequence[bytes], size: tuple[int, int], count: int) -> list[bytes]:
    """``count`` JPEGs of exactly ``size`` (width, height) made from real photos, none byte-identical.

    Seeded per image, so the same inputs give the same bytes on every run.
    """
    if not sources:
        raise ValueError("no source photos to generate images from")
    photos = [Image.open(io.BytesIO(data)).convert("RGB") for data in sources]
    width, height = size
    images = []
    for index in range(count):
        rng = random.Random(index)
        photo = photos[index % len(photos)]
        # A different crop and mirror per image: identical bytes would let any cache flatter the numbers.
        variant = photo.crop(crop_box(photo.width, photo.height, width / height, rng))
        if rng.random() < 0.5:
            variant = variant.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        variant = variant.resize((width, height), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        variant.save(buffer, format="JPEG", quality=JPEG_QUALITY)
        images.append(buffer.getvalue())
    return images


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation, as numpy's default; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_summary(latencies_s: Sequence[float]) -> dict[str, float | None]:
    """Mean and p50/p90/p99 in milliseconds; None for an empty run (JSON has no NaN)."""
    summary = {f"p{q}_ms": _ms(percentile(latencies_s, q)) for q in (50, 90, 99)}
    summary["mean_ms"] = _ms(sum(latencies_s) / len(latencies_s)) if latencies_s else None
    return summary


def rate(count: int, elapsed_s: float) -> float:
    """Items per second; 0 for an empty interval."""
    return count / elapsed_s if elapsed_s > 0 else 0.0


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e3


def _count_ns(entry: Mapping | None) -> tuple[int, int]:
    """Triton's ``{"count": .., "ns": ..}``; gRPC JSON gives strings, absent fields mean zero."""
    entry = entry or {}
    return int(entry.get("count", 0)), int(entry.get("ns", 0))


def request_counts(statistics: Mapping) -> dict[str, tuple[int, int]]:
    """{model: (successful, failed) requests} of a statistics response."""
    return {
        name: (
            _count_ns(entry.get("inference_stats", {}).get("success"))[0],
            _count_ns(entry.get("inference_stats", {}).get("fail"))[0],
        )
        for name, entry in stats_by_model(statistics).items()
    }


def stats_by_model(statistics: Mapping) -> dict[str, Mapping]:
    """Triton's statistics response -> {model name: its entry} (newest version wins if several)."""
    entries = statistics.get("model_stats", [])
    ordered = sorted(entries, key=lambda e: int(e.get("version") or 0))
    return {entry["name"]: entry for entry in ordered}


@dataclasses.dataclass(frozen=True)
class ModelTiming:
    """What one model did between two statistics snapshots.

    Triton charges every request of a batch the whole batch's compute time, so the
    per-request phases are latency as a request saw it; ``infer_ms_per_image``
    divides the executions' compute time by the images instead: the cost of one image.
    """

    name: str
    requests: int  # successful requests
    failures: int
    inferences: int  # images (batch items)
    executions: int  # model calls; inferences / executions is the batch size achieved
    request_ms: float | None  # average time a request spent in this model, queue included
    queue_ms: float | None
    compute_input_ms: float | None
    compute_infer_ms: float | None
    compute_output_ms: float | None
    infer_ms_per_image: float | None
    executions_by_batch_size: dict[int, int]

    @property
    def average_batch(self) -> float | None:
        """Images per model execution."""
        return self.inferences / self.executions if self.executions else None

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        data = dataclasses.asdict(self)
        data["average_batch"] = self.average_batch
        data["executions_by_batch_size"] = {str(k): v for k, v in self.executions_by_batch_size.items()}
        return data


def _batch_stats(entry: Mapping) -> dict[int, tuple[int, int]]:
    """{batch size: (executions, compute_infer ns)} of one model entry."""
    return {int(b["batch_size"]): _count_ns(b.get("compute_infer")) for b in entry.get("batch_stats", [])}


def diff_model_stats(name: str, before: Mapping | None, after: Mapping) -> ModelTiming:
    """Averages over the requests a model served between two snapshots of its statistics entry."""
    before = before or {}
    inference = after.get("inference_stats", {})
    inference_before = before.get("inference_stats", {})

    def delta(phase: str) -> tuple[int, int]:
        count, ns = _count_ns(inference.get(phase))
        count_before, ns_before = _count_ns(inference_before.get(phase))
        return count - count_before, ns - ns_before

    def average_ms(phase: str) -> float | None:
        count, ns = delta(phase)
        return ns / count / 1e6 if count > 0 else None

    batches, batches_before = _batch_stats(after), _batch_stats(before)
    executions_by_size = {}
    infer_ns = 0
    for size, (count, ns) in sorted(batches.items()):
        count_before, ns_before = batches_before.get(size, (0, 0))
        if count > count_before:
            executions_by_size[size] = count - count_before
            infer_ns += ns - ns_before
    inferences = int(after.get("inference_count", 0)) - int(before.get("inference_count", 0))
    return ModelTiming(
        name=name,
        requests=delta("success")[0],
        failures=delta("fail")[0],
        inferences=inferences,
        executions=int(after.get("execution_count", 0)) - int(before.get("execution_count", 0)),
        request_ms=average_ms("success"),
        queue_ms=average_ms("queue"),
        compute_input_ms=average_ms("compute_input"),
        compute_infer_ms=average_ms("compute_infer"),
        compute_output_ms=average_ms("compute_output"),
        infer_ms_per_image=infer_ns / inferences / 1e6 if executions_by_size and inferences > 0 else None,
        executions_by_batch_size=executions_by_size,
    )


def composing_models(ensemble: str, available: Sequence[str]) -> list[str]:
    """The ensemble and its preprocessing and classifier models, those that exist, in pipeline order."""
    wanted = [ensemble, contract.preprocess_model_name(ensemble), contract.classifier_model_name(ensemble)]
    return [name for name in wanted if name in available]


def diff_statistics(before: Mapping, after: Mapping, ensemble: str) -> list[ModelTiming]:
    """Per composing model of ``ensemble``: what it did between two statistics responses."""
    old, new = stats_by_model(before), stats_by_model(after)
    return [diff_model_stats(name, old.get(name), new[name]) for name in composing_models(ensemble, list(new))]


def format_value(value: float | int | None, digits: int = 1) -> str:
    """A table cell: fixed decimals for floats, "-" for missing."""
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain-text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(cell).ljust(width) if i == 0 else str(cell).rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(row) for row in rows)])


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """Divide, giving None when either is missing or the denominator is zero."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def throughput_table(served: Sequence[Mapping], inprocess: Sequence[Mapping]) -> str:
    """Images/s and latency of every served level and in-process batch size, with served/in-process ratios."""
    batch_sizes = [run["batch_size"] for run in inprocess]
    columns = ("mean_ms", "p50_ms", "p90_ms", "p99_ms")
    headers = ["setup", "images/s", *(c.replace("_", " ") for c in columns), "errors"]
    headers += [f"vs in-proc b={b}" for b in batch_sizes]
    rows = []
    for level in served:
        ratios = [format_value(ratio(level["images_per_s"], run["images_per_s"]), 2) for run in inprocess]
        latency = level["latency"]
        rows.append(
            [
                f"served {level['protocol']} c={level['concurrency']}",
                format_value(level["images_per_s"]),
                *(format_value(latency[k]) for k in columns),
                str(level["errors"]),
                *(f"{r}x" if r != "-" else r for r in ratios),
            ]
        )
    for run in inprocess:
        latency = run["batch_latency"]
        rows.append(
            [
                f"in-process batch {run['batch_size']}",
                format_value(run["images_per_s"]),
                *(format_value(latency[k]) for k in columns),
                "0",
                *("" for _ in inprocess),
            ]
        )
    return format_table(headers, rows)


def latency_comparison(served: Sequence[Mapping], inprocess: Sequence[Mapping]) -> str | None:
    """One line: served p50 at concurrency 1 against the in-process single-image latency."""
    single = next((level for level in served if level["concurrency"] == 1), None)
    reference = next((run for run in inprocess if run["batch_size"] == 1), None)
    if single is None or reference is None:
        return None
    served_ms, local_ms = single["latency"]["p50_ms"], reference["batch_latency"]["p50_ms"]
    if served_ms is None or local_ms is None:
        return None
    return (
        f"p50 latency, one image: served c=1 {served_ms:.1f} ms vs in-process {local_ms:.1f} ms "
        f"({served_ms - local_ms:+.1f} ms, {served_ms / local_ms:.2f}x)"
    )


def timing_table(timings: Sequence[Mapping]) -> str:
    """Where the server time goes at one level: per composing model, averages per request in ms."""
    headers = [
        "model",
        "requests",
        "executions",
        "avg batch",
        "in model",
        "queue",
        "input",
        "infer",
        "output",
        "infer/img",
    ]
    rows = [
        [
            t["name"],
            str(t["requests"]),
            str(t["executions"]),
            format_value(ratio(t["inferences"], t["executions"]), 2),
            *(format_value(t[k], 2) for k in ("request_ms", "queue_ms", "compute_input_ms", "compute_infer_ms")),
            format_value(t["compute_output_ms"], 2),
            format_value(t["infer_ms_per_image"], 2),
        ]
        for t in timings
    ]
    return format_table(headers, rows)


def outside_server(level: Mapping) -> str | None:
    """One line: mean latency at the client split into time inside Triton's ensemble and time outside it."""
    client_ms = level["latency"]["mean_ms"]
    ensemble = level["server_stats"][0] if level["server_stats"] else None
    if client_ms is None or ensemble is None or ensemble["request_ms"] is None:
        return None
    inside_ms = ensemble["request_ms"]
    return (
        f"mean latency {client_ms:.2f} ms at the client = {inside_ms:.2f} ms inside the ensemble "
        f"{client_ms - inside_ms:+.2f} ms outside it (protocol, serialization, client threads)"
    )


def preprocess_mismatches(parameters: Mapping[str, Mapping], spec: PreprocessSpec, limits: DecodeLimits) -> list[str]:
    """Where the served preprocessing model's config differs from what the in-process reference runs."""
    flat = {key: value.get("string_value", "") for key, value in parameters.items()}
    try:
        served_spec, served_limits = PreprocessSpec.from_parameters(flat), DecodeLimits.from_parameters(flat)
    except (KeyError, ValueError) as err:
        return [f"cannot read the served preprocessing parameters ({err})"]
    problems = []
    if served_spec != spec:
        problems.append(f"served preprocessing spec {served_spec} differs from the export's {spec}")
    if served_limits != limits:
        problems.append(f"served decode limits {served_limits} differ from the reference's {limits}")
    return problems


def inprocess_breakdown(inprocess: Sequence[Mapping]) -> str:
    """In-process time per image split into decode+preprocess and ONNX Runtime."""
    headers = ["in-process", "images", "decode ms/img", "onnx ms/img"]
    rows = [
        [
            f"batch {run['batch_size']}",
            str(run["images"]),
            format_value(run["decode_ms_per_image"], 2),
            format_value(run["infer_ms_per_image"], 2),
        ]
        for run in inprocess
    ]
    return format_table(headers, rows)


def default_output_path(now: datetime.datetime) -> Path:
    """``benchmarks/results/benchmark-<UTC timestamp>.json``."""
    return Path("benchmarks") / "results" / f"benchmark-{now.strftime('%Y%m%dT%H%M%SZ')}.json"


# ---------------------------------------------------------------- measurement


@dataclasses.dataclass
class LoadResult:
    """One closed-loop run against the server."""

    concurrency: int
    elapsed_s: float
    latencies_s: list[float]
    errors: dict[str, int]
    first_error: str | None


def run_closed_loop(
    classify: Callable[[bytes], object], images: Sequence[bytes], concurrency: int, duration_s: float
) -> LoadResult:
    """``concurrency`` threads, each sending its next image as soon as the previous answer arrives, until time is up."""
    deadline_holder: list[float] = []
    start_gate = threading.Barrier(concurrency + 1)
    per_thread_latencies: list[list[float]] = [[] for _ in range(concurrency)]
    per_thread_errors: list[list[tuple[str, str]]] = [[] for _ in range(concurrency)]

    def worker(slot: int) -> None:
        start_gate.wait()
        deadline = deadline_holder[0]
        # Threads walk the images with a stride so they do not all send the same one.
        index = slot
        while time.perf_counter() < deadline:
            image = images[index % len(images)]
            index += concurrency
            begin = time.perf_counter()
            try:
                classify(image)
            except InferenceFailed as err:
                per_thread_errors[slot].append((err.status, str(err)))
                continue
            except Exception as err:  # a client-side bug must show up as errors, not as a silently dead thread
                per_thread_errors[slot].append((type(err).__name__, str(err)))
                continue
            per_thread_latencies[slot].append(time.perf_counter() - begin)

    threads = [threading.Thread(target=worker, args=(slot,), daemon=True) for slot in range(concurrency)]
    for thread in threads:
        thread.start()
    begin = time.perf_counter()
    deadline_holder.append(begin + duration_s)
    start_gate.wait()
    for thread in threads:
        thread.join(duration_s + REQUEST_TIMEOUT_S + 5.0)
    elapsed = time.perf_counter() - begin
    failures = [failure for thread_errors in per_thread_errors for failure in thread_errors]
    return LoadResult(
        concurrency=concurrency,
        elapsed_s=elapsed,
        latencies_s=[latency for thread_latencies in per_thread_latencies for latency in thread_latencies],
        errors=dict(collections.Counter(status for status, _ in failures)),
        first_error=": ".join(failures[0]) if failures else None,
    )


def fetch_statistics(client: ClassifierClient) -> dict:
    """Triton's statistics for every model, as JSON for either protocol."""
    if client.protocol == "grpc":
        return client.raw.get_inference_statistics(as_json=True)
    return client.raw.get_inference_statistics()


def settled_statistics(client: ClassifierClient, timeout_s: float = 2.0, interval_s: float = 0.05) -> dict:
    """Statistics once the request counts stop moving, or after ``timeout_s`` (other clients may keep them moving).

    Triton records a request's statistics only after its response has gone out, so
    right after the last answer the counts of the last few requests can still be missing.
    """
    previous = fetch_statistics(client)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(interval_s)
        current = fetch_statistics(client)
        if request_counts(current) == request_counts(previous):
            return current
        previous = current
    return previous


def served_model_configs(client: ClassifierClient, names: Sequence[str]) -> dict[str, dict]:
    """The serving choices behind the numbers: batching, instances, parameters of each model."""
    keep = ("platform", "backend", "max_batch_size", "instance_group", "dynamic_batching", "parameters")
    configs = {}
    for name in names:
        if client.protocol == "grpc":
            config = client.raw.get_model_config(name, as_json=True)["config"]
        else:
            config = client.raw.get_model_config(name)
        configs[name] = {key: config[key] for key in keep if key in config}
    return configs


def measure_served(
    client: ClassifierClient, images: Sequence[bytes], levels: Sequence[int], duration_s: float, warmup_s: float
) -> list[dict]:
    """Closed loop per concurrency level, with Triton's statistics diffed around each measured run."""

    def classify(image: bytes) -> object:
        return client.classify(image, TOP_K)

    results = []
    for concurrency in levels:
        run_closed_loop(classify, images, concurrency, warmup_s)
        before = settled_statistics(client)
        load = run_closed_loop(classify, images, concurrency, duration_s)
        after = settled_statistics(client)
        error_count = sum(load.errors.values())
        results.append(
            {
                "protocol": client.protocol,
                "concurrency": concurrency,
                "duration_s": load.elapsed_s,
                "requests": len(load.latencies_s) + error_count,
                "images": len(load.latencies_s),
                "images_per_s": rate(len(load.latencies_s), load.elapsed_s),
                "latency": latency_summary(load.latencies_s),
                "errors": error_count,
                "errors_by_status": load.errors,
                "first_error": load.first_error,
                "server_stats": [t.to_dict() for t in diff_statistics(before, after, client.model)],
            }
        )
        print(f"served c={concurrency}: {results[-1]['images_per_s']:.1f} images/s, {error_count} errors", flush=True)
    return results


def create_session(onnx_path: Path):
    """One ONNX Runtime CPU session with its default options (threads: one per core)."""
    # Imported here so the pure helpers above load in a client-only install without ONNX Runtime.
    import onnxruntime as ort

    return ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])


def run_inprocess(
    session, metadata: ExportMetadata, images: Sequence[bytes], batch_size: int, duration_s: float
) -> dict:
    """Decode + preprocess + ONNX Runtime + top-k in this process, batch by batch, until time is up."""
    spec: PreprocessSpec = metadata.preprocess
    limits = DecodeLimits()
    batch_latencies, decode_s, infer_s, done = [], 0.0, 0.0, 0
    begin = time.perf_counter()
    deadline = begin + duration_s
    index = 0
    while time.perf_counter() < deadline:
        batch_images = [images[(index + i) % len(images)] for i in range(batch_size)]
        index += batch_size
        start = time.perf_counter()
        pixels = np.stack([preprocess_image(data, spec, limits) for data in batch_images])
        decoded = time.perf_counter()
        probabilities = session.run([metadata.output_name], {metadata.input_name: pixels})[0]
        np.argsort(-probabilities, axis=1)[:, :TOP_K]
        end = time.perf_counter()
        batch_latencies.append(end - start)
        decode_s += decoded - start
        infer_s += end - decoded
        done += batch_size
    elapsed = time.perf_counter() - begin
    return {
        "batch_size": batch_size,
        "duration_s": elapsed,
        "images": done,
        "images_per_s": rate(done, elapsed),
        "batch_latency": latency_summary(batch_latencies),
        "decode_ms_per_image": decode_s / done * 1e3 if done else None,
        "infer_ms_per_image": infer_s / done * 1e3 if done else None,
    }


def measure_inprocess(
    metadata: ExportMetadata, onnx_path: Path, images: Sequence[bytes], duration_s: float, warmup_s: float
) -> list[dict]:
    """The in-process reference at each batch size of ``INPROCESS_BATCH_SIZES``."""
    session = create_session(onnx_path)
    results = []
    for batch_size in INPROCESS_BATCH_SIZES:
        run_inprocess(session, metadata, images, batch_size, warmup_s)
        results.append(run_inprocess(session, metadata, images, batch_size, duration_s))
        print(f"in-process batch {batch_size}: {results[-1]['images_per_s']:.1f} images/s", flush=True)
    return results


# ---------------------------------------------------------------- shell


def load_images(folder: Path | None, size: tuple[int, int], count: int) -> tuple[list[bytes], dict]:
    """The benchmark images and a description of them for the record."""
    if folder is None:
        sources = sorted(SAMPLES_DIR.glob("*.jpg"))
        if not sources:
            raise BenchmarkError(f"no sample photos in {SAMPLES_DIR}: restore clients/samples or pass --images")
        images = generate_images([p.read_bytes() for p in sources], size, count)
        origin = {"source": "generated", "from": [p.name for p in sources], "size": list(size), "quality": JPEG_QUALITY}
    else:
        if not folder.is_dir():
            raise BenchmarkError(f"no image folder at {folder}")
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
        if not paths:
            raise BenchmarkError(f"no .jpg or .jpeg files in {folder}")
        images = [p.read_bytes() for p in paths]
        sizes = sorted({Image.open(io.BytesIO(data)).size for data in images})
        origin = {"source": str(folder), "sizes": [list(s) for s in sizes]}
    origin.update(count=len(images), mean_bytes=round(sum(map(len, images)) / len(images)))
    return images, origin


def check_repository(repository: Path) -> None:
    """Fail in one line before starting a server on a repository with nothing to serve."""
    if not repository.is_dir() or not any(repository.glob("*/config.pbtxt")):
        raise BenchmarkError(f"no models in {repository}: run make repository first (or pass --url)")


def load_export(export: Path) -> tuple[ExportMetadata, Path]:
    """The export's metadata and ONNX file, for the in-process reference."""
    try:
        metadata = load_metadata(export / contract.METADATA_FILENAME)
    except (FileNotFoundError, ValueError) as err:
        raise BenchmarkError(f"{err} (or pass --export)") from None
    onnx_path = export / metadata.onnx_filename
    if not onnx_path.is_file():
        raise BenchmarkError(f"no {metadata.onnx_filename} in {export}: run training/export.py first")
    return metadata, onnx_path


def environment() -> dict:
    """Versions and machine, so results from different runs can be told apart."""
    versions = {}
    for package in ("numpy", "pillow", "onnxruntime", "tritonclient", "nvidia-pytriton"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(), **versions}


def benchmark_server(
    url: str, args: argparse.Namespace, images: Sequence[bytes], metadata: ExportMetadata
) -> tuple[list[dict], dict]:
    """Every served level against the server at ``url``, plus what the server is."""
    client = ClassifierClient(url, args.protocol, args.model, timeout_s=REQUEST_TIMEOUT_S)
    names = composing_models(client.model, list(stats_by_model(fetch_statistics(client))))
    grpc = args.protocol == "grpc"
    server = client.raw.get_server_metadata(as_json=True) if grpc else client.raw.get_server_metadata()
    info = {
        "url": url,
        "model": client.model,
        "triton_version": server.get("version"),
        "configs": served_model_configs(client, names),
    }
    preprocess_name = contract.preprocess_model_name(client.model)
    # The comparison only means something if both sides decode the same way.
    if preprocess_name in info["configs"]:
        parameters = info["configs"][preprocess_name].get("parameters", {})
        info["warnings"] = preprocess_mismatches(parameters, metadata.preprocess, DecodeLimits())
    else:
        info["warnings"] = [f"no {preprocess_name} model on the server: cannot check it decodes like the reference"]
    for warning in info["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    try:
        return measure_served(client, images, args.concurrency, args.duration_s, args.warmup_s), info
    finally:
        client.close()


def run_served(args: argparse.Namespace, images: Sequence[bytes], metadata: ExportMetadata) -> tuple[list[dict], dict]:
    """Against ``--url``, or against a server started here on ``--repository`` and stopped afterwards."""
    if args.url:
        return benchmark_server(args.url, args, images, metadata)
    log_path = Path(tempfile.mkdtemp(prefix="benchmark-triton-")) / "tritonserver.log"
    server = TritonProcess(args.repository, log_path=log_path)
    try:
        server.start()
    except ServerStartError as err:
        raise BenchmarkError(f"{str(err).splitlines()[0]} (log: {log_path})") from None
    try:
        url = server.grpc_url if args.protocol == "grpc" else server.http_url
        served, info = benchmark_server(url, args, images, metadata)
    finally:
        server.stop()
    return served, {**info, "repository": str(args.repository), "server_log": str(log_path)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, help="folder of JPEGs (default: generated from clients/samples)")
    parser.add_argument("--size", type=parse_size, default=(1280, 960), help="generated WxH (default: 1280x960)")
    parser.add_argument("--count", type=int, default=16, help="generated images (default: %(default)s)")
    parser.add_argument("--concurrency", type=parse_int_list, default=(1, 8), help="served levels (default: 1,8)")
    parser.add_argument("--duration-s", type=float, default=10.0, help="measured s per run (default: %(default)s)")
    parser.add_argument("--warmup-s", type=float, default=2.0, help="unmeasured s before each (default: %(default)s)")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="grpc", help="default: %(default)s")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--url", help="HOST:PORT of a running server (default: start one on --repository)")
    target.add_argument("--repository", type=Path, default=Path("model_repository"), help="default: %(default)s")
    parser.add_argument("--model", help="ensemble name (default: the server's only ensemble)")
    parser.add_argument(
        "--export",
        type=Path,
        default=Path("exports/efficientnet_lite0"),
        help="export folder whose model.onnx and model.json the in-process reference uses (default: %(default)s)",
    )
    parser.add_argument("--output", type=Path, help="result JSON (default: benchmarks/results/benchmark-<time>.json)")
    args = parser.parse_args(argv)
    if args.count < 1 or args.duration_s <= 0 or args.warmup_s < 0:
        parser.error("--count and --duration-s must be positive, --warmup-s not negative")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run both measurements, print the tables, write the JSON."""
    args = parse_args(argv)
    started = datetime.datetime.now(datetime.UTC)
    output = args.output or default_output_path(started)
    try:
        metadata, onnx_path = load_export(args.export)
        if not args.url:
            check_repository(args.repository)
        images, image_info = load_images(args.images, args.size, args.count)
        print(f"{image_info['count']} images, {image_info['mean_bytes']} bytes on average", flush=True)
        served, server_info = run_served(args, images, metadata)
        # After the server is gone, so the reference does not share the cores with it.
        inprocess = measure_inprocess(metadata, onnx_path, images, args.duration_s, args.warmup_s)
    except (BenchmarkError, ClientError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

    print()
    print(throughput_table(served, inprocess))
    print("(in-process latencies are per batch: decode, preprocess and ONNX Runtime for all its images)")
    comparison = latency_comparison(served, inprocess)
    if comparison:
        print(comparison)
    for level in served:
        print(f"\nserver time per request (ms), {level['protocol']} c={level['concurrency']}:")
        print(timing_table(level["server_stats"]))
        split = outside_server(level)
        if split:
            print(split)
        if level["first_error"]:
            print(f"first error: {level['first_error']}")
    print("(the ensemble row's queue/input/infer/output are Triton's sums over its steps)")
    print()
    print(inprocess_breakdown(inprocess))

    result = {
        "started": started.isoformat(),
        "command": ["clients/benchmark.py", *(sys.argv[1:] if argv is None else argv)],
        "settings": {
            "concurrency": list(args.concurrency),
            "duration_s": args.duration_s,
            "warmup_s": args.warmup_s,
            "protocol": args.protocol,
            "top_k": TOP_K,
            "inprocess_batch_sizes": list(INPROCESS_BATCH_SIZES),
        },
        "environment": environment(),
        "images": image_info,
        "export": {
            "path": str(args.export),
            "model_name": metadata.model_name,
            "onnx_sha256": metadata.onnx_sha256,
            "preprocess": metadata.preprocess.to_dict(),
        },
        "server": server_info,
        "served": served,
        "inprocess": inprocess,
        "latency_comparison": comparison,
    }
    write_json_atomic(output, result)
    print(f"\nwrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
