"""Fine-tune a timm image classifier and serve it on NVIDIA Triton Inference Server.

Subpackages by job: ``repository`` (export -> Triton model repository), ``serving``
(the embedded ``tritonserver`` launcher and the Python-backend models), ``client``
(gRPC/HTTP classification), ``bench`` (benchmarks, perf_analyzer), ``training``
(fine-tuning and export), ``tools`` (long-running checks: soak, fuzz, GPU check).
The top level holds what every job shares: the tensor contract, the preprocessing,
the export metadata and file helpers. Importing it pulls in nothing heavy.
"""

# The one place the version is written: pyproject.toml reads it (hatch), and builds record
# it even where the checkout runs uninstalled (PYTHONPATH=src in NVIDIA's container).
__version__ = "0.1.0"
