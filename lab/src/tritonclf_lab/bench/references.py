"""What the same work costs without a server, measured in this process on the benchmark's images.

- ``limit``: CPU seconds per image of the served decode and the same ONNX model on
  one thread (a single-threaded ONNX Runtime session, so process CPU time is only
  this work); cores x images per core-second is what the machine could do at best.
- ``in-process``: what a user writes without a server: decode, preprocess, ONNX
  Runtime with its default threads, batch by batch, in one loop.
- ``naive``: the seed article's per-image approach: OpenCV full decode, resize to
  the input size ignoring the aspect ratio, normalize, batch 1, one session.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from tritonclf.export_metadata import ExportMetadata
from tritonclf.preprocess import DecodeLimits, PreprocessSpec, preprocess_image
from tritonclf_lab.bench.cpu import cores_used
from tritonclf_lab.bench.cpu import snapshot as cpu_snapshot
from tritonclf_lab.bench.images import BenchImage
from tritonclf_lab.bench.stats import compute_limit, latency_summary, mean, rate

TOP_K = 5
LIMIT_INFER_BATCH_SIZES = (1, 8)  # the limit takes the cheaper: the server may batch either way

Preprocess = Callable[[bytes], np.ndarray]


@dataclasses.dataclass(frozen=True)
class OnnxModel:
    """An ONNX Runtime session and the tensor names the export gave the model."""

    session: object
    input_name: str
    output_name: str

    def run(self, pixels: np.ndarray) -> np.ndarray:
        """A batch of preprocessed images -> probabilities."""
        return self.session.run([self.output_name], {self.input_name: pixels})[0]


def load_model(onnx_path: Path, metadata: ExportMetadata, threads: int | None = None) -> OnnxModel:
    """ONNX Runtime on the CPU: default threading, or exactly ``threads`` threads with sequential execution."""
    # Imported here so the rest of the package loads in a client-only install.
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = threads
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    return OnnxModel(session, metadata.input_name, metadata.output_name)


def served_preprocess(spec: PreprocessSpec, limits: DecodeLimits) -> Preprocess:
    """The served decode: ``tritonclf.preprocess`` with the server's spec and decode limits."""
    return lambda data: preprocess_image(data, spec, limits)


def naive_preprocess(spec: PreprocessSpec) -> Preprocess:
    """The seed article's preprocessing: OpenCV full decode, squash to the input size, normalize."""
    import cv2

    height, width = spec.input_size
    mean_rgb = np.asarray(spec.mean, dtype=np.float32)
    std_rgb = np.asarray(spec.std, dtype=np.float32)

    def preprocess(data: bytes) -> np.ndarray:
        bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
        rgb = cv2.cvtColor(cv2.resize(bgr, (width, height)), cv2.COLOR_BGR2RGB)
        return np.ascontiguousarray(((rgb.astype(np.float32) / 255.0 - mean_rgb) / std_rgb).transpose(2, 0, 1))

    return preprocess


def run_loop(
    model: OnnxModel, preprocess: Preprocess, images: Sequence[BenchImage], *, batch_size: int, duration_s: float
) -> dict:
    """Preprocess + ONNX Runtime + top-k, batch by batch over the images in order, until time is up."""
    batch_latencies, decode_s, infer_s, done = [], 0.0, 0.0, 0
    begin = time.perf_counter()
    deadline = begin + duration_s
    index = 0
    while time.perf_counter() < deadline:
        batch = [images[(index + i) % len(images)].data for i in range(batch_size)]
        index += batch_size
        start = time.perf_counter()
        pixels = np.stack([preprocess(data) for data in batch])
        decoded = time.perf_counter()
        np.argsort(-model.run(pixels), axis=1)[:, :TOP_K]
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


def measure_loop(
    model: OnnxModel,
    preprocess: Preprocess,
    images: Sequence[BenchImage],
    *,
    batch_size: int,
    duration_s: float,
    warmup_s: float,
) -> dict:
    """:func:`run_loop` after an unmeasured warmup (ONNX Runtime's first runs allocate)."""
    if warmup_s > 0:
        run_loop(model, preprocess, images, batch_size=batch_size, duration_s=warmup_s)
    return run_loop(model, preprocess, images, batch_size=batch_size, duration_s=duration_s)


def decode_cpu_seconds(
    preprocess: Preprocess, images: Sequence[BenchImage], min_duration_s: float
) -> tuple[dict[str, list[float]], list[np.ndarray]]:
    """CPU seconds of each preprocess call by image size, over whole passes of the images, and one pass's tensors."""
    cpu_by_size: dict[str, list[float]] = collections.defaultdict(list)
    tensors = []
    begin = time.perf_counter()
    first_pass = True
    while first_pass or time.perf_counter() - begin < min_duration_s:
        for image in images:
            start = time.process_time()
            tensor = preprocess(image.data)
            cpu_by_size[image.size_label].append(time.process_time() - start)
            if first_pass:
                tensors.append(tensor)
        first_pass = False
    return dict(cpu_by_size), tensors


def infer_cpu_seconds(model: OnnxModel, tensors: Sequence[np.ndarray], batch_size: int, min_duration_s: float) -> float:
    """CPU seconds per image of the ONNX model at ``batch_size`` (after one unmeasured run)."""
    batch = np.stack([tensors[i % len(tensors)] for i in range(batch_size)])
    model.run(batch)
    runs, cpu_begin, begin = 0, time.process_time(), time.perf_counter()
    while runs == 0 or time.perf_counter() - begin < min_duration_s:
        model.run(batch)
        runs += 1
    return (time.process_time() - cpu_begin) / (runs * batch_size)


def measure_limit(
    model: OnnxModel, preprocess: Preprocess, images: Sequence[BenchImage], *, cores: int, duration_s: float
) -> dict:
    """The machine's compute limit for this work, for the whole mix and for its 12 MP subset.

    ``model`` must run on one thread, so that process CPU time is the model's work alone.
    """
    cpu_by_size, tensors = decode_cpu_seconds(preprocess, images, duration_s / 2)
    share_s = duration_s / (2 * len(LIMIT_INFER_BATCH_SIZES))
    per_batch = {batch: infer_cpu_seconds(model, tensors, batch, share_s) for batch in LIMIT_INFER_BATCH_SIZES}
    infer_cpu = min(per_batch.values())
    # Whole passes over the images: the mean over every call weighs each size by its share of the mix.
    limit = compute_limit(cores, mean([cpu for calls in cpu_by_size.values() for cpu in calls]), infer_cpu)
    limit["infer_cpu_ms_per_image_by_batch"] = {str(b): cpu * 1e3 for b, cpu in per_batch.items()}
    limit["decode_cpu_ms_by_size"] = {label: mean(calls) * 1e3 for label, calls in cpu_by_size.items()}
    large_labels = {image.size_label for image in images if image.is_large}
    large = [cpu for label in large_labels for cpu in cpu_by_size[label]]
    limit["large"] = compute_limit(cores, mean(large), infer_cpu) if large else None
    return limit


INPROCESS_BATCH_SIZES = (8, 1)  # batched is the reference throughput; batch 1 gives single-image latency


def with_cpu(measure: Callable[[], dict]) -> dict:
    """Run a measurement and add the cores this process and other processes used meanwhile."""
    before = cpu_snapshot()
    result = measure()
    used = cores_used(before, cpu_snapshot())
    return {**result, "client_cpu_cores": used["client_cpu_cores"], "other_cpu_cores": used["other_cpu_cores"]}


def measure_references(
    onnx_path: Path,
    metadata: ExportMetadata,
    limits: DecodeLimits,
    images: Sequence[BenchImage],
    *,
    cores: int,
    duration_s: float,
    warmup_s: float,
) -> dict:
    """Limit, in-process (batched and batch 1) and naive (the mix and its 12 MP subset), in that order."""
    spec = metadata.preprocess
    served = served_preprocess(spec, limits)
    single_thread = load_model(onnx_path, metadata, threads=1)
    limit = with_cpu(lambda: measure_limit(single_thread, served, images, cores=cores, duration_s=duration_s))
    print(
        f"limit: {cores} cores x {limit['images_per_core_s']:.1f} images/core-s = {limit['images_per_s']:.1f} images/s"
        f" ({limit['decode_cpu_ms_per_image']:.2f} ms decode + {limit['infer_cpu_ms_per_image']:.2f} ms model CPU)",
        flush=True,
    )
    model = load_model(onnx_path, metadata)
    timing = {"duration_s": duration_s, "warmup_s": warmup_s}

    def loop(preprocess: Preprocess, subset: Sequence[BenchImage], batch_size: int) -> dict:
        return with_cpu(lambda: measure_loop(model, preprocess, subset, batch_size=batch_size, **timing))

    inprocess = []
    for batch_size in INPROCESS_BATCH_SIZES:
        inprocess.append(loop(served, images, batch_size))
        print(f"in-process batch {batch_size}: {inprocess[-1]['images_per_s']:.1f} images/s", flush=True)
    naive_fn = naive_preprocess(spec)
    naive = loop(naive_fn, images, 1)
    print(f"naive: {naive['images_per_s']:.1f} images/s", flush=True)
    large = [image for image in images if image.is_large]
    naive_large = loop(naive_fn, large, 1) if large else None
    if naive_large:
        print(f"naive, 12 MP only: {naive_large['images_per_s']:.1f} images/s", flush=True)
    return {"limit": limit, "inprocess": inprocess, "naive": naive, "naive_large": naive_large}
