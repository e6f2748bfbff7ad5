"""The lab's jobs, in the ``tritonclf`` command's format: subcommand -> (module with main(argv), help)."""

from __future__ import annotations

JOBS: dict[str, tuple[str, str]] = {
    # benchmarks
    "bench": ("tritonclf_lab.bench.bench_cli", "served vs limit, in-process and naive on a phone-photo mix"),
    "bench-summary": ("tritonclf_lab.bench.bench_summary_cli", "one row per model from benchmark JSON files"),
    "bench-metric-calls": (
        "tritonclf_lab.bench.bench_metric_calls_cli",
        "CPU per custom-metric call in a Python-backend model",
    ),
    "bench-ab": (
        "tritonclf_lab.bench.bench_ab_cli",
        "two builds of one export served side by side, measured in turns (metrics on/off, cache on/off)",
    ),
    "bench-train": ("tritonclf_lab.bench_train_cli", "training images/s per strategy on this machine"),
    "compare-models": (
        "tritonclf_lab.bench.compare_models_cli",
        "the article's four models: parameters, ONNX size, served images/s, p50, memory",
    ),
    "perf": ("tritonclf_lab.bench.perf_cli", "perf_analyzer sweep on the ensemble and the classifier"),
    "perf-input": ("tritonclf_lab.bench.perf_input_cli", "perf_analyzer --input-data JSON from photos"),
    "perf-tools": ("tritonclf_lab.bench.perf_tools_cli", "put perf_analyzer 2.41.1 next to this Python"),
    "analyze": (
        "tritonclf_lab.bench.analyze_cli",
        "Model Analyzer's search of the classifier and ensemble -> build options",
    ),
    "analyzer-tools": ("tritonclf_lab.bench.analyzer_tools_cli", "install Model Analyzer into .venv-analyzer"),
    "monitoring-demo": (
        "tritonclf_lab.monitoring_demo_cli",
        "serve, scrape with Prometheus, normal then skewed traffic: the dashboard picture and the monitor's output",
    ),
    # long runs
    "soak": ("tritonclf_lab.soak_cli", "soak the real server at saturation with good and hostile images"),
    "fuzz": ("tritonclf_lab.fuzz_cli", "fuzz the preprocessing with hypothesis"),
    "measure-decode": ("tritonclf_lab.measure_decode_cli", "time the decode + resize on photo sizes"),
    "gpu-kit": ("tritonclf_lab.gpu_kit.gpu_kit_cli", "gpu-kit/: Triton, numpy, models, run.sh for a bare GPU host"),
}
