"""Served numbers against the references, and the performance targets: met, missed or not measured. Pure functions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tritonclf_lab.bench.stats import ratio
from tritonclf_lab.bench.transfers import TRANSFERS

# What the served ensemble should reach on the phone-photo mix, client on the same machine: the served
# pipeline is worth running only if it keeps most of the machine's compute and beats the simple loops.
TARGET_SHARE_OF_LIMIT = 0.80
TARGET_LARGE_VS_NAIVE = 3.0
TARGET_C1_P50_VS_INPROCESS = 1.3


def best_level(levels: Sequence[Mapping], protocol: str, subset: str = "mix") -> Mapping | None:
    """The level with the highest throughput for a protocol and image subset; None if there is none."""
    candidates = [lv for lv in levels if lv["protocol"] == protocol and lv.get("subset", "mix") == subset]
    return max(candidates, key=lambda lv: lv["images_per_s"], default=None)


def level_at(levels: Sequence[Mapping], protocol: str, concurrency: int) -> Mapping | None:
    """The mix level of a protocol at one concurrency."""
    return next(
        (
            lv
            for lv in levels
            if lv["protocol"] == protocol and lv["concurrency"] == concurrency and lv.get("subset", "mix") == "mix"
        ),
        None,
    )


def inprocess_run(references: Mapping, batch_size: int) -> Mapping | None:
    """The in-process run at one batch size."""
    return next((run for run in references.get("inprocess", []) if run["batch_size"] == batch_size), None)


def inprocess_reference(references: Mapping) -> Mapping | None:
    """The batched in-process run: what a user would write without a server."""
    runs = references.get("inprocess", [])
    return max(runs, key=lambda run: run["batch_size"], default=None)


def images_per_core_s(run: Mapping) -> float | None:
    """Images per second of CPU the measured side used: server + client for a served level, this process otherwise.

    Unlike images/s it does not drop when other processes take cores, so runs on a
    busy shared machine still compare with the limit's images per core-second.
    """
    cores = (run.get("server_cpu_cores") or 0.0) + (run.get("client_cpu_cores") or 0.0)
    return ratio(run.get("images_per_s"), cores)


def _target(name: str, value: float | None, threshold: float, *, at_most: bool = False) -> dict:
    met = None if value is None else (value <= threshold if at_most else value >= threshold)
    return {"name": name, "value": value, "threshold": threshold, "at_most": at_most, "met": met}


def compare(served: Sequence[Mapping], served_large: Mapping | None, references: Mapping) -> dict:
    """Served numbers over each reference, and the performance targets with met / missed / not measured."""
    limit = references.get("limit") or {}
    inprocess = inprocess_reference(references)
    naive = references.get("naive") or {}
    naive_large = references.get("naive_large") or {}
    single = inprocess_run(references, 1)
    best = {transfer.name: best_level(served, transfer.name) for transfer in TRANSFERS}
    c1 = level_at(served, "grpc", 1)
    grpc_best = (best["grpc"] or {}).get("images_per_s")
    c1_p50 = c1["latency"]["p50_ms"] if c1 else None
    single_p50 = single["batch_latency"]["p50_ms"] if single else None
    large_rate = served_large["images_per_s"] if served_large else None
    comparison = {
        "best": {
            protocol: {"concurrency": level["concurrency"], "images_per_s": level["images_per_s"]} if level else None
            for protocol, level in best.items()
        },
        "served_vs_limit": ratio(grpc_best, limit.get("images_per_s")),
        # The targets stay on plain gRPC; shared memory is the cheaper transfer a same-host client can pick.
        "shm_vs_limit": ratio((best["grpc-shm"] or {}).get("images_per_s"), limit.get("images_per_s")),
        "served_vs_inprocess": ratio(grpc_best, (inprocess or {}).get("images_per_s")),
        "served_vs_naive": ratio(grpc_best, naive.get("images_per_s")),
        "large": {
            "served_images_per_s": large_rate,
            "concurrency": served_large["concurrency"] if served_large else None,
            "naive_images_per_s": naive_large.get("images_per_s"),
            "limit_images_per_s": (limit.get("large") or {}).get("images_per_s"),
            "served_vs_naive": ratio(large_rate, naive_large.get("images_per_s")),
            "served_vs_limit": ratio(large_rate, (limit.get("large") or {}).get("images_per_s")),
        },
        "latency": {"served_c1_p50_ms": c1_p50, "inprocess_single_p50_ms": single_p50},
    }
    comparison["latency"]["ratio"] = ratio(c1_p50, single_p50)
    best_grpc = best["grpc"] or {}
    served_per_core = images_per_core_s(best_grpc)
    comparison["per_core"] = {
        "concurrency": best_grpc.get("concurrency"),
        "served_images_per_core_s": served_per_core,
        "limit_images_per_core_s": limit.get("images_per_core_s"),
        "served_vs_limit": ratio(served_per_core, limit.get("images_per_core_s")),
    }
    comparison["targets"] = [
        _target("served gRPC / limit", comparison["served_vs_limit"], TARGET_SHARE_OF_LIMIT),
        _target("served gRPC / in-process", comparison["served_vs_inprocess"], 1.0),
        _target("served gRPC / naive", comparison["served_vs_naive"], 1.0),
        _target("12 MP served gRPC / naive", comparison["large"]["served_vs_naive"], TARGET_LARGE_VS_NAIVE),
        _target(
            "c=1 p50 / in-process single image",
            comparison["latency"]["ratio"],
            TARGET_C1_P50_VS_INPROCESS,
            at_most=True,
        ),
    ]
    return comparison
