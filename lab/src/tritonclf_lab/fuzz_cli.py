"""Fuzz ``preprocess_image`` with hypothesis: random bytes, mutated real images, mutated base64.

    tritonclf fuzz --seconds 60          # what make test-long runs (tests/integration/test_fuzz_preprocess.py)
    tritonclf fuzz --seconds 3600        # the long run: make fuzz

A finding is any input for which ``preprocess_image`` (served defaults: ``DecodeLimits()``)
- raises anything other than ``ImageRejected``, or returns anything but a finite
  float32 CHW array;
- takes more than ``MAX_CPU_S_PER_INPUT`` of CPU time (process time, so other work on a
  shared machine does not count);
- needs more memory than the limits allow: the process runs under ``RLIMIT_AS`` =
  its size at start + ``MAX_BYTES_PER_PIXEL`` x ``max_image_pixels`` + headroom, so an
  over-allocation fails as ``MemoryError`` (a finding) instead of going unnoticed
  (tracemalloc cannot see Pillow's C allocations);
- leaves state behind: with Pillow's warnings silenced as the served model does,
  Python's warning registries must stay (almost) empty.

Prints one JSON summary line; exits 1 with the shrunk failing input (hex) on a finding.
Only the standard library, numpy, Pillow and hypothesis are imported: no torch.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import resource
import struct
import sys
import time
import zlib

import numpy as np
import psutil
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from PIL import Image

from tritonclf.preprocess import (
    DecodeLimits,
    ImageRejected,
    PreprocessSpec,
    preprocess_image,
    silence_decoder_warnings,
)
from tritonclf.samples import sample_photo
from tritonclf_lab.peak_memory import peak_rss_bytes

SPEC = PreprocessSpec(input_size=(224, 224))
LIMITS = DecodeLimits()
MAX_CPU_S_PER_INPUT = 1.0
# tests/integration/test_preprocess_memory.py: no accepted image needs more than 17 bytes per pixel.
MAX_BYTES_PER_PIXEL = 17
HEADROOM_BYTES = 256 * 1024 * 1024  # hypothesis' own bookkeeping, interpreter growth
MAX_WARNING_REGISTRY_ENTRIES = 10
BATCH_EXAMPLES = 200  # examples per hypothesis run; runs repeat until the time is up
INTERESTING_INTS = (0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFF)


def url_safe_lines(data: bytes) -> bytes:
    """URL-safe base64 without padding, a line break every 76 characters."""
    text = base64.urlsafe_b64encode(data).rstrip(b"=")
    return b"\r\n".join(text[start : start + 76] for start in range(0, len(text), 76))


# How a client may carry a file: the served input takes all of them (see preprocess.unwrap_base64).
WRAPPERS = {
    "raw": lambda data: data,
    "base64": base64.b64encode,
    "url-safe-lines": url_safe_lines,
    "data-url": lambda data: b"data:image/png;base64," + base64.b64encode(data),
}


class Finding(AssertionError):
    """An input that breaks one of the rules above."""


def seed_images() -> dict[str, bytes]:
    """Small valid files of every allowed format and odd mode: starting points for mutation."""
    photo = Image.open(sample_photo("chelsea")).convert("RGB").resize((48, 32))
    frames = [photo.convert("P"), photo.rotate(90).convert("P")]

    def encode(image: Image.Image, fmt: str, **options) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, format=fmt, **options)
        return buffer.getvalue()

    exif = Image.Exif()
    exif[0x0112] = 6
    sixteen = Image.fromarray(np.asarray(photo.convert("L"), dtype=np.uint16) * 257).convert("I;16")
    return {
        "jpeg": encode(photo, "JPEG", quality=75),
        "jpeg-progressive-exif": encode(photo, "JPEG", quality=75, progressive=True, exif=exif.tobytes()),
        "jpeg-cmyk": encode(photo.convert("CMYK"), "JPEG", quality=75),
        "png": encode(photo, "PNG"),
        "png-rgba": encode(photo.convert("RGBA"), "PNG"),
        "png-16bit": encode(sixteen, "PNG"),
        "png-palette-transparency": encode(photo.convert("P"), "PNG", transparency=0),
        "gif-animated": encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50),
        "webp": encode(photo, "WEBP", quality=60),
        "webp-lossless-alpha": encode(photo.convert("RGBA"), "WEBP", lossless=True),
        "webp-animated": encode(photo, "WEBP", save_all=True, append_images=[photo.rotate(90)], duration=50),
        "bmp": encode(photo, "BMP"),
    }


def fix_png_crcs(data: bytes) -> bytes:
    """Recompute every chunk CRC, so mutations reach the decoder instead of dying at the checksum."""
    out = bytearray(data)
    offset = 8
    while offset + 12 <= len(out):
        (length,) = struct.unpack(">I", out[offset : offset + 4])
        end = offset + 8 + length
        if end + 4 > len(out):
            break
        out[end : end + 4] = struct.pack(">I", zlib.crc32(out[offset + 4 : end]))
        offset = end + 4
    return bytes(out)


@st.composite
def mutation(draw, size: int):
    """One edit of a ``size``-byte file; half of them land in the first 64 bytes, where the headers are."""
    position = draw(st.integers(0, min(size, 64) - 1) | st.integers(0, max(size - 1, 0)))
    kind = draw(st.sampled_from(("flip", "int", "truncate", "insert", "delete", "duplicate")))
    if kind == "flip":
        return ("flip", position, draw(st.integers(0, 255)))
    if kind == "int":
        width = draw(st.sampled_from((">H", "<H", ">I", "<I")))
        value = draw(st.sampled_from(INTERESTING_INTS)) & (0xFFFF if "H" in width else 0xFFFFFFFF)
        return ("int", position, struct.pack(width, value))
    if kind == "insert":
        return ("insert", position, draw(st.binary(min_size=1, max_size=64)))
    return (kind, position, draw(st.integers(1, 256)))


def apply(data: bytes, edits) -> bytes:
    """Apply drawn edits in order (positions wrap to the current length)."""
    out = bytearray(data)
    for kind, position, arg in edits:
        at = position % max(len(out), 1)
        if kind == "flip" and out:
            out[at] = arg
        elif kind == "int":
            out[at : at + len(arg)] = arg
        elif kind == "truncate":
            del out[at:]
        elif kind == "insert":
            out[at:at] = arg
        elif kind == "delete":
            del out[at : at + arg]
        elif kind == "duplicate":
            out[at:at] = out[at : at + arg]
    return bytes(out)


def check(data: bytes) -> str:
    """Run one input through the rules; returns "accepted" or "rejected", raises Finding otherwise."""
    start = time.process_time()
    try:
        pixels = preprocess_image(data, SPEC, LIMITS)
        outcome = "accepted"
    except ImageRejected as err:
        if "\n" in str(err) or not str(err):
            raise Finding(f"rejection message is not one non-empty line: {str(err)!r}") from None
        outcome, pixels = "rejected", None
    except Exception as err:
        raise Finding(f"{type(err).__name__}: {err}") from err
    cpu_s = time.process_time() - start
    if cpu_s > MAX_CPU_S_PER_INPUT:
        raise Finding(f"took {cpu_s:.2f} s of CPU (limit {MAX_CPU_S_PER_INPUT} s)")
    if pixels is not None and (pixels.shape != (3, *SPEC.input_size) or pixels.dtype != np.float32):
        raise Finding(f"returned {pixels.dtype} {pixels.shape}")
    if pixels is not None and not np.isfinite(pixels).all():
        raise Finding("returned non-finite pixels")
    STATS["max_cpu_s"] = max(STATS["max_cpu_s"], cpu_s)
    return outcome


STATS = {"examples": 0, "accepted": 0, "rejected": 0, "max_cpu_s": 0.0}
FAILING: dict[str, bytes] = {}
SEEDS = seed_images()
SETTINGS = settings(
    max_examples=BATCH_EXAMPLES,
    deadline=None,  # CPU time is checked in check(); wall-clock deadlines flake on a shared machine
    database=None,
    phases=(Phase.generate, Phase.shrink),
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)


def record(data: bytes) -> None:
    """Check one input and count its outcome; keep the input if it breaks a rule."""
    try:
        STATS[check(data)] += 1
    except Finding:
        # Hypothesis replays the shrunk example last, so this ends as the minimal input.
        FAILING["input"] = data
        raise
    STATS["examples"] += 1


@SETTINGS
@given(st.binary(max_size=4096))
def fuzz_random_bytes(data: bytes) -> None:
    """Arbitrary bytes, mostly rejected at the format sniffing."""
    record(data)


@SETTINGS
@given(st.sampled_from(sorted(SEEDS)), st.data())
def fuzz_mutated_images(name: str, data) -> None:
    """A real file of an allowed format with 1-8 edits; PNG checksums repaired half the time."""
    seed = SEEDS[name]
    edits = data.draw(st.lists(mutation(len(seed)), min_size=1, max_size=8))
    mutated = apply(seed, edits)
    if name.startswith("png") and data.draw(st.booleans()):
        mutated = fix_png_crcs(mutated)
    record(WRAPPERS[data.draw(st.sampled_from(sorted(WRAPPERS)))](mutated))


@SETTINGS
@given(st.sampled_from(sorted(SEEDS)), st.sampled_from(sorted(set(WRAPPERS) - {"raw"})), st.data())
def fuzz_mutated_base64(name: str, wrapper: str, data) -> None:
    """A real file as base64 text or a data URL, the text itself edited: stray bytes, cuts, padding."""
    text = WRAPPERS[wrapper](SEEDS[name])
    record(apply(text, data.draw(st.lists(mutation(len(text)), min_size=1, max_size=8))))


def limit_address_space() -> int:
    """Cap this process's virtual memory at its current size plus what the limits allow."""
    size = psutil.Process().memory_info().vms
    cap = size + MAX_BYTES_PER_PIXEL * LIMITS.max_image_pixels + HEADROOM_BYTES
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    return cap


def main(argv: list[str] | None = None) -> int:
    """Fuzz until the time is up or something breaks a rule."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="time budget (default: %(default)s)")
    args = parser.parse_args(argv)
    cap = limit_address_space()
    silence_decoder_warnings()  # as the served model does in initialize()
    deadline = time.monotonic() + args.seconds
    runs = 0
    finding = None
    while time.monotonic() < deadline and finding is None:
        target = (fuzz_random_bytes, fuzz_mutated_base64, fuzz_mutated_images, fuzz_mutated_images)[runs % 4]
        try:
            target()
        except Finding as err:
            finding = f"{target.__name__}: {err}"
        runs += 1
    registry = sum(len(getattr(module, "__warningregistry__", {})) for module in list(sys.modules.values()))
    if finding is None and registry > MAX_WARNING_REGISTRY_ENTRIES:
        finding = f"{registry} entries in Python's warning registries: per-input state accumulates"
    peak_rss = peak_rss_bytes()
    failing = FAILING["input"].hex() if "input" in FAILING else None
    summary = {**STATS, "runs": runs, "address_space_cap": cap, "peak_rss": peak_rss, "warning_registry": registry}
    summary["finding"] = finding
    print(json.dumps({**summary, "failing_input_hex": failing}))
    return 1 if finding else 0


if __name__ == "__main__":
    sys.exit(main())
