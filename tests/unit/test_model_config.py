"""Triton config rendering that needs no export: queue policy, warmup, unknown fields."""

from __future__ import annotations

import pytest
from tritonclient.grpc import model_config_pb2 as pb

from tritonclf.repository.pbtxt import (
    DynamicBatching,
    ModelSpec,
    Tensor,
    WarmupInput,
    WarmupSample,
    parse,
    render,
    to_model_config,
)


def test_queue_policy_and_warmup_render():
    spec = ModelSpec(
        name="m",
        backend="python",
        max_batch_size=8,
        inputs=(Tensor("x", "TYPE_FP32", (4,)),),
        outputs=(Tensor("y", "TYPE_FP32", (2,)),),
        dynamic_batching=DynamicBatching(100, (4, 8), max_queue_size=64, default_timeout_microseconds=5_000_000),
        warmup=(
            WarmupSample("file", 4, {"x": WarmupInput("TYPE_FP32", (4,), "x.bin")}),
            WarmupSample("zeros", 1, {"x": WarmupInput("TYPE_FP32", (4,), "zero")}),
        ),
    )
    config = parse(render(to_model_config(spec)))
    policy = config.dynamic_batching.default_queue_policy
    assert (policy.max_queue_size, policy.default_timeout_microseconds) == (64, 5_000_000)
    assert policy.timeout_action == pb.ModelQueuePolicy.REJECT
    assert list(config.dynamic_batching.preferred_batch_size) == [4, 8]
    assert config.model_warmup[0].inputs["x"].input_data_file == "x.bin"
    assert config.model_warmup[1].inputs["x"].zero_data


def test_unknown_field_in_pbtxt_is_an_error():
    with pytest.raises(Exception, match="no_such_field"):
        parse('name: "m"\nno_such_field: 1\n')
