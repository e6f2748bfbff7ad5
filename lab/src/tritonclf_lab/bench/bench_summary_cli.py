"""One row per model from saved benchmark results: the side-by-side comparison `make bench` ends with.

    python -m clients.bench.summary benchmarks/results/latest-*.json

Each result is one ``clients/benchmark.py`` run (one model, its own server and
references, on the same generated photos). The rows repeat its comparison: the best
served gRPC level against limit, in-process and naive, the 12 MP ratio, the c=1
latency ratio and the server's memory. Pure functions but :func:`main`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from tritonclf.cli_options import fail
from tritonclf_lab.bench.compare import best_level, compare, inprocess_reference
from tritonclf_lab.bench.report import MIB, format_ratio, format_value

HEADERS = (
    "model",
    "served gRPC img/s (c)",
    "limit",
    "in-process",
    "naive",
    "vs limit",
    "vs in-process",
    "vs naive",
    "12 MP vs naive",
    "c=1 p50 ms (vs in-process)",
    "server MiB (peak)",
)


def summary_row(result: Mapping) -> list[str]:
    """The cells of one result's row; "-" where the run did not measure it."""
    references = result.get("references") or {}
    comparison = result.get("comparison") or compare(result["served"], result["served_large"], references)
    best = best_level(result["served"], "grpc") or {}
    latency = comparison["latency"]
    levels = [*result["served"], *([result["served_large"]] if result.get("served_large") else [])]
    rss = [level["server_rss_bytes"] for level in levels if level.get("server_rss_bytes")]
    c1 = latency["served_c1_p50_ms"]
    c1_cell = "-" if c1 is None else f"{c1:.1f} ({format_ratio(latency['ratio'])})"
    best_cell = "-" if not best else f"{best['images_per_s']:.1f} ({best['concurrency']})"
    variant = (result.get("server") or {}).get("variant")
    name = (result.get("server") or {}).get("model") or result["export"]["model_name"]
    return [
        f"{name} ({variant})" if variant else name,
        best_cell,
        format_value((references.get("limit") or {}).get("images_per_s")),
        format_value((inprocess_reference(references) or {}).get("images_per_s")),
        format_value((references.get("naive") or {}).get("images_per_s")),
        format_ratio(comparison["served_vs_limit"]),
        format_ratio(comparison["served_vs_inprocess"]),
        format_ratio(comparison["served_vs_naive"]),
        format_ratio(comparison["large"]["served_vs_naive"]),
        c1_cell,
        format_value(max(rss) / MIB if rss else None, 0),
    ]


def markdown_table(rows: Sequence[Sequence[str]]) -> str:
    """A GitHub table: first column left-aligned, numbers right-aligned."""
    lines = ["| " + " | ".join(HEADERS) + " |", "| --- |" + " ---: |" * (len(HEADERS) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def summary(results: Sequence[Mapping]) -> str:
    """The table, then each run's command and wall time."""
    table = markdown_table([summary_row(result) for result in results])
    commands = [
        f"- {summary_row(result)[0]}: `{' '.join(result['command'])}` ({result['wall_s']:.0f} s)" for result in results
    ]
    return "\n".join([table, "", *commands])


def main(argv: list[str] | None = None) -> int:
    """Print the summary of the given result files; with ``--output``, write it there too."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", type=Path, help="JSON files written by clients/benchmark.py")
    parser.add_argument("--output", type=Path, help="also write the summary (Markdown) here")
    args = parser.parse_args(argv)
    try:
        results = [json.loads(path.read_text()) for path in args.results]
    except (OSError, json.JSONDecodeError) as err:
        return fail("bench-summary", f"cannot read a result: {err}")
    text = summary(results)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
