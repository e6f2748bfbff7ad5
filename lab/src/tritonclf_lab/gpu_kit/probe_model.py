"""Triton Python-backend model: reports, from inside a stub, the Python and numpy the stubs really run.

The kit's preflight serves it alone (``models/probe/``, built by ``tritonclf gpu-kit``) with
the served phase's command line and environment. ``initialize`` writes ``stub.json``
beside this file: the interpreter's version, prefix and ``sys.path``, numpy's version and
folder, and where ``dlopen("libcuda.so")`` (python_backend's own call) lands. The
config's warmup then sends one BYTES element through ``execute``, which reads it back with
``as_numpy`` (``deserialize_bytes_tensor``, the step numpy 2 breaks) and records whether
it equals the config's ``expected`` parameter.
"""

import ctypes
import json
import os
import sys

import triton_python_backend_utils as pb_utils


def _mapped(stem):
    """The file mapped into this process whose name starts with ``stem`` (``libpython3``), or None."""
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if len(line.split()) >= 6}
    return next((p for p in sorted(paths) if os.path.basename(p).startswith(stem)), None)


def _loaded_from(name):
    """The path ``dlopen(name)`` loads in this process, or the loader's error."""
    try:
        ctypes.CDLL(name)
    except OSError as err:
        return {"path": None, "error": str(err)}
    return {"path": _mapped(name.split(".so")[0] + ".so"), "error": ""}


class TritonPythonModel:
    """Write the report at load; check one BYTES element per request."""

    def initialize(self, args):
        """The report, before the warmup runs."""
        self.report_path = os.path.join(args["model_repository"], args["model_version"], "stub.json")
        config = json.loads(args["model_config"])
        self.expected = config["parameters"]["expected"]["string_value"].encode()
        report = {
            "python": sys.version.split()[0],
            "executable": sys.executable,
            "prefix": sys.prefix,
            "base_prefix": sys.base_prefix,
            "isolated": bool(sys.flags.isolated),
            "libpython": _mapped("libpython3"),
            "path": sys.path,
            "libcuda.so": _loaded_from("libcuda.so"),
        }
        try:
            import numpy

            report["numpy"] = {"version": numpy.__version__, "folder": os.path.dirname(numpy.__file__)}
        except Exception as err:  # the report says why; the kit decides
            report["numpy"] = {"version": None, "error": f"{type(err).__name__}: {err}"}
        self.report = report
        self._write()

    def execute(self, requests):
        """Echo whether each request's BYTES element arrived as sent, as JSON."""
        responses = []
        for request in requests:
            values = pb_utils.get_input_tensor_by_name(request, "probe").as_numpy().reshape(-1)
            self.report["bytes_intact"] = bool(len(values) == 1 and bytes(values[0]) == self.expected)
            self._write()
            import numpy

            out = numpy.array([json.dumps(self.report).encode()], dtype=numpy.object_)
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("report", out)]))
        return responses

    def _write(self):
        staging = self.report_path + ".partial"
        with open(staging, "w") as out:
            json.dump(self.report, out, indent=2)
        os.replace(staging, self.report_path)
