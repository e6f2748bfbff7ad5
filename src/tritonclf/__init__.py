"""Fine-tune a timm image classifier and serve it on NVIDIA Triton Inference Server.

    from tritonclf import Classifier                  # in-process, no server
    Classifier.load("exports/efficientnet_lite0").predict("cat.jpg", top_k=5)

Subpackages by job: ``repository`` (export -> Triton model repository), ``serving``
(the embedded ``tritonserver`` launcher and the Python-backend models), ``client``
(gRPC/HTTP classification), ``training`` (fine-tuning and export). The lab
(benchmarks, perf_analyzer, soak, fuzz, the GPU kit) is its own distribution, ``tritonclf_lab``.
The top level holds what every job shares: the tensor contract, the preprocessing,
the export metadata and file helpers. Importing it pulls in nothing heavy:
``Classifier`` is imported on first use.
"""

from __future__ import annotations

from typing import Any

# The one place the version is written: pyproject.toml reads it (hatch), and builds record
# it even where the checkout runs uninstalled (PYTHONPATH=src in NVIDIA's container).
__version__ = "0.1.0"

__all__ = ["Classifier", "Prediction"]


def __getattr__(name: str) -> Any:
    """``tritonclf.Classifier`` and ``tritonclf.Prediction``, imported when first asked for."""
    if name in __all__:
        from tritonclf import classifier

        return getattr(classifier, name)
    raise AttributeError(f"module 'tritonclf' has no attribute {name!r}")
