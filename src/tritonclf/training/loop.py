"""One epoch of training, one pass of validation, and the learning-rate schedule.

    stats = train_one_epoch(model, loader, optimizer, step=Step(...), schedule=schedule, start_step=0)
    metrics = validate(model, val_loader, device=device, num_classes=10)

Both reduce their sums over ranks (``Distributed.sum``) before computing averages,
so every process sees the same numbers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from tritonclf.training.data import INVALID_LABEL
from tritonclf.training.distributed import Distributed
from tritonclf.training.mixing import Mixer, soft_cross_entropy


@dataclasses.dataclass(frozen=True)
class CosineSchedule:
    """Linear warmup from 0, then cosine decay to ``min_ratio``: a factor on each group's ``initial_lr``.

    With ``steps_per_epoch`` set, the factor holds for a whole epoch, as torch's
    ``CosineAnnealingLR(optimizer, T_max=epochs)`` stepped once per epoch does. After the
    warmup it is timm's ``CosineLRScheduler`` (warmup as a prefix); it is not timm's because
    that one's floor and warmup start are one absolute LR for all groups, and the trainer's
    groups differ by 100x: here each ends at ``min_ratio`` of its own LR.
    """

    total_steps: int
    warmup_steps: int = 0
    min_ratio: float = 0.0
    steps_per_epoch: int = 0  # 0: the LR changes every step

    def factor(self, step: int) -> float:
        """LR multiplier at optimizer step ``step`` (0-based)."""
        if self.steps_per_epoch:
            step -= step % self.steps_per_epoch
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        decay_steps = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / decay_steps)
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> None:
        """Set every group's LR for ``step``."""
        factor = self.factor(step)
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] * factor


@dataclasses.dataclass
class Step:
    """How one optimizer step runs: device, mixed precision, mixing, clipping, EMA."""

    device: torch.device
    mixer: Mixer
    amp_dtype: torch.dtype | None = None
    scaler: torch.amp.GradScaler | None = None
    clip_grad: float = 0.0
    ema: nn.Module | None = None  # timm.utils.ModelEmaV3
    dist: Distributed = dataclasses.field(default_factory=Distributed)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision context, or nothing."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)


@dataclasses.dataclass(frozen=True)
class EpochStats:
    """Averages over every rank's images."""

    loss: float
    top1: float
    images: int
    skipped: int
    seconds: float
    steps: int
    failed_indices: frozenset[int] = frozenset()  # this rank's dataset indices that failed to decode

    @property
    def images_per_s(self) -> float:
        """Training throughput, data loading included."""
        return self.images / self.seconds if self.seconds else 0.0


def train_one_epoch(
    model: nn.Module,
    loader,
    optimizer: torch.optim.Optimizer,
    *,
    step: Step,
    schedule: CosineSchedule,
    start_step: int,
    description: str = "train",
    progress: bool = False,
) -> EpochStats:
    """Train over ``loader`` once; ``start_step`` is the global optimizer step the epoch starts at."""
    loss_sum, correct, seen, skipped, steps = 0.0, 0, 0, 0, 0
    failed_indices: set[int] = set()
    start = time.perf_counter()
    bar = tqdm(loader, desc=description, leave=False, disable=not progress, dynamic_ncols=True)
    for batch, batch_labels, failed in bar:
        # TrainDataset's third item: 1 + the index of an image that failed to decode, 0 for one that did.
        failed_indices.update(int(i) - 1 for i in failed[failed > 0])
        skipped += int((failed > 0).sum())
        images = batch.to(step.device, non_blocking=True)
        labels = batch_labels.to(step.device, non_blocking=True)
        schedule.apply(optimizer, start_step + steps)
        mixed, targets = step.mixer(images, labels)
        with step.autocast():
            logits = model(mixed)
        loss = soft_cross_entropy(logits, targets)
        optimizer.zero_grad(set_to_none=True)
        if step.scaler is not None:
            step.scaler.scale(loss).backward()
            step.scaler.unscale_(optimizer)
            _clip(optimizer, step.clip_grad)
            step.scaler.step(optimizer)
            step.scaler.update()
        else:
            loss.backward()
            _clip(optimizer, step.clip_grad)
            optimizer.step()
        steps += 1
        if step.ema is not None:
            step.ema.update(getattr(model, "module", model), step=start_step + steps)  # DDP wraps the model
        loss_sum += float(loss.detach()) * len(labels)
        correct += int((logits.detach().argmax(-1) == labels).sum())
        seen += len(labels)
        bar.set_postfix(loss=f"{loss_sum / seen:.3f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
    loss_sum, correct, seen, skipped = step.dist.sum([loss_sum, correct, seen, skipped], step.device)
    return EpochStats(
        loss=loss_sum / max(seen, 1),
        top1=correct / max(seen, 1),
        images=int(seen),
        skipped=int(skipped),
        seconds=time.perf_counter() - start,
        steps=steps,
        failed_indices=frozenset(failed_indices),
    )


def _clip(optimizer: torch.optim.Optimizer, max_norm: float) -> None:
    if max_norm > 0:
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        torch.nn.utils.clip_grad_norm_(params, max_norm)


@torch.no_grad()
def predict(model: nn.Module, loader, *, step: Step) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, labels) of this rank's share of ``loader``, skipping undecodable images."""
    model.eval()
    all_logits, all_labels = [], []
    for images, labels in loader:
        valid = labels != INVALID_LABEL
        if not valid.any():
            continue
        with step.autocast():
            logits = model(images[valid].to(step.device))
        all_logits.append(logits.float().cpu())
        all_labels.append(labels[valid])
    if not all_logits:
        return torch.empty(0, 0), torch.empty(0, dtype=torch.long)
    return torch.cat(all_logits), torch.cat(all_labels)


def validate(model: nn.Module, loader, *, step: Step, num_classes: int) -> dict[str, float]:
    """Loss (plain cross entropy), top-1 and top-5 over every rank's validation images."""
    logits, labels = predict(model, loader, step=step)
    loss_sum, top1, top5 = 0.0, 0, 0
    if len(labels):
        loss_sum = float(F.cross_entropy(logits, labels, reduction="sum"))
        ranked = logits.topk(min(5, num_classes), dim=-1).indices
        top1 = int((ranked[:, 0] == labels).sum())
        top5 = int((ranked == labels[:, None]).any(-1).sum())
    loss_sum, top1, top5, n = step.dist.sum([loss_sum, top1, top5, len(labels)], step.device)
    n = max(n, 1)
    return {"loss": loss_sum / n, "top1": top1 / n, "top5": top5 / n, "n": int(n)}
