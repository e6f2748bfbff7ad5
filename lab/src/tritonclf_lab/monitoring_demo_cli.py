"""Serve, scrape with a real Prometheus, send normal then skewed traffic; draw the dashboard and run the monitor.

    tritonclf monitoring-demo --export exports/efficientnet_lite0 --output docs/dashboard.png

What docs/dashboard.png and the monitor output in the README come from: the export (copied)
gets a reference recorded on 200 crops of the sample photos, is built and served; Prometheus
scrapes it every second with deploy/monitoring/alerts.yaml (``for:`` shortened to
``--alert-for-s``; the response cache on). For ``--phase-s`` the traffic is drawn like the
reference, with a repeated upload in eleven and a bad input in forty-four; then for as long
it is skewed (coffee and rocket crops only, a third of them washed out). ``tritonclf monitor``
judges each phase (``--state``) and the last one through Prometheus; the dashboard's panels
are drawn from Prometheus over the whole run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tritonclf import contract
from tritonclf.client.triton_client import ClassifierClient, InferenceFailed
from tritonclf.export_metadata import load_metadata
from tritonclf.monitoring import monitor_cli
from tritonclf.repository.build import BuildOptions, build_repository
from tritonclf.serving.process import TritonProcess
from tritonclf.training.validation_reference import record_reference, summary
from tritonclf_lab.bad_images import BAD_INPUTS
from tritonclf_lab.dashboard_render import render_dashboard
from tritonclf_lab.drift_images import send, stream
from tritonclf_lab.prometheus_server import PrometheusProcess

ROOT = Path(__file__).resolve().parents[3]
MONITORING = ROOT / "deploy" / "monitoring"
BAD = [bad for bad in BAD_INPUTS if bad.name in ("html", "truncated-jpeg", "empty", "tiff", "base64-url-quoted")]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--export", type=Path, default=Path("exports/efficientnet_lite0"), help="default: %(default)s")
    parser.add_argument("--phase-s", type=float, default=150.0, help="seconds of each phase (default: %(default)s)")
    parser.add_argument("--alert-for-s", type=float, default=30.0, help="the rules' for: (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=2, help="requests in flight (default: %(default)s)")
    parser.add_argument("--output", type=Path, default=Path("docs/dashboard.png"), help="default: %(default)s")
    parser.add_argument("--workdir", type=Path, help="keep the repository, logs and Prometheus data here")
    return parser.parse_args(argv)


def prepare_export(export: Path, workdir: Path) -> Path:
    """A copy of the export with a reference on 200 crops of the sample photos."""
    copy = workdir / "export"
    copy.mkdir(parents=True, exist_ok=True)
    metadata = load_metadata(export / contract.METADATA_FILENAME)
    for name in (contract.METADATA_FILENAME, metadata.onnx_filename, metadata.state_dict_filename):
        if name:
            shutil.copy(export / name, copy / name)
    paths = []
    for i, (_, data) in enumerate(stream(200, seed=0)):
        path = workdir / "validation" / f"{i:03d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        paths.append(path)
    print(summary(record_reference(copy, paths, source="200 crops of the sample photos")))
    return copy


def traffic(server: TritonProcess, model: str, seconds: float, *, skewed: bool, concurrency: int) -> int:
    """Send for ``seconds``: chunks of 20 new crops and 2 repeated uploads, a bad input every other chunk."""
    client = ClassifierClient(server.grpc_url, protocol="grpc", model=model, timeout_s=120)
    sent, deadline, bad, previous = 0, time.monotonic() + seconds, itertools.cycle(BAD), []
    for seed in itertools.count(100 if skewed else 1):
        if time.monotonic() >= deadline:
            break
        if skewed:
            chunk = stream(14, seed, photos=["coffee", "rocket"]) + stream(6, seed, unsure=True)
        else:
            chunk = stream(20, seed)
        # The same bytes again: answered by the response cache.
        sent += send(server.grpc_url, model, chunk + previous[:2], concurrency=concurrency)
        previous = chunk
        if seed % 2:
            with contextlib.suppress(InferenceFailed):
                client.classify(next(bad).make(), top_k=1)
    return sent


def run_monitor(argv: list[str]) -> str:
    """``tritonclf monitor`` with these arguments: its exit code and output, as a shell would show them."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = monitor_cli.main(argv)
    return f"$ tritonclf monitor {' '.join(argv)}\n{out.getvalue()}(exit {code})\n"


def main(argv: list[str] | None = None) -> int:
    """Run both phases, print the monitor's reports, write the dashboard picture."""
    args = parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tritonclf-monitoring-demo-"))
    export = prepare_export(args.export, workdir)
    model = load_metadata(export / contract.METADATA_FILENAME).model_name
    repository = workdir / "model_repository"
    build_repository(export, repository, BuildOptions(response_cache_bytes=64 << 20))
    with TritonProcess(repository, log_path=workdir / "tritonserver.log", ready_timeout_s=600) as server:
        metrics = f"127.0.0.1:{server.metrics_port}"
        rules = [MONITORING / "alerts.yaml"]
        prometheus = PrometheusProcess(
            [metrics], workdir=workdir / "prometheus", rule_files=rules, alert_for_s=args.alert_for_s
        )
        with prometheus:
            prometheus.wait_for_scrapes(2)
            start = time.time()
            state = workdir / "monitor-state.json"
            reports = [run_monitor(["--url", metrics, "--model", model, "--state", str(state)])]
            sent = traffic(server, model, args.phase_s, skewed=False, concurrency=args.concurrency)
            print(f"normal phase: {sent} images")
            reports.append(run_monitor(["--url", metrics, "--model", model, "--state", str(state)]))
            sent = traffic(server, model, args.phase_s, skewed=True, concurrency=args.concurrency)
            print(f"skewed phase: {sent} images")
            reports.append(run_monitor(["--url", metrics, "--model", model, "--state", str(state)]))
            window, minutes = f"{args.phase_s:g}", f"{args.phase_s / 60:g}"
            reports.append(run_monitor(["--prometheus", prometheus.url, "--model", model, "--window-s", window]))
            time.sleep(3)  # the last scrapes and rule evaluations
            end = time.time()
            firing = sorted(
                {a["labels"]["alertname"] for a in prometheus.api("alerts")["alerts"] if a["state"] == "firing"}
            )
            print(f"alerts firing at the end: {', '.join(firing) or 'none'}")
            render_dashboard(
                MONITORING / "grafana-dashboard.json",
                prometheus,
                start=start,
                end=end,
                step_s=2,
                variables={"ensemble": model, "__rate_interval": "30s"},
                output=args.output,
                title=f"{model}: {minutes} min drawn like the validation set, then {minutes} min skewed",
            )
    print("\n".join(reports))
    print(f"dashboard: {args.output} (data in {workdir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
