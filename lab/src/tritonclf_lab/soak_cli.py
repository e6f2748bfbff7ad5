"""Soak: the real server at saturation with good and hostile images mixed; nothing lost, nothing leaked.

    tritonclf soak --seconds 1800                       # the long run (CI runs 75 s: tests/integration/test_soak.py)
    tritonclf soak --seconds 600 --concurrency 32 --output soak.json

Builds a repository with the shipped defaults (queue policy included) from an export,
starts tritonserver on loopback ports and sends every image of ``bad_images.py``
plus the sample photos from ``--concurrency`` closed-loop senders, in rounds of
``--round-seconds``: one warm-up round, then ``--seconds`` of measured rounds. After each
round the load pauses until nothing is pending and the server's memory is read idle.
Then it checks, and prints as JSON:

- requests sent = the ensemble's successes + failures in Triton's metrics (Triton 2.51
  counts each failed ensemble request twice in ``nv_inference_request_failure``; see
  ``ENSEMBLE_FAILURE_COUNT``);
- every good image answered with the probabilities the same bytes get in-process,
  every bad one rejected with its exact message, nothing else (no UNAVAILABLE, no INTERNAL);
- ``nv_inference_pending_request_count`` back to 0 for every model;
- memory of tritonserver and its Python-backend stubs (psutil), idle after the warm-up
  vs idle after the last round, within ``MAX_GROWTH_BYTES``: the total (PSS, shared memory
  counted once), the preprocessing stubs' heaps (where our decoding runs) and the classifier
  stub's. VmRSS summed over the processes is reported too; it counts the stubs'
  shared-memory pools twice (server and stub both map them).
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import psutil

from tritonclf.cli_options import EXIT_FAILED, EXIT_OK, add_concurrency
from tritonclf.client.status import OK
from tritonclf.samples import sample_photos
from tritonclf.serving.stub_health import STUB_EXECUTABLE
from tritonclf_lab.bad_images import BAD_INPUTS, ODD_IMAGES
from tritonclf_lab.bench.load import MODEL, BackgroundLoad, Outcome
from tritonclf_lab.bench.procmem import process_tree

MODELS = (MODEL, f"{MODEL}_preprocess", f"{MODEL}_model")
# Triton 2.51 counts a failed ensemble request twice in nv_inference_request_failure (and in the
# statistics extension): its own L0_model_queue test expects an increase of 2 per failure.
ENSEMBLE_FAILURE_COUNT = 2
# Measured idle between rounds (docs/RELIABILITY.md): the preprocessing stubs' heaps, where our
# decoding runs, stay within 2 MiB. The classifier stub's heap steps up while ONNX Runtime's
# arena meets larger batches (up to 20 MiB in the first rounds). The total swings with the
# 32 MiB inputs of the mix: tritonserver's heap went between 140 and 520 MiB over 37 rounds of
# a 10-minute run, and the stubs' shared-memory pools grow to the largest batch they held.
MAX_GROWTH_BYTES = {
    "preprocess_anon": 8 * 1024 * 1024,
    "classifier_anon": 64 * 1024 * 1024,
    "pss": 512 * 1024 * 1024,
}


def soak_images() -> tuple[list[tuple[str, bytes]], dict[str, str]]:
    """(every (name, bytes) to send, {bad name: exact expected message}); names are unique."""
    good = [(path.stem, path.read_bytes()) for path in sample_photos()]
    good += [(f"odd-{name}", make()) for name, (_, make) in ODD_IMAGES.items()]
    bad = [(f"bad-{item.name}", item.make()) for item in BAD_INPUTS]
    messages = {name: f"in ensemble '{MODEL}', {item.message}" for (name, _), item in zip(bad, BAD_INPUTS, strict=True)}
    return good + bad, messages


def expected_probabilities(images: Sequence[tuple[str, bytes]], bad: Mapping[str, str], onnx_path: Path, metadata):
    """{good image name: probabilities} computed in-process with the served preprocessing and the same ONNX file."""
    import onnxruntime as ort

    from tritonclf.preprocess import preprocess_image

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return {
        name: session.run(None, {"pixel_values": preprocess_image(data, metadata.preprocess)[None]})[0]
        for name, data in images
        if name not in bad
    }


def read_metrics(url: str) -> dict[tuple[str, str], float]:
    """{(metric name, model): value summed over other labels} from Triton's Prometheus endpoint."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    totals: dict[tuple[str, str], float] = collections.defaultdict(float)
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        name, _, labels = series.partition("{")
        model = re.search(r'model="([^"]*)"', labels)
        if model:
            totals[(name, model.group(1))] += float(value)
    return totals


def pending_requests(metrics: Mapping[tuple[str, str], float]) -> dict[str, float]:
    """``nv_inference_pending_request_count`` of each model."""
    return {model: metrics.get(("nv_inference_pending_request_count", model), 0.0) for model in MODELS}


def process_memory(process: psutil.Process) -> dict[str, int]:
    """One process's proportional set size, resident set and private (anonymous) resident memory; zeros once gone.

    Resident memory is anonymous pages plus shared ones (file-backed and shmem), so
    ``rss - shared`` is the kernel's ``RssAnon``: the heap a leak would grow.
    """
    try:
        memory = process.memory_full_info()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return {"pss": 0, "rss": 0, "anon": 0}
    return {"pss": memory.pss, "rss": memory.rss, "anon": memory.rss - memory.shared}


def footprint(server_pid: int) -> dict[str, int]:
    """Memory of tritonserver and its stubs: total PSS, summed RSS, and the private heap of each kind of process."""
    totals = dict.fromkeys(("pss", "rss_sum", "server_anon", "preprocess_anon", "classifier_anon"), 0)
    for process in process_tree(server_pid):
        memory = process_memory(process)
        totals["pss"] += memory["pss"]
        totals["rss_sum"] += memory["rss"]
        totals[f"{process_kind(process, server_pid)}_anon"] += memory["anon"]
    return totals


def process_kind(process: psutil.Process, server_pid: int) -> str:
    """``server`` (the launcher and tritonserver), or which model a Python-backend stub runs.

    The embedded launcher runs tritonserver as its child (the stub watchdog), so the
    server is every process of the tree that is not a stub; a stub's instance name is an
    argument of its command line.
    """
    if process.pid == server_pid:
        return "server"
    try:
        arguments = process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "server"
    if not arguments or not arguments[0].endswith(STUB_EXECUTABLE):
        return "server"
    return "preprocess" if any("_preprocess_" in argument for argument in arguments) else "classifier"


def settle(server) -> tuple[dict, dict[str, int]]:
    """(metrics, footprint) once nothing is pending (or after 10 s)."""
    deadline = time.monotonic() + 10.0
    while any(pending_requests(read_metrics(server.metrics_url)).values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # Triton counts a request after its response has gone out; freed memory settles
    return read_metrics(server.metrics_url), footprint(server.process.pid)


def make_check(expected: Mapping[str, np.ndarray]) -> Callable[[str, np.ndarray], bool]:
    """The load's check: served probabilities equal the in-process ones."""

    def check(name: str, probabilities: np.ndarray) -> bool:
        return name in expected and np.allclose(probabilities, expected[name], atol=1e-5)

    return check


def soak(
    server, images, bad_messages: Mapping[str, str], expected, *, seconds: float, concurrency: int, round_s: float
):
    """A warm-up round, then measured rounds for ``seconds``; returns the report (``problems`` empty when all passed).

    Memory is read idle between rounds: under load it swings with which large requests
    happen to be in flight; idle, after a warm-up at the same load, what remains is growth.
    """
    check = make_check(expected)
    with BackgroundLoad(server.grpc_url, images, concurrency, check=check):
        time.sleep(round_s)
    before, memory = settle(server)
    idle = [{**memory, "requests": 0}]
    outcomes: list[Outcome] = []
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        with BackgroundLoad(server.grpc_url, images, concurrency, check=check) as load:
            time.sleep(min(round_s, max(1.0, seconds - (time.monotonic() - started))))
        outcomes += load.outcomes
        after, memory = settle(server)
        idle.append({**memory, "requests": len(outcomes)})
    elapsed = time.monotonic() - started
    return report(outcomes, bad_messages, before, after, idle, elapsed, concurrency)


def report(  # noqa: PLR0917
    outcomes, bad_messages, before, after, idle: Sequence[Mapping[str, int]], seconds: float, concurrency: int
):
    """Every number of the soak, and the list of broken expectations."""

    def delta(name: str) -> int:
        return round(after.get((name, MODEL), 0.0) - before.get((name, MODEL), 0.0))

    statuses = collections.Counter(o.status for o in outcomes)
    good = [o for o in outcomes if o.name not in bad_messages]
    bad = [o for o in outcomes if o.name in bad_messages]
    wrong_answers = [o for o in good if o.status != OK or not o.value.matched]
    wrong_rejections = [o for o in bad if o.status != "INVALID_ARGUMENT" or o.message != bad_messages[o.name]]
    successes, failures = delta("nv_inference_request_success"), delta("nv_inference_request_failure")
    pending = pending_requests(after)
    latencies = sorted(o.latency_s for o in good if o.status == OK)
    kinds = [key for key in idle[0] if key != "requests"]
    growth = {key: idle[-1][key] - idle[0][key] for key in kinds}
    result = {
        "seconds": round(seconds, 1),
        "concurrency": concurrency,
        "requests_sent": len(outcomes),
        "good_sent": len(good),
        "bad_sent": len(bad),
        "statuses": dict(statuses),
        "requests_per_s": round(len(outcomes) / seconds, 1),
        "good_latency_p50_s": round(statistics.median(latencies), 4) if latencies else None,
        "good_latency_p99_s": round(latencies[int(0.99 * (len(latencies) - 1))], 4) if latencies else None,
        "server_successes": successes,
        "server_failures_counted": failures,
        "server_failures": failures / ENSEMBLE_FAILURE_COUNT,
        "pending_after": pending,
        "idle_memory_mib_per_round": {key: [round(m[key] / 2**20, 1) for m in idle] for key in kinds},
        "idle_memory_growth_mib": {key: round(value / 2**20, 1) for key, value in growth.items()},
        "idle_memory_trend_mib_per_10k_requests": {key: trend(idle, key) for key in kinds},
    }
    problems = []
    if successes + failures / ENSEMBLE_FAILURE_COUNT != len(outcomes):
        problems.append(f"sent {len(outcomes)}, server counted {successes} successes + {failures}/2 failures")
    if successes != statuses[OK]:
        problems.append(f"{statuses[OK]} answered, server counted {successes} successes")
    if wrong_answers:
        problems.append(f"{len(wrong_answers)} good images not answered as in-process, e.g. {wrong_answers[0]}")
    if wrong_rejections:
        problems.append(f"{len(wrong_rejections)} bad images not rejected as expected, e.g. {wrong_rejections[0]}")
    if any(pending.values()):
        problems.append(f"requests still pending after the load: {pending}")
    for key, bound in MAX_GROWTH_BYTES.items():
        if growth[key] > bound:
            problems.append(f"idle {key} grew {growth[key] / 2**20:.0f} MiB (bound {bound >> 20} MiB)")
    result["problems"] = problems
    return result


def trend(idle: Sequence[Mapping[str, int]], key: str) -> float | None:
    """Least-squares slope of an idle memory reading against requests served, in MiB per 10,000 requests."""
    if len(idle) < 3:
        return None
    requests = np.array([m["requests"] for m in idle], dtype=float)
    values = np.array([m[key] for m in idle], dtype=float) / 2**20
    return round(float(np.polyfit(requests, values, 1)[0]) * 10_000, 2)


def main(argv: list[str] | None = None) -> int:
    """Build, serve, soak, print the report; exit 1 if a check failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_export = Path("exports/efficientnet_lite0")
    parser.add_argument("--export", type=Path, default=default_export, help="default: %(default)s")
    parser.add_argument("--seconds", type=float, default=75.0, help="measured load (default: %(default)s)")
    parser.add_argument("--round-seconds", type=float, default=15.0, help="load between idle checks (default: 15)")
    add_concurrency(parser, 16)
    parser.add_argument("--output", type=Path, help="also write the report here (JSON)")
    args = parser.parse_args(argv)

    from tritonclf.export_metadata import load_metadata
    from tritonclf.repository.build import build_repository
    from tritonclf.serving.process import TritonProcess

    metadata = load_metadata(args.export / "model.json")
    images, bad_messages = soak_images()
    expected = expected_probabilities(images, bad_messages, args.export / metadata.onnx_filename, metadata)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        repository = Path(tmp) / "model_repository"
        build_repository(args.export, repository)
        with TritonProcess(repository, log_path=Path(tmp) / "tritonserver.log") as server:
            result = soak(
                server,
                images,
                bad_messages,
                expected,
                seconds=args.seconds,
                concurrency=args.concurrency,
                round_s=args.round_seconds,
            )
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    return EXIT_FAILED if result["problems"] else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
