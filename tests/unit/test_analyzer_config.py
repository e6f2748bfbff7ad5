"""Model Analyzer's profile config: what each target searches, where it writes, what it measures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tritonclf_lab.bench.analyzer_config import Endpoints, Search, profile_config, report_config


def config_for(target: str, search: Search | None = None) -> dict:
    return profile_config(
        target,
        "efficientnet_lite0",
        repository=Path("/r"),
        output_dir=Path("/out") / target,
        input_data=Path("/in.json"),
        search=search or Search(),
        endpoints=Endpoints(18000, 18001, 18002),
        triton_server_path="/venv/bin/tritonserver",
        perf_analyzer_path="/venv/bin/perf_analyzer",
    )


def test_classifier_is_searched_alone_by_brute_search_on_cpu():
    config = config_for("classifier")
    assert list(config["profile_models"]) == ["efficientnet_lite0_model"]
    assert config["profile_models"]["efficientnet_lite0_model"]["cpu_only"] is True
    assert "run_config_search_mode" not in config  # brute, Model Analyzer's default


def test_ensemble_is_searched_in_quick_mode_with_both_composing_models_on_cpu():
    config = config_for("ensemble")
    assert list(config["profile_models"]) == ["efficientnet_lite0"]
    assert config["run_config_search_mode"] == "quick"
    assert config["cpu_only_composing_models"] == ["efficientnet_lite0_preprocess", "efficientnet_lite0_model"]


def test_config_collects_cpu_metrics_uses_our_server_and_free_ports():
    config = config_for("classifier")
    assert config["collect_cpu_metrics"] is True
    assert config["triton_launch_mode"] == "local"
    assert config["triton_server_path"] == "/venv/bin/tritonserver"
    assert config["triton_grpc_endpoint"] == "localhost:18001"
    assert config["triton_metrics_url"] == "http://localhost:18002/metrics"


def test_everything_model_analyzer_writes_stays_under_the_output_dir():
    config = config_for("ensemble")
    for key in ("export_path", "checkpoint_directory", "output_model_repository_path", "triton_output_path"):
        assert config[key].startswith("/out/ensemble"), key


def test_search_limits_and_measurement_windows_reach_model_analyzer_and_perf_analyzer():
    search = Search(max_concurrency=4, max_instances=3, max_batch_size=8, measurement_interval_ms=1500)
    config = config_for("classifier", search)
    assert config["run_config_search_max_concurrency"] == 4
    assert config["run_config_search_max_instance_count"] == 3
    assert config["run_config_search_max_model_batch_size"] == 8
    flags = config["profile_models"]["efficientnet_lite0_model"]["perf_analyzer_flags"]
    assert flags["input-data"] == "/in.json"
    assert flags["measurement-mode"] == "time_windows"
    assert flags["measurement-interval"] == 1500


def test_latency_budget_becomes_a_p99_constraint():
    assert "constraints" not in config_for("classifier")
    config = config_for("classifier", Search(latency_budget_ms=250))
    assert config["constraints"] == {"perf_latency_p99": {"max": 250}}


def test_config_is_json_serializable_so_it_is_valid_yaml():
    json.dumps(config_for("ensemble"))
    json.dumps(report_config(Path("/out"), ["efficientnet_lite0_model_config_1"]))


@pytest.mark.parametrize("target", ["preprocess", "all"])
def test_unknown_target_is_rejected(target):
    with pytest.raises(ValueError, match="target must be"):
        config_for(target)


def test_search_rejects_zero_limits():
    with pytest.raises(ValueError, match="at least 1"):
        Search(max_instances=0)
