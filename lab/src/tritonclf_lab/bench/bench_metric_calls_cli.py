"""What one custom-metric call costs in a Python-backend model: CPU of the server and its stub per call.

    tritonclf bench-metric-calls --calls 5000

Serves a throwaway Python model whose ``execute`` makes N ``increment`` and N ``observe``
calls (a counter and a histogram made with ``pb_utils.MetricFamily``, as
``serving_metrics.py`` makes them), and reads the CPU time of tritonserver and its stub
around each request: CPU per call, and the wall time per call the model waits.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tritonclf.cli_options import EXIT_OK, positive_int
from tritonclf.serving.process import TritonProcess
from tritonclf_lab.bench.cpu import snapshot

CONFIG = """name: "metric_calls"
backend: "python"
max_batch_size: 0
input { name: "calls" data_type: TYPE_INT64 dims: [1] }
output { name: "seconds" data_type: TYPE_FP64 dims: [1] }
"""
MODEL = """
import time
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        kind = pb_utils.MetricFamily
        labels = {"model": args["model_name"], "version": args["model_version"]}
        self.counter_family = kind(name="bench_calls_total", description="c", kind=kind.COUNTER)
        self.histogram_family = kind(name="bench_values", description="h", kind=kind.HISTOGRAM)
        self.counter = self.counter_family.Metric(labels=labels)
        self.histogram = self.histogram_family.Metric(labels=labels, buckets=[0.1, 0.5, 1.0])

    def execute(self, requests):
        responses = []
        for request in requests:
            n = int(pb_utils.get_input_tensor_by_name(request, "calls").as_numpy()[0])
            start = time.perf_counter()
            for _ in range(n):
                self.counter.increment(1.0)
                self.histogram.observe(0.3)
            seconds = np.array([time.perf_counter() - start], dtype=np.float64)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("seconds", seconds)]))
        return responses
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=positive_int, default=5000, help="of each kind per run (default: %(default)s)")
    parser.add_argument("--runs", type=positive_int, default=3, help="default: %(default)s")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Print CPU and wall microseconds per metric call, per run."""
    import tritonclient.grpc as grpcclient

    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="metric-calls-") as tmp:
        model = Path(tmp) / "repository" / "metric_calls"
        (model / "1").mkdir(parents=True)
        (model / "config.pbtxt").write_text(CONFIG)
        (model / "1" / "model.py").write_text(MODEL)
        with TritonProcess(model.parent, log_path=Path(tmp) / "tritonserver.log") as server:
            client = grpcclient.InferenceServerClient(server.grpc_url)

            def run(calls: int) -> float:
                tensor = grpcclient.InferInput("calls", [1], "INT64")
                tensor.set_data_from_numpy(np.array([calls], dtype=np.int64))
                return float(client.infer("metric_calls", [tensor]).as_numpy("seconds")[0])

            run(100)
            for i in range(args.runs):
                before, start = snapshot(server.process.pid), time.perf_counter()
                waited = run(args.calls)
                cpu = snapshot(server.process.pid).server_cpu_s - before.server_cpu_s
                total = 2 * args.calls
                print(
                    f"run {i + 1}: {total} calls in {time.perf_counter() - start:.3f} s: "
                    f"{1e6 * cpu / total:.1f} us of server + stub CPU and {1e6 * waited / total:.1f} us "
                    "in the model per call"
                )
            client.close()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
