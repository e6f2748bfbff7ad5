"""What every export format shares: the softmax wrapper and the comparison with PyTorch.

An exported file (ONNX, TorchScript) is kept only when, on real photos pushed
through the serving preprocessing, its probabilities are within ``MAX_ABS_DIFF``
of PyTorch's and every photo's top-5 is the same.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tritonclf.preprocess import PreprocessSpec, preprocess_image

MAX_ABS_DIFF = 1e-4


@dataclasses.dataclass(frozen=True)
class ExportCheck:
    """How an exported file compared with PyTorch on real photos."""

    images: int
    max_abs_diff: float
    top5_equal: bool

    @property
    def passed(self) -> bool:
        """Close enough to serve in place of the PyTorch model."""
        return self.max_abs_diff <= MAX_ABS_DIFF and self.top5_equal


class WithSoftmax(nn.Module):
    """The classifier followed by a softmax, so the served model returns probabilities."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    # The argument is named after the served input tensor: Triton's PyTorch backend
    # binds config inputs to forward() arguments by name.
    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Logits -> probabilities (the export is FP32; engines keep this softmax in FP32 too)."""
        return torch.softmax(self.model(pixel_values), dim=-1)


def sample_batch(spec: PreprocessSpec, paths: list[Path]) -> np.ndarray:
    """Real photos through the serving preprocessing, stacked into a batch."""
    return np.stack([preprocess_image(p.read_bytes(), spec) for p in paths])


def torch_probabilities(model: nn.Module, batch: np.ndarray) -> np.ndarray:
    """PyTorch's probabilities for a preprocessed batch, the reference every export is held to."""
    with torch.no_grad():
        return WithSoftmax(model).eval()(torch.from_numpy(batch)).numpy()


def compare(exported: np.ndarray, reference: np.ndarray) -> ExportCheck:
    """Max |diff| and top-5 agreement of two (batch, classes) probability arrays."""
    top5 = lambda p: np.argsort(-p, axis=1, kind="stable")[:, :5]  # noqa: E731
    return ExportCheck(
        images=len(reference),
        max_abs_diff=float(np.abs(exported - reference).max()),
        top5_equal=bool((top5(exported) == top5(reference)).all()),
    )
