"""Triton Python-backend model: the ensemble's last step, watching the probabilities on their way out.

Built as ``<name>_monitor`` where the classifier is not a Python-backend model (Triton's ONNX
Runtime, TensorRT or PyTorch backends record nothing of their own), or with low-confidence
capture (which needs the image bytes beside the probabilities). It counts the top-1 class
and observes the top-1 score of every image (``serving_metrics.py``), offers the unsure ones
to the capture (``low_confidence_capture.py``), and returns the probabilities unchanged.
"""

import importlib.util
import json
import os
import sys

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


_serving_metrics = _load_beside("serving_metrics")


class TritonPythonModel:
    """Record, capture if asked, pass the probabilities through."""

    def initialize(self, args):
        """Metrics and (when the plan has it) the capture writer, once."""
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.input_name = params["input_name"]
        self.output_name = params["output_name"]
        self.image_name = params.get("image_name")
        self.metrics = _serving_metrics.create(pb_utils, args, "predictions")
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        plan = _serving_metrics.load_plan(version_dir) or {}
        self.capture = None
        if plan.get("capture") and self.image_name:
            self.capture = self._start_capture(plan["capture"], args)

    def _start_capture(self, settings, args):
        capture_module = _load_beside("low_confidence_capture")
        self.unwrap_base64 = _load_beside("preprocess").unwrap_base64
        pb_utils.Logger.log_warn(f"saving low-confidence user images to {settings['directory']}")
        return capture_module.LowConfidenceCapture(
            settings["directory"],
            below=settings["below"],
            per_minute=settings["per_minute"],
            max_bytes=settings["max_bytes"],
            min_free_bytes=settings["min_free_bytes"],
            labels=settings["labels"],
            record={"model": args["model_name"], "version": args["model_version"]},
            log_error=pb_utils.Logger.log_error,
        )

    def execute(self, requests):
        """One response per request, with its probabilities as they came."""
        arrays = [pb_utils.get_input_tensor_by_name(r, self.input_name).as_numpy() for r in requests]
        if self.metrics is not None and self.metrics.counting():
            self.metrics.record(arrays[0] if len(arrays) == 1 else np.concatenate(arrays))
        if self.capture is not None:
            self._offer(requests, arrays)
            if self.metrics is not None:
                # The writer thread's saves and skips since the last batch (it makes no metric calls itself).
                self.metrics.count_capture(self.capture.drain_counts())
        return [pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(self.output_name, a)]) for a in arrays]

    def _offer(self, requests, arrays):
        for request, probabilities in zip(requests, arrays, strict=True):
            top1 = probabilities.argmax(axis=1)
            scores = probabilities[np.arange(len(probabilities)), top1]
            if not any(self.capture.wants(score) for score in scores):
                continue
            images = pb_utils.get_input_tensor_by_name(request, self.image_name).as_numpy().reshape(-1)
            for data, index, score in zip(images, top1, scores, strict=True):
                try:
                    self.capture.offer(self.unwrap_base64(bytes(data)), index, score)
                except Exception as err:  # already accepted by the preprocessing: only a bug lands here
                    pb_utils.Logger.log_error(f"capture skipped an image: {type(err).__name__}: {err}")

    def finalize(self):
        """Let the capture writer finish what is queued."""
        if self.capture is not None:
            self.capture.close()
