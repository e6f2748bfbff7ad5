"""Real sample photos (CC0 / public domain) shipped as package data; see README.md here."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

# What the default ImageNet model must call two of the photos: ImageNet indices.
EXPECTED_TOP1 = {"chelsea.jpg": range(281, 286), "coffee.jpg": range(967, 968)}  # cats; espresso


def sample_dir() -> Path:
    """The folder holding the sample photos (a real folder: the package is installed unzipped)."""
    return Path(str(resources.files(__name__)))


def sample_photos() -> list[Path]:
    """The sample JPEGs, sorted by name."""
    return sorted(sample_dir().glob("*.jpg"))


def sample_photo(name: str) -> Path:
    """One sample photo by its stem, e.g. ``chelsea``."""
    return sample_dir() / f"{name}.jpg"
