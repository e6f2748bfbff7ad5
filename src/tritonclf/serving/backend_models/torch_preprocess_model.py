"""Triton Python-backend model: encoded image bytes -> normalized NCHW float32 pixels, with torch.

Copied by the repository build into ``<name>_preprocess/<version>/model.py`` next to
``preprocess.py`` (header checks, Pillow decoding) and ``torch_preprocess.py`` (batched
JPEG decode on the device, resize, crop, normalize as torch ops). The spec and limits
come from the config ``parameters``, as for the Pillow model.

A GPU instance decodes with nvJPEG and keeps the pixels on its GPU: the output leaves
through DLPack, and a Python classifier with ``FORCE_CPU_ONLY_INPUT_TENSORS=no``
(or a TensorRT / ONNX Runtime one) takes them without a copy through the host.
A CPU instance runs the same code with device ``cpu``.

One ``execute`` decodes every image of the dynamic batch together; an image that
cannot be accepted fails only its own request, with ``INVALID_ARG`` and the same
one-line reason as the Pillow model.
"""

import importlib.util
import json
import os
import sys
import time

import torch
import triton_python_backend_utils as pb_utils
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


_preprocess = _load_beside("preprocess")
_torch_preprocess = _load_beside("torch_preprocess")
_serving_metrics = _load_beside("serving_metrics")


class TritonPythonModel:
    """Decode the batch's JPEGs together on the device; Pillow for the rest; torch ops after."""

    def initialize(self, args):
        """Spec, limits and device from the config, once."""
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.spec = _preprocess.PreprocessSpec.from_parameters(params)
        self.limits = _preprocess.DecodeLimits.from_parameters(params)
        _torch_preprocess.check_spec(self.spec)
        self.image_input = params["input_name"]
        self.pixels_output = params["output_name"]
        if args.get("model_instance_kind") == "GPU":
            self.device = torch.device("cuda", int(args.get("model_instance_device_id", "0")))
            torch.cuda.set_device(self.device)
        else:
            self.device = torch.device("cpu")
            # Several instances share the cores with the classifier: one thread each.
            torch.set_num_threads(int(params.get("torch_threads", "1")))
        _preprocess.silence_decoder_warnings()
        # Rejections by reason, sizes and preprocessing time (None when the build turned metrics off).
        self.metrics = _serving_metrics.create(pb_utils, args, "inputs")
        pb_utils.Logger.log_info(f"torch {torch.__version__} preprocessing on {self.device}")

    def execute(self, requests):
        """One response per request; a bad image fails only the request that sent it."""
        items = [
            pb_utils.get_input_tensor_by_name(request, self.image_input).as_numpy().reshape(-1) for request in requests
        ]
        datas = [bytes(item) for request_items in items for item in request_items]
        recording = self.metrics is not None and self.metrics.counting()
        start = time.perf_counter()
        try:
            with torch.inference_mode():
                results, sizes = _torch_preprocess.preprocess_batch_with_sizes(
                    datas, self.spec, self.limits, self.device
                )
        except Exception as err:  # a bug or a decoder crash: fail this batch's requests, keep the model
            pb_utils.Logger.log_error(f"internal preprocessing error: {type(err).__name__}: {err}")
            # The exception's text may hold paths: the client gets its type only.
            message = f"internal preprocessing error ({type(err).__name__}); the server log has the details"
            if recording:
                for _ in datas:
                    self.metrics.failed()
            return [pb_utils.InferenceResponse(error=pb_utils.TritonError(message)) for _ in requests]
        if recording:
            self._record(results, sizes, time.perf_counter() - start)
        responses, start = [], 0
        for request_items in items:
            stop = start + len(request_items)
            responses.append(self._respond(results[start:stop]))
            start = stop
        return responses

    def _record(self, results, sizes, seconds):
        """The images are decoded together: each accepted one is charged an equal share of the batch's time."""
        accepted = [i for i, result in enumerate(results) if not isinstance(result, _preprocess.ImageRejected)]
        for result in results:
            if isinstance(result, _preprocess.ImageRejected):
                self.metrics.rejected(result.reason)
        for i in accepted:
            file_bytes, pixels = sizes[i]
            self.metrics.accepted(file_bytes, pixels, seconds / len(accepted))

    def _respond(self, results):
        for i, result in enumerate(results):
            if isinstance(result, _preprocess.ImageRejected):
                where = f"image {i} of the request: " if len(results) > 1 else ""
                return pb_utils.InferenceResponse(
                    error=pb_utils.TritonError(where + str(result), pb_utils.TritonError.INVALID_ARG)
                )
        if results:
            pixels = torch.stack(results)
        else:
            pixels = torch.empty((0, 3, *self.spec.input_size), dtype=torch.float32, device=self.device)
        out = pb_utils.Tensor.from_dlpack(self.pixels_output, dlpack.to_dlpack(pixels))
        return pb_utils.InferenceResponse(output_tensors=[out])
