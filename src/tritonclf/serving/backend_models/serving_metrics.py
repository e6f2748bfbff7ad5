"""Prediction and input metrics of a Python-backend model, on Triton's metrics port (custom metrics API).

Copied by the repository build beside ``model.py`` with ``metrics.json``, the plan the build
wrote from ``tritonclf.monitoring.series`` (names, buckets, class series, the reference):
this file holds no name or bucket of its own and imports only numpy and the standard library.

Triton's Python backend (24.10) has counters, gauges and histograms
(``pb_utils.MetricFamily``). Each call on a metric is a message from the stub to the
server, about 20 microseconds of CPU (`tritonclf bench-metric-calls`); so counters are summed over a whole
``execute`` and sent once per series that changed, and the histograms take one call per
image. Instances of a model share their series (same labels), and all of it goes away with
the model version. A failing metric call never fails a request: metrics are switched off
for that model instance and the error is logged once.
"""

import json
import os

import numpy as np

PLAN_FILENAME = "metrics.json"


def load_plan(version_dir):
    """The plan beside the model, or None when the build wrote none (metrics off)."""
    path = os.path.join(version_dir, PLAN_FILENAME)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


class _Recorder:
    """Families and labels shared by both kinds of metrics; switches itself off on the first failure."""

    def __init__(self, pb_utils, plan, model_name, model_version, warmup_executes=0):
        self.pb_utils = pb_utils
        self.enabled = True
        self.warmup_left = warmup_executes
        names = plan["labels"]
        self.labels = {
            names["ensemble"]: plan["ensemble"],
            names["model"]: model_name,
            names["version"]: str(model_version),
        }
        self._families = []  # kept alive: a family deleted before its metrics invalidates them

    def counting(self):
        """Call once per ``execute``: whether it counts (not Triton's warmup of this instance, metrics on).

        Warmup requests look like any other; Triton sends each instance its config's samples
        first, one ``execute`` each, before the model is ready.
        """
        if self.warmup_left > 0:
            self.warmup_left -= 1
            return False
        return self.enabled

    def family(self, name, kind, description):
        family = self.pb_utils.MetricFamily(name=name, description=description, kind=kind)
        self._families.append(family)
        return family

    def metric(self, family, buckets=None, **labels):
        return family.Metric(labels={**self.labels, **labels}, buckets=buckets)

    def guard(self, action, *args):
        """Run one metric update; on failure log it once and record nothing more in this instance."""
        if not self.enabled:
            return
        try:
            action(*args)
        except Exception as err:  # a metric must never fail the request it describes
            self.enabled = False
            self.pb_utils.Logger.log_error(f"metrics switched off for this model instance: {type(err).__name__}: {err}")


class InputMetrics(_Recorder):
    """Rejected inputs by reason; the size and preprocessing time of every accepted image."""

    def __init__(self, pb_utils, plan, model_name, model_version, warmup_executes=0):
        """Create every series at zero, so rates exist before the first rejection."""
        super().__init__(pb_utils, plan, model_name, model_version, warmup_executes)
        kinds, families, buckets = pb_utils.MetricFamily, plan["families"], plan["buckets"]
        rejected = self.family(families["rejected"], kinds.COUNTER, "Inputs rejected, by reason")
        self.rejections = {
            reason: self.metric(rejected, **{plan["reason_label"]: reason}) for reason in plan["reasons"]
        }
        self.internal_reason = plan["internal_reason"]
        self.bytes = self.metric(
            self.family(families["bytes"], kinds.HISTOGRAM, "Size of accepted image files (base64 unwrapped), bytes"),
            buckets["bytes"],
        )
        self.megapixels = self.metric(
            self.family(families["megapixels"], kinds.HISTOGRAM, "Accepted images' width x height, megapixels"),
            buckets["megapixels"],
        )
        self.seconds = self.metric(
            self.family(families["seconds"], kinds.HISTOGRAM, "Decode + resize + crop + normalize per image, seconds"),
            buckets["seconds"],
        )

    def rejected(self, reason):
        """One input rejected for ``reason`` (a ``REASONS`` name)."""
        metric = self.rejections.get(reason)
        if metric is not None:
            self.guard(metric.increment, 1.0)

    def failed(self):
        """One input that failed for a reason of the server's own (a bug, a decoder crash)."""
        self.rejected(self.internal_reason)

    def accepted(self, file_bytes, pixels, seconds):
        """One accepted image: its file size, its pixel count and the time its preprocessing took."""
        self.guard(self._observe, file_bytes, pixels, seconds)

    def _observe(self, file_bytes, pixels, seconds):
        self.bytes.observe(float(file_bytes))
        self.megapixels.observe(pixels / 1e6)
        self.seconds.observe(float(seconds))


class PredictionMetrics(_Recorder):
    """Top-1 class counts (bounded series) and the top-1 score histogram; the reference as gauges."""

    def __init__(self, pb_utils, plan, model_name, model_version, warmup_executes=0):
        """Create every class series at zero and set the reference gauges once."""
        super().__init__(pb_utils, plan, model_name, model_version, warmup_executes)
        kinds, families = pb_utils.MetricFamily, plan["families"]
        class_label = plan["class_label"]
        predictions = self.family(families["predictions"], kinds.COUNTER, "Top-1 predictions, by class")
        self.classes = [self.metric(predictions, **{class_label: name}) for name in plan["classes"]]
        self.index_to_series = np.asarray(plan["index_to_series"], dtype=np.int64)
        self.score = self.metric(
            self.family(families["score"], kinds.HISTOGRAM, "Top-1 probability of every prediction"),
            plan["buckets"]["score"],
        )
        reference = plan.get("reference")
        self._gauges = []
        if reference:
            class_share = self.family(families["reference_class"], kinds.GAUGE, "Validation set's share of each class")
            for name, share in reference["class_shares"].items():
                self._set_gauge(self.metric(class_share, **{class_label: name}), share)
            score_share = self.family(
                families["reference_score"], kinds.GAUGE, "Validation set's share with top-1 score at most le"
            )
            for le, share in zip(plan["bucket_labels"]["score"], reference["top1_score_shares"], strict=True):
                self._set_gauge(self.metric(score_share, le=le), share)

        self.capture_counts = None
        if plan.get("capture"):
            captured = self.family(families["captured"], kinds.COUNTER, "Low-confidence images saved for relabelling")
            skipped = self.family(
                families["capture_skipped"], kinds.COUNTER, "Low-confidence images not saved, by reason"
            )
            self.capture_counts = {"saved": self.metric(captured)}
            for reason in plan["capture_skip_reasons"]:
                self.capture_counts[reason] = self.metric(skipped, **{plan["reason_label"]: reason})

    def count_capture(self, counts):
        """Add the capture's {"saved" or skip reason: count} since the last call."""
        if self.capture_counts is None:
            return
        for what, n in counts.items():
            metric = self.capture_counts.get(what)
            if metric is not None and n:
                self.guard(metric.increment, float(n))

    def _set_gauge(self, gauge, value):
        gauge.set(float(value))
        self._gauges.append(gauge)

    def record(self, probabilities):
        """Count the top-1 class and observe the top-1 score of every row of an ``(images, classes)`` array."""
        if not self.enabled or len(probabilities) == 0:
            return
        rows = np.asarray(probabilities).reshape(len(probabilities), -1)
        top1 = rows.argmax(axis=1)
        self.record_top1(top1, rows[np.arange(len(rows)), top1])

    def record_top1(self, top1, scores):
        """The same from the top-1 class indices and scores (a GPU model computes them where its output is)."""
        if not self.enabled or len(top1) == 0:
            return
        counts = np.bincount(self.index_to_series[np.asarray(top1, dtype=np.int64)], minlength=len(self.classes))
        # A broken model's NaN would make the histogram's sum NaN for good: count it as no confidence.
        self.guard(self._send, counts, np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0))

    def _send(self, counts, scores):
        for series in np.flatnonzero(counts):
            self.classes[series].increment(float(counts[series]))
        for score in scores.tolist():
            self.score.observe(score)


def warmup_executes(config):
    """How many ``execute`` calls Triton's warmup makes on each instance of a model with this config."""
    return sum(max(1, int(sample.get("count", 0) or 0)) for sample in config.get("model_warmup", []))


def create(pb_utils, args, role):
    """The metrics of this model instance for ``role`` (``inputs`` or ``predictions``), or None when off.

    The model calls ``counting()`` at the start of every ``execute`` and records only when it is true.
    """
    version_dir = os.path.join(args["model_repository"], args["model_version"])
    plan = load_plan(version_dir)
    if plan is None or plan.get("role") != role:
        return None
    kind = InputMetrics if role == "inputs" else PredictionMetrics
    warmup = warmup_executes(json.loads(args["model_config"]))
    try:
        return kind(pb_utils, plan, args["model_name"], args["model_version"], warmup)
    except Exception as err:  # metrics are an aid: the model serves without them
        pb_utils.Logger.log_error(f"metrics not created: {type(err).__name__}: {err}")
        return None
