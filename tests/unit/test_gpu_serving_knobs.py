"""GPU serving knobs render into configs Triton parses: CUDA graphs, GPU queue delay, ORT-TRT profile shapes.

Field names checked against Triton's model_config.proto (r24.10: ``optimization.cuda.graphs``,
``graph_spec { batch_size input { key value { dim } } }``) and onnxruntime_backend's README
(r24.10: ``trt_profile_min_shapes`` / ``trt_profile_opt_shapes`` / ``trt_profile_max_shapes``,
``input:dim1xdim2``).
"""

from __future__ import annotations

import re

import pytest

from tritonclf.repository import build_cli
from tritonclf.repository.models import GPU_QUEUE_DELAY_US, BuildOptions, classifier_spec, preprocess_spec
from tritonclf.repository.pbtxt import parse, render, to_model_config
from tritonclf.repository.tensorrt import EngineOptions

from ..conftest import ROOT
from ..export_metadata import export_metadata

METADATA = export_metadata(model_name="clf", labels=("cat", "dog", "bird"))


def classifier_config(options: BuildOptions):
    config = parse(render(to_model_config(classifier_spec("clf", METADATA, options))))  # round trip
    assert config == to_model_config(classifier_spec("clf", METADATA, options))
    return config


def trt(**options) -> BuildOptions:
    return BuildOptions(
        backend="trt", max_batch_size=32, engine=EngineOptions(max_batch_size=32, opt_batch_size=8), **options
    )


def test_trt_classifier_captures_cuda_graphs_for_every_profile_batch_size():
    cuda = classifier_config(trt()).optimization.cuda
    assert cuda.graphs is True
    assert [spec.batch_size for spec in cuda.graph_spec] == [1, 8, 32]
    for spec in cuda.graph_spec:
        assert list(spec.input["pixel_values"].dim) == [3, 224, 224]


def test_cuda_graphs_can_be_turned_off_and_are_only_for_trt():
    assert not classifier_config(trt(cuda_graphs=False)).HasField("optimization")
    assert not classifier_config(BuildOptions(backend="onnx", device="gpu")).optimization.HasField("cuda")


def test_gpu_classifiers_wait_a_little_to_batch_and_cpu_ones_do_not_by_default():
    assert GPU_QUEUE_DELAY_US > 0
    assert classifier_config(trt()).dynamic_batching.max_queue_delay_microseconds == GPU_QUEUE_DELAY_US
    gpu_onnx = classifier_config(BuildOptions(backend="onnx", device="gpu"))
    assert gpu_onnx.dynamic_batching.max_queue_delay_microseconds == GPU_QUEUE_DELAY_US
    assert classifier_config(BuildOptions()).dynamic_batching.max_queue_delay_microseconds == 0
    # The preprocessing model keeps the general delay: it runs on the CPU.
    preprocess = to_model_config(preprocess_spec("clf", METADATA, trt()))
    assert preprocess.dynamic_batching.max_queue_delay_microseconds == 0


def test_an_explicit_classifier_queue_delay_wins():
    assert (
        classifier_config(trt(classifier_queue_delay_microseconds=0)).dynamic_batching.max_queue_delay_microseconds == 0
    )
    cpu = BuildOptions(max_queue_delay_microseconds=50, classifier_queue_delay_microseconds=700)
    assert classifier_config(cpu).dynamic_batching.max_queue_delay_microseconds == 700
    with pytest.raises(ValueError, match="queue delay"):
        BuildOptions(classifier_queue_delay_microseconds=-1)


def test_onnx_runtime_tensorrt_accelerator_gets_the_batch_profile():
    options = BuildOptions(backend="onnx", device="gpu", onnx_tensorrt_fp16=True, max_batch_size=16)
    (accelerator,) = classifier_config(options).optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.parameters["trt_profile_min_shapes"] == "pixel_values:1x3x224x224"
    assert accelerator.parameters["trt_profile_opt_shapes"] == "pixel_values:16x3x224x224"
    assert accelerator.parameters["trt_profile_max_shapes"] == "pixel_values:16x3x224x224"


def test_build_command_line_offers_the_knobs_with_their_defaults():
    args = build_cli.parse_args(["--export", "e"])
    assert args.classifier_queue_delay_us is None and args.cuda_graphs is True
    args = build_cli.parse_args(["--export", "e", "--no-cuda-graphs", "--classifier-queue-delay-us", "250"])
    assert args.classifier_queue_delay_us == 250 and args.cuda_graphs is False


def test_default_image_has_no_onnxruntime_gpu_and_a_build_arg_adds_it():
    requirements = (ROOT / "deploy" / "requirements.txt").read_text()
    gpu_requirements = (ROOT / "deploy" / "requirements-gpu.txt").read_text()
    assert "onnxruntime-gpu" not in requirements and re.search(r"^onnxruntime==", requirements, re.MULTILINE)
    assert re.search(r"^onnxruntime-gpu==", gpu_requirements, re.MULTILINE)
    assert not re.search(r"^onnxruntime==", gpu_requirements, re.MULTILINE)  # both would fight over one module
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "ARG PYTHON_ORT=cpu" in dockerfile and "requirements-gpu.txt" in dockerfile
