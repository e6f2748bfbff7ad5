"""ONNX -> TensorRT FP16 engine, with the TensorRT Python API or with ``trtexec``.

An engine only loads in the TensorRT version and on the GPU architecture it was
built for ("plan file is not compatible", "generated on an incompatible device").
Two ways to get that right:

- build on the serving machine with the TensorRT Python API (``build_engine``);
- build inside NVIDIA's Triton container of the exact release you deploy with
  ``trtexec`` (``trtexec_command`` / ``container_command``): the engine then matches
  that server's TensorRT by construction.

Either way the softmax and the output stay in FP32, the optimization profile spans
batch 1..max_batch_size, and the timing cache is reused between builds. Both ways
build with TensorRT 10 only, and offer an option only where that release has it
(``tensorrt_versions``): each refuses with one line before anything is built.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import time
from pathlib import Path

import onnx

from tritonclf.repository.tensorrt_versions import (
    HARDWARE_COMPATIBILITY_LEVELS,
    python_hardware_compatibility,
    require_supported,
    trtexec_hardware_compatibility,
)

CONTAINER_TIMING_CACHE_DIR = "/timing-cache"  # where container_command mounts the timing cache's folder


@dataclasses.dataclass(frozen=True)
class EngineOptions:
    """Builder choices; they are recorded in the manifest next to the engine."""

    max_batch_size: int = 32
    opt_batch_size: int | None = None  # None: max_batch_size (the dynamic batcher fills batches under load)
    workspace_bytes: int = 2 << 30
    fp16: bool = True
    hardware_compatibility: str = "none"  # "ampere+": one engine for every Ampere-or-newer GPU, a bit slower
    timing_cache: Path | None = None

    def __post_init__(self) -> None:
        """Refuse options TensorRT would refuse later, with a clearer message."""
        if self.hardware_compatibility not in HARDWARE_COMPATIBILITY_LEVELS:
            raise ValueError(f"hardware compatibility must be one of {HARDWARE_COMPATIBILITY_LEVELS}")
        if not 1 <= self.resolved_opt_batch <= self.max_batch_size:
            raise ValueError("the optimization profile needs 1 <= opt batch <= max batch")

    @property
    def resolved_opt_batch(self) -> int:
        """The profile's optimum batch size."""
        return self.opt_batch_size or self.max_batch_size

    def profile(self, channels: int, height: int, width: int) -> dict[str, tuple[int, ...]]:
        """Min / opt / max shapes of the single optimization profile."""
        return {
            "min": (1, channels, height, width),
            "opt": (self.resolved_opt_batch, channels, height, width),
            "max": (self.max_batch_size, channels, height, width),
        }

    def to_manifest(self) -> dict:
        """JSON-ready builder flags."""
        data = dataclasses.asdict(self)
        data["timing_cache"] = str(self.timing_cache) if self.timing_cache else None
        data["opt_batch_size"] = self.resolved_opt_batch
        data["fp32_layers"] = "softmax and network outputs"
        return data


def fp32_node_names(onnx_path: Path) -> list[str]:
    """ONNX nodes that must stay FP32 in the engine: every Softmax and every node producing an output."""
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    outputs = {o.name for o in graph.output}
    return [n.name for n in graph.node if n.op_type == "Softmax" or outputs.intersection(n.output)]


def _shape_arg(name: str, shape: tuple[int, ...]) -> str:
    return f"{name}:{'x'.join(str(d) for d in shape)}"


def trtexec_command(
    *,
    onnx_path: str,
    engine_path: str,
    input_name: str,
    input_chw: tuple[int, int, int],
    options: EngineOptions,
    fp32_layers: list[str],
    tensorrt_version: str,
    trtexec: str = "trtexec",
) -> list[str]:
    """The trtexec command line equivalent to :func:`build_engine`, for the TensorRT that will run it.

    Raises UnsupportedTensorRT where that TensorRT lacks a flag or an option.
    """
    require_supported(tensorrt_version, options.hardware_compatibility)
    profile = options.profile(*input_chw)
    command = [
        trtexec,
        f"--onnx={onnx_path}",
        f"--saveEngine={engine_path}",
        f"--minShapes={_shape_arg(input_name, profile['min'])}",
        f"--optShapes={_shape_arg(input_name, profile['opt'])}",
        f"--maxShapes={_shape_arg(input_name, profile['max'])}",
        f"--memPoolSize=workspace:{options.workspace_bytes // (1 << 20)}M",
        "--skipInference",
    ]
    if options.fp16:
        command.append("--fp16")
        if fp32_layers:
            command += [
                "--precisionConstraints=obey",
                "--layerPrecisions=" + ",".join(f"{n}:fp32" for n in fp32_layers),
                "--layerOutputTypes=" + ",".join(f"{n}:fp32" for n in fp32_layers),
            ]
    if options.timing_cache:
        command.append(f"--timingCacheFile={options.timing_cache}")
    if options.hardware_compatibility != "none":
        command.append(f"--hardwareCompatibilityLevel={trtexec_hardware_compatibility(options.hardware_compatibility)}")
    return command


def container_command(
    triton_tag: str,
    mount_dir: Path,
    inner: list[str],
    *,
    user: str | None = None,
    timing_cache: Path | None = None,
    image: str = "nvcr.io/nvidia/tritonserver",
) -> list[str]:
    """``docker run`` of a trtexec build in NVIDIA's Triton container, ``mount_dir`` mounted at /work.

    The build log and ``nvidia-smi`` output land in /work/engine/, for the manifest.
    ``timing_cache`` is the host file: its folder is mounted at ``CONTAINER_TIMING_CACHE_DIR``,
    so ``inner`` must name it there (:func:`container_timing_cache`) for the next build to find it.
    """
    shell = "set -o pipefail && " + " && ".join(
        [
            f"{shlex.join(inner)} 2>&1 | tee /work/engine/trtexec.log",
            "nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv,noheader > /work/engine/gpu.txt",
            "nvidia-smi > /work/engine/nvidia-smi.txt",
        ]
    )
    user_args = ["--user", user] if user else []
    cache_args = ["-v", f"{Path(timing_cache).parent.resolve()}:{CONTAINER_TIMING_CACHE_DIR}"] if timing_cache else []
    return [
        "docker", "run", "--rm", "--gpus", "all", *user_args,
        "-v", f"{Path(mount_dir).resolve()}:/work", *cache_args, "-w", "/work",
        f"{image}:{triton_tag}", "bash", "-c", shell,
    ]  # fmt: skip


def container_timing_cache(host_path: Path) -> Path:
    """Where a host timing cache file is seen inside the build container."""
    return Path(CONTAINER_TIMING_CACHE_DIR) / Path(host_path).name


_TRTEXEC_VERSION = re.compile(r"TensorRT v(\d+)")


def parse_trtexec_version(text: str) -> str | None:
    """``[TensorRT v100500]`` -> ``10.5.0`` (TensorRT encodes major*10000 + minor*100 + patch)."""
    match = _TRTEXEC_VERSION.search(text)
    if not match:
        return None
    number = int(match.group(1))
    return f"{number // 10000}.{number // 100 % 100}.{number % 100}"


def build_engine(onnx_path: Path, input_name: str, options: EngineOptions) -> tuple[bytes, dict]:
    """Build a serialized engine with the TensorRT Python API; returns (engine, build record).

    Needs the ``tensorrt`` package and a GPU; imported here so the rest of the
    project works without them.
    """
    import tensorrt as trt

    require_supported(str(trt.__version__), options.hardware_compatibility)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch: the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT cannot parse {onnx_path}: {errors}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_bytes)
    if options.fp16:
        config.set_flag(trt.BuilderFlag.FP16)
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
        keep = set(fp32_node_names(onnx_path))
        for index in range(network.num_layers):
            layer = network.get_layer(index)
            if layer.type == trt.LayerType.SOFTMAX or layer.name in keep:
                layer.precision = trt.float32
                for out in range(layer.num_outputs):
                    layer.set_output_type(out, trt.float32)
    if options.hardware_compatibility != "none":
        level = python_hardware_compatibility(options.hardware_compatibility)
        config.hardware_compatibility_level = getattr(trt.HardwareCompatibilityLevel, level)

    channels, height, width = tuple(network.get_input(0).shape)[1:]
    shapes = options.profile(channels, height, width)
    profile = builder.create_optimization_profile()
    profile.set_shape(input_name, shapes["min"], shapes["opt"], shapes["max"])
    config.add_optimization_profile(profile)

    cache_bytes = options.timing_cache.read_bytes() if options.timing_cache and options.timing_cache.is_file() else b""
    config.set_timing_cache(config.create_timing_cache(cache_bytes), ignore_mismatch=True)

    started = time.monotonic()
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise RuntimeError("TensorRT failed to build the engine (see its log above)")
    build_s = time.monotonic() - started
    if options.timing_cache:
        options.timing_cache.parent.mkdir(parents=True, exist_ok=True)
        options.timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
    record = {"tensorrt_version": trt.__version__, "build_seconds": round(build_s, 1), "builder": "tensorrt-python"}
    return bytes(engine), record
