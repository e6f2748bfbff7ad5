"""Hostile and odd inputs, each with what the server must answer: shared by the unit, served and soak tests.

``BAD_INPUTS`` must be rejected with exactly ``message`` (INVALID_ARGUMENT, one line);
``ODD_IMAGES`` must be accepted and classified as the same bytes are in-process.
The README's "Bad input" table lists the same rows; ``python -m tritonclf_lab.bad_images``
prints them as Markdown.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import io
import struct
import urllib.parse
import zlib
from collections.abc import Callable

import numpy as np
from PIL import Image

from tritonclf import preprocess
from tritonclf.preprocess import DecodeLimits
from tritonclf.samples import sample_dir

SAMPLES = sample_dir()
ALLOWED = "JPEG, PNG, WEBP, GIF, BMP"
MAX_BYTES = 32 * 1024 * 1024  # DecodeLimits() defaults
MAX_PIXELS = 64_000_000
MAX_BASE64 = DecodeLimits().max_base64_bytes
TEXT = "not a decodable image: the bytes are text (HTML, JSON, base64, a file name?); send the file's bytes"


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    """Encode a Pillow image in memory."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@functools.cache
def photo(name: str = "chelsea") -> Image.Image:
    """One of the bundled real photos, RGB."""
    return Image.open(SAMPLES / f"{name}.jpg").convert("RGB")


def png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk with its CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims any size: a decompression bomb's calling card, a few bytes long."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def corrupt_png_chunk() -> bytes:
    """A real PNG with 40 bytes of its image data overwritten (CRC not updated)."""
    data = bytearray(encode(photo(), "PNG"))
    idat = data.index(b"IDAT")
    data[idat + 40 : idat + 80] = b"\xff" * 40
    return bytes(data)


def png_bad_header_checksum() -> bytes:
    """A real PNG whose IHDR checksum is wrong."""
    data = bytearray(encode(photo(), "PNG"))
    data[29:33] = b"\0\0\0\0"  # 8-byte signature + IHDR length, type and 13-byte body
    return bytes(data)


def gif_header_only(width: int, height: int) -> bytes:
    """A GIF whose logical screen and only frame claim any size."""
    screen = b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0)
    frame = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x4c\x01\x00;"
    return screen + frame


def photo_base64() -> bytes:
    """The bundled cat photo's file in standard base64, as a JSON client sends it."""
    return base64.b64encode((SAMPLES / "chelsea.jpg").read_bytes())


def url_safe_base64_lines() -> bytes:
    """The photo in URL-safe base64 without padding, wrapped at 76 characters like MIME."""
    text = base64.urlsafe_b64encode((SAMPLES / "chelsea.jpg").read_bytes()).rstrip(b"=")
    return b"\n".join(text[start : start + 76] for start in range(0, len(text), 76))


def url_quoted_base64() -> bytes:
    """The photo's base64 URL-encoded on top (a form encoder's ``%2B`` for ``+``)."""
    return urllib.parse.quote_from_bytes(photo_base64()).encode("ascii")


def jpeg_cut_halfway() -> bytes:
    """The bundled cat photo, cut halfway."""
    data = (SAMPLES / "chelsea.jpg").read_bytes()
    return data[: len(data) // 2]


@dataclasses.dataclass(frozen=True)
class BadInput:
    """An input the server must reject, and the exact reason it gives."""

    name: str
    description: str
    make: Callable[[], bytes]
    message: str
    reason: str  # the rejection metric's label (tritonclf.preprocess.REJECTION_REASONS)


BAD_INPUTS = (
    BadInput("empty", "no bytes at all", lambda: b"", "empty input: no image bytes were sent", preprocess.EMPTY),
    BadInput(
        "random-bytes",
        "5,000 random bytes",
        lambda: bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)),
        f"not a decodable image in an allowed format ({ALLOWED})",
        preprocess.NOT_AN_IMAGE,
    ),
    BadInput(
        "html", "an HTML page", lambda: b"<!doctype html><html><body>hello</body></html>", TEXT, preprocess.NOT_AN_IMAGE
    ),
    BadInput(
        "truncated-jpeg",
        "a JPEG cut halfway",
        jpeg_cut_halfway,
        "cannot decode JPEG image: image file is truncated (26 bytes not processed)",
        preprocess.CORRUPT,
    ),
    BadInput(
        "corrupt-png-data",
        "a PNG with 40 bytes of image data overwritten",
        corrupt_png_chunk,
        "cannot decode PNG image: broken data stream when reading image file",
        preprocess.CORRUPT,
    ),
    BadInput(
        "png-bad-checksum",
        "a PNG whose header checksum is wrong",
        png_bad_header_checksum,
        "not a decodable image: a PNG file whose header cannot be read",
        preprocess.CORRUPT,
    ),
    BadInput(
        "png-bomb",
        "a 40,000 x 40,000 PNG in 69 bytes (decompression bomb)",
        lambda: png_header_only(40_000, 40_000),
        f"image dimensions are far above the limit of {MAX_PIXELS} pixels (decompression bomb?)",
        preprocess.TOO_MANY_PIXELS,
    ),
    BadInput(
        "gif-bomb",
        "a 65,535 x 65,535 GIF in 29 bytes",
        lambda: gif_header_only(65_535, 65_535),
        f"image dimensions are far above the limit of {MAX_PIXELS} pixels (decompression bomb?)",
        preprocess.TOO_MANY_PIXELS,
    ),
    BadInput(
        "too-many-pixels",
        "a 9,000 x 8,000 PNG (72 megapixels)",
        lambda: png_header_only(9_000, 8_000),
        f"PNG image is 9000x8000 = 72000000 pixels, above the limit of {MAX_PIXELS} pixels",
        preprocess.TOO_MANY_PIXELS,
    ),
    BadInput(
        "too-many-bytes",
        "32 MiB + 1 byte",
        lambda: b"\xff\xd8" + bytes(MAX_BYTES - 1),
        f"image is {MAX_BYTES + 1} bytes, above the limit of {MAX_BYTES} bytes",
        preprocess.TOO_MANY_BYTES,
    ),
    BadInput(
        "tiff",
        "a TIFF (not allowed: large decoder attack surface)",
        lambda: encode(photo().resize((64, 48)), "TIFF"),
        f"not a decodable image: TIFF is not an allowed format (allowed: {ALLOWED})",
        preprocess.DISALLOWED_FORMAT,
    ),
    BadInput(
        "eps",
        "an EPS file (never handed to Ghostscript)",
        lambda: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n",
        f"not a decodable image: EPS is not an allowed format (allowed: {ALLOWED})",
        preprocess.DISALLOWED_FORMAT,
    ),
    BadInput(
        "pdf",
        "a PDF",
        lambda: b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n",
        f"not a decodable image: PDF is not an allowed format (allowed: {ALLOWED})",
        preprocess.DISALLOWED_FORMAT,
    ),
    BadInput(
        "heic",
        "an iPhone HEIC photo",
        lambda: b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(64),
        f"not a decodable image: HEIF is not an allowed format (allowed: {ALLOWED})",
        preprocess.DISALLOWED_FORMAT,
    ),
    BadInput(
        "base64-url-quoted",
        "the photo's base64 URL-encoded (%2B for +)",
        url_quoted_base64,
        f"invalid base64: '%' at offset {url_quoted_base64().index(b'%')} is not a base64 character",
        preprocess.BAD_BASE64,
    ),
    BadInput(
        "base64-bomb",
        "base64 of the 40,000 x 40,000 PNG bomb",
        lambda: base64.b64encode(png_header_only(40_000, 40_000)),
        f"image dimensions are far above the limit of {MAX_PIXELS} pixels (decompression bomb?)",
        preprocess.TOO_MANY_PIXELS,
    ),
    BadInput(
        "base64-tiff",
        "base64 of a TIFF",
        lambda: base64.b64encode(encode(photo().resize((64, 48)), "TIFF")),
        f"not a decodable image: TIFF is not an allowed format (allowed: {ALLOWED})",
        preprocess.DISALLOWED_FORMAT,
    ),
    BadInput(
        "base64-too-many-bytes",
        f"base64 text of {MAX_BASE64 + 1:,} bytes (more than 32 MiB decoded)",
        lambda: b"/9j/" + b"A" * (MAX_BASE64 - 3),
        f"base64 image is {MAX_BASE64 + 1} bytes, above the limit of {MAX_BASE64} bytes "
        f"({MAX_BYTES} bytes once decoded)",
        preprocess.TOO_MANY_BYTES,
    ),
    BadInput(
        "svg-data-url",
        "an SVG data URL",
        lambda: b"data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg'/>",
        "not a decodable image: a data URL must be data:image/<type>;base64,<the file in base64>",
        preprocess.NOT_AN_IMAGE,
    ),
)


def _exif_rotated_jpeg() -> bytes:
    """The cat stored turned a quarter, with EXIF orientation 6 saying how to show it upright."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(photo().transpose(Image.Transpose.ROTATE_90), "JPEG", quality=92, exif=exif.tobytes())


def _animated(fmt: str) -> bytes:
    frames = [photo(), Image.new("RGB", photo().size, "black")]
    if fmt == "GIF":
        frames = [frame.convert("P") for frame in frames]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100)


def _sixteen_bit_png() -> bytes:
    gray = np.asarray(photo().convert("L"), dtype=np.uint16)
    return encode(Image.fromarray(gray * 257).convert("I;16"), "PNG")


# name -> (description, bytes): the cat photo in odd encodings and shapes.
ODD_IMAGES: dict[str, tuple[str, Callable[[], bytes]]] = {
    "grayscale": ("8-bit grayscale PNG", lambda: encode(photo().convert("L"), "PNG")),
    "palette": ("palette PNG", lambda: encode(photo().convert("P", palette=Image.Palette.ADAPTIVE), "PNG")),
    "rgba": ("RGBA PNG (composited over white)", lambda: encode(photo().convert("RGBA"), "PNG")),
    "cmyk-jpeg": ("CMYK JPEG", lambda: encode(photo().convert("CMYK"), "JPEG", quality=95)),
    "16bit-png": ("16-bit grayscale PNG", _sixteen_bit_png),
    "exif-rotated-jpeg": ("JPEG stored sideways, EXIF orientation 6", _exif_rotated_jpeg),
    "progressive-jpeg": ("progressive JPEG", lambda: encode(photo(), "JPEG", quality=90, progressive=True)),
    "animated-gif": ("animated GIF (first frame)", lambda: _animated("GIF")),
    "animated-webp": ("animated WebP (first frame)", lambda: _animated("WEBP")),
    "base64": ("the JPEG in standard base64 (how plain JSON carries it)", photo_base64),
    "base64-url-safe-lines": (
        "the JPEG in URL-safe base64, unpadded, a line break every 76 characters",
        url_safe_base64_lines,
    ),
    "data-url": ("a data:image/jpeg;base64, URL of the JPEG", lambda: b"data:image/jpeg;base64," + photo_base64()),
    "tiny": ("8 x 8 PNG (upscaled)", lambda: encode(photo().resize((8, 8)), "PNG")),
    # Not a cat any more, but accepted cheaply: its plain resize would be 16384000 x 256.
    "sliver": ("64,000 x 1 PNG of a few KB", lambda: encode(photo().resize((64_000, 1)), "PNG")),
}
# Encodings that lose what makes the photo a tabby: accepted, but not checked for the class.
NOT_RECOGNISABLE = frozenset({"grayscale", "16bit-png", "tiny", "sliver"})


def markdown_table(messages: dict[str, str] | None = None) -> str:
    """The README table: each bad input, the server's answer (``messages`` overrides, e.g. as served), its reason."""
    lines = ["| Input | Answer (`INVALID_ARGUMENT`) | Counted as |", "| --- | --- | --- |"]
    for bad in BAD_INPUTS:
        message = (messages or {}).get(bad.name, bad.message)
        lines.append(f"| {bad.description} | `{message}` | `{bad.reason}` |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
