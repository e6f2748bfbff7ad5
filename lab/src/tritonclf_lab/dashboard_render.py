"""Draw the Grafana dashboard's panels with matplotlib, from the same queries run on a real Prometheus.

No Grafana here: each panel of ``deploy/monitoring/grafana-dashboard.json`` becomes a plot
laid out on the dashboard's own grid, each of its targets a ``query_range`` on Prometheus
with Grafana's variables filled in (``$ensemble``, ``$__rate_interval``), its unit, stacking
and threshold line as the panel says.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

from tritonclf_lab.prometheus_server import PrometheusProcess

MAX_LEGEND = 7


def fill_variables(expr: str, variables: Mapping[str, str]) -> str:
    """Grafana's ``$name`` variables replaced, longest names first."""
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace(f"${name}", variables[name])
    return expr


def legend(form: str, labels: Mapping[str, str]) -> str:
    """A legendFormat like ``{{class}}`` for one series."""
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), form) or str(dict(labels))


def _scale(unit: str) -> tuple[float, str]:
    return {"percentunit": (100.0, "%"), "s": (1000.0, "ms"), "bytes": (1 / 1024, "KiB")}.get(unit, (1.0, ""))


def _curves(panel: dict, prometheus: PrometheusProcess, variables: Mapping[str, str], span: tuple, factor: float):
    start, end, step_s = span
    curves = []
    for target in panel["targets"]:
        expr = fill_variables(target["expr"], variables)
        for series in prometheus.query_range(expr, start, end, step_s):
            points = [(float(t) - start, float(v) * factor) for t, v in series["values"] if v not in ("NaN", "+Inf")]
            if points:
                curves.append((legend(target.get("legendFormat", ""), series["metric"]), points))
    return curves


def _draw_panel(axis, panel: dict, curves: list, *, factor: float, unit: str, heading: str) -> None:
    defaults = panel["fieldConfig"]["defaults"]
    if defaults.get("custom", {}).get("stacking", {}).get("mode") == "normal" and curves:
        times = sorted({t for _, points in curves for t, _ in points})
        stacks = [[dict(points).get(t, 0.0) for t in times] for _, points in curves]
        axis.stackplot([t / 60 for t in times], stacks, labels=[name for name, _ in curves], alpha=0.8)
    else:
        for name, points in curves:
            axis.plot([t / 60 for t, _ in points], [v for _, v in points], label=name, linewidth=1.6)
    threshold = defaults.get("thresholds", {}).get("steps", [{}, {}])[-1].get("value")
    if threshold is not None:
        axis.axhline(threshold * factor, color="red", linestyle="--", linewidth=1, label="alert threshold")
    axis.set_title(panel["title"] + (f"\n[{heading}]" if heading else ""), fontsize=11)
    axis.set_xlabel("minutes")
    if unit:
        axis.set_ylabel(unit)
    axis.grid(alpha=0.3)
    handles, names = axis.get_legend_handles_labels()
    if handles:
        axis.legend(handles[:MAX_LEGEND], [n[:28] for n in names[:MAX_LEGEND]], fontsize=8, loc="upper left")
    if not curves:
        axis.text(0.5, 0.5, "no data", ha="center", va="center", transform=axis.transAxes, color="gray")


def render_dashboard(
    dashboard: Path,
    prometheus: PrometheusProcess,
    *,
    start: float,
    end: float,
    step_s: float,
    variables: Mapping[str, str],
    output: Path,
    title: str = "",
) -> Path:
    """Every panel of the dashboard as one PNG at ``output``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.gridspec import GridSpec

    panels = json.loads(Path(dashboard).read_text())["panels"]
    rows = sorted({p["gridPos"]["y"] for p in panels if p["type"] != "row"})
    row_titles = {p["gridPos"]["y"] + 1: p["title"] for p in panels if p["type"] == "row"}
    figure = plt.figure(figsize=(22, 5.2 * len(rows)), constrained_layout=True)
    grid = GridSpec(len(rows), 24, figure=figure)
    for panel in panels:
        if panel["type"] == "row":
            continue
        pos = panel["gridPos"]
        axis = figure.add_subplot(grid[rows.index(pos["y"]), pos["x"] : pos["x"] + pos["w"]])
        factor, unit = _scale(panel["fieldConfig"]["defaults"].get("unit", ""))
        curves = _curves(panel, prometheus, variables, (start, end, step_s), factor)
        heading = row_titles.get(pos["y"], "") if pos["x"] == 0 else ""
        _draw_panel(axis, panel, curves, factor=factor, unit=unit, heading=heading)
    if title:
        figure.suptitle(title, fontsize=14)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=70)
    plt.close(figure)
    return output
