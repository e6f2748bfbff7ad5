"""Image preprocessing: the one implementation used everywhere.

Training's validation transform, the export check, the served preprocessing
model (this file is copied into its version directory) and the client-side
fallback all call the functions below, so the numbers a model sees are the same
offline and online. The geometry reproduces timm's eval transform
(``timm.data.transforms_imagenet_eval``) for the model's ``pretrained_cfg``;
``tests/unit/test_preprocess.py`` checks it against timm on real photos.

Only the standard library, numpy and Pillow are imported: this file runs inside
Triton's Python backend, where neither torch nor this project is installed.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import io
import math
import re
import warnings
from collections.abc import Mapping

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


@dataclasses.dataclass(frozen=True)
class Interpolation:
    """One interpolation of timm's ``pretrained_cfg`` as each library that resizes for us spells it."""

    pillow: Image.Resampling
    torch: str | None  # ``torch.nn.functional.interpolate``'s mode; None: torch has no such kernel
    cv2: str  # the OpenCV flag's name, for training's augmentations (cv2 is not imported here)


INTERPOLATIONS = {
    "nearest": Interpolation(Image.Resampling.NEAREST, "nearest-exact", "INTER_NEAREST"),
    "bilinear": Interpolation(Image.Resampling.BILINEAR, "bilinear", "INTER_LINEAR"),
    "bicubic": Interpolation(Image.Resampling.BICUBIC, "bicubic", "INTER_CUBIC"),
    "lanczos": Interpolation(Image.Resampling.LANCZOS, None, "INTER_LANCZOS4"),
    "box": Interpolation(Image.Resampling.BOX, None, "INTER_AREA"),
    "hamming": Interpolation(Image.Resampling.HAMMING, None, "INTER_LINEAR"),  # OpenCV has no Hamming filter
}
TORCH_INTERPOLATIONS = tuple(name for name, kernels in INTERPOLATIONS.items() if kernels.torch)
CROP_MODES = ("center", "squash", "border")
# EXIF orientations 5-8 rotate by 90 degrees: width and height swap on display.
_TRANSPOSING_ORIENTATIONS = {5, 6, 7, 8}
_EXIF_ORIENTATION_TAG = 0x0112
# Pixels per block when scaling 16/32-bit grayscale to 8 bits.
_WIDE_BLOCK_PIXELS = 1 << 20
# Largest resize before the center crop done in full (16 MB as RGB): a 61:1 panorama at
# a 256-pixel short edge. Only extreme shapes go past it.
_MAX_RESIZED_PIXELS = 4_000_000
# Room for "data:image/<type>;<parameters>;base64," before a data URL's base64.
_MAX_DATA_URL_HEADER_BYTES = 256


# Why an input was rejected: the ``reason`` label of the served rejection metric. Each raise
# below pairs one with its message, so a client's message and the counted reason always agree.
EMPTY = "empty"
NOT_AN_IMAGE = "not_an_image"
DISALLOWED_FORMAT = "disallowed_format"
CORRUPT = "corrupt"  # truncated, or broken data in an allowed format
TOO_MANY_BYTES = "too_many_bytes"
TOO_MANY_PIXELS = "too_many_pixels"
BAD_BASE64 = "bad_base64"
REJECTION_REASONS = (EMPTY, NOT_AN_IMAGE, DISALLOWED_FORMAT, CORRUPT, TOO_MANY_BYTES, TOO_MANY_PIXELS, BAD_BASE64)


class ImageRejected(ValueError):
    """An input that is not an acceptable image; the message is one line for the caller.

    ``reason`` is one of ``REJECTION_REASONS``.
    """

    def __init__(self, message: str, reason: str) -> None:
        """A one-line message for the caller and the reason it is counted under."""
        super().__init__(message)
        self.reason = reason

    def __reduce__(self):
        """Picklable with both arguments (worker processes send rejections back)."""
        return type(self), (str(self), self.reason)


@dataclasses.dataclass(frozen=True)
class PreprocessSpec:
    """How a model wants its pixels: timm's ``pretrained_cfg`` preprocessing fields."""

    input_size: tuple[int, int]  # (height, width) fed to the network
    interpolation: str = "bicubic"
    crop_pct: float = 0.875
    crop_mode: str = "center"
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    def __post_init__(self) -> None:
        """Validate once, so every consumer can trust the fields."""
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation {self.interpolation!r} is not one of {sorted(INTERPOLATIONS)}")
        if self.crop_mode not in CROP_MODES:
            raise ValueError(f"crop_mode {self.crop_mode!r} is not one of {CROP_MODES}")
        if not 0.0 < self.crop_pct <= 1.0:
            raise ValueError(f"crop_pct must be in (0, 1], got {self.crop_pct}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError("mean and std need three values each, std positive")
        if min(self.input_size) < 1:
            raise ValueError(f"input_size must be positive, got {self.input_size}")

    @classmethod
    def from_timm_config(cls, cfg: Mapping) -> PreprocessSpec:
        """Build from a timm data config (``resolve_data_config`` / ``pretrained_cfg``)."""
        _, height, width = cfg["input_size"]
        return cls(
            input_size=(int(height), int(width)),
            interpolation=cfg.get("interpolation") or "bilinear",
            crop_pct=float(cfg.get("crop_pct") or 0.875),
            crop_mode=cfg.get("crop_mode") or "center",
            mean=tuple(float(v) for v in cfg["mean"]),
            std=tuple(float(v) for v in cfg["std"]),
        )

    def to_dict(self) -> dict:
        """JSON-ready dictionary (lists instead of tuples)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping) -> PreprocessSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(
            input_size=tuple(int(v) for v in data["input_size"]),
            interpolation=data["interpolation"],
            crop_pct=float(data["crop_pct"]),
            crop_mode=data["crop_mode"],
            mean=tuple(float(v) for v in data["mean"]),
            std=tuple(float(v) for v in data["std"]),
        )

    def to_parameters(self) -> dict[str, str]:
        """Flat string map for a Triton config's ``parameters``."""
        return {
            "input_height": str(self.input_size[0]),
            "input_width": str(self.input_size[1]),
            "interpolation": self.interpolation,
            "crop_pct": repr(self.crop_pct),
            "crop_mode": self.crop_mode,
            "mean": ",".join(repr(v) for v in self.mean),
            "std": ",".join(repr(v) for v in self.std),
        }

    @classmethod
    def from_parameters(cls, params: Mapping[str, str]) -> PreprocessSpec:
        """Inverse of :meth:`to_parameters`."""
        return cls(
            input_size=(int(params["input_height"]), int(params["input_width"])),
            interpolation=params["interpolation"],
            crop_pct=float(params["crop_pct"]),
            crop_mode=params["crop_mode"],
            mean=tuple(float(v) for v in params["mean"].split(",")),
            std=tuple(float(v) for v in params["std"].split(",")),
        )

    @property
    def scale_size(self) -> tuple[int, int]:
        """(height, width) the image is resized towards before cropping, as timm computes it."""
        return tuple(math.floor(v / self.crop_pct) for v in self.input_size)


def check_torch_spec(spec: PreprocessSpec) -> None:
    """Raise ValueError when ``--preprocess torch`` cannot reproduce the spec (no torch kernel for its resize)."""
    if INTERPOLATIONS[spec.interpolation].torch is None:
        raise ValueError(
            f"--preprocess torch supports interpolation {', '.join(TORCH_INTERPOLATIONS)}; this model uses "
            f"{spec.interpolation!r}: use --preprocess pillow"
        )


@dataclasses.dataclass(frozen=True)
class DecodeLimits:
    """What the decoder accepts from untrusted bytes, and how it decodes JPEGs."""

    max_image_bytes: int = 32 * 1024 * 1024
    max_image_pixels: int = 64_000_000
    # Never EPS/PDF (Pillow hands those to Ghostscript) nor TIFF (large attack surface).
    allowed_formats: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF", "BMP")
    # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when the image is that much larger
    # than needed: several times faster on photos; the resize that follows is
    # unchanged in size, only its source is smaller.
    jpeg_draft: bool = True

    @property
    def max_base64_bytes(self) -> int:
        """Longest base64 text accepted: ``max_image_bytes`` encoded, plus line breaks and a data URL header."""
        characters = 4 * math.ceil(self.max_image_bytes / 3)
        # CRLF after every 64 characters (PEM; MIME's 76 needs less).
        return characters + 2 * math.ceil(characters / 64) + _MAX_DATA_URL_HEADER_BYTES

    def to_parameters(self) -> dict[str, str]:
        """Flat string map for a Triton config's ``parameters``."""
        return {
            "max_image_bytes": str(self.max_image_bytes),
            "max_image_pixels": str(self.max_image_pixels),
            "allowed_formats": ",".join(self.allowed_formats),
            "jpeg_draft": str(self.jpeg_draft).lower(),
        }

    @classmethod
    def from_parameters(cls, params: Mapping[str, str]) -> DecodeLimits:
        """Inverse of :meth:`to_parameters`; absent keys keep their defaults."""
        defaults = cls()
        return cls(
            max_image_bytes=int(params.get("max_image_bytes", defaults.max_image_bytes)),
            max_image_pixels=int(params.get("max_image_pixels", defaults.max_image_pixels)),
            allowed_formats=tuple(
                f.strip().upper() for f in params.get("allowed_formats", ",".join(defaults.allowed_formats)).split(",")
            ),
            jpeg_draft=params.get("jpeg_draft", str(defaults.jpeg_draft)).lower() in ("1", "true", "yes"),
        )


def resized_size(width: int, height: int, spec: PreprocessSpec) -> tuple[int, int]:
    """(width, height) of the resize step of timm's eval transform for an image of this size."""
    scale_h, scale_w = spec.scale_size
    if spec.crop_mode == "squash":
        return scale_w, scale_h
    if spec.crop_mode == "center" and scale_h == scale_w:
        # torchvision's Resize(int): shorter edge to the size, longer edge truncated.
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = scale_h, int(scale_h * long / short)
        return (new_short, new_long) if width <= height else (new_long, new_short)
    # timm's ResizeKeepRatio: shortest edge for "center", longest for "border".
    ratio_h, ratio_w = height / scale_h, width / scale_w
    ratio = max(ratio_h, ratio_w) if spec.crop_mode == "border" else min(ratio_h, ratio_w)
    return round(width / ratio), round(height / ratio)


def needs_region_resize(width: int, height: int, spec: PreprocessSpec) -> bool:
    """Whether the full resize before the crop would be too large, so only the kept region is resized."""
    new_w, new_h = resized_size(width, height, spec)
    crop_h, crop_w = spec.input_size
    return new_w * new_h > _MAX_RESIZED_PIXELS and new_w >= crop_w and new_h >= crop_h


def _center_crop_or_pad(image: Image.Image, height: int, width: int, fill: tuple[int, ...]) -> Image.Image:
    """Torchvision's CenterCrop / timm's CenterCropOrPad, same rounding."""
    if width > image.width or height > image.height:
        canvas = Image.new("RGB", (max(width, image.width), max(height, image.height)), fill)
        canvas.paste(
            image,
            (
                (width - image.width) // 2 if width > image.width else 0,
                (height - image.height) // 2 if height > image.height else 0,
            ),
        )
        image = canvas
        if image.size == (width, height):
            return image
    top = round((image.height - height) / 2.0)
    left = round((image.width - width) / 2.0)
    return image.crop((left, top, left + width, top + height))


def resize_and_crop(
    image: Image.Image, spec: PreprocessSpec, source_size: tuple[int, int] | None = None
) -> Image.Image:
    """Resize + center crop an RGB image exactly as timm's eval transform does.

    ``source_size`` is the (width, height) the geometry is computed from; it differs
    from ``image.size`` only when the JPEG was decoded at a reduced (draft) scale.
    """
    width, height = source_size or image.size
    new_w, new_h = resized_size(width, height, spec)
    crop_h, crop_w = spec.input_size
    if needs_region_resize(width, height, spec):
        # A sliver like 64000 x 1 (a 267-byte PNG) would resize to 16384000 x 256 before the
        # crop: 16 GB. Resize only the region the center crop keeps instead (Pillow's box);
        # pixels may differ from the full resize by one level, so normal shapes keep the exact path.
        top, left = round((new_h - crop_h) / 2.0), round((new_w - crop_w) / 2.0)
        scale_x, scale_y = image.width / new_w, image.height / new_h
        box = (left * scale_x, top * scale_y, (left + crop_w) * scale_x, (top + crop_h) * scale_y)
        return image.resize((crop_w, crop_h), INTERPOLATIONS[spec.interpolation].pillow, box=box)
    if image.size != (new_w, new_h):
        image = image.resize((new_w, new_h), INTERPOLATIONS[spec.interpolation].pillow)
    fill = (0, 0, 0) if spec.crop_mode != "border" else tuple(round(255 * m) for m in spec.mean)
    return _center_crop_or_pad(image, spec.input_size[0], spec.input_size[1], fill)


@functools.lru_cache(maxsize=8)
def _normalization(spec: PreprocessSpec) -> tuple[np.ndarray, np.ndarray]:
    # Per spec, not per image: the served model normalizes every image with the same spec.
    scale = np.asarray([1.0 / (255.0 * s) for s in spec.std], dtype=np.float32)
    offset = np.asarray([m / s for m, s in zip(spec.mean, spec.std, strict=True)], dtype=np.float32)
    return scale, offset


def normalize(image: Image.Image, spec: PreprocessSpec) -> np.ndarray:
    """RGB image -> float32 CHW array, ``(x / 255 - mean) / std``."""
    pixels = np.asarray(image, dtype=np.float32)
    scale, offset = _normalization(spec)
    return np.ascontiguousarray((pixels * scale - offset).transpose(2, 0, 1))


def _wide_gray_to_8bit(image: Image.Image) -> Image.Image:
    """16/32-bit grayscale -> 8-bit ``L``, scaled (Pillow's convert() clips to 255 instead)."""
    wide = np.asarray(image)
    peak = 65535.0 if image.mode != "F" and wide.max(initial=0) > 255 else 255.0
    out = np.empty(wide.shape, dtype=np.uint8)
    # Row blocks keep the float64 temporaries small: done on the whole image they cost
    # about 28 bytes per pixel, 1.8 GB for a 64-megapixel 16-bit PNG of a few hundred KB.
    rows = max(1, _WIDE_BLOCK_PIXELS // max(1, wide.shape[1]))
    for top in range(0, wide.shape[0], rows):
        block = wide[top : top + rows].astype(np.float64)
        out[top : top + rows] = np.clip(block * (255.0 / peak), 0, 255).round()
    return Image.fromarray(out, "L")


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB; transparency is composited over white."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        image = _wide_gray_to_8bit(image)
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        # Pasting through the alpha channel onto opaque white gives the same pixels as
        # alpha_composite + convert (checked bit for bit), without two extra full-size copies.
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")
        rgb = Image.new("RGB", rgba.size, (255, 255, 255))
        rgb.paste(rgba, (0, 0), rgba)
        return rgb
    return image.convert("RGB")


@dataclasses.dataclass(frozen=True)
class OpenedImage:
    """An image whose header passed every limit; its pixels are not decoded yet."""

    data: bytes  # the file's bytes (base64 and data URLs unwrapped)
    image: Image.Image  # lazily decoding Pillow image: only the header has been read
    orientation: int  # EXIF orientation, 1 (upright) when absent
    upright_size: tuple[int, int]  # (width, height) once the EXIF orientation is applied

    @property
    def format(self) -> str:
        """Pillow's format name: JPEG, PNG, WEBP, GIF or BMP."""
        return self.image.format


def check_image_size(size: int, limits: DecodeLimits = DecodeLimits()) -> None:
    """Raise :class:`ImageRejected` when an image file of ``size`` bytes is above ``limits.max_image_bytes``.

    A proxy in front of the model calls it too, before it accepts a request's body.
    """
    if size > limits.max_image_bytes:
        raise ImageRejected(f"image is {size} bytes, above the limit of {limits.max_image_bytes} bytes", TOO_MANY_BYTES)


def open_image(data: bytes, limits: DecodeLimits = DecodeLimits()) -> OpenedImage:
    """Check untrusted bytes (the file, its base64 or a data URL) against the limits from the header alone.

    Nothing is decoded.
    Every decoder (Pillow here, torchvision in ``torch_preprocess.py``) starts with this,
    so the same bytes get the same rejection whichever path serves them.
    Raises :class:`ImageRejected` with a one-line reason.
    """
    if not data:
        raise ImageRejected("empty input: no image bytes were sent", EMPTY)
    data = unwrap_base64(data, limits)
    check_image_size(len(data), limits)
    try:
        image = Image.open(io.BytesIO(data), formats=limits.allowed_formats)
    except UnidentifiedImageError:
        raise ImageRejected(*_unidentified(data, limits)) from None
    except Image.DecompressionBombError:
        raise ImageRejected(
            f"image dimensions are far above the limit of {limits.max_image_pixels} pixels (decompression bomb?)",
            TOO_MANY_PIXELS,
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        raise ImageRejected(f"cannot read the image header: {_one_line(err)}", CORRUPT) from None
    width, height = image.size
    if width * height > limits.max_image_pixels:
        raise ImageRejected(
            f"{image.format} image is {width}x{height} = {width * height} pixels, "
            f"above the limit of {limits.max_image_pixels} pixels",
            TOO_MANY_PIXELS,
        )
    try:
        # PNG keeps EXIF wherever it likes, so reading it may decode the image: inside the try.
        orientation = image.getexif().get(_EXIF_ORIENTATION_TAG, 1)
    except (Image.DecompressionBombError, OSError, ValueError, SyntaxError, EOFError) as err:
        raise ImageRejected(f"cannot decode {image.format} image: {_one_line(err)}", CORRUPT) from None
    upright_size = (height, width) if orientation in _TRANSPOSING_ORIENTATIONS else (width, height)
    return OpenedImage(data, image, orientation, upright_size)


def decode_opened(opened: OpenedImage, spec: PreprocessSpec, limits: DecodeLimits = DecodeLimits()) -> Image.Image:
    """Decode an opened image with Pillow -> upright RGB (smaller than ``upright_size`` after a JPEG draft)."""
    image = opened.image
    try:
        if limits.jpeg_draft and image.format == "JPEG":
            needed_w, needed_h = resized_size(*opened.upright_size, spec)
            if opened.orientation in _TRANSPOSING_ORIENTATIONS:
                needed_w, needed_h = needed_h, needed_w
            image.draft(None, (max(needed_w, 1), max(needed_h, 1)))
        image.load()
        return to_rgb(ImageOps.exif_transpose(image))
    except (Image.DecompressionBombError, OSError, ValueError, SyntaxError, EOFError) as err:
        raise ImageRejected(f"cannot decode {image.format} image: {_one_line(err)}", CORRUPT) from None


def decode_image(
    data: bytes, spec: PreprocessSpec, limits: DecodeLimits = DecodeLimits()
) -> tuple[Image.Image, tuple[int, int]]:
    """Untrusted bytes (the file, its base64 or a data URL) -> (upright RGB image, its full-resolution (width, height)).

    The image may be smaller than the returned size when a JPEG was draft-decoded.
    Raises :class:`ImageRejected` with a one-line reason for anything unacceptable.
    """
    opened = open_image(data, limits)
    return decode_opened(opened, spec, limits), opened.upright_size


def silence_decoder_warnings() -> None:
    """Drop Pillow's warnings about the images it reads: call once in a long-lived server.

    Pillow warns about corrupt EXIF data or huge images with the sender's numbers in the
    message, and Python keeps every distinct warning message in a registry for the life
    of the process: hostile uploads would grow the server's memory and flood its log.
    ``ImageRejected`` already says what is wrong with an image. The filters are
    process-wide, hence not set on import: training code importing this module keeps
    Pillow's warnings.
    """
    warnings.filterwarnings("ignore", module=r"PIL(\.|$)")
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def preprocess_image(data: bytes, spec: PreprocessSpec, limits: DecodeLimits = DecodeLimits()) -> np.ndarray:
    """Encoded image bytes -> normalized float32 CHW array ready for the network."""
    return preprocess_opened(open_image(data, limits), spec, limits)


def preprocess_opened(opened: OpenedImage, spec: PreprocessSpec, limits: DecodeLimits = DecodeLimits()) -> np.ndarray:
    """An image that passed :func:`open_image` -> normalized float32 CHW array (its size stays known to the caller)."""
    image = decode_opened(opened, spec, limits)
    return normalize(resize_and_crop(image, spec, opened.upright_size), spec)


# Signatures of the allowed formats and of formats people send that are never handed to a
# decoder unless allowed: enough to name them in a rejection. Names are Pillow's, as in allowed_formats.
_SIGNATURES = (
    (0, b"\x89PNG\r\n\x1a\n", "PNG"),
    (0, b"\xff\xd8\xff", "JPEG"),
    (0, b"GIF8", "GIF"),
    (8, b"WEBP", "WEBP"),
    (0, b"BM", "BMP"),
    (0, b"II*\0", "TIFF"),
    (0, b"MM\0*", "TIFF"),
    (0, b"%!PS", "EPS"),
    (0, b"\xc5\xd0\xd3\xc6", "EPS"),
    (0, b"%PDF", "PDF"),
    (0, b"8BPS", "PSD"),
    (0, b"\0\0\1\0", "ICO"),
    (0, b"\xffO\xffQ", "JPEG2000"),
    (4, b"jP  ", "JPEG2000"),
    (4, b"ftypavif", "AVIF"),
    (4, b"ftypheic", "HEIF"),
    (4, b"ftypmif1", "HEIF"),
)


_WHITESPACE = b" \t\r\n"
_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
# Base64 characters enough to cover every signature above (offset 4 + 8 bytes = 12 bytes = 16 characters).
_HEAD_CHARACTERS = 16
_DATA_URL = re.compile(rb"data:image/[-+.\w]+(;[-\w]+=[-\w.\"]+)*;base64,", re.IGNORECASE)
_DATA_URL_FORM = "not a decodable image: a data URL must be data:image/<type>;base64,<the file in base64>"
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/=\-_ \t\r\n]")


def unwrap_base64(data: bytes, limits: DecodeLimits = DecodeLimits()) -> bytes:
    """The image's bytes from raw bytes, base64 text or a ``data:image/...;base64,`` URL.

    Plain JSON cannot carry raw bytes, so HTTP clients without Triton's binary extension
    send base64. Raw images pass through untouched: no allowed format starts with base64
    text, and text is only taken as base64 when its first characters decode to an image
    signature (or it is a data URL), so HTML, JSON and file names stay text. The encoded
    size is checked before anything is decoded; the result goes through the same limits.
    """
    if _signature_name(data) is not None:
        return data
    if data[:5].lower() == b"data:":
        header = _DATA_URL.match(data, 0, _MAX_DATA_URL_HEADER_BYTES)
        if header is None:
            raise ImageRejected(_DATA_URL_FORM, NOT_AN_IMAGE)
        start = header.end()
    elif _signature_name(_decode_head(data)) is not None:
        start = 0
    else:
        return data
    if len(data) > limits.max_base64_bytes:
        raise ImageRejected(
            f"base64 image is {len(data)} bytes, above the limit of {limits.max_base64_bytes} bytes "
            f"({limits.max_image_bytes} bytes once decoded)",
            TOO_MANY_BYTES,
        )
    return _decode_base64(data, start)


def _decode_head(data: bytes) -> bytes:
    """The first bytes that ``data`` encodes if it starts as base64 text, else b""."""
    head = data[: 4 * _HEAD_CHARACTERS].translate(_URLSAFE_TO_STANDARD, _WHITESPACE)[:_HEAD_CHARACTERS]
    try:
        return base64.b64decode(head[: len(head) - len(head) % 4], validate=True)
    except binascii.Error:
        return b""


def _signature_name(head: bytes) -> str | None:
    for offset, signature, name in _SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            return name
    return None


def _decode_base64(data: bytes, start: int) -> bytes:
    """Standard or URL-safe base64 from ``start``, padded or not, line breaks anywhere -> bytes."""
    compact = data[start:].translate(_URLSAFE_TO_STANDARD, _WHITESPACE)
    # A C-speed alphabet check: base64.b64decode(validate=True) runs a regex that costs more than the decode.
    if compact.translate(None, _BASE64_ALPHABET):
        stray = _NOT_BASE64.search(data, start)
        code = stray.group()[0]
        shown = repr(chr(code)) if 0x20 <= code < 0x7F else f"byte 0x{code:02x}"
        raise ImageRejected(f"invalid base64: {shown} at offset {stray.start()} is not a base64 character", BAD_BASE64)
    body = compact.rstrip(b"=")
    if len(compact) - len(body) > 2 or b"=" in body:
        raise ImageRejected("invalid base64: '=' padding is only allowed, once or twice, at the end", BAD_BASE64)
    if len(body) % 4 == 1:
        raise ImageRejected(
            f"invalid base64: {len(body)} characters is one more than a multiple of 4 (cut short?)", BAD_BASE64
        )
    # Untouched inputs are not copied: translate and rstrip return the same object.
    padded = compact if len(compact) % 4 == 0 else body + b"=" * (-len(body) % 4)
    try:
        return binascii.a2b_base64(padded)
    except binascii.Error as err:  # checked above; kept so a surprise is still one line
        raise ImageRejected(f"invalid base64: {_one_line(err)}", BAD_BASE64) from None


def _unidentified(data: bytes, limits: DecodeLimits) -> tuple[str, str]:
    """(message, reason) when no allowed decoder takes these bytes: named when we can tell what they are."""
    allowed = ", ".join(limits.allowed_formats)
    for offset, signature, name in _SIGNATURES:
        if data[offset : offset + len(signature)] == signature:
            if name in limits.allowed_formats:
                return f"not a decodable image: a {name} file whose header cannot be read", CORRUPT
            return f"not a decodable image: {name} is not an allowed format (allowed: {allowed})", DISALLOWED_FORMAT
    # The strip drops a character cut in two at byte 256; any other undecodable byte remains.
    text = data[:256].decode("utf-8", errors="replace").rstrip("\ufffd")
    if "\ufffd" not in text and all(c.isprintable() or c.isspace() for c in text):
        # A common client mistake: the path, a URL or base64 sent instead of the file's bytes.
        message = "not a decodable image: the bytes are text (HTML, JSON, base64, a file name?); send the file's bytes"
        return message, NOT_AN_IMAGE
    return f"not a decodable image in an allowed format ({allowed})", NOT_AN_IMAGE


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text[:200]
