"""Triton Python-backend model: ONNX Runtime on the preprocessed pixels.

The embedded server of the nvidia-pytriton wheel has only the Python backend, so
here the classifier runs ONNX Runtime inside it. In NVIDIA's container the same
ONNX file is served by the ``onnxruntime`` or ``tensorrt`` backends instead, with
the same tensor names. The requests of a dynamic batch are concatenated and run
as one ONNX Runtime call, after each has been checked alone (pixel_checks.py): a request
of the wrong shape, type or with non-finite values gets ``INVALID_ARG`` and the rest run.

On the CPU each instance holds two sessions of the model and picks one per batch:

- the configured one (``intra_op_threads``; idle threads block rather than
  busy-wait): under load the other instances and the preprocessing need the cores;
- with ``single_image_spinning``, a session on every core whose threads spin
  between the operators of a run and stop when it returns
  (``session.force_spinning_stop``). It takes a lone image while the machine has a
  core to spare (fewer runnable threads than cores): the latency of an unloaded
  server, without taking CPU from a loaded one.
"""

import importlib.util
import json
import os
import sys

import numpy as np
import onnxruntime as ort
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


execution_providers = _load_beside("ort_providers").execution_providers
_pixel_checks = _load_beside("pixel_checks")
_serving_metrics = _load_beside("serving_metrics")

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def spare_core():
    """Whether no more threads are runnable machine-wide than there are cores (this one included).

    Measured in this stub: at concurrency 1, 93% of calls see 1 or 2 runnable threads;
    saturated, 2% do.
    """
    try:
        with open("/proc/loadavg") as f:
            runnable = int(f.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return False
    return runnable <= CORES


def make_session(model_path, providers, *, threads, spinning):
    """An ONNX Runtime session; ``spinning`` threads busy-wait only while a run lasts."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    spin = "1" if spinning else "0"
    options.add_session_config_entry("session.intra_op.allow_spinning", spin)
    options.add_session_config_entry("session.inter_op.allow_spinning", spin)
    if spinning:
        options.add_session_config_entry("session.force_spinning_stop", "1")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model_path, sess_options=options, providers=providers)


class TritonPythonModel:
    """Run the whole dynamic batch through one ONNX Runtime session call."""

    def initialize(self, args):
        """Create the ONNX Runtime sessions once, with the thread budget from the config."""
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        model_path = os.path.join(version_dir, params["onnx_filename"])
        kind = args.get("model_instance_kind")
        providers = execution_providers(kind, args.get("model_instance_device_id", "0"), ort.get_available_providers())
        on_gpu = kind == "GPU"
        threads = int(params.get("intra_op_threads", "0"))
        spinning = params.get("allow_spinning") == "1"
        self.session = make_session(model_path, providers, threads=threads, spinning=spinning)
        # On a GPU the CPU threads only launch kernels; a spinning session needs no twin.
        self.single_image_session = None
        if not on_gpu and not spinning and params.get("single_image_spinning", "1") == "1":
            self.single_image_session = make_session(model_path, providers, threads=0, spinning=True)
        # Tensor names come from the config (the build writes them from contract.py).
        self.input_name = params["input_name"]
        self.output_name = params["output_name"]
        dims = config["input"][0]["dims"]
        self.checks = _pixel_checks.PixelChecks(self.input_name, dims, config["max_batch_size"])
        # Top-1 class and score of every image (None when the build turned metrics off or put them in a later step).
        self.metrics = _serving_metrics.create(pb_utils, args, "predictions")
        pb_utils.Logger.log_info(f"ONNX Runtime {ort.__version__} on {self.session.get_providers()[0]}")

    def execute(self, requests):
        """Check each request alone; run the good ones concatenated, once; split back into one response each."""
        arrays, problems = zip(*(self._pixels(r) for r in requests), strict=True)
        good = [a for a, problem in zip(arrays, problems, strict=True) if problem is None]
        probabilities, failure = None, None
        if good:
            try:
                probabilities = self._run(good[0] if len(good) == 1 else np.concatenate(good))
            except Exception as err:  # a bug or ONNX Runtime's own error: one line to clients, the rest to the log
                pb_utils.Logger.log_error(f"ONNX Runtime failed on a batch of {len(good)} requests: {err!r}")
                failure = _pixel_checks.one_line_error(err)
            if probabilities is not None and self.metrics is not None and self.metrics.counting():
                self.metrics.record(probabilities)
        responses = []
        start = 0
        for array, problem in zip(arrays, problems, strict=True):
            if problem is not None or failure is not None:
                code = pb_utils.TritonError.INVALID_ARG if problem else pb_utils.TritonError.INTERNAL
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(problem or failure, code)))
                continue
            stop = start + len(array)
            out = pb_utils.Tensor(self.output_name, np.ascontiguousarray(probabilities[start:stop]))
            responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
            start = stop
        return responses

    def _pixels(self, request):
        """(this request's pixels, None) or (None, one line saying what is wrong with them)."""
        array = pb_utils.get_input_tensor_by_name(request, self.input_name).as_numpy()
        problem = self.checks.shape_problem(array.shape, array.dtype)
        problem = problem or self.checks.value_problem(bool(np.isfinite(array).all()))
        return (None, problem) if problem else (array, None)

    def _run(self, batch):
        session = self.session
        if self.single_image_session is not None and len(batch) == 1 and spare_core():
            session = self.single_image_session
        return session.run([self.output_name], {self.input_name: batch})[0]
