"""Plain-text report of a benchmark result: the side-by-side table, the headline ratios, server time per model.

Pure functions over the result dictionary the benchmark writes as JSON, so a saved
result can be re-reported and every number in the tables is in the file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tritonclf_lab.bench.compare import images_per_core_s, inprocess_reference
from tritonclf_lab.bench.stats import ratio
from tritonclf_lab.bench.transfers import TRANSFERS

MIB = 1024 * 1024
# Cores used during a run by the benchmark process, the server's processes, and everything else.
CPU_KEYS = ("client_cpu_cores", "server_cpu_cores", "other_cpu_cores")


def format_value(value: float | int | None, digits: int = 1) -> str:
    """A table cell: fixed decimals for floats, "-" for missing."""
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def format_ratio(value: float | None) -> str:
    """``1.23x`` or "-"."""
    return "-" if value is None else f"{value:.2f}x"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain-text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(cell).ljust(width) if i == 0 else str(cell).rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(row) for row in rows)])


THROUGHPUT_HEADERS = (
    "setup",
    "images/s",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "errors",
    "unavail",
    "client cpu",
    "server cpu",
    "other cpu",
    "img/core-s",
    "server MiB",
    "vs limit",
    "vs in-proc",
    "vs naive",
)


def _served_row(level: Mapping, references: Mapping) -> list[str]:
    large = level.get("subset") == "large"
    limit = references.get("limit") or {}
    limit_rate = (limit.get("large") or {}).get("images_per_s") if large else limit.get("images_per_s")
    naive = references.get("naive_large" if large else "naive") or {}
    inprocess = None if large else (inprocess_reference(references) or {}).get("images_per_s")
    latency = level["latency"]
    rss = level.get("server_rss_bytes")
    return [
        f"served {level['protocol']} c={level['concurrency']}" + (" 12MP" if large else ""),
        format_value(level["images_per_s"]),
        *(format_value(latency[key]) for key in ("p50_ms", "p90_ms", "p99_ms")),
        str(level["other_errors"]),
        str(level["unavailable"]),
        *(format_value(level.get(key), 2) for key in CPU_KEYS),
        format_value(images_per_core_s(level)),
        format_value(rss / MIB, 0) if rss else "-",
        format_ratio(ratio(level["images_per_s"], limit_rate)),
        format_ratio(ratio(level["images_per_s"], inprocess)),
        format_ratio(ratio(level["images_per_s"], naive.get("images_per_s"))),
    ]


def _reference_row(name: str, run: Mapping, rate: float | None, latency: Mapping | None = None) -> list[str]:
    latency = latency or {}
    return [
        name,
        format_value(rate),
        *(format_value(latency.get(key)) for key in ("p50_ms", "p90_ms", "p99_ms")),
        "",
        "",
        *(format_value(run.get(key), 2) if key != "server_cpu_cores" else "" for key in CPU_KEYS),
        format_value(run.get("images_per_core_s") or images_per_core_s(run)),
        *("" for _ in THROUGHPUT_HEADERS[11:]),
    ]


def throughput_table(served: Sequence[Mapping], served_large: Mapping | None, references: Mapping) -> str:
    """Every served level and every reference: images/s, latency, errors, and served over each reference."""
    rows = [_served_row(level, references) for level in served]
    if served_large:
        rows.append(_served_row(served_large, references))
    limit = references.get("limit")
    if limit:
        name = f"limit ({limit['cores']} cores x {limit['images_per_core_s']:.1f}/core-s)"
        rows.append(_reference_row(name, limit, limit["images_per_s"]))
        if limit.get("large"):
            rows.append(_reference_row("limit 12MP", {**limit, **limit["large"]}, limit["large"]["images_per_s"]))
    named = [(f"in-process batch {run['batch_size']}", run) for run in references.get("inprocess", [])]
    named += [("naive (cv2, batch 1)", references.get("naive")), ("naive 12MP", references.get("naive_large"))]
    for name, run in named:
        if run:
            rows.append(_reference_row(name, run, run["images_per_s"], run["batch_latency"]))
    return format_table(THROUGHPUT_HEADERS, rows)


def _mark(target: Mapping) -> str:
    if target["met"] is None:
        return "not measured"
    sign = "<=" if target["at_most"] else ">="
    return f"{'MET' if target['met'] else 'MISSED'} (target {sign} {target['threshold']:.2f})"


def comparison_lines(comparison: Mapping) -> list[str]:
    """The headline: best served gRPC against each reference, the 12 MP line, the c=1 latency line."""
    lines = []
    best = comparison["best"].get("grpc")
    if best:
        lines.append(
            f"served gRPC best {best['images_per_s']:.1f} images/s (c={best['concurrency']}): "
            f"{format_ratio(comparison['served_vs_limit'])} limit, "
            f"{format_ratio(comparison['served_vs_inprocess'])} in-process, "
            f"{format_ratio(comparison['served_vs_naive'])} naive"
        )
    for transfer in TRANSFERS[1:]:  # the other transfers, each against the limit only where it is compared
        other = comparison["best"].get(transfer.name)
        if other:
            against = f": {format_ratio(comparison.get('shm_vs_limit'))} limit" if transfer.shared_memory else ""
            lines.append(
                f"served {transfer.label} best {other['images_per_s']:.1f} images/s (c={other['concurrency']}){against}"
            )
    large = comparison["large"]
    if large["served_images_per_s"] is not None:
        lines.append(
            f"12 MP only: served gRPC c={large['concurrency']} {large['served_images_per_s']:.1f} images/s vs naive "
            f"{format_value(large['naive_images_per_s'])} = {format_ratio(large['served_vs_naive'])} "
            f"(limit {format_value(large['limit_images_per_s'])}, {format_ratio(large['served_vs_limit'])})"
        )
    latency = comparison["latency"]
    if latency["ratio"] is not None:
        lines.append(
            f"c=1 p50: served gRPC {latency['served_c1_p50_ms']:.1f} ms vs in-process single image "
            f"{latency['inprocess_single_p50_ms']:.1f} ms = {format_ratio(latency['ratio'])}"
        )
    per_core = comparison.get("per_core") or {}
    if per_core.get("served_vs_limit") is not None:
        lines.append(
            f"per core (whatever else runs on the machine): served gRPC c={per_core['concurrency']} "
            f"{per_core['served_images_per_core_s']:.1f} images per core-second of server+client CPU = "
            f"{format_ratio(per_core['served_vs_limit'])} the limit's {per_core['limit_images_per_core_s']:.1f}"
        )
    lines.append("targets:")
    for target in comparison["targets"]:
        lines.append(f"  {target['name']:<36} {format_ratio(target['value']):>7}  {_mark(target)}")
    return lines


def timing_table(timings: Sequence[Mapping]) -> str:
    """Where the server time goes at one level: per composing model, averages per request in ms."""
    headers = [
        "model",
        "requests",
        "executions",
        "avg batch",
        "in model",
        "queue",
        "input",
        "infer",
        "output",
        "infer/img",
    ]
    keys = ("request_ms", "queue_ms", "compute_input_ms", "compute_infer_ms", "compute_output_ms", "infer_ms_per_image")
    rows = [
        [
            t["name"],
            str(t["requests"]),
            str(t["executions"]),
            format_value(ratio(t["inferences"], t["executions"]), 2),
            *(format_value(t[key], 2) for key in keys),
        ]
        for t in timings
    ]
    return format_table(headers, rows)


def outside_server(level: Mapping) -> str | None:
    """One line: mean latency at the client split into time inside Triton's ensemble and time outside it."""
    client_ms = level["latency"]["mean_ms"]
    ensemble = level["server_stats"][0] if level["server_stats"] else None
    if client_ms is None or ensemble is None or ensemble["request_ms"] is None:
        return None
    inside_ms = ensemble["request_ms"]
    return (
        f"mean latency {client_ms:.2f} ms at the client = {inside_ms:.2f} ms inside the ensemble "
        f"{client_ms - inside_ms:+.2f} ms outside it (protocol, serialization, client)"
    )


def reference_breakdown(references: Mapping) -> str:
    """Time per image of each reference, split into decode+preprocess and ONNX Runtime."""
    headers = ["reference", "images", "decode ms/img", "onnx ms/img"]
    rows = []
    limit = references.get("limit")
    if limit:
        rows.append(
            [
                "limit (CPU time, 1 thread)",
                "-",
                format_value(limit["decode_cpu_ms_per_image"], 2),
                format_value(limit["infer_cpu_ms_per_image"], 2),
            ]
        )
        for label, cpu_ms in limit["decode_cpu_ms_by_size"].items():
            rows.append([f"  decode {label}", "-", format_value(cpu_ms, 2), ""])
    runs = [(f"in-process batch {r['batch_size']}", r) for r in references.get("inprocess", [])]
    runs += [(name, references.get(key)) for key, name in (("naive", "naive"), ("naive_large", "naive 12MP"))]
    for name, run in runs:
        if run:
            rows.append(
                [
                    name,
                    str(run["images"]),
                    format_value(run["decode_ms_per_image"], 2),
                    format_value(run["infer_ms_per_image"], 2),
                ]
            )
    return format_table(headers, rows)


def mix_line(images: Mapping) -> str:
    """``40 images (20 640x480 ~90 KB, ...), 10 EXIF-rotated``."""
    parts = [
        f"{info['count']} x {label} ({info['mean_bytes'] / 1024:.0f} KiB, {info['bits_per_pixel']:.2f} bits/px)"
        for label, info in images["sizes"].items()
    ]
    return f"{images['count']} images: {', '.join(parts)}; {images['exif_rotated']} with EXIF orientation"
