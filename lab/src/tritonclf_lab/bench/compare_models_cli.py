r"""The article's model table, measured: size and served speed of four architectures on this machine.

    tritonclf compare-models                                   # writes docs/MODELS.md and docs/models.png
    tritonclf compare-models --models mobilenetv3_large_100,resnet50 --duration-s 5

Each model is exported with untrained weights (seed 0: no offline ImageNet weights exist
for most of them, and speed and size do not depend on the values), built into its own
repository with the default python-ort classifier, served alone by the embedded
tritonserver, and measured at one request in flight on 640x480 JPEGs: images/s, p50
latency, and the peak resident memory of the server and its backend stubs. Accuracy is
not measured: the weights are random.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from tritonclf.files import write_atomic

# The article's table, row by row, as timm names them.
ARTICLE_MODELS = {
    "mobilenetv3_large_100": "MobileNetV3",
    "efficientnet_b0": "EfficientNet-B0",
    "resnet50": "ResNet-50",
    "vit_base_patch16_224": "ViT-B/16",
}
# What the article says instead of numbers.
ARTICLE_WORDS = {
    "mobilenetv3_large_100": ("Very Fast", "Low"),
    "efficientnet_b0": ("Fast", "Low"),
    "resnet50": ("Medium", "Medium"),
    "vit_base_patch16_224": ("Slow", "High"),
}
MIX = (((640, 480), 1.0),)


@dataclasses.dataclass(frozen=True)
class ModelRow:
    """One model's numbers."""

    model: str
    parameters: int
    onnx_bytes: int
    images_per_s: float
    p50_ms: float | None
    peak_server_rss_bytes: int | None
    server_cpu_cores: float | None = None  # cores the server tree got during the run: low means a busy machine


class PeakRss:
    """Samples the server tree's resident memory in the background; ``peak`` is the largest seen."""

    def __init__(self, pid: int, interval_s: float = 0.2):
        from tritonclf_lab.bench.procmem import tree_rss_bytes

        self._sample = lambda: tree_rss_bytes(pid)
        self._interval_s = interval_s
        self._stop = threading.Event()
        self.peak = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample() or 0)
            self._stop.wait(self._interval_s)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def measure_model(
    name: str, workdir: Path, *, duration_s: float, warmup_s: float, ready_timeout_s: float = 600.0
) -> ModelRow:
    """Export (once), build, serve alone and measure one architecture."""
    import timm

    from tritonclf.export_metadata import load_metadata
    from tritonclf.repository.build import BuildOptions, build_repository
    from tritonclf.samples import sample_photos
    from tritonclf.serving.process import TritonProcess
    from tritonclf.training.torch2onnx import export
    from tritonclf_lab.bench.images import generate_mix
    from tritonclf_lab.bench.served import measure_sweep, resolve_endpoint

    export_dir = workdir / "exports" / name
    if not (export_dir / "model.json").is_file():
        print(f"{name}: exporting (random weights)", flush=True)
        export(name, export_dir, random_weights=True)
    metadata = load_metadata(export_dir / "model.json")
    parameters = sum(p.numel() for p in timm.create_model(name).parameters())
    repository = workdir / "repositories" / name
    build_repository(export_dir, repository, BuildOptions(name=name))
    images = generate_mix([p.read_bytes() for p in sample_photos()], MIX, count=20)
    # ViT-B/16's warmup (batch 1 and 32 on each instance) alone can take minutes on a busy CPU.
    log = workdir / f"{name}.tritonserver.log"
    with TritonProcess(repository, log_path=log, ready_timeout_s=ready_timeout_s) as server:
        endpoint = resolve_endpoint(server.grpc_url, "grpc", name)
        with PeakRss(server.process.pid) as peak:
            (level,) = measure_sweep(
                endpoint, images, [1], duration_s=duration_s, warmup_s=warmup_s, server_pid=server.process.pid
            )
    return ModelRow(
        model=name,
        parameters=parameters,
        onnx_bytes=(export_dir / metadata.onnx_filename).stat().st_size,
        images_per_s=level["images_per_s"],
        p50_ms=level["latency"]["p50_ms"],
        peak_server_rss_bytes=peak.peak or None,
        server_cpu_cores=level.get("server_cpu_cores"),
    )


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:,.0f}"


def markdown_table(rows: Sequence[ModelRow], note: str) -> str:
    """The table as Markdown, with the article's words beside the numbers."""
    lines = [
        "| Model | timm name | Parameters | ONNX (MiB) | Served images/s (c=1) | p50 (ms) | Peak server memory (MiB) "
        "| Server cores used | Article: latency / memory |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        words = " / ".join(ARTICLE_WORDS.get(row.model, ("", "")))
        p50 = "-" if row.p50_ms is None else f"{row.p50_ms:.1f}"
        cores = "-" if row.server_cpu_cores is None else f"{row.server_cpu_cores:.2f}"
        lines.append(
            f"| {ARTICLE_MODELS.get(row.model, row.model)} | `{row.model}` | {row.parameters / 1e6:.1f} M "
            f"| {_mib(row.onnx_bytes)} | {row.images_per_s:.1f} | {p50} | {_mib(row.peak_server_rss_bytes)} "
            f"| {cores} | {words} |"
        )
    return "\n".join(lines) + "\n\n" + note + "\n"


def plot(rows: Sequence[ModelRow], path: Path) -> None:
    """Images/s, p50 and peak memory side by side, one bar per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [ARTICLE_MODELS.get(r.model, r.model) for r in rows]
    series = (
        ("served images/s (c=1)", [r.images_per_s for r in rows]),
        ("p50 latency (ms)", [r.p50_ms or 0.0 for r in rows]),
        ("peak server memory (MiB)", [(r.peak_server_rss_bytes or 0) / 2**20 for r in rows]),
    )
    figure, axes = plt.subplots(1, len(series), figsize=(13, 3.6))
    for axis, (title, values) in zip(axes, series, strict=True):
        axis.bar(labels, values, color="#4c72b0")
        axis.set_title(title)
        axis.tick_params(axis="x", labelrotation=20)
    figure.suptitle("Random-weight exports served on the embedded Triton (CPU, shared 2-core machine)")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    write_atomic(path, buffer.getvalue())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(ARTICLE_MODELS), help="timm names, comma-separated")
    parser.add_argument("--workdir", type=Path, default=Path("benchmarks/compare-models"), help="exports, repos, logs")
    parser.add_argument("--output-dir", type=Path, default=Path("docs"), help="MODELS.md and models.png go here")
    parser.add_argument("--duration-s", type=float, default=10.0, help="measured seconds per model")
    parser.add_argument("--warmup-s", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument("--note", default="", help="a line about the machine, added under the table")
    parser.add_argument(
        "--only-missing", action="store_true", help="measure only models without a row in WORKDIR/rows/ yet"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Measure every model, then write the table and the plot."""
    args = parse_args(argv)
    rows = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        saved = args.workdir / "rows" / f"{name}.json"
        if args.only_missing and saved.is_file():
            rows.append(ModelRow(**json.loads(saved.read_text())))
            continue
        try:
            rows.append(measure_model(name, args.workdir, duration_s=args.duration_s, warmup_s=args.warmup_s))
        except Exception as err:  # one model failing (unknown name, server start) must not lose the others
            print(f"compare-models: {name}: {' '.join(str(err).split())[:300]}", file=sys.stderr)
            continue
        write_atomic(saved, json.dumps(dataclasses.asdict(rows[-1])) + "\n")
        print(f"{name}: {rows[-1]}", flush=True)
    if not rows:
        return 1
    note = (
        "Untrained weights (speed and size only), default python-ort repository, one request in flight, "
        f"640x480 JPEGs, {args.duration_s:g} s per model. {args.note}"
    ).strip()
    write_atomic(args.output_dir / "MODELS.md", "# The article's models, measured\n\n" + markdown_table(rows, note))
    plot(rows, args.output_dir / "models.png")
    print(f"wrote {args.output_dir / 'MODELS.md'} and {args.output_dir / 'models.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
