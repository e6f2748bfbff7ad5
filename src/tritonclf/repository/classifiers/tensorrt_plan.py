"""``trt``: a TensorRT FP16 engine on Triton's TensorRT backend (GPU only).

The build prepares the engine first (``engine_build.prepare_engine``: built here with
TensorRT 10, or one ``make engine`` built in NVIDIA's container, gated against ONNX
Runtime). ``--backend auto`` picks it where a GPU and TensorRT 10 are present, or a GPU
and an engine built for this export. Preflight checks the engine's TensorRT version and
GPU architecture against this machine's.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tritonclient.grpc import model_config_pb2 as pb

from tritonclf import contract
from tritonclf.repository.classifiers.base import ClassifierBackend, Machine, pixel_dims
from tritonclf.repository.export_files import BuildError
from tritonclf.repository.pbtxt import CudaGraph
from tritonclf.repository.tensorrt_versions import UnsupportedTensorRT, require_supported

ENGINE_FILENAME = "model.plan"


class TensorrtPlan(ClassifierBackend):
    """``platform: "tensorrt_plan"``."""

    name = "trt"
    summary = "a TensorRT FP16 engine on Triton's TensorRT backend (GPU)"
    export_format = "onnx"  # the engine is built from it
    always_gpu = True
    needs_engine = True

    def validate(self, options) -> None:
        if options.engine.max_batch_size != options.max_batch_size:
            raise ValueError("the engine's max batch size must equal the model's max_batch_size")

    def extra_profile_batch_sizes(self, options) -> tuple[int, ...]:
        return (options.engine.resolved_opt_batch,)

    def config_fields(self, metadata, options, cc_model_filenames: Mapping[str, str]) -> dict:
        graphs = ()
        if options.cuda_graphs:
            # One CUDA graph per batch size of the engine's profile (the sizes it is warmed with).
            dims = pixel_dims(metadata)
            graphs = tuple(CudaGraph(batch, {contract.PIXELS: dims}) for batch in options.profile_batch_sizes())
        return {
            "platform": "tensorrt_plan",
            "default_model_filename": ENGINE_FILENAME,
            "cc_model_filenames": dict(cc_model_filenames),
            "cuda_graphs": graphs,
        }

    def version_files(self, export_dir: Path, metadata, engine) -> tuple[dict[str, Path], dict[str, str]]:
        if engine is None:
            raise BuildError("backend trt needs a TensorRT engine: build one (build/onnx2trt.py or make engine)")
        files = {ENGINE_FILENAME: engine.plan}
        cc_map = {}
        for capability, plan in sorted(engine.extra_plans.items()):
            filename = f"model_sm{capability.replace('.', '')}.plan"
            files[filename] = plan
            cc_map[capability] = filename
        missing = [str(p) for p in files.values() if not Path(p).is_file()]
        if missing:
            raise BuildError(f"engine file missing: {', '.join(missing)}")
        return files, cc_map

    def serves(self, config: pb.ModelConfig) -> bool:
        return config.platform == "tensorrt_plan" or config.backend == "tensorrt"

    def required_files(self, config: pb.ModelConfig) -> list[str]:
        return [config.default_model_filename or ENGINE_FILENAME, *config.cc_model_filenames.values()]

    def preflight(self, model, machine: Machine) -> list:
        from tritonclf.repository.preflight_checks import check_engine

        return check_engine(model, machine.gpu, machine.tensorrt_version, machine.triton_tag)

    def auto_choice(self, machine: Machine) -> tuple[bool, str]:
        gpu, tensorrt_version = machine.gpu, machine.tensorrt_version
        tensorrt_problem = None
        if tensorrt_version is not None:
            try:
                require_supported(tensorrt_version, "none")
            except UnsupportedTensorRT:
                tensorrt_problem = f"TensorRT {tensorrt_version} found but only 10.x builds engines"
        if gpu is not None:
            found_gpu = f"GPU {gpu.name} (compute {gpu.compute_capability})"
            if tensorrt_version is not None and tensorrt_problem is None:
                return True, f"{found_gpu} and TensorRT {tensorrt_version} found"
            if machine.prebuilt_engine:
                return True, f"{found_gpu} and {machine.prebuilt_engine}"
        found = (
            ("no NVIDIA GPU", gpu is not None),
            (tensorrt_problem or "no TensorRT Python package", tensorrt_version is not None and not tensorrt_problem),
        )
        return False, " and ".join(what for what, present in found if not present)


BACKEND = TensorrtPlan()
