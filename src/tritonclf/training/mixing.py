"""Mixup, CutMix and label smoothing as soft targets, and the loss over them: timm's own.

    mixer = Mixer(num_classes=10, mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1)
    images, targets = mixer(images, labels)       # targets: (batch, classes), rows sum to one
    loss = soft_cross_entropy(model(images), targets)

The knobs are timm's (``timm.data.Mixup``, ``train.py --mixup --cutmix --mixup-prob
--mixup-switch-prob``): an alpha of 0 turns that method off; a batch is mixed with
probability ``prob``; when both are on, CutMix is picked with ``switch_prob``. The mixing
itself is ``timm.data.Mixup`` in batch mode, which pairs each image with the batch reversed
and mixes in place; the loss is ``timm.loss.SoftTargetCrossEntropy``. So the loss is exactly
``lam * CE_ls(y) + (1 - lam) * CE_ls(y_reversed)`` with ``CE_ls`` the label-smoothed cross
entropy: mixing and smoothing commute.

timm's Mixup draws from numpy's global random state. The Mixer lends it a seed from its own
generator for each batch and puts the global state back after, so the mixing depends only on
that generator (the trainer seeds it per epoch: a resumed run mixes as the uninterrupted one
did) and nothing else that draws from numpy sees a difference.

timm's Mixup needs an even batch. An odd one (a dataset smaller than one batch, or an odd
``--batch-size``) mixes its first images and leaves the last one plain.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from timm.data import Mixup
from timm.data.mixup import mixup_target
from timm.loss import SoftTargetCrossEntropy

_SOFT_TARGET_CROSS_ENTROPY = SoftTargetCrossEntropy()


@dataclasses.dataclass
class Mixer:
    """The training flags' mixing: timm's ``Mixup`` in batch mode, or plain (smoothed) labels when it is off."""

    num_classes: int
    mixup_alpha: float = 0.0  # 0 = mixup off
    cutmix_alpha: float = 0.0  # 0 = CutMix off
    prob: float = 1.0  # chance that a batch is mixed at all, when either method is on
    switch_prob: float = 0.5  # chance of CutMix rather than mixup, when both are on
    label_smoothing: float = 0.0
    rng: np.random.Generator = dataclasses.field(default_factory=np.random.default_rng)
    _mixup: Mixup | None = dataclasses.field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        """Reject settings that cannot be alphas or probabilities (timm would assert or misbehave)."""
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
        if self.enabled:
            self._mixup = Mixup(
                mixup_alpha=self.mixup_alpha,
                cutmix_alpha=self.cutmix_alpha,
                prob=self.prob,
                switch_prob=self.switch_prob,
                mode="batch",
                label_smoothing=self.label_smoothing,
                num_classes=self.num_classes,
            )

    @property
    def enabled(self) -> bool:
        """Whether any batch can be mixed."""
        return (self.mixup_alpha > 0 or self.cutmix_alpha > 0) and self.prob > 0

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch mixed in place (as timm's Mixup does) and its soft targets."""
        even = len(images) - len(images) % 2
        if self._mixup is None or even == 0:
            return images, mixup_target(labels, self.num_classes, 1.0, self.label_smoothing)
        outside = np.random.get_state()
        np.random.seed(int(self.rng.integers(2**32)))
        try:
            mixed, targets = self._mixup(images[:even], labels[:even])
        finally:
            np.random.set_state(outside)
        if even == len(images):
            return mixed, targets
        last = mixup_target(labels[even:], self.num_classes, 1.0, self.label_smoothing)
        return images, torch.cat([targets, last])


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Timm's ``SoftTargetCrossEntropy`` in FP32 (logits from an autocast region may be FP16)."""
    return _SOFT_TARGET_CROSS_ENTROPY(logits.float(), targets)
