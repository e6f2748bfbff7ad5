"""Per-epoch metrics files and the loss/accuracy curves of a run.

Usage::

    write_metrics(history, out)     # out/metrics.csv, out/metrics.json (one row per epoch)
    plot_curves(history, out / "curves.png")
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from tritonclf.files import write_atomic


def write_metrics(history: list[dict], out: Path) -> None:
    """Rewrite ``metrics.csv`` and ``metrics.json`` with every epoch so far (atomically)."""
    if not history:
        return
    columns = list(dict.fromkeys(key for row in history for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    write_atomic(out / "metrics.csv", buffer.getvalue())
    write_atomic(out / "metrics.json", json.dumps(history, indent=1) + "\n")


def plot_curves(history: list[dict], path: Path) -> None:
    """Loss and top-1 per epoch, train and validation, in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    figure, (loss_axis, acc_axis) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for axis, key, title in ((loss_axis, "loss", "loss"), (acc_axis, "top1", "top-1 accuracy")):
        axis.plot(epochs, [row[f"train_{key}"] for row in history], marker="o", label="train")
        axis.plot(epochs, [row[f"val_{key}"] for row in history], marker="o", label="validation")
        axis.set_xlabel("epoch")
        axis.set_title(title)
        axis.grid(alpha=0.3)
        axis.legend()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    write_atomic(path, buffer.getvalue())
