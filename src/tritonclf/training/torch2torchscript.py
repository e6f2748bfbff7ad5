"""TorchScript export of the classifier (softmax included), for Triton's PyTorch backend and in-process use.

    tritonclf export --format torchscript     # exports/MODEL/model.pt (+ model.json)
    tritonclf export --format both            # model.onnx and model.pt, one model.json

The module is traced, not scripted: timm's models trace cleanly and the trace
holds no Python. Its ``forward`` takes ``pixel_values`` (float32 NCHW, any batch
size) and returns probabilities: the names of the served tensors, so Triton's
``pytorch_libtorch`` backend binds the config's input to the argument by name.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tritonclf.preprocess import PreprocessSpec
from tritonclf.training.export_check import ExportCheck, WithSoftmax, compare, torch_probabilities


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # Recent torch marks torch.jit deprecated; LibTorch in NVIDIA's containers still loads only TorchScript.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        yield


def export_torchscript(model: nn.Module, spec: PreprocessSpec, path: Path) -> None:
    """Trace ``model`` + softmax at batch 2 (the trace keeps the batch dimension dynamic) and save it."""
    height, width = spec.input_size
    with _quiet(), torch.no_grad():
        traced = torch.jit.trace(WithSoftmax(model).eval(), torch.randn(2, 3, height, width))
        traced.save(str(path))


def load_torchscript(path: Path, device: str | torch.device = "cpu") -> torch.jit.ScriptModule:
    """A saved TorchScript classifier in eval mode on ``device``."""
    with _quiet():
        return torch.jit.load(str(path), map_location=device).eval()


def forward_arguments(module: torch.jit.ScriptModule) -> tuple[str, ...]:
    """Names of ``forward``'s tensor arguments (``self`` left out), as Triton's PyTorch backend reads them."""
    return tuple(arg.name for arg in module.forward.schema.arguments if arg.name != "self")


def check_torchscript(model: nn.Module, path: Path, batch: np.ndarray) -> ExportCheck:
    """Load the saved file back and compare it with PyTorch on the same batch."""
    loaded = load_torchscript(path)
    with torch.no_grad():
        probs = loaded(torch.from_numpy(batch)).numpy()
    return compare(probs, torch_probabilities(model, batch))
