"""Mixup, CutMix and label smoothing as soft targets, and the loss over them.

    mixer = Mixer(num_classes=10, mixup_p=0.3, cutmix_p=0.3, label_smoothing=0.1)
    images, targets = mixer(images, labels)       # targets: (batch, classes), rows sum to one
    loss = soft_cross_entropy(model(images), targets)

A mixed batch pairs each image with the batch reversed (as timm does), so the
loss is exactly ``lam * CE_ls(y) + (1 - lam) * CE_ls(y_reversed)`` with ``CE_ls``
the label-smoothed cross entropy: mixing and smoothing commute.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F


@dataclasses.dataclass
class Mixer:
    """Per batch: mixup with probability ``mixup_p``, else CutMix with ``cutmix_p``, else plain labels."""

    num_classes: int
    mixup_p: float = 0.0
    cutmix_p: float = 0.0
    mixup_alpha: float = 0.2
    cutmix_alpha: float = 1.0
    label_smoothing: float = 0.0
    rng: np.random.Generator = dataclasses.field(default_factory=np.random.default_rng)

    def __post_init__(self) -> None:
        """Reject settings that cannot be probabilities."""
        if min(self.mixup_p, self.cutmix_p) < 0 or self.mixup_p + self.cutmix_p > 1:
            raise ValueError(
                f"--mixup and --cutmix are probabilities summing to at most 1, got {self.mixup_p} and {self.cutmix_p}"
            )
        if (self.mixup_p and self.mixup_alpha <= 0) or (self.cutmix_p and self.cutmix_alpha <= 0):
            raise ValueError("--mixup-alpha and --cutmix-alpha must be positive")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixed images and their soft targets; ``images`` is left untouched."""
        draw = self.rng.random()
        if draw < self.mixup_p:
            lam = float(self.rng.beta(self.mixup_alpha, self.mixup_alpha))
            images = lam * images + (1.0 - lam) * images.flip(0)
        elif draw < self.mixup_p + self.cutmix_p:
            images, lam = self.cutmix(images, float(self.rng.beta(self.cutmix_alpha, self.cutmix_alpha)))
        else:
            lam = 1.0
        return images, mix_targets(labels, self.num_classes, lam, self.label_smoothing)

    def cutmix(self, images: torch.Tensor, lam: float) -> tuple[torch.Tensor, float]:
        """Paste a box of the reversed batch; ``lam`` becomes the share of pixels kept."""
        height, width = images.shape[-2:]
        cut_h, cut_w = int(height * np.sqrt(1.0 - lam)), int(width * np.sqrt(1.0 - lam))
        cy, cx = int(self.rng.integers(height)), int(self.rng.integers(width))
        top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
        left, right = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
        mixed = images.clone()
        mixed[..., top:bottom, left:right] = images.flip(0)[..., top:bottom, left:right]
        return mixed, 1.0 - (bottom - top) * (right - left) / (height * width)


def smooth_one_hot(labels: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """``(1 - smoothing) * one_hot + smoothing / num_classes``: torch's label-smoothing targets."""
    targets = F.one_hot(labels, num_classes).float()
    return targets * (1.0 - smoothing) + smoothing / num_classes


def mix_targets(labels: torch.Tensor, num_classes: int, lam: float, smoothing: float = 0.0) -> torch.Tensor:
    """Soft targets of a batch mixed with its reverse at ratio ``lam``."""
    targets = smooth_one_hot(labels, num_classes, smoothing)
    return lam * targets + (1.0 - lam) * targets.flip(0)


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``-sum(targets * log_softmax(logits))``, in FP32."""
    return torch.sum(-targets * F.log_softmax(logits.float(), dim=-1), dim=-1).mean()
