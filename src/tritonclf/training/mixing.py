"""Mixup, CutMix and label smoothing as soft targets, and the loss over them.

    mixer = Mixer(num_classes=10, mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1)
    images, targets = mixer(images, labels)       # targets: (batch, classes), rows sum to one
    loss = soft_cross_entropy(model(images), targets)

The knobs are timm's (``timm.data.Mixup``, ``train.py --mixup --cutmix --mixup-prob
--mixup-switch-prob``): an alpha of 0 turns that method off; a batch is mixed with
probability ``prob``; when both are on, CutMix is picked with ``switch_prob``.

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
    """Per batch, as timm's ``Mixup`` in batch mode: mixup or CutMix with probability ``prob``, else plain labels."""

    num_classes: int
    mixup_alpha: float = 0.0  # 0 = mixup off
    cutmix_alpha: float = 0.0  # 0 = CutMix off
    prob: float = 1.0  # chance that a batch is mixed at all, when either method is on
    switch_prob: float = 0.5  # chance of CutMix rather than mixup, when both are on
    label_smoothing: float = 0.0
    rng: np.random.Generator = dataclasses.field(default_factory=np.random.default_rng)

    def __post_init__(self) -> None:
        """Reject settings that cannot be alphas or probabilities."""
        if min(self.mixup_alpha, self.cutmix_alpha) < 0:
            raise ValueError(
                f"--mixup and --cutmix are Beta alphas as in timm (0 = off), got {self.mixup_alpha} "
                f"and {self.cutmix_alpha}"
            )
        for flag, value in (("--mixup-prob", self.prob), ("--mixup-switch-prob", self.switch_prob)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{flag} is a probability in [0, 1], got {value}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")

    @property
    def enabled(self) -> bool:
        """Whether any batch can be mixed."""
        return (self.mixup_alpha > 0 or self.cutmix_alpha > 0) and self.prob > 0

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixed images and their soft targets; ``images`` is left untouched."""
        lam = 1.0
        if self.enabled and self.rng.random() < self.prob:
            use_cutmix = self.cutmix_alpha > 0 and (self.mixup_alpha <= 0 or self.rng.random() < self.switch_prob)
            if use_cutmix:
                images, lam = self.cutmix(images, float(self.rng.beta(self.cutmix_alpha, self.cutmix_alpha)))
            else:
                lam = float(self.rng.beta(self.mixup_alpha, self.mixup_alpha))
                images = lam * images + (1.0 - lam) * images.flip(0)
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
