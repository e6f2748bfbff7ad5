"""Base64 text and data URLs in the image input: unwrapped to the file's bytes, held to the same limits."""

from __future__ import annotations

import base64
import subprocess
import sys
import time

import numpy as np
import pytest

from tritonclf.preprocess import DecodeLimits, ImageRejected, PreprocessSpec, preprocess_image, unwrap_base64
from tritonclf_lab.bad_images import ODD_IMAGES, TEXT, encode, photo, png_header_only

from ..conftest import SAMPLES

SPEC = PreprocessSpec(input_size=(224, 224))
PADDING = "invalid base64: '=' padding is only allowed, once or twice, at the end"
DATA_URL_FORM = "not a decodable image: a data URL must be data:image/<type>;base64,<the file in base64>"
COFFEE = (SAMPLES / "coffee.jpg").read_bytes()
STANDARD = base64.b64encode(COFFEE)
URL_SAFE = base64.urlsafe_b64encode(COFFEE)


def wrapped(text: bytes, width: int, newline: bytes) -> bytes:
    """Text cut into lines of ``width`` characters."""
    return newline.join(text[start : start + width] for start in range(0, len(text), width))


BASE64_FORMS = {
    "standard": STANDARD,
    "standard-unpadded": STANDARD.rstrip(b"="),
    "url-safe": URL_SAFE,
    "url-safe-unpadded": URL_SAFE.rstrip(b"="),
    "mime-lines": base64.encodebytes(COFFEE),
    "pem-crlf-lines": wrapped(STANDARD, 64, b"\r\n"),
    "surrounding-whitespace": b"\n  " + STANDARD + b"\n",
    "data-url": b"data:image/jpeg;base64," + STANDARD,
    "data-url-upper-case-with-parameter": b"DATA:image/JPEG;name=coffee.jpg;base64," + URL_SAFE,
}


def rejection(data: bytes, limits: DecodeLimits | None = None) -> str:
    """The one-line reason ``data`` is refused."""
    with pytest.raises(ImageRejected) as info:
        preprocess_image(data, SPEC, limits or DecodeLimits())
    return str(info.value)


@pytest.mark.parametrize("form", BASE64_FORMS)
def test_base64_forms_unwrap_to_the_files_bytes(form):
    assert unwrap_base64(BASE64_FORMS[form]) == COFFEE


def test_base64_gives_the_same_pixels_as_the_raw_file():
    np.testing.assert_array_equal(preprocess_image(STANDARD, SPEC), preprocess_image(COFFEE, SPEC))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP"])
def test_raw_images_of_every_allowed_format_pass_through_uncopied(fmt):
    data = encode(photo().resize((32, 24)), fmt)
    assert unwrap_base64(data) is data


@pytest.mark.parametrize(
    "text",
    [
        b"<!doctype html><html><body>hello</body></html>",
        b'{"image": "coffee.jpg"}',
        b"coffee.jpg",
        b"coffee",
        b"/home/me/photos/coffee.jpg",
        base64.b64encode(b"not an image, just a sentence in base64"),
    ],
)
def test_text_that_is_not_base64_of_an_image_keeps_the_text_answer(text):
    assert unwrap_base64(text) is text
    assert rejection(text) == TEXT


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (STANDARD[:100] + b"=" + STANDARD[100:], PADDING),
        (STANDARD.rstrip(b"=") + b"===", PADDING),
        (STANDARD[:101], "invalid base64: 101 characters is one more than a multiple of 4 (cut short?)"),
        (STANDARD[:200] + b"*" + STANDARD[200:], "invalid base64: '*' at offset 200 is not a base64 character"),
        (
            b"data:image/jpeg;base64," + STANDARD[:40] + b"\xff" + STANDARD[40:],
            "invalid base64: byte 0xff at offset 63 is not a base64 character",
        ),
        (b"data:image/png,%89PNG", DATA_URL_FORM),
        (b"data:text/plain;base64,aGVsbG8=", DATA_URL_FORM),
    ],
    ids=["padding-inside", "three-pads", "length", "stray-character", "stray-byte", "not-base64-url", "not-image-url"],
)
def test_bad_base64_gets_a_one_line_reason(text, message):
    assert rejection(text) == message


def test_base64_of_a_bomb_is_refused_from_its_header():
    start = time.process_time()
    message = rejection(base64.b64encode(png_header_only(40_000, 40_000)))
    assert time.process_time() - start < 0.05
    assert message.endswith("(decompression bomb?)")


def test_encoded_size_cap_leaves_room_for_line_breaks_and_a_data_url_header():
    limits = DecodeLimits(max_image_bytes=len(COFFEE))
    longest = b"data:image/jpeg;base64," + wrapped(STANDARD, 64, b"\r\n") + b"\r\n"
    assert len(longest) <= limits.max_base64_bytes
    assert unwrap_base64(longest, limits) == COFFEE


def test_oversized_base64_is_refused_before_any_decoding():
    limits = DecodeLimits(max_image_bytes=len(COFFEE) // 2)
    text = wrapped(STANDARD, 64, b"\r\n")
    start = time.process_time()
    message = rejection(text, limits)
    assert time.process_time() - start < 0.01
    assert message == (
        f"base64 image is {len(text)} bytes, above the limit of {limits.max_base64_bytes} bytes "
        f"({limits.max_image_bytes} bytes once decoded)"
    )


def test_decoded_bytes_are_held_to_the_byte_limit():
    # Unwrapped base64 fits under the encoded cap (its header room), the decoded file does not fit.
    limits = DecodeLimits(max_image_bytes=len(COFFEE) - 1)
    assert len(STANDARD) <= limits.max_base64_bytes
    assert rejection(STANDARD, limits) == f"image is {len(COFFEE)} bytes, above the limit of {len(COFFEE) - 1} bytes"


def test_base64_of_a_disallowed_format_is_named():
    eps = base64.b64encode(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    assert rejection(eps).startswith("not a decodable image: EPS is not an allowed format")


@pytest.mark.parametrize("name", ["base64", "base64-url-safe-lines", "data-url"])
def test_catalogue_base64_images_are_the_cat_photo(name):
    assert unwrap_base64(ODD_IMAGES[name][1]()) == (SAMPLES / "chelsea.jpg").read_bytes()


UNWRAP_PEAK = """
import base64, sys
from tritonclf.preprocess import DecodeLimits, unwrap_base64

def status(field):
    with open("/proc/self/status") as lines:
        return next(int(line.split()[1]) * 1024 for line in lines if line.startswith(field + ":"))

# The costliest shape at the size limit: a data URL whose base64 has CRLF line breaks.
raw = b"\\xff\\xd8\\xff" + bytes(DecodeLimits().max_image_bytes - 3)
text = b"data:image/jpeg;base64," + base64.encodebytes(raw).replace(b"\\n", b"\\r\\n")
del raw
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")  # resets VmHWM: the peak from here on
before = status("VmRSS")
unwrap_base64(text)
print(len(text), status("VmHWM") - before)
"""


def test_unwrapping_the_largest_base64_needs_at_most_three_times_its_size():
    # A fresh process: VmHWM, not ru_maxrss, which a child inherits from pytest.
    done = subprocess.run([sys.executable, "-c", UNWRAP_PEAK], capture_output=True, text=True, check=True)
    size, peak_growth = map(int, done.stdout.split())
    assert size <= DecodeLimits().max_base64_bytes
    assert peak_growth <= 3 * size
