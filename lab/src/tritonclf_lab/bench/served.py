"""A concurrency sweep against a Triton server: load, Triton's statistics around each level, server memory.

    endpoint = resolve_endpoint("127.0.0.1:8001", "grpc", "efficientnet_lite0")
    levels = measure_sweep(endpoint, images, [1, 4, 8], duration_s=5, warmup_s=1)

Each level dict holds throughput, latency percentiles (overall and per image size),
errors with UNAVAILABLE rejections apart, the client's CPU, the server's resident
memory (when its pid is known) and per composing model what Triton spent where.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence

from google.protobuf import json_format
from tritonclient.grpc import model_config_pb2 as pb

from tritonclf import contract
from tritonclf.client.triton_client import ClassifierClient
from tritonclf.progress import Progress
from tritonclf.repository import classifiers
from tritonclf_lab.bench.cpu import CpuSnapshot, cores_used
from tritonclf_lab.bench.cpu import snapshot as cpu_snapshot
from tritonclf_lab.bench.images import BenchImage
from tritonclf_lab.bench.load import Endpoint, LoadResult, run_levels
from tritonclf_lab.bench.procmem import tree_rss_bytes
from tritonclf_lab.bench.stats import latency_summary, rate
from tritonclf_lab.bench.transfers import wire_protocol
from tritonclf_lab.bench.triton_stats import composing_models, diff_statistics, request_counts, stats_by_model

TOP_K = 5
REQUEST_TIMEOUT_S = 60.0  # bounds the last request of a level when the server stalls


def resolve_endpoint(url: str, protocol: str, model: str | None, admin_key: str | None = None) -> Endpoint:
    """Ask the server for the model's input and output (and for its only ensemble when ``model`` is None).

    ``admin_key``: the server's key, for registering shared memory where that API is restricted.
    """
    client = ClassifierClient(url, wire_protocol(protocol), model, timeout_s=REQUEST_TIMEOUT_S)
    try:
        return Endpoint(
            protocol=protocol,
            url=url,
            model=client.model,
            input_name=client.input_name,
            input_shape=tuple(client.input_shape),
            output_name=client.output_name,
            top_k=TOP_K,
            admin_key=admin_key,
        )
    finally:
        client.close()


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


def served_model_configs(endpoint: Endpoint) -> dict[str, dict]:
    """The serving choices behind the numbers: batching, instances, parameters of each composing model."""
    keep = ("platform", "backend", "max_batch_size", "instance_group", "dynamic_batching", "parameters")
    client = ClassifierClient(endpoint.url, wire_protocol(endpoint.protocol), endpoint.model)
    try:
        names = composing_models(endpoint.model, list(stats_by_model(fetch_statistics(client))))
        configs = {}
        for name in names:
            if client.protocol == "grpc":
                config = client.raw.get_model_config(name, as_json=True)["config"]
            else:
                config = client.raw.get_model_config(name)
            configs[name] = {key: config[key] for key in keep if key in config}
        return configs
    finally:
        client.close()


DEFAULT_VARIANT = "pillow+python-ort"


def serving_variant(configs: Mapping[str, Mapping], ensemble: str) -> str:
    """``PREPROCESSOR+BACKEND`` of the served ensemble, e.g. ``torch+torch``, read from its models' configs."""
    parameters = preprocess_parameters(configs, ensemble) or {}
    classifier = configs.get(contract.classifier_model_name(ensemble), {})
    # The served config is ModelConfig's JSON form: the backend that wrote it recognizes it.
    backend = classifiers.of_config(json_format.ParseDict(classifier, pb.ModelConfig(), ignore_unknown_fields=True))
    name = backend.name if backend else classifiers.AUTO_FALLBACK.name
    return f"{parameters.get('preprocessor', 'pillow')}+{name}"


def preprocess_parameters(configs: Mapping[str, Mapping], ensemble: str) -> dict[str, str] | None:
    """The preprocessing model's config parameters as a flat string map; None without that model."""
    config = configs.get(contract.preprocess_model_name(ensemble))
    if config is None:
        return None
    return {key: value.get("string_value", "") for key, value in config.get("parameters", {}).items()}


def level_record(
    endpoint: Endpoint,
    subset: str,
    load: LoadResult,
    *,
    timings: Sequence[Mapping],
    server_rss: int | None,
    cpu: Mapping[str, float],
) -> dict:
    """One level's numbers, JSON-ready."""
    by_size = load.latencies_by_size()
    return {
        "protocol": endpoint.protocol,
        "concurrency": load.concurrency,
        "subset": subset,
        "duration_s": load.elapsed_s,
        "requests": len(load.latencies_s) + sum(load.errors.values()),
        "images": len(load.latencies_s),
        "images_per_s": rate(len(load.latencies_s), load.elapsed_s),
        "latency": latency_summary(load.latencies_s),
        "latency_by_size": {label: latency_summary(values) for label, values in sorted(by_size.items())},
        "errors": sum(load.errors.values()),
        "unavailable": load.unavailable,
        "other_errors": load.other_errors,
        "errors_by_status": load.errors,
        "first_error": load.first_error,
        "request_bytes": load.request_bytes,
        **cpu,
        "server_rss_bytes": server_rss,
        "server_stats": list(timings),
    }


def measure_sweep(
    endpoint: Endpoint,
    images: Sequence[BenchImage],
    levels: Sequence[int],
    *,
    duration_s: float,
    warmup_s: float,
    subset: str = "mix",
    server_pid: int | None = None,
    progress: Progress | None = None,
    timeout_s: float = REQUEST_TIMEOUT_S,
) -> list[dict]:
    """Closed loop at each concurrency level, with Triton's statistics diffed around each measured run."""
    progress = progress or Progress.quiet()
    stats_client = ClassifierClient(endpoint.url, wire_protocol(endpoint.protocol), endpoint.model)
    snapshots: dict[int, tuple[dict, CpuSnapshot]] = {}
    records: list[dict] = []

    def between(phase: str, concurrency: int, load: LoadResult | None) -> None:
        if phase == "before":
            progress.step(f"served {endpoint.protocol} c={concurrency} {subset} ({duration_s:g} s)")
            statistics = settled_statistics(stats_client)
            snapshots[concurrency] = (statistics, cpu_snapshot(server_pid))
            return
        cpu_after = cpu_snapshot(server_pid)
        # Memory at the end of the level: after it ran saturated for the whole duration.
        rss = tree_rss_bytes(server_pid) if server_pid else None
        statistics_before, cpu_before = snapshots[concurrency]
        after = settled_statistics(stats_client)
        timings = [t.to_dict() for t in diff_statistics(statistics_before, after, endpoint.model)]
        cpu = cores_used(cpu_before, cpu_after)
        records.append(level_record(endpoint, subset, load, timings=timings, server_rss=rss, cpu=cpu))
        record = records[-1]
        progress.write(
            f"served {endpoint.protocol} c={concurrency} {subset}: {record['images_per_s']:.1f} images/s, "
            f"p50 {_fmt(record['latency']['p50_ms'])} ms, p99 {_fmt(record['latency']['p99_ms'])} ms, "
            f"{record['errors']} errors ({record['unavailable']} unavailable){_request_size(load)}; cores: server "
            f"{cpu['server_cpu_cores']:.2f}, client {cpu['client_cpu_cores']:.2f}, others {cpu['other_cpu_cores']:.2f}"
        )

    try:
        asyncio.run(
            run_levels(
                endpoint,
                images,
                levels,
                duration_s=duration_s,
                warmup_s=warmup_s,
                between=between,
                timeout_s=timeout_s,
            )
        )
    finally:
        stats_client.close()
    return records


def _request_size(load: LoadResult) -> str:
    return "" if load.request_bytes is None else f", {load.request_bytes / 1024:.0f} KiB/request"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
