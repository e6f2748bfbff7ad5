"""The one preprocessing implementation: timm parity on real photos, odd images, rejections."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from tritonclf.preprocess import (
    DecodeLimits,
    ImageRejected,
    PreprocessSpec,
    preprocess_image,
    resized_size,
)

from ..conftest import SAMPLE_PHOTOS, encode, photo, timm_reference

EXACT = DecodeLimits(jpeg_draft=False)
SPEC = PreprocessSpec(input_size=(224, 224))


@pytest.mark.parametrize("path", SAMPLE_PHOTOS, ids=lambda p: p.stem)
@pytest.mark.parametrize(
    "spec",
    [
        SPEC,
        PreprocessSpec(input_size=(224, 224), crop_mode="squash", interpolation="bilinear", crop_pct=0.95),
        PreprocessSpec(input_size=(224, 224), crop_mode="border", crop_pct=1.0),
        PreprocessSpec(input_size=(192, 256), crop_mode="center", crop_pct=0.9),  # non-square: ResizeKeepRatio
        PreprocessSpec(input_size=(288, 288), interpolation="bilinear", crop_pct=1.0, mean=(0.5,) * 3, std=(0.5,) * 3),
    ],
    ids=["center-bicubic", "squash-bilinear", "border", "center-nonsquare", "center-crop1"],
)
def test_preprocess_matches_timm_eval_transform_on_real_photos(path, spec):
    data = path.read_bytes()
    ours = preprocess_image(data, spec, EXACT)
    reference = timm_reference(data, spec)
    assert ours.shape == reference.shape == (3, *spec.input_size)
    assert ours.dtype == np.float32
    assert np.abs(ours - reference).max() < 1e-5


def test_resized_size_follows_torchvision_short_edge_rule():
    assert resized_size(1280, 960, SPEC) == (341, 256)
    assert resized_size(960, 1280, SPEC) == (256, 341)
    assert resized_size(256, 256, SPEC) == (256, 256)


# --- odd but valid images: accepted and classified like the plain photo -------------------------


def test_exif_rotated_image_gives_the_upright_result():
    upright = photo()
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": stored pixels are the upright image turned CCW
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    rotated = encode(stored, "PNG", exif=exif.tobytes())
    expected = preprocess_image(encode(upright, "PNG"), SPEC, EXACT)
    np.testing.assert_allclose(preprocess_image(rotated, SPEC, EXACT), expected, atol=1e-6)


def test_transparent_pixels_are_composited_over_white():
    clear = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    pixels = preprocess_image(encode(clear, "PNG"), SPEC, EXACT)
    white = preprocess_image(encode(Image.new("RGB", (64, 64), "white"), "PNG"), SPEC, EXACT)
    np.testing.assert_allclose(pixels, white, atol=1e-6)


def test_16bit_png_matches_its_8bit_version():
    gray8 = np.asarray(photo().convert("L"), dtype=np.uint16)
    sixteen = Image.fromarray(gray8 * 257).convert("I;16")
    ours = preprocess_image(encode(sixteen, "PNG"), SPEC, EXACT)
    reference = preprocess_image(encode(Image.fromarray(gray8.astype(np.uint8), "L"), "PNG"), SPEC, EXACT)
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_animated_gif_uses_the_first_frame():
    frames = [photo().convert("P"), Image.new("P", photo().size, 0)]
    animated = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    first = encode(frames[0], "GIF")
    np.testing.assert_allclose(preprocess_image(animated, SPEC, EXACT), preprocess_image(first, SPEC, EXACT))


def test_tiny_image_is_upscaled():
    pixels = preprocess_image(encode(photo().resize((8, 8)), "PNG"), SPEC)
    assert pixels.shape == (3, 224, 224)


# --- rejections: one clear line, always ImageRejected ------------------------------------------


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims a huge size: a decompression bomb's calling card, a few bytes long."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def corrupt_png_chunk() -> bytes:
    data = bytearray(encode(photo(), "PNG"))
    idat = data.index(b"IDAT")
    data[idat + 40 : idat + 80] = b"\xff" * 40
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)), "not a decodable image"),
        (b"<!doctype html><html><body>hello</body></html>", "not a decodable image"),
        (encode(photo(), "JPEG")[:8000], "cannot decode JPEG"),
        (corrupt_png_chunk(), "cannot decode PNG"),
        (png_header_only(40_000, 40_000), "above the limit"),
        (encode(photo(), "TIFF"), "not a decodable image"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n", "not a decodable image"),
    ],
    ids=["empty", "random", "html", "truncated-jpeg", "corrupt-png", "bomb", "tiff-not-allowed", "eps-not-allowed"],
)
def test_bad_input_is_rejected_with_one_line(data, reason):
    with pytest.raises(ImageRejected) as info:
        preprocess_image(data, SPEC)
    message = str(info.value)
    assert reason in message
    assert "\n" not in message


def test_limits_reject_large_inputs_before_decoding():
    data = encode(photo(), "PNG")
    with pytest.raises(ImageRejected, match="bytes, above the limit of 1000 bytes"):
        preprocess_image(data, SPEC, DecodeLimits(max_image_bytes=1000))
    with pytest.raises(ImageRejected, match="pixels, above the limit of 10000 pixels"):
        preprocess_image(data, SPEC, DecodeLimits(max_image_pixels=10_000))


# --- the spec travels through JSON and Triton parameters unchanged ------------------------------


def test_spec_round_trips_through_dict_and_parameters():
    spec = PreprocessSpec(input_size=(192, 256), interpolation="bilinear", crop_pct=0.9, crop_mode="squash")
    assert PreprocessSpec.from_dict(spec.to_dict()) == spec
    assert PreprocessSpec.from_parameters(spec.to_parameters()) == spec
    limits = DecodeLimits(max_image_bytes=5, max_image_pixels=7, allowed_formats=("PNG",), jpeg_draft=False)
    assert DecodeLimits.from_parameters(limits.to_parameters()) == limits


@pytest.mark.parametrize(
    "bad",
    [{"crop_mode": "zoom"}, {"interpolation": "magic"}, {"crop_pct": 0.0}, {"std": (0.0, 1.0, 1.0)}],
)
def test_invalid_spec_is_refused(bad):
    with pytest.raises(ValueError):
        PreprocessSpec(input_size=(224, 224), **bad)
