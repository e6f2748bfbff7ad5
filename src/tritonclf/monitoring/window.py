"""A window of served traffic, from two scrapes of Triton's metrics port or from a Prometheus server."""

from __future__ import annotations

from collections.abc import Iterable

from tritonclf.monitoring import series as names
from tritonclf.monitoring.drift import Expected, Window
from tritonclf.monitoring.scrape import Sample, matching, query_prometheus, sum_by

CACHE_HITS = "nv_cache_num_hits_per_model"  # Triton's own, per model (the ensemble)


def ensembles(samples: Iterable[Sample]) -> list[str]:
    """Ensembles that report prediction metrics."""
    return sorted({s.labels.get(names.ENSEMBLE_LABEL, "") for s in samples if s.name == names.PREDICTIONS} - {""})


def _key(sample: Sample) -> tuple:
    return (sample.name, tuple(sorted(sample.labels.items())))


def increases(before: Iterable[Sample], after: Iterable[Sample]) -> list[Sample]:
    """Counter increases between two scrapes; a series that went down restarted from zero (a new server)."""
    start = {_key(s): s.value for s in before}
    out = []
    for sample in after:
        previous = start.get(_key(sample), 0.0)
        grown = sample.value - previous if sample.value >= previous else sample.value
        out.append(Sample(sample.name, sample.labels, grown))
    return out


def window_from_scrapes(before: list[Sample], after: list[Sample], ensemble: str, seconds: float) -> Window:
    """What ``ensemble`` did between two scrapes of its server's metrics port."""
    grown = increases(before, after)
    ours = {names.ENSEMBLE_LABEL: ensemble}
    return Window(
        seconds=seconds,
        class_counts=sum_by(matching(grown, names.PREDICTIONS, **ours), names.CLASS_LABEL),
        score_at_or_below=sum_by(matching(grown, names.TOP1_SCORE + "_bucket", **ours), "le"),
        scores=sum(s.value for s in matching(grown, names.TOP1_SCORE + "_count", **ours)),
        rejected=sum_by(matching(grown, names.REJECTED_INPUTS, **ours), names.REASON_LABEL),
        accepted=sum(s.value for s in matching(grown, names.IMAGE_BYTES + "_count", **ours)),
        cache_hits=sum(s.value for s in matching(grown, CACHE_HITS, model=ensemble)),
    )


def _newest_version(samples: list[Sample]) -> list[Sample]:
    """During a rollout two versions report a reference: the highest version's is the one serving next."""
    versions = {s.labels.get(names.VERSION_LABEL, "") for s in samples}
    newest = max(versions, key=lambda v: (v.isdigit(), int(v) if v.isdigit() else 0, v), default="")
    return [s for s in samples if s.labels.get(names.VERSION_LABEL, "") == newest]


def expected_from_samples(samples: list[Sample], ensemble: str, source: str) -> Expected | None:
    """The reference the served model publishes as gauges, or None when it was built without one."""
    ours = {names.ENSEMBLE_LABEL: ensemble}
    classes = _newest_version(matching(samples, names.REFERENCE_CLASS_SHARE, **ours))
    if not classes:
        return None
    scores = _newest_version(matching(samples, names.REFERENCE_TOP1_SCORE_SHARE, **ours))
    return Expected(
        {s.labels[names.CLASS_LABEL]: s.value for s in classes}, {s.labels["le"]: s.value for s in scores}, source
    )


def _selector(ensemble: str) -> str:
    escaped = ensemble.replace("\\", "\\\\").replace('"', '\\"')
    return f'{{{names.ENSEMBLE_LABEL}="{escaped}"}}'


def window_from_prometheus(url: str, ensemble: str, seconds: float, timeout_s: float = 10.0) -> Window:
    """What ``ensemble`` did over the last ``seconds``, by ``increase()`` queries (summed over pods and versions)."""
    selector, span = _selector(ensemble), f"[{max(1, round(seconds))}s]"

    def total(metric: str, label: str | None = None, where: str = selector) -> dict[str, float] | float:
        by = f" by ({label})" if label else ""
        found = query_prometheus(url, f"sum{by} (increase({metric}{where}{span}))", timeout_s)
        if label:
            return {s.labels.get(label, ""): s.value for s in found}
        return sum(s.value for s in found)

    escaped = ensemble.replace('"', '\\"')
    return Window(
        seconds=seconds,
        class_counts=total(names.PREDICTIONS, names.CLASS_LABEL),
        score_at_or_below=total(names.TOP1_SCORE + "_bucket", "le"),
        scores=total(names.TOP1_SCORE + "_count"),
        rejected=total(names.REJECTED_INPUTS, names.REASON_LABEL),
        accepted=total(names.IMAGE_BYTES + "_count"),
        cache_hits=total(CACHE_HITS, where=f'{{model="{escaped}"}}'),
    )


def expected_from_prometheus(url: str, ensemble: str, timeout_s: float = 10.0) -> Expected | None:
    """The reference gauges as Prometheus holds them now."""
    selector = _selector(ensemble)
    classes = query_prometheus(
        url, f"max by ({names.CLASS_LABEL}) ({names.REFERENCE_CLASS_SHARE}{selector})", timeout_s
    )
    if not classes:
        return None
    scores = query_prometheus(url, f"max by (le) ({names.REFERENCE_TOP1_SCORE_SHARE}{selector})", timeout_s)
    return Expected(
        {s.labels[names.CLASS_LABEL]: s.value for s in classes},
        {s.labels["le"]: s.value for s in scores},
        f"Prometheus at {url}",
    )
