"""From Model Analyzer's results to ``tritonclf build`` options: analyze -> rebuild -> serve.

Model Analyzer writes one row per (model config, concurrency) to
``results/metrics-model-inference.csv`` and every config it tried to
``output_model_repository/<config name>/config.pbtxt``. The best row (highest
throughput among those that satisfy the constraints) names its configs; their
``config.pbtxt`` carry the instance counts, max_batch_size and dynamic batching
that become build options. Pure functions; no Model Analyzer needed.
"""

from __future__ import annotations

import csv
import dataclasses
import shlex
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from tritonclf import contract
from tritonclf.repository.pbtxt import parse

RESULTS_CSV = Path("results") / "metrics-model-inference.csv"
THROUGHPUT = "Throughput (infer/sec)"
LATENCY_P99 = "p99 Latency (ms)"


class ResultError(RuntimeError):
    """Model Analyzer's output is missing or has nothing usable, in one line."""


@dataclasses.dataclass(frozen=True)
class Measurement:
    """One row of Model Analyzer's inference results."""

    model: str
    config_name: str  # the measured model's config (an ensemble's own variant for an ensemble)
    config_names: tuple[str, ...]  # the configs with serving options: the model's, or an ensemble's composing ones
    concurrency: int
    throughput: float  # inferences/s
    latency_p99_ms: float
    satisfies_constraints: bool


def split_config_path(text: str) -> tuple[str, tuple[str, ...]]:
    """``"ens_config_3: pre_config_2, model_config_1"`` -> ``("ens_config_3", ("pre_config_2", "model_config_1"))``.

    That is how Model Analyzer names an ensemble's row; any other model's row is its config name.
    """
    name, _, composing = text.partition(":")
    names = tuple(n.strip() for n in composing.split(",") if n.strip())
    return name.strip(), names or (name.strip(),)


def read_measurements(csv_path: Path) -> list[Measurement]:
    """Every measured row of ``metrics-model-inference.csv``."""
    if not csv_path.is_file():
        raise ResultError(f"no {csv_path}: Model Analyzer measured nothing (see its log)")
    with open(csv_path, newline="") as f:
        rows = [row for row in csv.DictReader(f) if row.get("Model")]
    measurements = []
    for row in rows:
        try:
            config_name, config_names = split_config_path(row["Model Config Path"])
            measurements.append(
                Measurement(
                    model=row["Model"].strip(),
                    config_name=config_name,
                    config_names=config_names,
                    concurrency=int(row["Concurrency"]),
                    throughput=float(row[THROUGHPUT]),
                    latency_p99_ms=float(row[LATENCY_P99]),
                    satisfies_constraints=row.get("Satisfies Constraints", "Yes").strip().lower() != "no",
                )
            )
        except (KeyError, ValueError) as err:
            raise ResultError(f"{csv_path}: unexpected row {dict(row)} ({err})") from None
    return measurements


def averaged(measurements: Iterable[Measurement]) -> list[Measurement]:
    """One row per (config, concurrency): Model Analyzer measures some twice, and on a busy machine they differ."""
    groups: dict[tuple[str, int], list[Measurement]] = {}
    for m in measurements:
        groups.setdefault((m.config_name, m.concurrency), []).append(m)
    return [
        dataclasses.replace(
            rows[0],
            throughput=sum(m.throughput for m in rows) / len(rows),
            latency_p99_ms=sum(m.latency_p99_ms for m in rows) / len(rows),
            satisfies_constraints=all(m.satisfies_constraints for m in rows),
        )
        for rows in groups.values()
    ]


def best(measurements: Iterable[Measurement]) -> Measurement:
    """Highest throughput (repeats averaged) among rows that satisfy the constraints; lower p99 breaks ties."""
    eligible = [m for m in averaged(measurements) if m.satisfies_constraints]
    if not eligible:
        raise ResultError("no measured configuration satisfies the constraints")
    return max(eligible, key=lambda m: (round(m.throughput, 1), -m.latency_p99_ms))


def distinct_configs(measurements: Iterable[Measurement]) -> list[str]:
    """The configurations that were measured, in order of first appearance."""
    return list(dict.fromkeys(m.config_name for m in measurements))


@dataclasses.dataclass(frozen=True)
class ChosenConfig:
    """What one Model Analyzer config says about a model's serving options."""

    instances: int
    max_batch_size: int
    max_queue_delay_microseconds: int
    preferred_batch_sizes: tuple[int, ...]


def read_config(path: Path) -> ChosenConfig:
    """Instances, batching and queue delay of one of Model Analyzer's ``config.pbtxt``."""
    if not path.is_file():
        raise ResultError(f"no {path}: was the output model repository removed?")
    config = parse(path.read_text())
    batching = config.dynamic_batching if config.HasField("dynamic_batching") else None
    return ChosenConfig(
        instances=sum(group.count or 1 for group in config.instance_group) or 1,
        max_batch_size=config.max_batch_size,
        max_queue_delay_microseconds=batching.max_queue_delay_microseconds if batching else 0,
        preferred_batch_sizes=tuple(batching.preferred_batch_size) if batching else (),
    )


def config_role(config_name: str, ensemble: str) -> str:
    """``preprocess`` or ``classifier``: which of our models a Model Analyzer config name belongs to."""
    for role, model in (
        ("preprocess", contract.preprocess_model_name(ensemble)),
        ("classifier", contract.classifier_model_name(ensemble)),
    ):
        if config_name == model or config_name.startswith(f"{model}_config_"):
            return role
    raise ResultError(f"config {config_name!r} belongs to neither model of ensemble {ensemble!r}")


def build_arguments(configs: Mapping[str, ChosenConfig]) -> list[str]:
    """``tritonclf build`` options for the chosen configs (keys: ``preprocess`` and/or ``classifier``).

    Our build has one max_batch_size for both models (the ensemble's must not exceed either):
    with two configs it takes the smaller. Each model keeps its own queue delay.
    """
    if not configs:
        raise ResultError("no configuration to build")
    batch = min(c.max_batch_size for c in configs.values())
    arguments = []
    if "preprocess" in configs:
        preprocess = configs["preprocess"]
        arguments += ["--preprocess-instances", str(preprocess.instances)]
        arguments += ["--max-queue-delay-us", str(preprocess.max_queue_delay_microseconds)]
    if "classifier" in configs:
        classifier = configs["classifier"]
        arguments += ["--classifier-instances", str(classifier.instances)]
        arguments += ["--classifier-queue-delay-us", str(classifier.max_queue_delay_microseconds)]
    arguments += ["--max-batch-size", str(batch)]
    timing = configs.get("classifier") or configs["preprocess"]
    preferred = tuple(size for size in timing.preferred_batch_sizes if size <= batch)
    if preferred:
        arguments += ["--preferred-batch-sizes", ",".join(map(str, preferred))]
    return arguments


def build_command(export: Path, repository: Path, backend: str, arguments: Sequence[str]) -> str:
    """The exact ``tritonclf build`` line a user runs to rebuild with the chosen options."""
    command = ["tritonclf", "build", "--export", str(export), "--repository", str(repository), "--backend", backend]
    return shlex.join([*command, *arguments])
