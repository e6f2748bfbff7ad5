"""Where the prediction metrics are recorded for each backend, and the response cache, in the generated configs."""

from __future__ import annotations

import json

import pytest

from tritonclf import contract
from tritonclf.repository.metrics_files import PLAN_FILENAME, metrics_files
from tritonclf.repository.models import (
    RESPONSE_CACHE_PARAMETER,
    BuildOptions,
    CaptureOptions,
    ensemble_spec,
    monitor_spec,
)
from tritonclf.repository.pbtxt import parse, render, to_model_config

from ..export_metadata import export_metadata

METADATA = export_metadata(model_name="m", labels=("cat", "dog"))


def steps(options: BuildOptions) -> list[tuple[str, dict, dict]]:
    config = parse(render(to_model_config(ensemble_spec("m", METADATA, options))))
    return [(s.model_name, dict(s.input_map), dict(s.output_map)) for s in config.ensemble_scheduling.step]


@pytest.mark.parametrize("backend", ["python-ort", "torch"])
def test_a_python_classifier_records_its_own_predictions(backend):
    options = BuildOptions(backend=backend)
    assert [name for name, _, _ in steps(options)] == ["m_preprocess", "m_model"]
    files = metrics_files("m", METADATA, options, None)
    assert files.monitor is None
    assert json.loads(files.classifier[PLAN_FILENAME])["role"] == "predictions"
    assert json.loads(files.preprocess[PLAN_FILENAME])["role"] == "inputs"


@pytest.mark.parametrize("backend", ["onnx", "torchscript", "trt"])
def test_other_classifiers_get_a_monitor_step_that_records_them(backend):
    options = BuildOptions(backend=backend, device="gpu")
    assert steps(options)[1][2] == {contract.PROBABILITIES: contract.CLASSIFIER_PROBABILITIES}
    assert steps(options)[2] == (
        "m_monitor",
        {contract.CLASSIFIER_PROBABILITIES: contract.CLASSIFIER_PROBABILITIES},
        {contract.PROBABILITIES: contract.PROBABILITIES},
    )
    files = metrics_files("m", METADATA, options, None)
    assert files.classifier == {}  # not a Python model: nothing of ours in its version directory
    assert json.loads(files.monitor[PLAN_FILENAME])["role"] == "predictions"
    monitor = parse(render(to_model_config(monitor_spec("m", METADATA, options))))
    assert [t.name for t in monitor.input] == [contract.CLASSIFIER_PROBABILITIES]
    assert monitor.backend == "python"


def test_without_metrics_there_is_no_plan_and_no_monitor_step():
    options = BuildOptions(backend="onnx", metrics=False)
    assert [name for name, _, _ in steps(options)] == ["m_preprocess", "m_model"]
    files = metrics_files("m", METADATA, options, None)
    assert PLAN_FILENAME not in files.preprocess
    assert "serving_metrics.py" in files.preprocess  # model.py imports it either way


def test_capture_moves_the_predictions_to_a_monitor_step_that_sees_the_image(tmp_path):
    options = BuildOptions(capture=CaptureOptions(str(tmp_path / "captured")))
    monitor = steps(options)[2]
    assert monitor[1][contract.IMAGE_INPUT] == contract.IMAGE_INPUT
    plan = json.loads(metrics_files("m", METADATA, options, None).monitor[PLAN_FILENAME])
    assert plan["capture"]["directory"] == str(tmp_path / "captured")
    assert plan["capture"]["labels"] == ["cat", "dog"]


def test_capture_wants_an_absolute_directory():
    with pytest.raises(ValueError, match="absolute"):
        CaptureOptions("captured")


def test_the_response_cache_is_on_the_ensemble_with_its_byte_budget():
    config = parse(render(to_model_config(ensemble_spec("m", METADATA, BuildOptions(response_cache_bytes=1 << 28)))))
    assert config.response_cache.enable
    assert config.parameters[RESPONSE_CACHE_PARAMETER].string_value == str(1 << 28)
    plain = parse(render(to_model_config(ensemble_spec("m", METADATA, BuildOptions()))))
    assert not plain.response_cache.enable
    assert RESPONSE_CACHE_PARAMETER not in plain.parameters
