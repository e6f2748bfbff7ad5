"""Triton Python-backend model: the exported classifier run by torch, softmax included.

Copied by the repository build into ``<name>_model/<version>/model.py`` beside the
export's weights (safetensors) and ``cuda_graphs.py`` (the graph runner). The
architecture is rebuilt with ``timm.create_model`` from the names in the config and the
weights are loaded as tensors only: no pickled code is ever executed. Its output equals
the ONNX export's: probabilities in FP32.

- Each request is checked alone first (pixel_checks.py): one of the wrong shape, type or
  with non-finite values gets ``INVALID_ARG``, and the rest of the batch runs.
- On the CPU: FP32, ``torch_threads`` threads per instance.
- On a GPU: FP16 weights and activations (softmax in FP32), one CUDA graph per padded
  batch size (``cuda_graph_batch_sizes``): a batch of 5 runs the graph of 8. The
  pixels arrive through DLPack where they are, on the GPU when the preprocessing ran
  there (``FORCE_CPU_ONLY_INPUT_TENSORS`` is ``no`` in this model's config).
"""

import importlib.util
import json
import os
import sys

import timm
import torch
import triton_python_backend_utils as pb_utils
from safetensors.torch import load_model
from torch.utils import dlpack


def _load_beside(module_name: str):
    """Import a module file the build copied next to this one, once per stub process.

    The stub does not put the version directory on ``sys.path``, and NVIDIA's container has no
    ``tritonclf`` package. Every model file carries this same function; a test keeps them equal.
    """
    name = f"_tritonclf_{module_name}"
    if name not in sys.modules:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{module_name}.py")
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        # dataclasses resolve their module through sys.modules while the class is created.
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


GraphRunner = _load_beside("cuda_graphs").GraphRunner
_pixel_checks = _load_beside("pixel_checks")
_serving_metrics = _load_beside("serving_metrics")


def load_classifier(version_dir, params, device, half):
    """Rebuild the timm architecture, load the safetensors weights: -> eval-mode module on ``device``."""
    model = timm.create_model(params["timm_model"], pretrained=False, num_classes=int(params["num_classes"]))
    load_model(model, os.path.join(version_dir, params["weights_filename"]), strict=True)
    model = model.eval().to(device)
    return model.half() if half else model


class TritonPythonModel:
    """Concatenate the dynamic batch, run once, split back into one response per request."""

    def initialize(self, args):
        """Load the weights and, on a GPU, capture the CUDA graphs."""
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        self.input_name = params["input_name"]
        self.output_name = params["output_name"]
        self.checks = _pixel_checks.PixelChecks(self.input_name, config["input"][0]["dims"], config["max_batch_size"])
        on_gpu = args.get("model_instance_kind") == "GPU"
        if on_gpu:
            self.device = torch.device("cuda", int(args.get("model_instance_device_id", "0")))
            torch.cuda.set_device(self.device)
            torch.backends.cudnn.benchmark = True
        else:
            self.device = torch.device("cpu")
            threads = int(params.get("torch_threads", "0"))
            if threads:
                torch.set_num_threads(threads)
        self.model = load_classifier(version_dir, params, self.device, half=on_gpu)
        self.graphs = None
        sizes = [int(s) for s in params.get("cuda_graph_batch_sizes", "").split(",") if s.strip()]
        pixel_shape = tuple(config["input"][0]["dims"])
        if on_gpu and sizes:
            with torch.inference_mode():
                self.graphs = GraphRunner(self.model, sizes, pixel_shape, self.device)
        precision = "FP16" if on_gpu else "FP32"
        graphs = f", CUDA graphs for batches {sizes}" if self.graphs else ""
        # Top-1 class and score of every image (None when the build turned metrics off or put them in a later step).
        self.metrics = _serving_metrics.create(pb_utils, args, "predictions")
        pb_utils.Logger.log_info(f"torch {torch.__version__} classifier on {self.device} in {precision}{graphs}")

    def run(self, batch):
        """FP32 pixels on any device -> FP32 probabilities on this model's device."""
        batch = batch.to(self.device, non_blocking=True)
        if self.graphs is not None and len(batch) <= self.graphs.sizes[-1]:
            return self.graphs(batch)
        if self.device.type == "cuda":
            return torch.softmax(self.model(batch.half()).float(), dim=-1)
        return torch.softmax(self.model(batch), dim=-1)

    def execute(self, requests):
        """Pixels arrive through DLPack where the preprocessing left them: no copy on the way in.

        Each request is checked alone first; only the good ones run, as one batch.
        """
        tensors, problems = zip(*(self._pixels(r) for r in requests), strict=True)
        good = [t for t, problem in zip(tensors, problems, strict=True) if problem is None]
        probabilities, failure = None, None
        if good:
            try:
                with torch.inference_mode():
                    probabilities = self.run(good[0] if len(good) == 1 else torch.cat(good))
            except Exception as err:  # a bug, or torch's own error: one line to clients, the rest to the log
                pb_utils.Logger.log_error(f"torch failed on a batch of {len(good)} requests: {err!r}")
                failure = _pixel_checks.one_line_error(err)
            if probabilities is not None and self.metrics is not None and self.metrics.counting():
                # Only the top-1 of each row leaves the device for the metrics.
                scores, top1 = probabilities.max(dim=1)
                self.metrics.record_top1(top1.cpu().numpy(), scores.float().cpu().numpy())
        responses, start = [], 0
        for tensor, problem in zip(tensors, problems, strict=True):
            if problem is not None or failure is not None:
                code = pb_utils.TritonError.INVALID_ARG if problem else pb_utils.TritonError.INTERNAL
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(problem or failure, code)))
                continue
            stop = start + len(tensor)
            rows = probabilities[start:stop].contiguous()
            out = pb_utils.Tensor.from_dlpack(self.output_name, dlpack.to_dlpack(rows))
            responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
            start = stop
        return responses

    def _pixels(self, request):
        """(this request's pixels as a torch tensor, None) or (None, one line saying what is wrong with them)."""
        tensor = dlpack.from_dlpack(pb_utils.get_input_tensor_by_name(request, self.input_name).to_dlpack())
        problem = self.checks.shape_problem(tensor.shape, tensor.dtype)
        problem = problem or self.checks.value_problem(bool(torch.isfinite(tensor).all()))
        return (None, problem) if problem else (tensor, None)
