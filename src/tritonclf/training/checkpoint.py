"""Training checkpoints: written atomically, read with ``torch.load(weights_only=True)``.

    save_checkpoint(out / "best.pth", state)      # a plain dict of tensors, numbers, strings
    card = read_model_card(load_checkpoint(out / "best.pth"))

A checkpoint carries what the export needs besides the weights, so
``training/export.py --weights OUT/best.pth`` rebuilds the model and serves it with
the training's labels and preprocessing:

- ``model_name`` (the timm architecture), ``class_names`` (index order),
  ``preprocess`` (``PreprocessSpec.to_dict()``: what validation used, what serving uses);
- ``state_dict`` (the trained weights) and, with EMA, ``state_dict_ema`` (what was
  validated, and what the export loads first);
- for ``--resume``: ``optimizer``, ``scaler``, ``epoch`` (epochs completed),
  ``best``, ``bad_epochs``, ``history``, ``config``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from tritonclf.files import write_atomic_with
from tritonclf.preprocess import PreprocessSpec
from tritonclf.training import weights as weights_lib

CHECKPOINT_FORMAT = "tritonclf-train/1"


@dataclasses.dataclass(frozen=True)
class ModelCard:
    """What a trained checkpoint says about its model, for the export and evaluation."""

    model_name: str
    class_names: tuple[str, ...]
    preprocess: PreprocessSpec

    def to_dict(self) -> dict:
        """The checkpoint fields (weights_only-loadable types)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "model_name": self.model_name,
            "class_names": list(self.class_names),
            "preprocess": self.preprocess.to_dict(),
        }


def read_model_card(checkpoint: dict) -> ModelCard | None:
    """The card of one of our checkpoints; None for a plain timm state dict."""
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        return None
    try:
        return ModelCard(
            model_name=str(checkpoint["model_name"]),
            class_names=tuple(str(c) for c in checkpoint["class_names"]),
            preprocess=PreprocessSpec.from_dict(checkpoint["preprocess"]),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise weights_lib.WeightsError(f"the checkpoint's model card is malformed ({err})") from None


def save_checkpoint(path: Path, state: dict) -> None:
    """``torch.save`` to a temporary file beside ``path``, fsync, rename: readers never see half a file."""
    write_atomic_with(path, lambda f: torch.save(state, f))


def load_checkpoint(path: Path) -> dict:
    """A checkpoint as a dict, without unpickling code (``weights_only=True``)."""
    return weights_lib.read_checkpoint(path)
