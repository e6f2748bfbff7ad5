"""Decoding memory is bounded per pixel: the limits bound what one image costs.

A small compressed file can hold a large image (a flat 64-megapixel PNG is a few
hundred KB), so ``max_image_pixels`` is the only thing standing between an upload and
the server's memory. These tests decode large images of every accepted kind in a fresh
process and check the peak resident memory of one call against a per-pixel bound.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from ..conftest import ROOT

WIDTH, HEIGHT = 3000, 3000
# Pillow's own WebP decoder needs about 16.4 bytes per pixel just to load (measured with
# Image.open + load alone); everything our code adds stays below that. Before the fix in
# to_rgb, 16-bit grayscale took 28 and RGBA 20.
MAX_BYTES_PER_PIXEL = 17
SLACK_BYTES = 16 * 1024 * 1024  # interpreter noise, libpng/libjpeg row buffers


def _pattern() -> np.ndarray:
    # Diagonal stripes: compresses well (like a bomb) but is not a single colour.
    return (np.add.outer(np.arange(HEIGHT), np.arange(WIDTH)) % 251).astype(np.uint8)


def _channels(gray: np.ndarray, count: int) -> np.ndarray:
    return np.stack([gray] * count, axis=-1)


# name -> (gray pattern -> image, format, save options)
IMAGES = {
    "jpeg": (lambda g: Image.fromarray(_channels(g, 3)), "JPEG", {"quality": 80}),
    "cmyk-jpeg": (lambda g: Image.fromarray(_channels(g, 4), "CMYK"), "JPEG", {"quality": 80}),
    "rgb-png": (lambda g: Image.fromarray(_channels(g, 3)), "PNG", {"compress_level": 1}),
    "rgba-png": (lambda g: Image.fromarray(_channels(g, 4), "RGBA"), "PNG", {"compress_level": 1}),
    "gray-alpha-png": (lambda g: Image.fromarray(_channels(g, 2), "LA"), "PNG", {"compress_level": 1}),
    "16bit-png": (lambda g: Image.fromarray(g.astype(np.uint16) * 257).convert("I;16"), "PNG", {"compress_level": 1}),
    "palette-transparency-png": (lambda g: Image.fromarray(g % 16).convert("P"), "PNG", {"transparency": 0}),
    "gif": (lambda g: Image.fromarray(g % 200).convert("P"), "GIF", {}),
    "webp": (lambda g: Image.fromarray(_channels(g, 3)), "WEBP", {"quality": 50}),
    "bmp": (lambda g: Image.fromarray(_channels(g, 3)), "BMP", {}),
}


def measure(path, *flags: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "tritonclf_lab.measure_decode_cli", str(path), *flags],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("large-images")
    files = {}
    gray = _pattern()
    for name, (make, fmt, options) in IMAGES.items():
        files[name] = folder / name
        make(gray).save(files[name], format=fmt, **options)
    return files


@pytest.mark.parametrize("name", IMAGES)
def test_decode_peak_memory_is_bounded_per_pixel(image_files, name):
    flags = ("--exact",) if name == "jpeg" else ()  # the draft decode would hide a full-size JPEG decode
    peak = measure(image_files[name], *flags)["peak_growth_bytes"]
    bound = MAX_BYTES_PER_PIXEL * WIDTH * HEIGHT + SLACK_BYTES
    assert peak <= bound, f"{name}: {peak / (WIDTH * HEIGHT):.1f} bytes per pixel"


# Oversized PNG headers, each with other dimensions: Pillow's DecompressionBombWarning puts
# the pixel count in its message, and Python keeps every distinct message forever.
_WARNING_REGISTRY_SCRIPT = """
import struct, sys, zlib
sys.path.insert(0, sys.argv[1])
from tritonclf.preprocess import ImageRejected, PreprocessSpec, preprocess_image, silence_decoder_warnings
if sys.argv[2] == "silenced":
    silence_decoder_warnings()
def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
for height in range(10_000, 11_000):
    ihdr = struct.pack(">IIBBBBB", 10_000, height, 8, 2, 0, 0, 0)
    try:
        data = b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\\0" * 64))
        preprocess_image(data, PreprocessSpec(input_size=(224, 224)))
    except ImageRejected:
        pass
print(sum(len(getattr(module, "__warningregistry__", {})) for module in list(sys.modules.values())))
"""


def warning_registry_entries(mode: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", _WARNING_REGISTRY_SCRIPT, str(ROOT / "src"), mode],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return int(result.stdout)


def test_hostile_images_leave_no_warning_state_behind_once_silenced():
    assert warning_registry_entries("silenced") <= 2
    assert warning_registry_entries("default") >= 1000  # what the served model avoids by silencing


@pytest.mark.parametrize("size", [(64_000, 1), (1, 64_000), (65_584, 32)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_extreme_aspect_ratio_is_resized_without_a_huge_intermediate(tmp_path, size):
    # 64000 x 1 is a 267-byte PNG whose plain resize (short edge to 256) would be 16384000 x 256.
    path = tmp_path / "sliver.png"
    Image.new("RGB", size, "red").save(path)
    measured = measure(path)
    assert measured["peak_growth_bytes"] < 32 * 1024 * 1024
    assert measured["cpu_s"] < 0.2
