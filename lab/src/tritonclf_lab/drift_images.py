"""Real-photo streams for drift checks: one drawn like a validation set, one skewed, one the model is unsure of.

Each image is a random crop of one of the sample photos (``tritonclf/samples``): a random
part of it (40-100% of the area, aspect 3:4 to 4:3), sometimes mirrored, resized to a
phone-upload size and saved as JPEG at a random quality. Different seeds give different
images drawn the same way, so a validation set made with one seed and a stream made with
another have the same class mix up to sampling noise; a skewed stream takes its crops from
one photo only, and the unsure stream blurs and washes them out until the model hesitates.
"""

from __future__ import annotations

import concurrent.futures
import io
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from tritonclf.samples import sample_photos


def _photos() -> dict[str, Image.Image]:
    return {Path(p).stem: Image.open(p).convert("RGB") for p in sample_photos()}


def random_crop(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A random part of the photo, maybe mirrored, at 480 pixels on its short side."""
    width, height = photo.size
    area = rng.uniform(0.4, 1.0) * width * height
    aspect = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
    w = min(width, round(np.sqrt(area * aspect)))
    h = min(height, round(np.sqrt(area / aspect)))
    left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
    crop = photo.crop((left, top, left + w, top + h))
    if rng.random() < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    scale = 480 / min(crop.size)
    return crop.resize((round(crop.width * scale), round(crop.height * scale)), Image.Resampling.BILINEAR)


def _jpeg(image: Image.Image, rng: np.random.Generator) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=int(rng.integers(80, 96)))
    return buffer.getvalue()


def stream(
    count: int, seed: int, photos: Sequence[str] | None = None, *, unsure: bool = False
) -> list[tuple[str, bytes]]:
    """``count`` (photo name, JPEG bytes): crops of ``photos`` (default: all), in turn; ``unsure`` washes them out."""
    sources = _photos()
    names = sorted(photos or sources)
    missing = set(names) - set(sources)
    if missing:
        raise ValueError(f"no sample photos named {sorted(missing)}; there are {sorted(sources)}")
    # Seeded by the kind of stream too: two kinds never draw the same crop of a photo they share.
    rng = np.random.default_rng([seed, zlib.crc32(",".join(names).encode()), int(unsure)])
    out = []
    for i in range(count):
        name = names[i % len(names)]
        image = random_crop(sources[name], rng)
        if unsure:
            image = image.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(12, 20))))
            image = Image.blend(image, Image.new("RGB", image.size, (128, 128, 128)), 0.6)
        out.append((name, _jpeg(image, rng)))
    return out


def write_image_folder(images: Sequence[tuple[str, bytes]], root: Path) -> Path:
    """Save a stream as ``root/<photo name>/<n>.jpg`` (a class-folder tree ``evaluate`` and ``export`` read)."""
    for i, (name, data) in enumerate(images):
        folder = Path(root) / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:05d}.jpg").write_bytes(data)
    return Path(root)


def send(
    url: str, model: str, images: Sequence[tuple[str, bytes]], *, protocol: str = "grpc", concurrency: int = 4
) -> int:
    """Classify every image on a running server, ``concurrency`` in flight; the number of answers."""
    from tritonclf.client.triton_client import ClassifierClient

    client = ClassifierClient(url, protocol=protocol, model=model, timeout_s=120.0)
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        return sum(1 for _ in pool.map(lambda item: client.classify(item[1], top_k=1), images))
