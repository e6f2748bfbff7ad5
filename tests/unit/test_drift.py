"""The monitor's measures and parsing, without a server: PSI, findings, counter increases, the exposition format."""

from __future__ import annotations

import math

import pytest

from tritonclf.monitoring.drift import Expected, Thresholds, Window, assess, expected_from_reference, psi
from tritonclf.monitoring.reference import Reference
from tritonclf.monitoring.scrape import Sample, metrics_url, parse_exposition
from tritonclf.monitoring.series import SCORE_BUCKETS
from tritonclf.monitoring.window import ensembles, expected_from_samples, increases, window_from_scrapes

EXPOSITION = r"""# HELP tritonclf_predictions_total Top-1 predictions, by class
# TYPE tritonclf_predictions_total counter
tritonclf_predictions_total{class="tabby, tabby cat",ensemble="m",model="m_model",version="1"} 12
tritonclf_predictions_total{class="say \"hi\"",ensemble="m",model="m_model",version="1"} 3
tritonclf_top1_score_sum{ensemble="m",model="m_model",version="1"} Nan
tritonclf_top1_score_bucket{ensemble="m",model="m_model",version="1",le="+Inf"} 15
nv_cache_num_hits_per_model{model="m",version="1"} 4
"""


def window(classes, *, low=0.0, scores=0.0, rejected=None, accepted=0.0):
    return Window(60.0, classes, {"0.5": low}, scores, rejected or {}, accepted)


def test_psi_is_zero_for_the_same_shares_and_large_for_a_shift():
    assert psi({"a": 50, "b": 50}, {"a": 0.5, "b": 0.5}) == pytest.approx(0.0)
    # All of one class where the reference had two halves: (1.001-0.501)ln(1.001/0.501) + (0.001-0.501)ln(0.001/0.501).
    expected = 0.5 * math.log(1.001 / 0.501) + 0.5 * math.log(0.501 / 0.001)
    assert psi({"a": 100, "b": 0}, {"a": 0.5, "b": 0.5}) == pytest.approx(expected)
    assert psi({"a": 100, "new": 30}, {"a": 1.0}) > 0.25  # a class the reference never saw


def test_findings_alert_past_thresholds_and_skip_with_too_little_traffic():
    expected = Expected({"a": 0.5, "b": 0.5}, {"0.5": 0.1}, "test")
    quiet = assess(window({"a": 51, "b": 49}, low=12, scores=100, accepted=100), expected)
    assert [f.status for f in quiet] == ["ok", "ok", "ok"]
    skewed = assess(window({"a": 95, "b": 5}, low=60, scores=100, rejected={"corrupt": 20}, accepted=100), expected)
    assert [f.status for f in skewed] == ["alert", "alert", "alert"]
    assert skewed[0].line.startswith("class distribution: PSI ")
    assert "corrupt 20" in skewed[2].line
    few = assess(window({"a": 9, "b": 1}, scores=10, accepted=10), expected)
    assert [f.status for f in few] == ["skip", "skip", "skip"]
    assert "fewer than the 20 needed" in few[0].line  # 10 per class series
    unreferenced = assess(window({"a": 95, "b": 5}, scores=100, accepted=100), None)
    assert unreferenced[0].status == "skip"
    assert assess(window({"a": 95, "b": 5}), expected, Thresholds(max_psi=100.0))[0].status == "ok"


def test_a_reference_file_is_mapped_onto_the_live_series():
    buckets = len(SCORE_BUCKETS) + 1
    reference = Reference(10, ("a", "b", "c"), (6, 3, 1), (), SCORE_BUCKETS, (0,) * (buckets - 1) + (10,))
    expected = expected_from_reference(reference, {"a", "other"}, "file")
    assert expected.class_shares == pytest.approx({"a": 0.6, "other": 0.4})
    assert expected_from_reference(reference, {"a", "b", "c"}, "file").class_shares == pytest.approx(
        {"a": 0.6, "b": 0.3, "c": 0.1}
    )


def test_the_exposition_format_is_parsed_with_escapes_nan_and_inf():
    samples = parse_exposition(EXPOSITION)
    assert samples[0].labels["class"] == "tabby, tabby cat"
    assert samples[1].labels["class"] == 'say "hi"'
    assert math.isnan(samples[2].value)
    assert samples[3].labels["le"] == "+Inf"
    assert ensembles(samples) == ["m"]
    assert metrics_url("localhost:8002") == "http://localhost:8002/metrics"


def test_increases_treat_a_counter_that_went_down_as_a_restart():
    before = [Sample("tritonclf_predictions_total", {"class": "a", "ensemble": "m"}, 10.0)]
    after = [
        Sample("tritonclf_predictions_total", {"class": "a", "ensemble": "m"}, 4.0),  # the server restarted
        Sample("tritonclf_predictions_total", {"class": "b", "ensemble": "m"}, 2.0),  # a new series
    ]
    assert [s.value for s in increases(before, after)] == [4.0, 2.0]
    assert window_from_scrapes(before, after, "m", 5.0).class_counts == {"a": 4.0, "b": 2.0}


def test_the_newest_version_s_reference_gauges_win_during_a_rollout():
    name = "tritonclf_reference_class_share"
    samples = [
        Sample(name, {"ensemble": "m", "version": "9", "class": "a"}, 0.2),
        Sample(name, {"ensemble": "m", "version": "10", "class": "a"}, 0.7),
    ]
    assert expected_from_samples(samples, "m", "test").class_shares == {"a": 0.7}
    assert expected_from_samples(samples, "other", "test") is None
