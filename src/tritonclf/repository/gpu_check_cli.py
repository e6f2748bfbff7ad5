"""GPU check for NVIDIA's container: TensorRT engine, FP16 gate, ``trt`` repository, served labels.

Not part of CI (CI has no GPU), and not for a bare GPU host (no TensorRT, no
tritonserver there: that is ``make gpu-kit``'s job, see docs/GPU.md). Run it in NVIDIA's
Triton container of the pinned release (Python 3.10), with this checkout on
``PYTHONPATH`` (not pip-installed) and an export made on any machine (``make export``):

    docker run --rm --gpus all -v "$PWD:/src" -w /src -e PYTHONPATH=/src/src \
      nvcr.io/nvidia/tritonserver:24.10-py3 bash -c \
      "pip install -q 'numpy<2' pillow onnx onnxruntime polygraphy 'tritonclient[grpc]' tensorrt-cu12==10.5.0 \
       && python3 -m tritonclf gpu-check --export exports/efficientnet_lite0"

    tritonclf gpu-check --export exports/efficientnet_lite0 --dry-run   # anywhere: plan + CPU-only parts

Steps (under 8 minutes on one data-center GPU): build the engine with the TensorRT
Python API (timed) and gate it against the FP32 ONNX model; build a ``--backend trt``
repository; serve it with ``tritonserver``; classify the sample photos and check the
expected labels (chelsea: a cat, coffee: espresso); measure engine throughput at batch
1, 8 and 64. Exit 1 on any failure, with one line saying which.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

from tritonclf import contract
from tritonclf.export_metadata import load_metadata
from tritonclf.progress import Progress
from tritonclf.repository.accuracy_gate import GateThresholds, gate_images
from tritonclf.repository.models import BuildOptions, classifier_spec
from tritonclf.repository.pbtxt import render, to_model_config
from tritonclf.repository.tensorrt import EngineOptions, fp32_node_names, trtexec_command
from tritonclf.repository.tensorrt_versions import PINNED_TAG, container_tensorrt_version
from tritonclf.samples import EXPECTED_TOP1, sample_dir, sample_photos

SAMPLES = sample_dir()
BATCH_SIZES = (1, 8, 64)
TIME_BUDGET_S = 8 * 60


def plan(export: Path, repository: Path) -> list[str]:
    """The commands the check runs, in order."""
    build = ["tritonclf", "build", "--export", str(export), "--repository", str(repository)]
    return [
        shlex.join([*build, "--backend", "trt", "--max-batch-size", str(max(BATCH_SIZES))]),
        shlex.join(["tritonclf", "preflight", "--repository", str(repository)]),
        shlex.join(["tritonserver", f"--model-repository={repository}"]),
        shlex.join(["tritonclf", "infer", str(SAMPLES), "--top-k", "3"]),
        f"engine throughput at batch {', '.join(map(str, BATCH_SIZES))} (polygraphy TrtRunner, 50 iterations each)",
    ]


def cpu_only_parts(export: Path) -> None:
    """What needs no GPU: the export, the gate's inputs, the engine's config and trtexec line."""
    metadata = load_metadata(export / contract.METADATA_FILENAME)
    pixels = gate_images(sample_photos(), metadata.preprocess)
    print(f"export: {metadata.model_name}, {metadata.num_classes} classes; gate batch {pixels.shape}")
    options = BuildOptions(backend="trt", max_batch_size=max(BATCH_SIZES), engine=EngineOptions(max_batch_size=64))
    config = render(to_model_config(classifier_spec("check", metadata, options)))
    print("classifier config (trt):\n" + "\n".join("  " + line for line in config.splitlines()[:8]) + "\n  ...")
    height, width = metadata.preprocess.input_size
    command = trtexec_command(
        onnx_path=str(export / metadata.onnx_filename),
        engine_path="model.plan",
        input_name=contract.PIXELS,
        input_chw=(3, height, width),
        options=options.engine,
        fp32_layers=fp32_node_names(export / metadata.onnx_filename),
        tensorrt_version=container_tensorrt_version(PINNED_TAG),
    )
    print("equivalent trtexec: " + shlex.join(command))


def engine_throughput(plan_path: Path, input_shape: tuple[int, int, int], iterations: int = 50) -> dict[int, float]:
    """Images/s of the engine alone at each batch size."""
    import numpy as np
    from polygraphy.backend.trt import EngineFromBytes, TrtRunner

    results = {}
    with TrtRunner(EngineFromBytes(plan_path.read_bytes())) as runner:
        for batch in BATCH_SIZES:
            feed = {contract.PIXELS: np.random.rand(batch, *input_shape).astype(np.float32)}
            runner.infer(feed)  # first call per shape sets up the context
            started = time.perf_counter()
            for _ in range(iterations):
                runner.infer(feed)
            results[batch] = batch * iterations / (time.perf_counter() - started)
    return results


def wrong_labels(top1: dict[str, int]) -> list[str]:
    """The sample photos whose served top-1 is not an expected ImageNet class, one line each."""
    return [
        f"{name}: served class {top1.get(name)}, expected one of {list(expected)}"
        for name, expected in EXPECTED_TOP1.items()
        if top1.get(name) not in expected
    ]


def run(export: Path) -> int:
    """The whole check on a GPU host; returns the exit code."""
    import subprocess

    from tritonclf.client.triton_client import ClassifierClient
    from tritonclf.serving.process import TritonProcess

    progress = Progress("gpu-check", total=4)
    repository = Path(tempfile.mkdtemp(prefix="gpu-check-")) / "model_repository"
    build, preflight = plan(export, repository)[:2]
    t0 = time.monotonic()
    progress.step("engine build + FP16 gate + repository (minutes)")
    progress.close()  # the build's own lines follow
    subprocess.run([sys.executable, "-m", *shlex.split(build)], check=True)
    progress.write(f"engine build + FP16 gate + repository: {time.monotonic() - t0:.1f} s")
    progress.step("preflight")
    progress.close()
    subprocess.run([sys.executable, "-m", *shlex.split(preflight)], check=True)
    progress.step("serve the repository, classify the sample photos")
    with TritonProcess(repository, log_path=repository.parent / "tritonserver.log", ready_timeout_s=300) as server:
        client = ClassifierClient(server.grpc_url, "grpc")
        top1 = {}
        for photo in sample_photos():
            top = client.classify(photo.read_bytes(), top_k=1)[0]
            top1[photo.name] = top.index
            progress.write(f"{photo.name}: {top.label} ({top.score:.3f})")
    wrong = wrong_labels(top1)
    for line in wrong:
        print(f"gpu-check: FAILED: {line}", file=sys.stderr)
    metadata = load_metadata(export / contract.METADATA_FILENAME)
    plan_path = next((repository / contract.classifier_model_name(metadata.ensemble_name)).glob("*/model.plan"))
    progress.step(f"engine throughput at batch {', '.join(map(str, BATCH_SIZES))}")
    for batch, rate in engine_throughput(plan_path, (3, *metadata.preprocess.input_size)).items():
        progress.write(f"engine throughput, batch {batch:>2}: {rate:,.0f} images/s")
    elapsed = progress.elapsed_s()
    progress.finish(f"total {elapsed:.0f} s (budget {TIME_BUDGET_S} s)")
    if elapsed > TIME_BUDGET_S:
        print(f"gpu-check: FAILED: took {elapsed:.0f} s, over the {TIME_BUDGET_S} s budget", file=sys.stderr)
    return 0 if elapsed <= TIME_BUDGET_S and not wrong else 1


def main(argv: list[str] | None = None) -> int:
    """Dry run (plan + CPU-only parts) or the full check."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", type=Path, default=Path("exports/efficientnet_lite0"))
    parser.add_argument("--dry-run", action="store_true", help="print the plan and run only what needs no GPU")
    args = parser.parse_args(argv)
    print(f"gate thresholds: {GateThresholds()}")
    for index, step in enumerate(plan(args.export, Path("<tmp>/model_repository")), start=1):
        print(f"{index}. {step}")
    cpu_only_parts(args.export)
    if args.dry_run:
        return 0
    return run(args.export)


if __name__ == "__main__":
    sys.exit(main())
