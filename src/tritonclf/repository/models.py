"""The three model configs of a classifier repository, for every classifier backend.

Same ensemble and same tensor names whatever runs the classifier: only the
classifier's config (and the files in its version directory) change between the
backends of ``classifiers/``, which supply those fields; and only the preprocessing
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
from tritonclf.repository import classifiers
from tritonclf.repository.classifiers.base import ClassifierBackend
from tritonclf.repository.pbtxt import (
    DynamicBatching,
    EnsembleStep,
    InstanceGroup,
    ModelSpec,
    Tensor,
    WarmupInput,
    WarmupSample,
)
from tritonclf.repository.tensorrt import EngineOptions

# Where the ensemble's response cache byte budget is written (a parameter of the ensemble's config):
# the launcher reads it to pass Triton the --cache-config the repository needs.
RESPONSE_CACHE_PARAMETER = "response_cache_bytes"
WARMUP_IMAGE_FILE = "image.bytes"  # under <preprocess model>/warmup/: one length-prefixed JPEG
DEVICES = ("cpu", "gpu")
PREPROCESSORS = ("pillow", "torch")
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
    backend: str = "python-ort"  # a name in classifiers.BACKENDS (``auto`` is resolved before)
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
        classifiers.get(self.backend)  # ValueError naming the backends
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
        self.classifier.validate(self)
        self._check_monitoring()

    def _check_monitoring(self) -> None:
        if self.metrics_class_series < 2:
            raise ValueError("metrics_class_series must be at least 2 (one class and 'other')")
        if self.response_cache_bytes < 0:
            raise ValueError("response_cache_bytes must be 0 (off) or positive")
        if self.capture is not None and not self.metrics:
            raise ValueError("low-confidence capture runs with the prediction metrics: drop --no-metrics")

    @property
    def classifier(self) -> ClassifierBackend:
        """The classifier backend these options build."""
        return classifiers.get(self.backend)

    @property
    def monitor_step(self) -> bool:
        """Whether the ensemble ends with ``NAME_monitor``: metrics for a non-Python classifier, or capture."""
        return self.capture is not None or (self.metrics and not self.classifier.records_predictions)

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
        return "KIND_GPU" if self.classifier.always_gpu or self.device == "gpu" else "KIND_CPU"

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
        """1, max and the backend's own (a TensorRT engine's opt batch): the shapes the classifier is built for."""
        return tuple(sorted({1, self.max_batch_size, *self.classifier.extra_profile_batch_sizes(self)}))


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
        **options.classifier.config_fields(metadata, options, cc_model_filenames or {}),
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
