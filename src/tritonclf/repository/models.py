"""The three model configs of a classifier repository, for every classifier backend.

Same ensemble and same tensor names whatever runs the classifier: only the
classifier's config (and the files in its version directory) change between
``python-ort``, ``onnx``, ``trt``, ``torch`` and ``torchscript``; and only the preprocessing
model's source changes between ``pillow`` and ``torch`` preprocessing.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from tritonclf import contract
from tritonclf.export_metadata import ExportMetadata
from tritonclf.monitoring.series import DEFAULT_MAX_CLASS_SERIES, LOW_CONFIDENCE
from tritonclf.preprocess import DecodeLimits
from tritonclf.repository.pbtxt import (
    Accelerator,
    CudaGraph,
    DynamicBatching,
    EnsembleStep,
    InstanceGroup,
    ModelSpec,
    Tensor,
    WarmupInput,
    WarmupSample,
)
from tritonclf.repository.tensorrt import EngineOptions

ENGINE_FILENAME = "model.plan"
# Classifier backends that run in Triton's Python backend: they record the prediction metrics
# themselves. For the others an extra Python step after the classifier does (``NAME_monitor``).
PYTHON_CLASSIFIERS = ("python-ort", "torch")
# Where the ensemble's response cache byte budget is written (a parameter of the ensemble's config):
# the launcher reads it to pass Triton the --cache-config the repository needs.
RESPONSE_CACHE_PARAMETER = "response_cache_bytes"
WARMUP_IMAGE_FILE = "image.bytes"  # under <preprocess model>/warmup/: one length-prefixed JPEG
DEVICES = ("cpu", "gpu")
PREPROCESSORS = ("pillow", "torch")
CLASSIFIER_BACKENDS = ("python-ort", "onnx", "trt", "torch", "torchscript")
# Python models that take their input where the previous step left it (on the GPU after torch
# preprocessing) instead of Triton copying it to the host first: python_backend's parameter.
FORCE_CPU_ONLY_INPUT_TENSORS = "FORCE_CPU_ONLY_INPUT_TENSORS"
# A GPU classifier runs a batch in well under a millisecond: waiting 0.1 ms lets the requests
# that arrive meanwhile share one launch, for at most 0.1 ms more latency. A starting point
# (Triton's batcher guide: raise the delay from 0 while latency allows); `make perf` measures.
GPU_QUEUE_DELAY_US = 100


@dataclasses.dataclass(frozen=True)
class CaptureOptions:
    """Low-confidence capture: images whose top-1 score is below ``below`` go to ``directory/<label>/``."""

    directory: str  # absolute, outside the model repository, writable by the server
    below: float = LOW_CONFIDENCE
    per_minute: int = 60  # per model instance
    max_bytes: int = 1 << 30  # the capture tree's total size
    min_free_bytes: int = 1 << 30  # never fill the disk past this much free space

    def __post_init__(self) -> None:
        """Reject settings that cannot work before anything is written."""
        if not os.path.isabs(self.directory):
            raise ValueError(f"the capture directory must be an absolute path, not {self.directory!r}")
        if not 0.0 < self.below <= 1.0:
            raise ValueError(f"the capture threshold must be in (0, 1], not {self.below}")
        if self.per_minute < 1 or self.max_bytes < 1 or self.min_free_bytes < 0:
            raise ValueError("capture needs a positive rate and byte budget, and a free-space floor of 0 or more")

    def to_plan(self) -> dict:
        """The capture settings as the monitor model reads them."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class BuildOptions:
    """Serving choices baked into the generated configs."""

    name: str | None = None  # ensemble name; default: the export's (ExportMetadata.ensemble_name)
    backend: str = "python-ort"  # "python-ort" | "onnx" | "trt" | "torch" | "torchscript" (``auto`` is resolved before)
    # Where python-ort / onnx / torch classifier instances and torch preprocessing run; trt is always GPU.
    device: str = "cpu"
    preprocess: str = "pillow"  # "pillow" (CPU, numpy) | "torch" (batched decode + ops on ``device``)
    max_batch_size: int = 32
    preprocess_instances: int = 2
    # Two single-threaded classifier instances: on 2 cores 6% more images/s than one on two
    # threads (interleaved runs at c=16: 87-90 vs 82-86); one thread wastes no CPU on handoffs.
    classifier_instances: int = 2
    intra_op_threads: int = 1  # ONNX Runtime threads per classifier instance; 0 = its default (all cores)
    ort_spinning: bool = False  # python-ort: let idle ONNX Runtime threads busy-wait (faster alone, worse shared)
    # python-ort on the CPU: a lone image, while a core is spare, runs on a second session on
    # every core whose threads spin during that run only (unloaded latency; the model's memory twice).
    single_image_spinning: bool = True
    max_queue_delay_microseconds: int = 0
    # The classifier's own delay; None: GPU_QUEUE_DELAY_US on a GPU, else max_queue_delay_microseconds.
    classifier_queue_delay_microseconds: int | None = None
    # trt: Triton captures a CUDA graph per profile batch size (1, opt, max) at load; a batch of
    # another size runs without one. Saves the per-layer kernel launches of small batches.
    # torch on a GPU: the model captures one per padded batch size (cuda_graph_batch_sizes).
    cuda_graphs: bool = True
    preferred_batch_sizes: tuple[int, ...] = ()  # dynamic batching's preferred sizes (empty: none)
    # Past capacity, clients get a fast UNAVAILABLE instead of unbounded latency: at most
    # this many requests wait in each model's queue, none longer than the timeout (0 = no bound).
    max_queue_size: int = 128
    queue_timeout_microseconds: int = 5_000_000
    limits: DecodeLimits = dataclasses.field(default_factory=DecodeLimits)
    keep_versions: int = 2
    warmup: bool = True
    # The classifier's warmup batch sizes; empty = 1 and max_batch_size (and the engine's opt batch).
    # Model Analyzer copies model_warmup into every config it tries, including ones with a smaller
    # max_batch_size, which then fail to load: analyze builds with (1,), valid under any of them.
    warmup_batch_sizes: tuple[int, ...] = ()
    # onnx backend: ONNX Runtime's TensorRT execution accelerator in FP16, engines cached on disk.
    onnx_tensorrt_fp16: bool = False
    ort_trt_cache_dir: str = "/tmp/tritonclf-ort-trt-cache"
    engine: EngineOptions = dataclasses.field(default_factory=EngineOptions)
    # Prediction and input metrics on Triton's metrics port (tritonclf.monitoring.series).
    metrics: bool = True
    metrics_class_series: int = DEFAULT_MAX_CLASS_SERIES
    # Triton's response cache on the ensemble, this many bytes (0: off): identical image bytes are
    # answered from memory without preprocessing or inference.
    response_cache_bytes: int = 0
    capture: CaptureOptions | None = None  # save low-confidence images for relabelling (off by default)

    def __post_init__(self) -> None:
        """Catch contradictory options before anything is written."""
        if self.backend not in CLASSIFIER_BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(CLASSIFIER_BACKENDS)}, not {self.backend!r}")
        if self.preprocess not in PREPROCESSORS:
            raise ValueError(f"preprocess must be one of {', '.join(PREPROCESSORS)}, not {self.preprocess!r}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, not {self.device!r}")
        if self.max_batch_size < 1 or self.keep_versions < 1:
            raise ValueError("max_batch_size and keep_versions must be at least 1")
        if self.max_queue_delay_microseconds < 0 or (self.classifier_queue_delay_microseconds or 0) < 0:
            raise ValueError("a queue delay cannot be negative")
        if self.max_queue_size < 0 or self.queue_timeout_microseconds < 0:
            raise ValueError("max_queue_size and queue_timeout_microseconds must be 0 (no bound) or positive")
        if self.backend == "trt" and self.engine.max_batch_size != self.max_batch_size:
            raise ValueError("the engine's max batch size must equal the model's max_batch_size")
        if self.onnx_tensorrt_fp16 and (self.backend != "onnx" or self.device != "gpu"):
            raise ValueError("the TensorRT accelerator needs --backend onnx --device gpu")
        if any(not 1 <= size <= self.max_batch_size for size in self.preferred_batch_sizes):
            raise ValueError(
                f"preferred batch sizes {list(self.preferred_batch_sizes)} must lie in 1..max_batch_size "
                f"({self.max_batch_size})"
            )
        if any(not 1 <= size <= self.max_batch_size for size in self.warmup_batch_sizes):
            raise ValueError(
                f"warmup batch sizes {list(self.warmup_batch_sizes)} must lie in 1..max_batch_size "
                f"({self.max_batch_size})"
            )
        self._check_monitoring()

    def _check_monitoring(self) -> None:
        if self.metrics_class_series < 2:
            raise ValueError("metrics_class_series must be at least 2 (one class and 'other')")
        if self.response_cache_bytes < 0:
            raise ValueError("response_cache_bytes must be 0 (off) or positive")
        if self.capture is not None and not self.metrics:
            raise ValueError("low-confidence capture runs with the prediction metrics: drop --no-metrics")

    @property
    def monitor_step(self) -> bool:
        """Whether the ensemble ends with ``NAME_monitor``: metrics for a non-Python classifier, or capture."""
        return self.capture is not None or (self.metrics and self.backend not in PYTHON_CLASSIFIERS)

    @property
    def classifier_records_predictions(self) -> bool:
        """Whether the (Python-backend) classifier itself records the prediction metrics."""
        return self.metrics and not self.monitor_step

    def dynamic_batching(self, delay_microseconds: int | None = None) -> DynamicBatching:
        """Batching and queue policy of the preprocessing model and the classifier (ensembles have no queue)."""
        return DynamicBatching(
            self.max_queue_delay_microseconds if delay_microseconds is None else delay_microseconds,
            preferred_batch_sizes=tuple(sorted(set(self.preferred_batch_sizes))),
            max_queue_size=self.max_queue_size or None,
            default_timeout_microseconds=self.queue_timeout_microseconds or None,
        )

    @property
    def classifier_queue_delay(self) -> int:
        """The classifier's batching delay: explicit, else a small one on a GPU, else the general one."""
        if self.classifier_queue_delay_microseconds is not None:
            return self.classifier_queue_delay_microseconds
        return GPU_QUEUE_DELAY_US if self.classifier_kind == "KIND_GPU" else self.max_queue_delay_microseconds

    @property
    def classifier_kind(self) -> str:
        """Triton instance kind of the classifier."""
        return "KIND_GPU" if self.backend == "trt" or self.device == "gpu" else "KIND_CPU"

    @property
    def preprocess_kind(self) -> str:
        """Triton instance kind of the preprocessing model: Pillow always runs on the CPU."""
        return "KIND_GPU" if self.preprocess == "torch" and self.device == "gpu" else "KIND_CPU"

    def cuda_graph_batch_sizes(self) -> tuple[int, ...]:
        """Padded batch sizes the torch classifier captures on a GPU: powers of two, then the maximum."""
        sizes, size = [], 1
        while size < self.max_batch_size:
            sizes.append(size)
            size *= 2
        return (*sizes, self.max_batch_size)

    def classifier_warmup_batch_sizes(self) -> tuple[int, ...]:
        """Batch sizes the classifier is warmed with: the chosen ones, else every profile batch size."""
        if self.warmup_batch_sizes:
            return tuple(sorted(set(self.warmup_batch_sizes)))
        return self.profile_batch_sizes()

    def profile_batch_sizes(self) -> tuple[int, ...]:
        """Every shape of the TensorRT engine profile (1, opt, max), or 1 and max for the other backends."""
        sizes = {1, self.max_batch_size}
        if self.backend == "trt":
            sizes.add(self.engine.resolved_opt_batch)
        return tuple(sorted(sizes))


def _probabilities(metadata: ExportMetadata) -> Tensor:
    return Tensor(contract.PROBABILITIES, "TYPE_FP32", (metadata.num_classes,), label_filename=contract.LABELS_FILENAME)


def _pixels(metadata: ExportMetadata, image_format: str | None = None) -> Tensor:
    height, width = metadata.preprocess.input_size
    return Tensor(contract.PIXELS, "TYPE_FP32", (3, height, width), image_format=image_format)


def preprocess_spec(name: str, metadata: ExportMetadata, options: BuildOptions) -> ModelSpec:
    """Config of the Python-backend preprocessing model."""
    warmup = ()
    if options.warmup:
        image = WarmupInput("TYPE_STRING", (1,), WARMUP_IMAGE_FILE)
        warmup = (WarmupSample("jpeg", 1, {contract.IMAGE_INPUT: image}),)
    return ModelSpec(
        name=contract.preprocess_model_name(name),
        backend="python",
        max_batch_size=options.max_batch_size,
        inputs=(Tensor(contract.IMAGE_INPUT, "TYPE_STRING", (1,)),),
        outputs=(_pixels(metadata),),
        instance_groups=(InstanceGroup(options.preprocess_instances, options.preprocess_kind),),
        dynamic_batching=options.dynamic_batching(),
        parameters={
            "input_name": contract.IMAGE_INPUT,
            "output_name": contract.PIXELS,
            **metadata.preprocess.to_parameters(),
            **options.limits.to_parameters(),
            # One torch thread per CPU instance: the instances and the classifier share the cores.
            **({"preprocessor": "torch", "torch_threads": "1"} if options.preprocess == "torch" else {}),
        },
        warmup=warmup,
    )


def _classifier_warmup(metadata: ExportMetadata, options: BuildOptions) -> tuple[WarmupSample, ...]:
    if not options.warmup:
        return ()
    # Zeros: Triton's random_data is random bytes, NaN and Inf among them, which the classifier refuses.
    pixels = WarmupInput("TYPE_FP32", _pixels(metadata).dims, "zero")
    return tuple(
        WarmupSample(f"batch_{b}", b, {contract.PIXELS: pixels}) for b in options.classifier_warmup_batch_sizes()
    )


def _ort_trt_profile(metadata: ExportMetadata, options: BuildOptions) -> dict[str, str]:
    """``trt_profile_{min,opt,max}_shapes`` of ONNX Runtime's TensorRT accelerator: batch 1 to max."""
    dims = "x".join(str(d) for d in _pixels(metadata).dims)
    sizes = {"min": 1, "opt": options.max_batch_size, "max": options.max_batch_size}
    return {f"trt_profile_{k}_shapes": f"{contract.PIXELS}:{batch}x{dims}" for k, batch in sizes.items()}


def _cuda_graphs(metadata: ExportMetadata, options: BuildOptions) -> tuple[CudaGraph, ...]:
    """One CUDA graph per batch size of the engine's profile (the sizes it is warmed with)."""
    if options.backend != "trt" or not options.cuda_graphs:
        return ()
    dims = _pixels(metadata).dims
    return tuple(CudaGraph(batch, {contract.PIXELS: dims}) for batch in options.profile_batch_sizes())


def _backend_fields(metadata: ExportMetadata, options: BuildOptions, cc_model_filenames: Mapping[str, str]) -> dict:
    """What differs between classifier backends: who runs it, its file, its parameters."""
    if options.backend == "python-ort":
        return {
            "backend": "python",
            "parameters": {
                "input_name": contract.PIXELS,
                "output_name": contract.PROBABILITIES,
                "onnx_filename": contract.ONNX_FILENAME,
                "intra_op_threads": str(options.intra_op_threads),
                "allow_spinning": "1" if options.ort_spinning else "0",
                "single_image_spinning": "1" if options.single_image_spinning else "0",
            },
        }
    if options.backend == "torch":
        parameters = {
            "input_name": contract.PIXELS,
            "output_name": contract.PROBABILITIES,
            "weights_filename": contract.WEIGHTS_FILENAME,
            "timm_model": metadata.model_name,
            "num_classes": str(metadata.num_classes),
            "torch_threads": str(options.intra_op_threads),
            # The pixels stay where the preprocessing left them; the model moves them if needed.
            FORCE_CPU_ONLY_INPUT_TENSORS: "no",
        }
        if options.device == "gpu" and options.cuda_graphs:
            parameters["cuda_graph_batch_sizes"] = ",".join(map(str, options.cuda_graph_batch_sizes()))
        return {"backend": "python", "parameters": parameters}
    if options.backend == "onnx":
        accelerators = ()
        if options.onnx_tensorrt_fp16:
            accelerators = (
                Accelerator(
                    "tensorrt",
                    {
                        "precision_mode": "FP16",
                        "max_workspace_size_bytes": str(options.engine.workspace_bytes),
                        # Without the cache every server start rebuilds the engines (minutes).
                        "trt_engine_cache_enable": "1",
                        "trt_engine_cache_path": options.ort_trt_cache_dir,
                        "trt_timing_cache_enable": "1",
                        "trt_timing_cache_path": options.ort_trt_cache_dir,
                        # One explicit profile over the batch range: without it ONNX Runtime
                        # rebuilds the engine each time a larger batch than seen so far arrives.
                        **_ort_trt_profile(metadata, options),
                    },
                ),
            )
        params = {"intra_op_thread_count": str(options.intra_op_threads)} if options.intra_op_threads else {}
        return {
            "platform": "onnxruntime_onnx",
            "default_model_filename": contract.ONNX_FILENAME,
            "parameters": params,
            "gpu_accelerators": accelerators,
        }
    if options.backend == "torchscript":
        return libtorch_fields(options)
    return {
        "platform": "tensorrt_plan",
        "default_model_filename": ENGINE_FILENAME,
        "cc_model_filenames": dict(cc_model_filenames),
        "cuda_graphs": _cuda_graphs(metadata, options),
    }


def libtorch_fields(options: BuildOptions) -> dict:
    """The TorchScript classifier for Triton's PyTorch (LibTorch) backend, as its 24.10 README documents.

    The tensor names stay the served ones: the input binds to ``forward(pixel_values)``
    by argument name, and a single output needs no ``<name>__<index>`` suffix (the
    backend falls back to the config's order). ``INFERENCE_MODE`` is the backend's
    default, written out so the config says how the model runs.
    """
    params = {"INFERENCE_MODE": "true"}
    if options.intra_op_threads and options.classifier_kind == "KIND_CPU":
        # One instance per core, like the other CPU backends, instead of every instance on every core.
        params.update(INTRA_OP_THREAD_COUNT=str(options.intra_op_threads), INTER_OP_THREAD_COUNT="1")
    return {
        "platform": "pytorch_libtorch",
        "default_model_filename": contract.TORCHSCRIPT_FILENAME,
        "parameters": params,
    }


def classifier_spec(
    name: str, metadata: ExportMetadata, options: BuildOptions, cc_model_filenames: Mapping[str, str] | None = None
) -> ModelSpec:
    """Config of the classifier for the chosen backend."""
    return ModelSpec(
        name=contract.classifier_model_name(name),
        max_batch_size=options.max_batch_size,
        # FORMAT_NCHW: Triton's stock image clients can call the classifier directly.
        inputs=(_pixels(metadata, image_format="FORMAT_NCHW"),),
        outputs=(_probabilities(metadata),),
        instance_groups=(InstanceGroup(options.classifier_instances, options.classifier_kind),),
        dynamic_batching=options.dynamic_batching(options.classifier_queue_delay),
        warmup=_classifier_warmup(metadata, options),
        **_backend_fields(metadata, options, cc_model_filenames or {}),
    )


def monitor_spec(name: str, metadata: ExportMetadata, options: BuildOptions) -> ModelSpec:
    """Config of the Python step after the classifier: records the predictions, passes the probabilities on."""
    inputs = [Tensor(contract.CLASSIFIER_PROBABILITIES, "TYPE_FP32", (metadata.num_classes,))]
    parameters = {"input_name": contract.CLASSIFIER_PROBABILITIES, "output_name": contract.PROBABILITIES}
    if options.capture is not None:
        inputs.append(Tensor(contract.IMAGE_INPUT, "TYPE_STRING", (1,)))
        parameters["image_name"] = contract.IMAGE_INPUT
    return ModelSpec(
        name=contract.monitor_model_name(name),
        backend="python",
        max_batch_size=options.max_batch_size,
        inputs=tuple(inputs),
        outputs=(Tensor(contract.PROBABILITIES, "TYPE_FP32", (metadata.num_classes,)),),
        # One instance: a few metric calls per image; under load the batches grow instead.
        instance_groups=(InstanceGroup(1, "KIND_CPU"),),
        dynamic_batching=options.dynamic_batching(0),
        parameters=parameters,
    )


def ensemble_spec(name: str, metadata: ExportMetadata, options: BuildOptions) -> ModelSpec:
    """Config of the ensemble joining preprocessing, classifier and (for some builds) the monitor step.

    Ensembles cannot carry warmup. The byte budget of the response cache is a server setting;
    it is written here as a parameter so that the launcher can pass it to Triton.
    """
    probabilities = contract.CLASSIFIER_PROBABILITIES if options.monitor_step else contract.PROBABILITIES
    steps = [
        EnsembleStep(
            contract.preprocess_model_name(name),
            input_map={contract.IMAGE_INPUT: contract.IMAGE_INPUT},
            output_map={contract.PIXELS: contract.PIXELS},
        ),
        EnsembleStep(
            contract.classifier_model_name(name),
            input_map={contract.PIXELS: contract.PIXELS},
            output_map={contract.PROBABILITIES: probabilities},
        ),
    ]
    if options.monitor_step:
        inputs = {contract.CLASSIFIER_PROBABILITIES: contract.CLASSIFIER_PROBABILITIES}
        if options.capture is not None:
            inputs[contract.IMAGE_INPUT] = contract.IMAGE_INPUT
        steps.append(
            EnsembleStep(
                contract.monitor_model_name(name),
                input_map=inputs,
                output_map={contract.PROBABILITIES: contract.PROBABILITIES},
            )
        )
    cache = options.response_cache_bytes
    return ModelSpec(
        name=name,
        platform="ensemble",
        max_batch_size=options.max_batch_size,
        inputs=(Tensor(contract.IMAGE_INPUT, "TYPE_STRING", (1,)),),
        outputs=(_probabilities(metadata),),
        ensemble_steps=tuple(steps),
        response_cache=cache > 0,
        parameters={RESPONSE_CACHE_PARAMETER: str(cache)} if cache else {},
    )
