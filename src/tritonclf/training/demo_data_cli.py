"""Write scikit-learn's handwritten digits (1,797 real 8x8 scans, offline) as an ImageFolder dataset.

    tritonclf demo-data --output data/digits                # data/digits/{train,val}/<0-9>/*.png

Each 8x8 image (16 grey levels) is scaled to 0-255 and upscaled with bicubic
interpolation to ``--size`` pixels, so it looks like a small blurry photo of a digit.
A seeded, stratified fifth of every class goes to ``val/``. Rewriting an existing
folder is a no-op unless ``--force``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tritonclf.cli_options import fail

DEFAULT_SIZE = 64


def digit_image(pixels: np.ndarray, size: int) -> Image.Image:
    """One 8x8 digit with values 0-16 -> an upscaled 8-bit grayscale image."""
    scaled = np.clip(pixels * (255.0 / 16.0), 0, 255).round().astype(np.uint8)
    return Image.fromarray(scaled, "L").resize((size, size), Image.Resampling.BICUBIC)


def write_digits(output: Path, *, size: int = DEFAULT_SIZE, val_fraction: float = 0.2, seed: int = 0) -> dict:
    """Write every digit as ``output/{train,val}/<digit>/<index>.png``; returns image counts per split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    counts = {"train": 0, "val": 0}
    for label in range(10):
        indices = np.flatnonzero(digits.target == label)
        rng.shuffle(indices)
        n_val = round(val_fraction * len(indices))
        for position, index in enumerate(indices):
            split = "val" if position < n_val else "train"
            folder = output / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            digit_image(digits.images[index], size).save(folder / f"{index:04d}.png")
            counts[split] += 1
    (output / "README.md").write_text(
        "scikit-learn's load_digits() (UCI optical handwritten digits), written by tritonclf demo-data:\n"
        f"{counts['train']} train and {counts['val']} val images, {size}x{size} px, 10 classes.\n"
    )
    return counts


def main(argv: list[str] | None = None) -> int:
    """Write the dataset unless it is already there."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("data/digits"), help="default: %(default)s")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="image side in pixels (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="rewrite an existing dataset")
    args = parser.parse_args(argv)
    if (args.output / "README.md").is_file() and not args.force:
        print(f"{args.output} already holds the digits dataset (--force rewrites it)")
        return 0
    try:
        counts = write_digits(args.output, size=args.size)
    except ImportError:
        return fail("demo-data", "scikit-learn is not installed: run `make setup`")
    print(f"wrote {counts['train']} train and {counts['val']} val digits to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
