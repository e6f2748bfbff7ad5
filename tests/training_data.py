"""Tiny synthetic ImageFolder datasets for the training tests: colours a small CNN learns in a few steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

COLOURS = {"blue": (40, 40, 210), "green": (40, 190, 40), "red": (210, 40, 40)}


def write_colour_dataset(
    root: Path,
    *,
    train_per_class: int = 16,
    val_per_class: int = 6,
    size: int = 40,
    classes: dict[str, tuple[int, int, int]] = COLOURS,
    seed: int = 0,
) -> Path:
    """``root/{train,val}/<colour>/<i>.png``: noisy images of one dominant colour per class."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for name, rgb in classes.items():
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = np.clip(np.array(rgb) + rng.normal(0, 35, (size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    return root
