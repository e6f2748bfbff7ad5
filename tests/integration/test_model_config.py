"""Generated Triton configs for a real export: they parse back to what was generated and wire up."""

from __future__ import annotations

import pytest
from tritonclient.grpc import model_config_pb2 as pb

from tritonclf import contract
from tritonclf.preprocess import DecodeLimits, PreprocessSpec
from tritonclf.repository.models import BuildOptions, classifier_spec, ensemble_spec, preprocess_spec
from tritonclf.repository.pbtxt import (
    parse,
    render,
    to_model_config,
)

FACTORIES = [preprocess_spec, classifier_spec, ensemble_spec]


@pytest.mark.parametrize("factory", FACTORIES, ids=lambda f: f.__name__)
def test_generated_config_round_trips_through_pbtxt(factory, metadata):
    config = to_model_config(factory("clf", metadata, BuildOptions()))
    text = render(config)
    assert text.startswith("# Generated")
    assert parse(text) == config


def test_ensemble_steps_wire_preprocess_outputs_to_classifier_inputs(metadata):
    options = BuildOptions()
    ensemble = to_model_config(ensemble_spec("clf", metadata, options))
    pre = to_model_config(preprocess_spec("clf", metadata, options))
    clf = to_model_config(classifier_spec("clf", metadata, options))
    first, second = ensemble.ensemble_scheduling.step
    assert (first.model_name, second.model_name) == (pre.name, clf.name)
    assert set(first.input_map) == {t.name for t in pre.input}
    assert set(first.output_map) == {t.name for t in pre.output}
    assert set(second.input_map) == {t.name for t in clf.input}
    # What the preprocessing model produces is exactly what the classifier takes.
    assert [(t.data_type, list(t.dims)) for t in pre.output] == [(t.data_type, list(t.dims)) for t in clf.input]
    assert ensemble.output[0].dims == clf.output[0].dims == [metadata.num_classes]
    assert ensemble.output[0].label_filename == contract.LABELS_FILENAME
    assert ensemble.input[0].data_type == pb.TYPE_STRING


def test_classifier_declares_nchw_for_triton_image_clients(metadata):
    clf = to_model_config(classifier_spec("clf", metadata, BuildOptions()))
    assert clf.input[0].format == pb.ModelInput.FORMAT_NCHW
    assert list(clf.input[0].dims) == [3, *metadata.preprocess.input_size]
    assert clf.dynamic_batching is not None and clf.max_batch_size == 32


def test_preprocess_parameters_carry_the_spec_and_limits(metadata):
    limits = DecodeLimits(max_image_bytes=1234, allowed_formats=("JPEG",), jpeg_draft=False)
    config = to_model_config(preprocess_spec("clf", metadata, BuildOptions(limits=limits)))
    params = {k: v.string_value for k, v in config.parameters.items()}
    assert PreprocessSpec.from_parameters(params) == metadata.preprocess
    assert DecodeLimits.from_parameters(params) == limits
    assert params["input_name"] == contract.IMAGE_INPUT and params["output_name"] == contract.PIXELS
