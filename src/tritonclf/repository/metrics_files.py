"""The files that give the served models their metrics: the recording helper and each model's plan.

Every Python-backend model of a build gets ``serving_metrics.py`` (its ``model.py`` imports
it); the preprocessing model gets an ``inputs`` plan, and the model that sees the
probabilities a ``predictions`` plan: the classifier itself when it runs in the Python backend
(``python-ort``, ``torch``), else ``NAME_monitor``, a Python step after it. The plan carries the
class series (``tritonclf.monitoring.series``) and, when the export has one, the reference in
those series, set as gauges so that alerting rules can compare live shares with it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from tritonclf import contract
from tritonclf import preprocess as preprocess_module
from tritonclf.export_metadata import ExportMetadata
from tritonclf.monitoring.reference import Reference, load_reference
from tritonclf.monitoring.series import SCORE_BUCKETS, class_series, metrics_plan
from tritonclf.repository.classifiers.base import BACKEND_MODELS
from tritonclf.repository.models import BuildOptions

METRICS_HELPER = BACKEND_MODELS / "serving_metrics.py"
CAPTURE_HELPER = BACKEND_MODELS / "low_confidence_capture.py"
MONITOR_MODEL = BACKEND_MODELS / "monitor_model.py"
PLAN_FILENAME = "metrics.json"  # serving_metrics.PLAN_FILENAME


class ReferenceMismatch(ValueError):
    """The reference was recorded for other classes than the export's."""


@dataclasses.dataclass(frozen=True)
class MetricsFiles:
    """Version files to add to each model (the monitor's are all of its files)."""

    preprocess: dict[str, Path | bytes]
    classifier: dict[str, Path | bytes]
    monitor: dict[str, Path | bytes] | None


def find_reference(export_dir: Path, metadata: ExportMetadata, reference: Path | None) -> Reference | None:
    """The reference given, else the one ``model.json`` names, else None."""
    if reference is None and metadata.reference_filename:
        reference = export_dir / metadata.reference_filename
    if reference is None:
        return None
    found = load_reference(reference)
    if tuple(found.class_names) != tuple(metadata.labels):
        raise ReferenceMismatch(f"{reference} was recorded for other classes than this export's: record it again")
    if tuple(found.score_buckets) != SCORE_BUCKETS:
        raise ReferenceMismatch(f"{reference} has other score buckets than the served histogram: record it again")
    return found


def _plan_bytes(plan: dict) -> bytes:
    return (json.dumps(plan, indent=1, sort_keys=True) + "\n").encode()


def metrics_files(
    name: str, metadata: ExportMetadata, options: BuildOptions, reference: Reference | None
) -> MetricsFiles:
    """The helper and plans for the preprocessing model, the classifier and the monitor step."""
    helper = {"serving_metrics.py": METRICS_HELPER}
    python_classifier = helper if options.classifier.records_predictions else {}
    if not options.metrics:
        return MetricsFiles(preprocess=dict(helper), classifier=dict(python_classifier), monitor=None)
    series = class_series(
        metadata.labels, reference.predicted_shares if reference else None, options.metrics_class_series
    )
    reference_plan = None
    if reference is not None:
        reference_plan = {
            "class_shares": series.shares(reference.predicted_shares),
            "top1_score_shares": reference.score_shares_at_or_below(),
            "n": reference.n,
        }
    capture = {**options.capture.to_plan(), "labels": list(metadata.labels)} if options.capture else None
    predictions = metrics_plan(
        ensemble=name, role="predictions", series=series, reference=reference_plan, capture=capture
    )
    inputs = {**helper, PLAN_FILENAME: _plan_bytes(metrics_plan(ensemble=name, role="inputs"))}
    recorded = {**helper, PLAN_FILENAME: _plan_bytes(predictions)}
    if not options.monitor_step:
        return MetricsFiles(preprocess=inputs, classifier=recorded, monitor=None)
    monitor = {"model.py": MONITOR_MODEL, **recorded}
    if options.capture is not None:
        # The capture unwraps base64 uploads with the served preprocessing's own code.
        monitor.update({"low_confidence_capture.py": CAPTURE_HELPER, "preprocess.py": Path(preprocess_module.__file__)})
    return MetricsFiles(preprocess=inputs, classifier=dict(python_classifier), monitor=monitor)


def monitor_dir(repository: Path, name: str) -> Path:
    """Where the build writes ``NAME_monitor``."""
    return repository / contract.monitor_model_name(name)
