"""Triton's statistics API, diffed between two snapshots: where the server time went, per composing model.

Works on the JSON of either protocol (gRPC's ``as_json`` gives 64-bit integers as
strings, HTTP gives numbers; absent fields mean zero). Pure functions, no server.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from tritonclf import contract

PHASES = ("queue", "compute_input", "compute_infer", "compute_output")


def _count_ns(entry: Mapping | None) -> tuple[int, int]:
    entry = entry or {}
    return int(entry.get("count", 0)), int(entry.get("ns", 0))


def stats_by_model(statistics: Mapping) -> dict[str, Mapping]:
    """Triton's statistics response -> {model name: its entry} (newest version wins if several)."""
    entries = statistics.get("model_stats", [])
    ordered = sorted(entries, key=lambda e: int(e.get("version") or 0))
    return {entry["name"]: entry for entry in ordered}


def request_counts(statistics: Mapping) -> dict[str, tuple[int, int]]:
    """{model: (successful, failed) requests} of a statistics response."""
    return {
        name: (
            _count_ns(entry.get("inference_stats", {}).get("success"))[0],
            _count_ns(entry.get("inference_stats", {}).get("fail"))[0],
        )
        for name, entry in stats_by_model(statistics).items()
    }


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
