"""Throughput vs latency PNG: one curve per protocol over the concurrency sweep, the references as lines."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tritonclf_lab.bench.compare import inprocess_reference
from tritonclf_lab.bench.transfers import TRANSFERS


def plot_throughput_latency(result: Mapping, path: Path) -> Path:
    """Write the plot of a benchmark result to ``path``; needs matplotlib (the train/dev extras)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 5), dpi=120)
    for protocol, color in ((t.name, t.color) for t in TRANSFERS):
        levels = sorted(
            (
                lv
                for lv in result.get("served", [])
                if lv["protocol"] == protocol and lv["latency"]["p50_ms"] is not None
            ),
            key=lambda lv: lv["concurrency"],
        )
        if not levels:
            continue
        rates = [lv["images_per_s"] for lv in levels]
        axis.plot(rates, [lv["latency"]["p99_ms"] for lv in levels], "o-", color=color, label=f"{protocol} p99")
        axis.plot(
            rates,
            [lv["latency"]["p50_ms"] for lv in levels],
            "o--",
            color=color,
            alpha=0.5,
            label=f"{protocol} p50",
        )
        for level in levels:
            axis.annotate(
                f"c={level['concurrency']}",
                (level["images_per_s"], level["latency"]["p99_ms"]),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=7,
            )
    references = result.get("references") or {}
    lines = [
        ("limit", (references.get("limit") or {}).get("images_per_s"), "black"),
        ("in-process", (inprocess_reference(references) or {}).get("images_per_s"), "tab:green"),
        ("naive", (references.get("naive") or {}).get("images_per_s"), "tab:red"),
    ]
    for name, rate, color in lines:
        if rate:
            axis.axvline(rate, color=color, linestyle=":", linewidth=1.2, label=f"{name} {rate:.0f}/s")
    axis.set_xlabel("throughput (images/s)")
    axis.set_ylabel("latency (ms)")
    axis.set_title(
        f"{result.get('server', {}).get('model', 'model')}: served vs references ({result['images']['count']} images)"
    )
    axis.set_xlim(left=0)
    axis.set_ylim(bottom=0)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="best")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
