"""Classify in-process, without a server: the exported model behind the served preprocessing.

    from tritonclf import Classifier
    clf = Classifier.load("exports/efficientnet_lite0")           # ONNX Runtime: CUDA if present, else CPU
    clf.predict("cat.jpg", top_k=5)                                # [Prediction(label, index, score), ...]
    results = clf.predict_batch(["a.jpg", open("b.png", "rb").read(), pil_image, hwc_uint8_array])
    for result in results:                # one entry per input, in order
        if isinstance(result, ImageFailed):
            print(result)                 # "image 1 (b.png... bytes): cannot decode PNG image: ..."
    Classifier.load("exports/efficientnet_lite0", runtime="torchscript")   # model.pt through torch.jit

A path or encoded bytes go through exactly what the served preprocessing model runs
(``tritonclf.preprocess.preprocess_image`` with the same decode limits and JPEG draft
decoding), so the scores equal the served ensemble's. A PIL image or an HWC uint8
array is already decoded: it skips the decoder and starts at the resize and crop.

An input that cannot be classified (unreadable file, broken or disallowed image, wrong
type) fails alone, as it does on the server: ``predict_batch`` puts an :class:`ImageFailed`
(its position, what it was, the one-line reason) in its place and answers the others;
``predict_batch(..., errors="raise")`` and ``predict`` raise it instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from tritonclf import contract
from tritonclf.client.triton_client import Prediction
from tritonclf.export_metadata import ExportMetadata, load_metadata
from tritonclf.files import sha256_file
from tritonclf.preprocess import DecodeLimits, ImageRejected, normalize, preprocess_image, resize_and_crop, to_rgb

RUNTIMES = ("auto", "onnx", "torchscript")
DEVICES = ("auto", "cpu", "cuda")
ImageLike = str | os.PathLike | bytes | Image.Image | np.ndarray

ERRORS = ("return", "raise")

__all__ = ["Classifier", "ImageFailed", "Prediction"]


class ClassifierError(ValueError):
    """The export or an input cannot be used; the message is one line for the caller."""


class ImageFailed(ClassifierError):
    """One input that could not be classified: ``index`` (its position), ``source`` (what it was), ``reason``."""

    def __init__(self, reason: str, *, index: int, source: str):
        super().__init__(f"image {index} ({source}): {reason}")
        self.reason = reason
        self.index = index
        self.source = source


def describe_input(image: object) -> str:
    """What an input was, for an error message: its path, or its kind and size."""
    if isinstance(image, (str, os.PathLike)):
        return str(image)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return f"{len(image)} bytes"
    if isinstance(image, Image.Image):
        return f"PIL image {image.width}x{image.height}"
    if isinstance(image, np.ndarray):
        return f"array {image.dtype} {image.shape}"
    return type(image).__name__


def _top_k(probabilities: np.ndarray, labels: Sequence[str], top_k: int) -> list[Prediction]:
    order = np.argsort(-probabilities, kind="stable")[:top_k]
    return [Prediction(label=labels[i], index=int(i), score=float(probabilities[i])) for i in order]


class Classifier:
    """An exported classifier (``model.onnx`` or ``model.pt`` + ``model.json``) loaded in this process."""

    def __init__(self, metadata: ExportMetadata, run: Any, runtime: str, device: str, limits: DecodeLimits):
        self.metadata = metadata
        self.runtime = runtime  # "onnx" or "torchscript"
        self.device = device  # "cpu" or "cuda"
        self.limits = limits
        self._run = run  # float32 NCHW batch -> probabilities

    @property
    def labels(self) -> tuple[str, ...]:
        """Class labels in index order."""
        return self.metadata.labels

    @classmethod
    def load(
        cls,
        export_dir: str | os.PathLike,
        *,
        runtime: str = "auto",
        device: str = "auto",
        limits: DecodeLimits | None = None,
    ) -> Classifier:
        """Load an export folder.

        ``runtime`` auto: ONNX when exported, else TorchScript; ``device`` auto: CUDA where usable.
        """
        if runtime not in RUNTIMES or device not in DEVICES:
            raise ClassifierError(f"runtime must be one of {RUNTIMES} and device one of {DEVICES}")
        export_dir = Path(export_dir)
        metadata = load_metadata(export_dir / contract.METADATA_FILENAME)
        if runtime == "auto":
            runtime = "onnx" if metadata.onnx_filename else "torchscript"
        loader = _load_onnx if runtime == "onnx" else _load_torchscript
        run, device = loader(_checked_file(export_dir, metadata, runtime), device)
        return cls(metadata, run, runtime, device, limits or DecodeLimits())

    def pixels(self, image: ImageLike) -> np.ndarray:
        """One input -> the normalized float32 CHW array the network takes."""
        spec = self.metadata.preprocess
        if isinstance(image, (str, os.PathLike)):
            image = Path(image).read_bytes()
        if isinstance(image, (bytes, bytearray, memoryview)):
            return preprocess_image(bytes(image), spec, self.limits)
        if isinstance(image, np.ndarray):
            image = _from_array(image)
        if not isinstance(image, Image.Image):
            raise ClassifierError(
                f"cannot classify a {type(image).__name__}: "
                "pass a path, encoded bytes, a PIL image or an HWC uint8 array"
            )
        return normalize(resize_and_crop(to_rgb(ImageOps.exif_transpose(image)), spec), spec)

    def probabilities(self, images: Sequence[ImageLike], batch_size: int = 32) -> np.ndarray:
        """(len(images), num_classes) probabilities, run ``batch_size`` images at a time.

        An array has no place for a failure: the first input that fails raises :class:`ImageFailed`.
        """
        rows = []
        for row in self._probability_rows(list(images), batch_size):
            if isinstance(row, ImageFailed):
                raise row
            rows.append(row)
        if not rows:
            return np.empty((0, self.metadata.num_classes), np.float32)
        return np.stack(rows)

    def predict(self, image: ImageLike, top_k: int = 5) -> list[Prediction]:
        """The ``top_k`` most probable classes of one image, most probable first; :class:`ImageFailed` if it fails."""
        return self.predict_batch([image], top_k, errors="raise")[0]

    def predict_batch(
        self, images: Sequence[ImageLike], top_k: int = 5, batch_size: int = 32, *, errors: str = "return"
    ) -> list[list[Prediction] | ImageFailed]:
        """``predict`` for many images, batched through the model: one entry per input, in order.

        An input that fails is answered by an :class:`ImageFailed` in its place and the others
        are classified as if it were not there (``errors="return"``, as the served model does);
        ``errors="raise"`` raises the first one instead.
        """
        if top_k < 1:
            raise ClassifierError(f"top_k must be at least 1, got {top_k}")
        if errors not in ERRORS:
            raise ClassifierError(f"errors must be one of {ERRORS}, not {errors!r}")
        results: list[list[Prediction] | ImageFailed] = []
        for row in self._probability_rows(list(images), batch_size):
            if isinstance(row, ImageFailed) and errors == "raise":
                raise row
            results.append(row if isinstance(row, ImageFailed) else _top_k(row, self.labels, top_k))
        return results

    def _probability_rows(self, images: list, batch_size: int) -> Iterator[np.ndarray | ImageFailed]:
        """Per input, in order: its probabilities, or why it failed; ``batch_size`` good inputs per model run."""
        for start in range(0, len(images), batch_size):
            chunk: list[np.ndarray | ImageFailed] = []
            for index in range(start, min(start + batch_size, len(images))):
                try:
                    chunk.append(self.pixels(images[index]))
                except (ImageRejected, ClassifierError, OSError) as err:
                    reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
                    chunk.append(ImageFailed(reason, index=index, source=describe_input(images[index])))
            good = [pixels for pixels in chunk if not isinstance(pixels, ImageFailed)]
            probabilities = iter(self._run(np.stack(good)) if good else ())
            yield from (item if isinstance(item, ImageFailed) else next(probabilities) for item in chunk)

    def __repr__(self) -> str:
        return (
            f"Classifier({self.metadata.model_name!r}, {self.metadata.num_classes} classes, "
            f"{self.runtime} on {self.device})"
        )


def _from_array(array: np.ndarray) -> Image.Image:
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ClassifierError(
            f"an array must be HWC (or HW) uint8 with 1, 3 or 4 channels (RGB order), got {array.dtype} {array.shape}"
        )
    return Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[2] == 1 else array)


def _checked_file(export_dir: Path, metadata: ExportMetadata, runtime: str) -> Path:
    filename, digest = (
        (metadata.onnx_filename, metadata.onnx_sha256)
        if runtime == "onnx"
        else (metadata.torchscript_filename, metadata.torchscript_sha256)
    )
    if not filename:
        raise ClassifierError(f"{export_dir} has no {runtime} export: re-run tritonclf export --format {runtime}")
    path = export_dir / filename
    if not path.is_file() or sha256_file(path) != digest:
        raise ClassifierError(f"{path} is missing or does not match model.json: re-run the export")
    return path


def _load_onnx(path: Path, device: str) -> tuple[Any, str]:
    import onnxruntime as ort

    cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if device == "cuda" and not cuda:
        raise ClassifierError("device cuda: this onnxruntime has no CUDA provider (install onnxruntime-gpu)")
    providers = ["CPUExecutionProvider"]
    if cuda and device != "cpu":
        providers.insert(0, "CUDAExecutionProvider")
    session = ort.InferenceSession(str(path), providers=providers)
    used = "cuda" if session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
    return (lambda batch: session.run([contract.PROBABILITIES], {contract.PIXELS: batch})[0]), used


def _load_torchscript(path: Path, device: str) -> tuple[Any, str]:
    import torch

    from tritonclf.training.torch2torchscript import load_torchscript

    if device == "cuda" and not torch.cuda.is_available():
        raise ClassifierError("device cuda: torch sees no CUDA device")
    used = "cuda" if device != "cpu" and torch.cuda.is_available() else "cpu"
    module = load_torchscript(path, used)

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(batch).to(used)).float().cpu().numpy()

    return run, used
