"""Triton Python-backend model: ONNX Runtime on the preprocessed pixels.

The embedded server of the nvidia-pytriton wheel has only the Python backend, so
here the classifier runs ONNX Runtime inside it. In NVIDIA's container the same
ONNX file is served by the ``onnxruntime`` or ``tensorrt`` backends instead, with
the same tensor names. The requests of a dynamic batch are concatenated and run
as one ONNX Runtime call.
"""

import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    """Run the whole dynamic batch through one ONNX Runtime session call."""

    def initialize(self, args):
        """Create the ONNX Runtime session once, with the thread budget from the config."""
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        model_path = os.path.join(version_dir, params["onnx_filename"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(params.get("intra_op_threads", "0"))
        options.inter_op_num_threads = 1
        # Idle ONNX Runtime threads busy-wait for the next run by default. In a server
        # they would burn the cores the preprocessing instances decode images on.
        spin = params.get("allow_spinning", "0")
        options.add_session_config_entry("session.intra_op.allow_spinning", spin)
        options.add_session_config_entry("session.inter_op.allow_spinning", spin)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        if args.get("model_instance_kind") == "GPU" and "CUDAExecutionProvider" in ort.get_available_providers():
            device_id = int(args.get("model_instance_device_id", "0"))
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": device_id}))
        self.session = ort.InferenceSession(model_path, sess_options=options, providers=providers)
        # Tensor names come from the config (the build writes them from contract.py).
        self.input_name = params["input_name"]
        self.output_name = params["output_name"]
        pb_utils.Logger.log_info(f"ONNX Runtime {ort.__version__} on {self.session.get_providers()[0]}")

    def execute(self, requests):
        """Concatenate, run once, split back into one response per request."""
        arrays = [pb_utils.get_input_tensor_by_name(r, self.input_name).as_numpy() for r in requests]
        batch = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
        probabilities = self.session.run([self.output_name], {self.input_name: batch})[0]
        responses = []
        start = 0
        for array in arrays:
            stop = start + len(array)
            out = pb_utils.Tensor(self.output_name, np.ascontiguousarray(probabilities[start:stop]))
            responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
            start = stop
        return responses
