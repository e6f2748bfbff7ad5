"""Model Analyzer's ``profile`` config for our repository: the classifier alone, or the whole ensemble.

Pure: returns the document ``model-analyzer profile -f`` reads; the shell writes it.
Model Analyzer reads YAML, and JSON is YAML, so it is written with ``json`` (no
extra dependency in the server's environment). Keys are Model Analyzer 1.58's
(docs/config.md in triton-inference-server/model_analyzer).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tritonclf import contract

TARGETS = ("classifier", "ensemble")


@dataclasses.dataclass(frozen=True)
class Search:
    """How much Model Analyzer may try, and how long each measurement lasts."""

    max_concurrency: int = 8
    max_instances: int = 2
    max_batch_size: int = 8  # the search's largest max_batch_size (powers of two from 1)
    measurement_interval_ms: int = 2000
    max_trials: int = 6  # windows perf_analyzer may take per level before giving up on stability
    stability_percentage: int = 50  # 2 shared cores: 10% (the default) rarely settles
    latency_budget_ms: float | None = None  # p99 constraint; None = throughput only

    def __post_init__(self) -> None:
        """Reject searches Model Analyzer would refuse or that measure nothing."""
        if min(self.max_concurrency, self.max_instances, self.max_batch_size, self.measurement_interval_ms) < 1:
            raise ValueError("concurrency, instances, batch size and measurement interval must be at least 1")


@dataclasses.dataclass(frozen=True)
class Endpoints:
    """Ports of the server Model Analyzer starts (free ones: other servers may hold 8000-8002)."""

    http_port: int
    grpc_port: int
    metrics_port: int


def perf_analyzer_flags(search: Search, input_data: Path) -> dict[str, str | int]:
    """Time windows rather than request counts: on a slow CPU 50 requests per window take long."""
    return {
        "input-data": str(input_data),
        "measurement-mode": "time_windows",
        "measurement-interval": search.measurement_interval_ms,
        "max-trials": search.max_trials,
        "stability-percentage": search.stability_percentage,
    }


def profile_config(
    target: str,
    ensemble: str,
    *,
    repository: Path,
    output_dir: Path,
    input_data: Path,
    search: Search,
    endpoints: Endpoints,
    triton_server_path: str,
    perf_analyzer_path: str,
) -> dict:
    """``model-analyzer profile`` config for one target, everything written under ``output_dir``.

    The classifier gets the brute search over instance counts, max_batch_size (with
    dynamic batching) and concurrency. An ensemble can only be searched in quick mode,
    which searches its composing models together (Model Analyzer >= 1.23).
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, not {target!r}")
    composing = [contract.preprocess_model_name(ensemble), contract.classifier_model_name(ensemble)]
    model = ensemble if target == "ensemble" else contract.classifier_model_name(ensemble)
    flags = perf_analyzer_flags(search, input_data)
    config: dict = {
        "model_repository": str(repository),
        "export_path": str(output_dir),
        "checkpoint_directory": str(output_dir / "checkpoints"),
        "output_model_repository_path": str(output_dir / "output_model_repository"),
        "override_output_model_repository": True,
        "triton_launch_mode": "local",
        "triton_server_path": triton_server_path,
        "triton_output_path": str(output_dir / "tritonserver.log"),
        "triton_http_endpoint": f"localhost:{endpoints.http_port}",
        "triton_grpc_endpoint": f"localhost:{endpoints.grpc_port}",
        "triton_metrics_url": f"http://localhost:{endpoints.metrics_port}/metrics",
        "perf_analyzer_path": perf_analyzer_path,
        "perf_output": True,
        "perf_output_path": str(output_dir / "perf_analyzer.log"),
        "collect_cpu_metrics": True,
        "run_config_search_max_concurrency": search.max_concurrency,
        "run_config_search_max_instance_count": search.max_instances,
        "run_config_search_max_model_batch_size": search.max_batch_size,
        "perf_analyzer_flags": flags,
        "profile_models": {model: {"perf_analyzer_flags": flags, "cpu_only": True}},
        "num_configs_per_model": 3,
        "inference_output_fields": [
            "model_name",
            "batch_size",
            "concurrency",
            "model_config_path",
            "instance_group",
            "max_batch_size",
            "satisfies_constraints",
            "perf_throughput",
            "perf_latency_p99",
            "cpu_used_ram",
        ],
    }
    if target == "ensemble":
        config["run_config_search_mode"] = "quick"
        config["cpu_only_composing_models"] = composing
    if search.latency_budget_ms is not None:
        config["constraints"] = {"perf_latency_p99": {"max": search.latency_budget_ms}}
    return config


def report_config(export_path: Path, config_names: list[str]) -> dict:
    """``model-analyzer report`` config: detailed reports of the given model configs (HTML without wkhtmltopdf)."""
    return {
        "export_path": str(export_path),
        "checkpoint_directory": str(export_path / "checkpoints"),
        "report_model_configs": config_names,
    }
