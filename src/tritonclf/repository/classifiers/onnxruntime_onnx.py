"""``onnx``: the ONNX file on Triton's ONNX Runtime backend (NVIDIA's container; CPU or GPU).

On a GPU, ``--onnx-tensorrt-fp16`` adds ONNX Runtime's TensorRT execution accelerator in
FP16, with its engines cached on disk and one profile over the whole batch range.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tritonclient.grpc import model_config_pb2 as pb

from tritonclf import contract
from tritonclf.repository.classifiers.base import ClassifierBackend, pixel_dims
from tritonclf.repository.export_files import exported_file
from tritonclf.repository.pbtxt import Accelerator


class OnnxRuntimeOnnx(ClassifierBackend):
    """``platform: "onnxruntime_onnx"``."""

    name = "onnx"
    summary = "model.onnx on Triton's ONNX Runtime backend (optional TensorRT EP in FP16 on a GPU)"
    export_format = "onnx"

    def config_fields(self, metadata, options, cc_model_filenames: Mapping[str, str]) -> dict:
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
                        **ort_trt_profile(metadata, options.max_batch_size),
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

    def version_files(self, export_dir: Path, metadata, engine) -> tuple[dict[str, Path], dict[str, str]]:
        return {contract.ONNX_FILENAME: exported_file(export_dir, metadata, self.export_format)}, {}

    def serves(self, config: pb.ModelConfig) -> bool:
        return config.platform == "onnxruntime_onnx" or config.backend == "onnxruntime"

    def required_files(self, config: pb.ModelConfig) -> list[str]:
        return [config.default_model_filename or contract.ONNX_FILENAME]


def ort_trt_profile(metadata, max_batch_size: int) -> dict[str, str]:
    """``trt_profile_{min,opt,max}_shapes`` of ONNX Runtime's TensorRT accelerator: batch 1 to max."""
    dims = "x".join(str(d) for d in pixel_dims(metadata))
    sizes = {"min": 1, "opt": max_batch_size, "max": max_batch_size}
    return {f"trt_profile_{k}_shapes": f"{contract.PIXELS}:{batch}x{dims}" for k, batch in sizes.items()}


BACKEND = OnnxRuntimeOnnx()
