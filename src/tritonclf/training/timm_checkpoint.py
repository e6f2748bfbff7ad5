"""Checkpoints written by timm's ``train.py`` (``CheckpointSaver``): what they say about their model.

    info = read_timm_checkpoint(weights_lib.read_checkpoint(Path("output/train/run/model_best.pth.tar")))
    info.arch, info.num_classes, info.data_config      # "resnet50", 10, {"input_size": ..., "mean": ...}

Such a file is a dict with ``state_dict`` (and ``state_dict_ema`` when the run kept an
EMA, which is what gets exported, as in timm's ``validate.py --use-ema``), ``arch``,
``args`` (the run's ``argparse.Namespace``), ``optimizer``, ``epoch``, ``version``,
``metric`` and ``saver``. ``weights.read_checkpoint`` loads it weights-only with exactly
``argparse.Namespace`` allowlisted, as timm's own loader does.
"""

from __future__ import annotations

import argparse
import dataclasses

# train.py arguments that override the model's pretrained_cfg preprocessing (timm.data.resolve_data_config).
_DATA_ARGS = ("input_size", "img_size", "in_chans", "interpolation", "mean", "std", "crop_pct", "crop_mode")


@dataclasses.dataclass(frozen=True)
class TimmCheckpoint:
    """The model a timm training checkpoint holds."""

    arch: str
    num_classes: int | None  # None: the architecture's default head
    data_config: dict  # the run's preprocessing arguments, for resolve_data_config(args, model=...)
    uses_ema: bool
    epoch: int | None = None


def read_timm_checkpoint(checkpoint: dict) -> TimmCheckpoint | None:
    """The model of a timm ``train.py`` checkpoint; None for anything else (a bare state dict, ours)."""
    arch = checkpoint.get("arch")
    if not isinstance(arch, str) or not isinstance(checkpoint.get("state_dict"), dict):
        return None
    args = checkpoint.get("args")
    values = vars(args) if isinstance(args, argparse.Namespace) else {}
    num_classes = values.get("num_classes")
    return TimmCheckpoint(
        arch=str(values.get("model") or arch),
        num_classes=int(num_classes) if num_classes else None,
        data_config={k: values[k] for k in _DATA_ARGS if values.get(k) not in (None, "", [])},
        uses_ema=isinstance(checkpoint.get("state_dict_ema"), dict),
        epoch=checkpoint.get("epoch"),
    )
