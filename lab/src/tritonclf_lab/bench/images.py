"""Benchmark images: a deterministic mix of phone-like JPEGs made from real photos, or a folder of photos.

The default mix is what a photo-upload endpoint sees: half 640x480 thumbnails, 30%
1280x960, 20% 4032x3024 12 MP phone photos, JPEG quality 90, some with an EXIF
orientation (stored landscape, shown portrait, as phones write them). Every image
is a different crop of one of the sample photos, so no two are byte-identical and
no cache can flatter the numbers; the same arguments give the same bytes on every run.

A folder (``--images``) is read as ``infer`` reads one, class folders included. Each file
is decoded once by the served preprocessing first: one that the server would reject (not
an image, truncated, too large) is left out and named, so it neither counts as an error
in every level nor stops the references. Own photos come in many sizes: they are grouped
by megapixels (``SIZE_GROUPS``) for the per-size lines, not listed one size at a time.
"""

from __future__ import annotations

import dataclasses
import io
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from tritonclf.image_files import IMAGE_SUFFIXES, list_images
from tritonclf.preprocess import DecodeLimits, ImageRejected, PreprocessSpec, preprocess_image

JPEG_QUALITY = 90
DEFAULT_MIX: tuple[tuple[tuple[int, int], float], ...] = (
    ((640, 480), 0.5),
    ((1280, 960), 0.3),
    ((4032, 3024), 0.2),
)
# The samples are at most 640 px wide, so big images are upscales: smooth gradients
# that compress to a third of a real photo and decode several times faster (the
# entropy decoder's work scales with the bytes). Sensor-like grain brings them to
# about 2 bits per pixel at quality 90, as phone photos are.
GRAIN_SIGMA = 5.0
# Every EXIF_EVERY-th image says "rotate 90 degrees clockwise" (orientation 6).
EXIF_EVERY = 4
EXIF_ORIENTATION_TAG = 0x0112
ROTATE_90_CW = 6
# "12 MP phone photos": the subset the 12 MP comparison runs on.
LARGE_IMAGE_PIXELS = 10_000_000
_STRIP_ROWS = 512  # grain is added in strips so a 12 MP image never needs a float copy
# Megapixel groups of a folder's photos (upper bounds, exclusive): the generated mix's
# 640x480, 1280x960 and 12 MP sizes fall one in each of the first, second and last.
SIZE_GROUPS = ((0.5, "<0.5 MP"), (2.0, "0.5-2 MP"), (LARGE_IMAGE_PIXELS / 1e6, "2-10 MP"), (float("inf"), "10+ MP"))


def size_group(width: int, height: int) -> str:
    """The megapixel group of a photo: ``"2-10 MP"``."""
    megapixels = width * height / 1e6
    return next(label for bound, label in SIZE_GROUPS if megapixels < bound)


@dataclasses.dataclass(frozen=True)
class BenchImage:
    """One encoded image and what it is, for per-size breakdowns."""

    data: bytes
    width: int  # as stored, before any EXIF rotation
    height: int
    exif_rotated: bool = False
    group: str = ""  # what the per-size lines call it; empty: its exact size

    @property
    def size_label(self) -> str:
        """``"4032x3024"``, or the image's group (``"2-10 MP"``)."""
        return self.group or f"{self.width}x{self.height}"

    @property
    def is_large(self) -> bool:
        """Part of the 12 MP subset."""
        return self.width * self.height >= LARGE_IMAGE_PIXELS


def parse_mix(text: str) -> tuple[tuple[tuple[int, int], float], ...]:
    """``"640x480:0.5,1280x960:0.3,4032x3024:0.2"`` -> ((size, share), ...); shares need not sum to 1."""
    mix = []
    for part in text.split(","):
        size_text, _, share_text = part.strip().partition(":")
        try:
            width, height = (int(v) for v in size_text.lower().split("x"))
            share = float(share_text) if share_text else 1.0
        except ValueError:
            raise ValueError(f"mix entries look like 1280x960:0.3, not {part.strip()!r}") from None
        if width < 1 or height < 1 or share <= 0:
            raise ValueError(f"mix entries need a positive size and share, not {part.strip()!r}")
        mix.append(((width, height), share))
    if not mix:
        raise ValueError("the mix is empty")
    return tuple(mix)


def allocate_counts(shares: Sequence[float], total: int) -> list[int]:
    """Split ``total`` in proportion to ``shares`` (largest remainder), every share getting at least one."""
    if total < len(shares):
        raise ValueError(f"{total} images cannot cover {len(shares)} sizes; ask for at least {len(shares)}")
    weight = sum(shares)
    exact = [total * share / weight for share in shares]
    counts = [max(1, int(value)) for value in exact]
    # Hand out what is left by largest remainder; take back from the largest counts if the minimum overshot.
    by_remainder = sorted(range(len(shares)), key=lambda i: exact[i] - int(exact[i]), reverse=True)
    index = 0
    while sum(counts) < total:
        counts[by_remainder[index % len(shares)]] += 1
        index += 1
    while sum(counts) > total:
        counts[max(range(len(counts)), key=lambda i: counts[i])] -= 1
    return counts


def crop_box(width: int, height: int, aspect: float, rng: random.Random) -> tuple[int, int, int, int]:
    """A random crop of a (width, height) image with the target aspect ratio, 80-100% of the largest such box."""
    box_w = min(width, round(height * aspect))
    box_h = min(height, round(box_w / aspect))
    zoom = rng.uniform(0.8, 1.0)
    crop_w, crop_h = max(1, round(box_w * zoom)), max(1, round(box_h * zoom))
    left = round((width - crop_w) * rng.random())
    top = round((height - crop_h) * rng.random())
    return left, top, left + crop_w, top + crop_h


def add_grain(image: Image.Image, sigma: float, seed: int) -> Image.Image:
    """Gaussian grain of ``sigma`` grey levels, deterministic for a seed."""
    if sigma <= 0:
        return image
    pixels = np.array(image, dtype=np.uint8)
    rng = np.random.default_rng(seed)
    for top in range(0, pixels.shape[0], _STRIP_ROWS):
        strip = pixels[top : top + _STRIP_ROWS]
        noisy = strip.astype(np.float32) + rng.standard_normal(strip.shape, dtype=np.float32) * sigma
        strip[...] = np.clip(noisy, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def encode_jpeg(image: Image.Image, quality: int = JPEG_QUALITY, orientation: int | None = None) -> bytes:
    """Encode as JPEG, optionally with an EXIF orientation tag."""
    buffer = io.BytesIO()
    options = {"quality": quality}
    if orientation is not None:
        exif = Image.Exif()
        exif[EXIF_ORIENTATION_TAG] = orientation
        options["exif"] = exif.tobytes()
    image.save(buffer, format="JPEG", **options)
    return buffer.getvalue()


def make_photo(photo: Image.Image, size: tuple[int, int], seed: int, *, exif_rotated: bool) -> BenchImage:
    """One ``size`` JPEG from a random crop (and maybe mirror) of ``photo``, with grain."""
    rng = random.Random(seed)
    width, height = size
    variant = photo.crop(crop_box(photo.width, photo.height, width / height, rng))
    if rng.random() < 0.5:
        variant = variant.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    variant = add_grain(variant.resize(size, Image.Resampling.BICUBIC), GRAIN_SIGMA, seed)
    data = encode_jpeg(variant, orientation=ROTATE_90_CW if exif_rotated else None)
    return BenchImage(data, width, height, exif_rotated)


def generate_mix(
    sources: Sequence[bytes], mix: Sequence[tuple[tuple[int, int], float]] = DEFAULT_MIX, count: int = 40, seed: int = 0
) -> list[BenchImage]:
    """``count`` JPEGs in the proportions of ``mix``, sizes interleaved in a seeded order."""
    if not sources:
        raise ValueError("no source photos to generate images from")
    photos = [Image.open(io.BytesIO(data)).convert("RGB") for data in sources]
    counts = allocate_counts([share for _, share in mix], count)
    plan = [size for (size, _), n in zip(mix, counts, strict=True) for _ in range(n)]
    # Interleaved, so every stretch of a closed loop sees the mix, not one size after another.
    random.Random(seed).shuffle(plan)
    return [
        make_photo(
            photos[index % len(photos)],
            size,
            seed * 1_000_003 + index,
            exif_rotated=index % EXIF_EVERY == EXIF_EVERY - 1,
        )
        for index, size in enumerate(plan)
    ]


@dataclasses.dataclass(frozen=True)
class SkippedFile:
    """A file of the folder the benchmark leaves out, and why."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def load_folder(
    folder: Path, spec: PreprocessSpec, limits: DecodeLimits | None = None
) -> tuple[list[BenchImage], list[SkippedFile]]:
    """Every image file under ``folder`` (class folders too), sorted, and the files left out.

    A file is kept when ``preprocess_image`` with ``spec`` and ``limits`` (the served model's)
    accepts it; the others come back with the server's reason.
    """
    if not folder.is_dir():
        raise FileNotFoundError(f"no image folder at {folder}")
    paths = list_images(folder)
    if not paths:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    limits = limits or DecodeLimits()
    images, skipped = [], []
    for path in paths:
        try:
            data = path.read_bytes()
            preprocess_image(data, spec, limits)
        except (ImageRejected, OSError) as err:
            reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            skipped.append(SkippedFile(path, reason))
            continue
        with Image.open(io.BytesIO(data)) as image:
            rotated = image.getexif().get(EXIF_ORIENTATION_TAG, 1) in (5, 6, 7, 8)
            images.append(BenchImage(data, image.width, image.height, rotated, group=size_group(*image.size)))
    if not images:
        raise FileNotFoundError(f"none of the {len(paths)} image files in {folder} decodes (e.g. {skipped[0]})")
    return images, skipped


def decodable(images: Sequence[BenchImage], spec: PreprocessSpec, limits: DecodeLimits) -> tuple[list[BenchImage], int]:
    """The images ``preprocess_image`` accepts under these limits, and how many it rejects."""
    kept = []
    for image in images:
        try:
            preprocess_image(image.data, spec, limits)
        except ImageRejected:
            continue
        kept.append(image)
    return kept, len(images) - len(kept)


def describe(images: Sequence[BenchImage]) -> dict:
    """Counts, shares and bytes per size, for the record and the report."""
    by_size: dict[str, list[BenchImage]] = {}
    for image in images:
        by_size.setdefault(image.size_label, []).append(image)
    return {
        "count": len(images),
        "exif_rotated": sum(image.exif_rotated for image in images),
        "mean_bytes": round(sum(len(i.data) for i in images) / len(images)) if images else 0,
        "sizes": {
            label: {
                "count": len(group),
                "share": len(group) / len(images),
                "mean_bytes": round(sum(len(i.data) for i in group) / len(group)),
                "bits_per_pixel": round(
                    8 * sum(len(i.data) for i in group) / sum(i.width * i.height for i in group), 2
                ),
            }
            for label, group in sorted(by_size.items(), key=lambda item: item[1][0].width * item[1][0].height)
        },
    }
