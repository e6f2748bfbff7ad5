"""Compare what the served model predicts with its validation set: class drift, low confidence, rejections.

    tritonclf monitor --url localhost:8002 --model efficientnet_lite0 --window-s 60
    tritonclf monitor --url localhost:8002 --state /var/lib/tritonclf/monitor.json   # from cron
    tritonclf monitor --prometheus http://prometheus:9090 --model efficientnet_lite0 --window-s 3600
    tritonclf monitor --url localhost:8002 --reference exports/efficientnet_lite0  # a reference not built in

With ``--url`` it reads Triton's metrics port twice, ``--window-s`` apart, and judges the
traffic in between; with ``--state FILE`` it judges the traffic since the run that wrote FILE
instead, and writes it for the next run (no waiting: one run per cron tick; the first run
only records). With ``--prometheus`` it asks Prometheus for the increases over the last
``--window-s``. The reference is the one the served model publishes (built from the export's
``reference.json``), or ``--reference``. One line per finding; exit 0 when all are within
their thresholds, 1 when one is past it (for cron, a Kubernetes CronJob or CI), 2 when the
metrics cannot be read. Measures and thresholds: ``tritonclf.monitoring.drift``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tritonclf import contract
from tritonclf.cli_options import EXIT_FAILED, EXIT_OK, fail, positive_float
from tritonclf.files import write_json_atomic
from tritonclf.monitoring.drift import Expected, Thresholds, Window, assess, expected_from_reference
from tritonclf.monitoring.reference import load_reference
from tritonclf.monitoring.scrape import Sample, ScrapeError, fetch_metrics
from tritonclf.monitoring.window import (
    CACHE_HITS,
    ensembles,
    expected_from_prometheus,
    expected_from_samples,
    window_from_prometheus,
    window_from_scrapes,
)


class MonitorError(RuntimeError):
    """The monitor cannot run as asked; one line for the user."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--url", metavar="HOST:PORT", help="Triton's metrics port (default: localhost:8002)")
    source.add_argument("--prometheus", metavar="URL", help="a Prometheus server that scrapes the servers")
    parser.add_argument("--model", help="the ensemble (default: the only one reporting predictions)")
    parser.add_argument(
        "--window-s", type=positive_float, default=60.0, help="seconds of traffic to judge (default: %(default)s)"
    )
    parser.add_argument(
        "--state", type=Path, help="with --url: judge the traffic since the run that wrote this file, then rewrite it"
    )
    parser.add_argument("--reference", type=Path, help="reference.json or its export folder (default: the served one)")
    defaults = Thresholds()
    parser.add_argument("--max-psi", type=float, default=defaults.max_psi, help="class PSI (default: %(default)s)")
    parser.add_argument(
        "--low-confidence",
        type=float,
        default=defaults.low_confidence,
        help="top-1 score at or under which an answer is unsure; a score bucket bound (default: %(default)s)",
    )
    parser.add_argument(
        "--max-low-confidence-rise",
        type=float,
        default=defaults.max_low_confidence_rise,
        help="share above the reference's, 0.15 = 15 points (default: %(default)s)",
    )
    parser.add_argument(
        "--max-rejection-rate", type=float, default=defaults.max_rejection_rate, help="(default: %(default)s)"
    )
    parser.add_argument("--min-predictions", type=int, help="before the class check judges (default: 10 per series)")
    parser.add_argument("--timeout-s", type=positive_float, default=10.0, help="per read (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    return parser.parse_args(argv)


def _reference_file(path: Path) -> Path:
    return path / contract.REFERENCE_FILENAME if path.is_dir() else path


def read_window(args: argparse.Namespace) -> tuple[str, Window | None, Expected | None, str]:
    """(ensemble, window (None on a first --state run), the served reference or None, where the numbers came from)."""
    if args.prometheus:
        if not args.model:
            raise MonitorError("--prometheus needs --model (the ensemble's name)")
        window = window_from_prometheus(args.prometheus, args.model, args.window_s, args.timeout_s)
        expected = expected_from_prometheus(args.prometheus, args.model, args.timeout_s)
        return args.model, window, expected, f"Prometheus {args.prometheus}"
    url = args.url or "localhost:8002"
    before = fetch_metrics(url, args.timeout_s)
    found = ensembles(before)
    model = args.model or (found[0] if len(found) == 1 else None)
    if model is None:
        choice = f"one of {', '.join(found)}" if found else "none reports prediction metrics"
        raise MonitorError(f"name the ensemble with --model ({choice})")
    if model not in found:
        raise MonitorError(f"{url} has no prediction metrics for {model!r} (found: {', '.join(found) or 'none'})")
    if args.state is not None:
        previous = load_state(args.state, url)
        save_state(args.state, url, before)
        if previous is None:
            return model, None, None, f"metrics at {url}"
        start_samples, seconds = previous
        window = window_from_scrapes(start_samples, before, model, seconds)
        return model, window, expected_from_samples(before, model, f"the served model at {url}"), f"metrics at {url}"
    start = time.monotonic()
    time.sleep(args.window_s)
    after = fetch_metrics(url, args.timeout_s)
    window = window_from_scrapes(before, after, model, time.monotonic() - start)
    return model, window, expected_from_samples(after, model, f"the served model at {url}"), f"metrics at {url}"


def save_state(path: Path, url: str, samples: list[Sample]) -> None:
    """The series a later window needs (ours and the cache hits), with the time they were read."""
    kept = [[s.name, dict(s.labels), s.value] for s in samples if s.name.startswith(("tritonclf_", CACHE_HITS))]
    write_json_atomic(path, {"url": url, "time": time.time(), "samples": kept})


def load_state(path: Path, url: str) -> tuple[list[Sample], float] | None:
    """(samples, seconds since) of the previous run against ``url``, or None on a first run."""
    try:
        state = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as err:
        raise MonitorError(f"cannot read the state file {path}: {err}") from None
    if state.get("url") != url:
        return None
    samples = [Sample(name, labels, float(value)) for name, labels, value in state["samples"]]
    return samples, max(0.0, time.time() - float(state["time"]))


def monitor(args: argparse.Namespace) -> dict:
    """Read, compare, return the report."""
    model, window, expected, where = read_window(args)
    if window is None:
        return {"model": model, "source": where, "baseline": str(args.state), "findings": []}
    if args.reference is not None:
        reference = load_reference(_reference_file(args.reference))
        expected = expected_from_reference(reference, set(window.class_counts), str(args.reference))
    thresholds = Thresholds(
        max_psi=args.max_psi,
        low_confidence=args.low_confidence,
        max_low_confidence_rise=args.max_low_confidence_rise,
        max_rejection_rate=args.max_rejection_rate,
        min_predictions=args.min_predictions,
    )
    findings = assess(window, expected, thresholds)
    return {
        "model": model,
        "source": where,
        "window_s": round(window.seconds, 1),
        "predictions": window.predictions,
        "cache_hits": window.cache_hits,
        "reference": expected.source if expected else None,
        "findings": [f.to_dict() for f in findings],
    }


def print_report(report: dict) -> None:
    """A heading, then one line per finding."""
    if "baseline" in report:
        print(f"monitor {report['model']}: first run, recorded the {report['source']} in {report['baseline']}")
        return
    cached = f", {report['cache_hits']:.0f} more from the response cache" if report["cache_hits"] else ""
    reference = report["reference"] or "none"
    print(
        f"monitor {report['model']}: {report['predictions']:.0f} predictions{cached} in {report['window_s']:.0f} s "
        f"({report['source']}; reference: {reference})"
    )
    for finding in report["findings"]:
        print(f"{finding['status'].upper():<5} {finding['line']}")


def main(argv: list[str] | None = None) -> int:
    """Monitor once; exit 1 when a finding is past its threshold."""
    args = parse_args(argv)
    try:
        report = monitor(args)
    except (MonitorError, ScrapeError, FileNotFoundError, ValueError) as err:
        return fail("monitor", err)
    if args.json:
        print(json.dumps(report))
    else:
        print_report(report)
    return EXIT_FAILED if any(f["status"] == "alert" for f in report["findings"]) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
