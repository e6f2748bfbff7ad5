"""Typed Triton model configs, rendered to ``config.pbtxt`` through Triton's own protobuf.

Nobody edits a generated ``config.pbtxt`` by hand: change the dataclasses or the
factories in ``models.py`` and rebuild. Rendering goes through
``model_config_pb2.ModelConfig``, so a field Triton does not know fails here,
at build time, instead of at server start.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb


@dataclasses.dataclass(frozen=True)
class Tensor:
    """One input or output. ``dims`` exclude the batch dimension when batching is on."""

    name: str
    data_type: str  # a DataType enum name, e.g. "TYPE_FP32", "TYPE_STRING"
    dims: tuple[int, ...]
    image_format: str | None = None  # "FORMAT_NCHW" lets Triton's image clients call the model
    label_filename: str | None = None  # enables the classification extension on an output


@dataclasses.dataclass(frozen=True)
class DynamicBatching:
    """Server-side batching of concurrent requests."""

    max_queue_delay_microseconds: int = 0
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_size: int | None = None  # past it, requests are rejected at once (UNAVAILABLE)
    default_timeout_microseconds: int | None = None


@dataclasses.dataclass(frozen=True)
class InstanceGroup:
    """How many copies of the model run, and where."""

    count: int = 1
    kind: str = "KIND_CPU"  # or "KIND_GPU"


@dataclasses.dataclass(frozen=True)
class EnsembleStep:
    """One model in an ensemble; maps are {model tensor name: ensemble tensor name}."""

    model_name: str
    input_map: Mapping[str, str]
    output_map: Mapping[str, str]
    model_version: int = -1


@dataclasses.dataclass(frozen=True)
class WarmupInput:
    """One input of a warmup request: zeros, random values, or a file under the model's ``warmup/``."""

    data_type: str
    dims: tuple[int, ...]  # without the batch dimension
    source: str = "random"  # "zero", "random", or a file name under warmup/


@dataclasses.dataclass(frozen=True)
class WarmupSample:
    """A warmup request Triton runs while loading the model, before it reports ready."""

    name: str
    batch_size: int
    inputs: Mapping[str, WarmupInput]


@dataclasses.dataclass(frozen=True)
class Accelerator:
    """An execution accelerator of the ONNX Runtime backend, e.g. ``tensorrt`` with its parameters."""

    name: str
    parameters: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class CudaGraph:
    """A CUDA graph the TensorRT backend captures at load: one batch size, input shapes without the batch."""

    batch_size: int
    inputs: Mapping[str, tuple[int, ...]]


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Everything our configs set. ``backend`` or ``platform`` names what runs the model."""

    name: str
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    max_batch_size: int
    backend: str | None = None
    platform: str | None = None
    instance_groups: tuple[InstanceGroup, ...] = ()
    dynamic_batching: DynamicBatching | None = None
    parameters: Mapping[str, str] = dataclasses.field(default_factory=dict)
    ensemble_steps: tuple[EnsembleStep, ...] = ()
    default_model_filename: str | None = None
    cc_model_filenames: Mapping[str, str] = dataclasses.field(default_factory=dict)  # "8.0" -> "model_sm80.plan"
    warmup: tuple[WarmupSample, ...] = ()
    gpu_accelerators: tuple[Accelerator, ...] = ()
    cuda_graphs: tuple[CudaGraph, ...] = ()  # TensorRT backend only
    response_cache: bool = False  # Triton's response cache (needs the server's --cache-config too)


def _tensor_fields(tensor: Tensor) -> dict:
    return {"name": tensor.name, "data_type": pb.DataType.Value(tensor.data_type), "dims": list(tensor.dims)}


def to_model_config(spec: ModelSpec) -> pb.ModelConfig:
    """Dataclasses -> Triton's ``ModelConfig`` message."""
    # Empty strings are proto3 defaults: unset fields are simply not rendered.
    config = pb.ModelConfig(
        name=spec.name,
        max_batch_size=spec.max_batch_size,
        backend=spec.backend or "",
        platform=spec.platform or "",
        default_model_filename=spec.default_model_filename or "",
    )
    config.cc_model_filenames.update(spec.cc_model_filenames)
    for tensor in spec.inputs:
        entry = config.input.add(**_tensor_fields(tensor))
        if tensor.image_format:
            entry.format = pb.ModelInput.Format.Value(tensor.image_format)
    for tensor in spec.outputs:
        entry = config.output.add(**_tensor_fields(tensor))
        if tensor.label_filename:
            entry.label_filename = tensor.label_filename
    for group in spec.instance_groups:
        config.instance_group.add(count=group.count, kind=pb.ModelInstanceGroup.Kind.Value(group.kind))
    if spec.dynamic_batching is not None:
        _set_dynamic_batching(config, spec.dynamic_batching)
    for key, value in spec.parameters.items():
        config.parameters[key].string_value = value
    for step in spec.ensemble_steps:
        entry = config.ensemble_scheduling.step.add(model_name=step.model_name, model_version=step.model_version)
        entry.input_map.update(step.input_map)
        entry.output_map.update(step.output_map)
    for sample in spec.warmup:
        _add_warmup(config, sample)
    _set_optimization(config, spec)
    if spec.response_cache:
        config.response_cache.enable = True
    return config


def _set_optimization(config: pb.ModelConfig, spec: ModelSpec) -> None:
    for accelerator in spec.gpu_accelerators:
        entry = config.optimization.execution_accelerators.gpu_execution_accelerator.add(name=accelerator.name)
        entry.parameters.update(accelerator.parameters)
    if spec.cuda_graphs:
        config.optimization.cuda.graphs = True
        for graph in spec.cuda_graphs:
            entry = config.optimization.cuda.graph_spec.add(batch_size=graph.batch_size)
            for name, dims in graph.inputs.items():
                entry.input[name].dim.extend(dims)


def _set_dynamic_batching(config: pb.ModelConfig, batching: DynamicBatching) -> None:
    config.dynamic_batching.max_queue_delay_microseconds = batching.max_queue_delay_microseconds
    config.dynamic_batching.preferred_batch_size.extend(batching.preferred_batch_sizes)
    if batching.max_queue_size is not None or batching.default_timeout_microseconds is not None:
        policy = config.dynamic_batching.default_queue_policy
        policy.timeout_action = pb.ModelQueuePolicy.TimeoutAction.REJECT
        if batching.max_queue_size is not None:
            policy.max_queue_size = batching.max_queue_size
        if batching.default_timeout_microseconds is not None:
            policy.default_timeout_microseconds = batching.default_timeout_microseconds


def _add_warmup(config: pb.ModelConfig, sample: WarmupSample) -> None:
    warmup = config.model_warmup.add(name=sample.name, batch_size=sample.batch_size)
    for tensor_name, spec in sample.inputs.items():
        data = warmup.inputs[tensor_name]
        data.data_type = pb.DataType.Value(spec.data_type)
        data.dims.extend(spec.dims)
        if spec.source == "zero":
            data.zero_data = True
        elif spec.source == "random":
            data.random_data = True
        else:
            data.input_data_file = spec.source


def render(config: pb.ModelConfig) -> str:
    """``ModelConfig`` -> the text of a ``config.pbtxt``."""
    header = "# Generated by build/build_repository.py: do not edit; rebuild instead.\n"
    return header + text_format.MessageToString(config)


def parse(text: str) -> pb.ModelConfig:
    """The text of a ``config.pbtxt`` -> ``ModelConfig`` (fails on unknown fields)."""
    return text_format.Parse(text, pb.ModelConfig())
