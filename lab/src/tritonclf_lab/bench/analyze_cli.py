"""Tune the repository with NVIDIA's Model Analyzer, then rebuild it with the best configuration.

    tritonclf analyze --export exports/efficientnet_lite0                 # what `make analyze` runs
    tritonclf analyze --export exports/efficientnet_lite0 --budget-s 600 --targets ensemble --apply
    tritonclf analyze --export exports/efficientnet_lite0 --reuse          # re-read the last run's results

Builds a scratch repository from the export (classifier warmed at batch 1 only, so every
max_batch_size the search sets still loads; queue bounds off, so loads past capacity are
measured rather than rejected), writes perf_analyzer inputs from the photo mix (BYTES
for the ensemble, preprocessed pixels for the classifier), and runs
``model-analyzer profile`` in local mode against the embedded ``tritonserver``: brute
search for the classifier alone, quick search of both composing models for the
ensemble, CPU metrics on, each within its share of ``--budget-s``. Then
``model-analyzer report`` on the best configs, and the ``tritonclf build`` command that
bakes the best one in (run it with ``--apply``). Everything lands in ``--output-dir``.
Needs ``make analyzer-tools`` (Model Analyzer's venv) and ``make perf-tools``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tritonclf.export_metadata import load_metadata
from tritonclf.repository.build import BuildError, build_repository
from tritonclf.repository.models import BuildOptions
from tritonclf.serving.process import ServerStartError, free_port, tritonserver_executable
from tritonclf_lab.bench import perf_input_cli as perf_input
from tritonclf_lab.bench.analyzer_config import TARGETS, Endpoints, Search, profile_config, report_config
from tritonclf_lab.bench.analyzer_results import (
    RESULTS_CSV,
    ChosenConfig,
    Measurement,
    ResultError,
    averaged,
    best,
    build_arguments,
    build_command,
    config_role,
    distinct_configs,
    read_config,
    read_measurements,
)
from tritonclf_lab.bench.analyzer_tools_cli import DEFAULT_VENV, executable
from tritonclf_lab.bench.perf_cli import SweepError, perf_analyzer_path

# After the budget: SIGINT asks Model Analyzer to stop after the current measurement and keep
# its checkpoint; a third SIGINT stops it at once.
GRACE_S = 180.0


class AnalyzeError(RuntimeError):
    """A setup problem or a failed run, in one line."""


def model_analyzer_path(explicit: Path | None) -> str:
    """The given command, else .venv-analyzer's, else one on PATH."""
    for candidate in (explicit, executable(DEFAULT_VENV)):
        if candidate and Path(candidate).is_file():
            return str(Path(candidate).resolve())
    found = shutil.which("model-analyzer")
    if explicit is None and found:
        return found
    raise AnalyzeError("no model-analyzer: run `make analyzer-tools` (or pass --model-analyzer)")


def scratch_options(backend: str, search: Search) -> BuildOptions:
    """The build Model Analyzer starts from: loadable under any config it derives from it.

    Its max_batch_size is the search's largest: quick mode measures the starting config at
    concurrency 2 x max_batch_size, which at our default of 32 takes minutes per window here.
    No prediction metrics: for a classifier outside the Python backend they add a third
    composing model (``NAME_monitor``) that the search and its results know nothing of.
    """
    return BuildOptions(
        backend=backend,
        metrics=False,
        max_batch_size=search.max_batch_size,
        warmup_batch_sizes=(1,),
        max_queue_size=0,
        queue_timeout_microseconds=0,
    )


def write_inputs(export: Path, folder: Path, count: int) -> dict[str, Path]:
    """perf_analyzer input data per target: BYTES photos for the ensemble, their pixels for the classifier."""
    paths = {"ensemble": folder / "ensemble.json", "classifier": folder / "classifier.json"}
    source = ["--generated-mix", str(count)]
    if perf_input.main([*source, "--output", str(paths["ensemble"])]) != 0:
        raise AnalyzeError("could not write the ensemble's input data (see above)")
    if perf_input.main([*source, "--pixels", "--export", str(export), "--output", str(paths["classifier"])]) != 0:
        raise AnalyzeError("could not write the classifier's input data (see above)")
    return paths


def run_model_analyzer(command: list[str], log_path: Path, budget_s: float) -> int:
    """Run one Model Analyzer command, logging to a file; past the budget, stop it gracefully."""
    server_dir = str(Path(tritonserver_executable()).parent)
    # The launcher's folder first: its tritonserver finds this venv's python3 for the stubs.
    env = {**os.environ, "PATH": server_dir + os.pathsep + os.environ.get("PATH", "")}
    with open(log_path, "ab") as log:
        # Its own process group: whatever it leaves behind (perf_analyzer, tritonserver) goes with it.
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=log_path.parent, start_new_session=True
        )
        try:
            return _wait(process, budget_s)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


def _wait(process: subprocess.Popen, budget_s: float) -> int:
    try:
        return process.wait(timeout=budget_s)
    except subprocess.TimeoutExpired:
        print(f"  budget of {budget_s:.0f} s spent: stopping after the current measurement", flush=True)
        process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=GRACE_S)
    except subprocess.TimeoutExpired:
        for _ in range(2):
            process.send_signal(signal.SIGINT)
            time.sleep(1)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def profile(target: str, args: argparse.Namespace, repository: Path, inputs: dict[str, Path], budget_s: float) -> Path:
    """``model-analyzer profile`` for one target; returns its export path."""
    output = args.output_dir / target
    if output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True)
    config = profile_config(
        target,
        args.name,
        repository=repository.resolve(),
        output_dir=output.resolve(),
        input_data=inputs[target].resolve(),
        search=args.search,
        endpoints=Endpoints(free_port(), free_port(), free_port()),
        triton_server_path=tritonserver_executable(),
        perf_analyzer_path=perf_analyzer_path(args.perf_analyzer),
    )
    config_path = output / "profile.yaml"
    config_path.write_text("# written by tritonclf analyze (JSON is YAML)\n" + json.dumps(config, indent=2) + "\n")
    command = [args.model_analyzer, "profile", "-f", str(config_path.resolve())]
    print(
        f"{target}: model-analyzer profile (log: {output / 'model-analyzer.log'}, budget {budget_s:.0f} s)", flush=True
    )
    code = run_model_analyzer(command, output / "model-analyzer.log", budget_s)
    if not (output / RESULTS_CSV).is_file():
        raise AnalyzeError(
            f"{target}: Model Analyzer wrote no results (exit {code}; see {output / 'model-analyzer.log'})"
        )
    return output


def report(output: Path, configs: list[str], model_analyzer: str) -> None:
    """``model-analyzer report``: detailed reports of the top configs (failures warn: the results stand)."""
    config_path = output / "report.yaml"
    config_path.write_text(json.dumps(report_config(output.resolve(), configs), indent=2) + "\n")
    code = run_model_analyzer([model_analyzer, "report", "-f", str(config_path.resolve())], output / "report.log", 600)
    if code != 0:
        print(f"warning: model-analyzer report exited {code} (see {output / 'report.log'})", file=sys.stderr)


def summarize(target: str, output: Path, name: str) -> tuple[Measurement, list[str], list[str]]:
    """Best measurement, the build options it implies, and a table of every configuration measured."""
    measurements = read_measurements(output / RESULTS_CSV)
    chosen = best(measurements)
    repository = output / "output_model_repository"

    def serving(names: tuple[str, ...]) -> dict[str, ChosenConfig]:
        return {config_role(n, name): read_config(repository / n / "config.pbtxt") for n in names}

    lines = [
        f"| {target} config | instances, max batch | best infer/s (repeats averaged) | at concurrency | p99 ms |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for config in distinct_configs(measurements):
        top = max((m for m in averaged(measurements) if m.config_name == config), key=lambda m: m.throughput)
        shape = "; ".join(f"{role} {c.instances}, {c.max_batch_size}" for role, c in serving(top.config_names).items())
        mark = " **best**" if config == chosen.config_name else ""
        row = f"| {config}{mark} | {shape} | {top.throughput:.1f} | {top.concurrency} | {top.latency_p99_ms:.1f} |"
        lines.append(row)
    configs = serving(chosen.config_names)
    return chosen, build_arguments(configs), lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    defaults = Search()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--export", type=Path, required=True, help="folder with model.onnx and model.json")
    add("--name", help="ensemble name (default: the exported model's name)")
    add(
        "--backend",
        choices=("python-ort", "onnx"),
        default="python-ort",
        help="classifier backend (onnx needs NVIDIA's tritonserver; default: %(default)s)",
    )
    add("--targets", default=",".join(TARGETS), help="classifier, ensemble or both (default: %(default)s)")
    add("--budget-s", type=float, default=1200, help="wall time for all profiles, split evenly (default: %(default)s)")
    add("--max-concurrency", type=int, default=defaults.max_concurrency, help="default: %(default)s")
    add("--max-instances", type=int, default=defaults.max_instances, help="default: %(default)s")
    add("--max-batch-size", type=int, default=defaults.max_batch_size, help="search's largest (default: %(default)s)")
    add("--measurement-ms", type=int, default=defaults.measurement_interval_ms, help="default: %(default)s")
    add("--latency-budget-ms", type=float, help="p99 constraint (default: none, throughput only)")
    add("--count", type=int, default=10, help="photos in the generated mix (default: %(default)s)")
    add("--output-dir", type=Path, default=Path("benchmarks/analyzer"), help="default: %(default)s")
    add(
        "--repository", type=Path, default=Path("model_repository"), help="what --apply rebuilds (default: %(default)s)"
    )
    add("--apply", action="store_true", help="rebuild --repository with the best configuration")
    add("--reuse", action="store_true", help="skip profiling: read the results already in --output-dir")
    add("--model-analyzer", type=Path, help=f"command (default: {executable(DEFAULT_VENV)}, then PATH)")
    add("--perf-analyzer", help="binary (default: this venv's, then PATH)")
    args = parser.parse_args(argv)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if not args.targets or set(args.targets) - set(TARGETS):
        parser.error(f"--targets takes {' and/or '.join(TARGETS)}, not {','.join(args.targets)!r}")
    try:
        args.search = Search(
            max_concurrency=args.max_concurrency,
            max_instances=args.max_instances,
            max_batch_size=args.max_batch_size,
            measurement_interval_ms=args.measurement_ms,
            latency_budget_ms=args.latency_budget_ms,
        )
    except ValueError as err:
        parser.error(str(err))
    return args


def analyze(args: argparse.Namespace) -> list[str]:
    """Profile (unless reusing), report, summarize; returns the build options of the best configuration."""
    args.output_dir.mkdir(parents=True, exist_ok=True)
    if not args.reuse:
        args.model_analyzer = model_analyzer_path(args.model_analyzer)
        repository = args.output_dir / "repository"
        built = build_repository(args.export, repository, scratch_options(args.backend, args.search))
        print(f"scratch repository {repository}: " + ", ".join(f"{b.name}/{b.version}" for b in built))
        inputs = write_inputs(args.export, args.output_dir / "inputs", args.count)
        budget_s = args.budget_s / len(args.targets)
        for target in args.targets:
            output = profile(target, args, repository, inputs, budget_s)
            top = best(read_measurements(output / RESULTS_CSV))
            report(output, [top.config_name], args.model_analyzer)
    summary, chosen_arguments = [], {}
    for target in args.targets:
        chosen, arguments, table = summarize(target, args.output_dir / target, args.name)
        command = build_command(args.export, args.repository, args.backend, arguments)
        summary += [
            *table,
            "",
            f"{target}: best {chosen.throughput:.1f} infer/s at concurrency {chosen.concurrency}, "
            f"p99 {chosen.latency_p99_ms:.1f} ms; rebuild with:",
            "",
            f"    {command}",
            "",
        ]
        chosen_arguments[target] = arguments
    text = "\n".join(summary)
    (args.output_dir / "summary.md").write_text(text)
    print(text)
    # The ensemble's result includes the preprocessing: it is what clients get, so it wins.
    return chosen_arguments.get("ensemble") or chosen_arguments["classifier"]


def main(argv: list[str] | None = None) -> int:
    """Analyze; with --apply, rebuild the repository with the best configuration."""
    args = parse_args(argv)
    try:
        args.name = args.name or load_metadata(args.export / "model.json").ensemble_name
        arguments = analyze(args)
    except (AnalyzeError, ResultError, SweepError, BuildError, ServerStartError, FileNotFoundError, ValueError) as err:
        print(f"analyze: error: {err}", file=sys.stderr)
        return 1
    if not args.apply:
        return 0
    from tritonclf.repository import build_cli

    build_args = ["--export", str(args.export), "--repository", str(args.repository), "--backend", args.backend]
    return build_cli.main([*build_args, "--name", args.name, *arguments])


if __name__ == "__main__":
    sys.exit(main())
