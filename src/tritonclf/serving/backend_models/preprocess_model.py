"""Triton Python-backend model: encoded image bytes -> normalized NCHW float32 pixels.

Copied by the repository build into ``<name>_preprocess/<version>/model.py`` next to
``preprocess.py`` (the project's one preprocessing implementation). The spec and the
decode limits come from this model's config ``parameters``, written by the build
from the export metadata: no preprocessing constant lives in this file.

One ``execute`` call handles the whole dynamic batch. An image that cannot be
accepted fails only its own request, with ``INVALID_ARG`` and a one-line reason.
"""

import ctypes
import ctypes.util
import importlib.util
import json
import os
import sys
import time

import numpy as np
import triton_python_backend_utils as pb_utils


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
_serving_metrics = _load_beside("serving_metrics")
DecodeLimits = _preprocess.DecodeLimits
ImageRejected = _preprocess.ImageRejected
PreprocessSpec = _preprocess.PreprocessSpec
open_image = _preprocess.open_image
preprocess_opened = _preprocess.preprocess_opened
silence_decoder_warnings = _preprocess.silence_decoder_warnings

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Buffers up to this size come from the heap and are reused (a 12 MP JPEG, its draft decode,
# a batch's float tensors); larger ones are still mapped and unmapped. 32 MiB and twice that
# kept free are where glibc's own adaptive threshold tops out.
_HEAP_BUFFER_BYTES = 32 << 20


def keep_freed_memory() -> bool:
    """Make glibc reuse freed buffers instead of unmapping them; False where that is not glibc.

    In the stub every request allocates the image bytes, the decoded image and the float
    tensors afresh. Measured here, glibc handed those back to the kernel after each image
    and faulted them in again: about 600 page faults and 1 ms of CPU per image (10%
    of the decode); a plain Python loop doing the same work does not. At most 64 MiB of
    freed memory is kept.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mapped = mallopt(_M_MMAP_THRESHOLD, _HEAP_BUFFER_BYTES)
    return bool(mapped) and bool(mallopt(_M_TRIM_THRESHOLD, 2 * _HEAP_BUFFER_BYTES))


class TritonPythonModel:
    """Decode, resize, crop and normalize every image of every request in the batch."""

    def initialize(self, args):
        """Read the preprocessing spec and limits from the config once."""
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.spec = PreprocessSpec.from_parameters(params)
        self.limits = DecodeLimits.from_parameters(params)
        # Tensor names come from the config too (the build writes them from contract.py).
        self.image_input = params["input_name"]
        self.pixels_output = params["output_name"]
        self.logger = pb_utils.Logger
        # Hostile images must not grow Python's warning registry or flood the server log.
        silence_decoder_warnings()
        if not keep_freed_memory():
            self.logger.log_info("not glibc: freed image buffers go back to the allocator's defaults")
        # Rejections by reason, sizes and preprocessing time (None when the build turned metrics off).
        self.metrics = _serving_metrics.create(pb_utils, args, "inputs")

    def execute(self, requests):
        """One response per request; a bad image fails only the request that sent it."""
        self.recording = self.metrics is not None and self.metrics.counting()
        return [self._respond(request) for request in requests]

    def _respond(self, request):
        items = pb_utils.get_input_tensor_by_name(request, self.image_input).as_numpy().reshape(-1)
        images = []
        for i, item in enumerate(items):
            start = time.perf_counter()
            try:
                opened = open_image(bytes(item), self.limits)
                images.append(preprocess_opened(opened, self.spec, self.limits))
            except ImageRejected as err:
                if self.recording:
                    self.metrics.rejected(err.reason)
                where = f"image {i} of the request: " if len(items) > 1 else ""
                return pb_utils.InferenceResponse(
                    error=pb_utils.TritonError(where + str(err), pb_utils.TritonError.INVALID_ARG)
                )
            except Exception as err:  # a bug or a decoder crash: fail this request, keep the batch
                if self.recording:
                    self.metrics.failed()
                self.logger.log_error(f"preprocessing failed unexpectedly: {type(err).__name__}: {err}")
                return pb_utils.InferenceResponse(
                    # The exception's text may hold paths: the client gets its type only.
                    error=pb_utils.TritonError(
                        f"internal preprocessing error ({type(err).__name__}); the server log has the details"
                    )
                )
            if self.recording:
                width, height = opened.upright_size
                self.metrics.accepted(len(opened.data), width * height, time.perf_counter() - start)
        # One image per request is the norm (the ensemble's clients send one): use its array as is.
        if len(images) == 1:
            pixels = images[0][np.newaxis]
        elif images:
            pixels = np.stack(images)
        else:
            pixels = np.empty((0, 3, *self.spec.input_size), dtype=np.float32)
        return pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(self.pixels_output, pixels)])
