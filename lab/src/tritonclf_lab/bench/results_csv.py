"""The benchmark result as CSV: one row per served level and per reference."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping

from tritonclf_lab.bench.compare import images_per_core_s

CSV_COLUMNS = (
    "kind",
    "name",
    "protocol",
    "concurrency",
    "subset",
    "batch_size",
    "images",
    "images_per_s",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "mean_ms",
    "errors",
    "unavailable",
    "other_errors",
    "client_cpu_cores",
    "server_cpu_cores",
    "other_cpu_cores",
    "images_per_core_s",
    "server_rss_bytes",
)


def csv_rows(result: Mapping) -> list[dict]:
    """One row per served level and per reference; :func:`to_csv` keeps the ``CSV_COLUMNS`` of each."""
    rows = []
    levels = [*result.get("served", []), *([result["served_large"]] if result.get("served_large") else [])]
    for level in levels:
        name = f"{level['protocol']} c={level['concurrency']}"
        rows.append({**level, **level["latency"], "kind": "served", "name": name})
    references = result.get("references") or {}
    limit = references.get("limit")
    if limit:
        rows.append({**limit, "kind": "reference", "name": "limit", "subset": "mix"})
        if limit.get("large"):
            rows.append({**limit, **limit["large"], "kind": "reference", "name": "limit", "subset": "large"})
    named = [(f"in-process batch {r['batch_size']}", "mix", r) for r in references.get("inprocess", [])]
    named += [("naive", "mix", references.get("naive")), ("naive", "large", references.get("naive_large"))]
    for name, subset, run in named:
        if run:
            rows.append({**run, **run["batch_latency"], "kind": "reference", "name": name, "subset": subset})
    return rows


def to_csv(result: Mapping) -> str:
    """The CSV text of :func:`csv_rows` (empty cells for what a row does not have)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for entry in csv_rows(result):
        row = {**entry, "images_per_core_s": entry.get("images_per_core_s") or images_per_core_s(entry)}
        writer.writerow({key: "" if row.get(key) is None else row[key] for key in CSV_COLUMNS})
    return buffer.getvalue()
