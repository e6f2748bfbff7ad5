"""The phases' JPEG mix: 0.3, 1.2 and 12 MP phone-like photos made from the sample photos.

``bench.images.generate_mix`` makes them (grain so they compress like real photos, some
with an EXIF rotation); they are written once to the run's work folder so every phase and
every client process measures the same bytes.
"""

from __future__ import annotations

from pathlib import Path

from tritonclf.samples import sample_photos
from tritonclf_lab.bench.images import DEFAULT_MIX, generate_mix

MIX_COUNT = 40
MIX_SEED = 13


def write_mix(folder: Path, count: int = MIX_COUNT, seed: int = MIX_SEED) -> list[Path]:
    """Generate the mix into ``folder`` (``NN-WxH.jpg``), unless a complete one is there already."""
    existing = sorted(folder.glob("*.jpg"))
    if len(existing) == count:
        return existing
    folder.mkdir(parents=True, exist_ok=True)
    for stale in existing:
        stale.unlink()
    images = generate_mix([p.read_bytes() for p in sample_photos()], DEFAULT_MIX, count, seed)
    paths = []
    for index, image in enumerate(images):
        path = folder / f"{index:02d}-{image.size_label}.jpg"
        path.write_bytes(image.data)
        paths.append(path)
    return paths


def load_mix(ctx) -> list[bytes]:
    """The run's mix as bytes (generated on first use)."""
    return [path.read_bytes() for path in write_mix(ctx.mix_dir)]


def megapixels(path: Path) -> float:
    """The size in the file name (``07-4032x3024.jpg``) in megapixels."""
    width, height = path.stem.split("-", 1)[1].split("x")
    return int(width) * int(height) / 1e6
