"""The PyTorch backend's tensor-name rules, as preflight applies them to a config."""

from __future__ import annotations

from tritonclient.grpc import model_config_pb2 as pb

from tritonclf.repository.preflight_checks import libtorch_naming_findings


def _config(inputs: list[str], outputs: list[str]) -> pb.ModelConfig:
    config = pb.ModelConfig(name="m", platform="pytorch_libtorch")
    for name in inputs:
        config.input.add(name=name, data_type=pb.TYPE_FP32, dims=[3, 8, 8])
    for name in outputs:
        config.output.add(name=name, data_type=pb.TYPE_FP32, dims=[10])
    return config


def test_input_named_after_a_forward_argument_and_one_output_pass():
    assert libtorch_naming_findings("m", _config(["pixel_values"], ["probabilities"]), ("pixel_values",)) == []


def test_input_neither_a_forward_argument_nor_indexed_is_an_error():
    findings = libtorch_naming_findings("m", _config(["image"], ["probabilities"]), ("pixel_values",))
    assert [f.severity for f in findings] == ["error"]
    assert "not an argument of the TorchScript forward(pixel_values)" in findings[0].message


def test_indexed_names_need_no_matching_argument():
    assert libtorch_naming_findings("m", _config(["INPUT__0"], ["OUTPUT__0", "OUTPUT__1"]), ("x",)) == []


def test_several_unindexed_outputs_are_ambiguous():
    findings = libtorch_naming_findings("m", _config(["x"], ["probabilities", "logits"]), ("x",))
    assert len(findings) == 1 and "<name>__<index>" in findings[0].message
