"""Classify in-process, without a server: the exported model behind the served preprocessing.

    from tritonclf import Classifier
    clf = Classifier.load("exports/efficientnet_lite0")           # ONNX Runtime: CUDA if present, else CPU
    clf.predict("cat.jpg", top_k=5)                                # [Prediction(label, index, score), ...]
    clf.predict_batch([open("a.jpg", "rb").read(), pil_image, hwc_uint8_array])
    Classifier.load("exports/efficientnet_lite0", runtime="torchscript")   # model.pt through torch.jit

A path or encoded bytes go through exactly what the served preprocessing model runs
(``tritonclf.preprocess.preprocess_image`` with the same decode limits and JPEG draft
decoding), so the scores equal the served ensemble's. A PIL image or an HWC uint8
array is already decoded: it skips the decoder and starts at the resize and crop.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from tritonclf import contract
from tritonclf.client.triton_client import Prediction
from tritonclf.export_metadata import ExportMetadata, load_metadata
from tritonclf.files import sha256_file
from tritonclf.preprocess import DecodeLimits, normalize, preprocess_image, resize_and_crop, to_rgb

RUNTIMES = ("auto", "onnx", "torchscript")
DEVICES = ("auto", "cpu", "cuda")
ImageLike = str | os.PathLike | bytes | Image.Image | np.ndarray

__all__ = ["Classifier", "Prediction"]


class ClassifierError(ValueError):
    """The export or an input cannot be used; the message is one line for the caller."""


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
        """(len(images), num_classes) probabilities, run ``batch_size`` images at a time."""
        rows = []
        for start in range(0, len(images), batch_size):
            batch = np.stack([self.pixels(image) for image in images[start : start + batch_size]])
            rows.append(self._run(batch))
        if not rows:
            return np.empty((0, self.metadata.num_classes), np.float32)
        return np.concatenate(rows)

    def predict(self, image: ImageLike, top_k: int = 5) -> list[Prediction]:
        """The ``top_k`` most probable classes of one image, most probable first."""
        return self.predict_batch([image], top_k)[0]

    def predict_batch(
        self, images: Sequence[ImageLike], top_k: int = 5, batch_size: int = 32
    ) -> list[list[Prediction]]:
        """``predict`` for many images, batched through the model."""
        if top_k < 1:
            raise ClassifierError(f"top_k must be at least 1, got {top_k}")
        return [_top_k(row, self.labels, top_k) for row in self.probabilities(list(images), batch_size)]

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
