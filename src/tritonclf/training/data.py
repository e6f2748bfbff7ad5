"""Labelled images in the ImageFolder layout: scan, check, split, and the datasets over them.

    DIR/train/<class>/*.jpg   DIR/val/<class>/*.jpg     (no val/, or just DIR/<class>/: a seeded split)

Every file is checked before training starts: non-images and files whose header
cannot be read are skipped, counted and reported in one line each, so a bad file
never surfaces as a traceback deep in a DataLoader worker. Decoding uses
``tritonclf.preprocess.decode_image`` (the served decoder): EXIF rotation, alpha,
16-bit and palette images become the same RGB pixels in training and serving.
Validation images go through ``preprocess_image``, exactly what the served model does.
"""

from __future__ import annotations

import dataclasses
import random
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from tritonclf.image_files import IMAGE_SUFFIXES, is_image_file
from tritonclf.preprocess import DecodeLimits, ImageRejected, PreprocessSpec, decode_image, preprocess_image

# The label EvalDataset gives an image that fails to decode after the scan; metrics leave it out.
INVALID_LABEL = -1


class DataError(ValueError):
    """The dataset folder cannot be used as given; the message says what to fix."""


@dataclasses.dataclass(frozen=True)
class Sample:
    """One labelled image file."""

    path: Path
    label: int


@dataclasses.dataclass
class ScanReport:
    """What the scan skipped, for one warning line per kind."""

    skipped: list[tuple[Path, str]] = dataclasses.field(default_factory=list)

    def warnings(self) -> list[str]:
        """One line per skipped file kind, with a count and an example."""
        by_reason: dict[str, list[Path]] = {}
        for path, reason in self.skipped:
            by_reason.setdefault(reason, []).append(path)
        return [
            f"skipped {len(paths)} file(s): {reason} (e.g. {paths[0]})" for reason, paths in sorted(by_reason.items())
        ]


@dataclasses.dataclass(frozen=True)
class Splits:
    """Train and validation samples over one list of class names (sorted folder names)."""

    class_names: tuple[str, ...]
    train: tuple[Sample, ...]
    val: tuple[Sample, ...]
    warnings: tuple[str, ...]
    # The warnings about files that would have been validation images (all of them, for a split folder).
    val_warnings: tuple[str, ...] = ()


def probe_image(path: Path, limits: DecodeLimits) -> str | None:
    """Why this file cannot be a training image, or None if its header reads as an allowed image."""
    if path.name.startswith("."):
        return "hidden file"
    if not is_image_file(path):
        return f"not an image file name ({', '.join(IMAGE_SUFFIXES)})"
    try:
        with Image.open(path, formats=limits.allowed_formats) as image:
            width, height = image.size
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError, EOFError):
        return "unreadable image"
    if width * height > limits.max_image_pixels:
        return f"more than {limits.max_image_pixels} pixels"
    return None


def scan_class_folders(root: Path, limits: DecodeLimits, report: ScanReport) -> dict[str, list[Path]]:
    """``root/<class>/<file>`` -> {class: readable image paths}, sorted; skipped files go to ``report``."""
    if not root.is_dir():
        raise DataError(f"{root} is not a folder")
    classes: dict[str, list[Path]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        paths = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            reason = probe_image(path, limits)
            if reason is None:
                paths.append(path)
            else:
                report.skipped.append((path, reason))
        classes[folder.name] = paths
    return classes


def split_fraction(
    classes: dict[str, list[Path]], fraction: float, seed: int
) -> tuple[dict[str, list[Path]], dict[str, list[Path]]]:
    """A stratified, seeded train/val split: about ``fraction`` of each class (at least one) goes to val."""
    if not 0.0 < fraction < 1.0:
        raise DataError(f"--val-fraction must be between 0 and 1, got {fraction}")
    train, val = {}, {}
    for name, paths in classes.items():
        shuffled = list(paths)
        random.Random(f"{seed}:{name}").shuffle(shuffled)
        n_val = min(max(1, round(fraction * len(shuffled))), len(shuffled) - 1) if len(shuffled) > 1 else 0
        val[name] = sorted(shuffled[:n_val])
        train[name] = sorted(shuffled[n_val:])
    return train, val


def load_splits(data: Path, *, val_fraction: float = 0.2, seed: int = 42, limits: DecodeLimits | None = None) -> Splits:
    """Scan ``data`` (``train/`` and optionally ``val/``) and check it can train a classifier."""
    data, limits = Path(data), limits or DecodeLimits()
    if not data.is_dir():
        raise DataError(f"data folder {data} does not exist")
    # DIR/train/<class> (+ DIR/val/<class>), or DIR/<class> alone, split by fraction.
    train_root = data / "train" if (data / "train").is_dir() else data
    val_root = data / "val" if train_root != data and (data / "val").is_dir() else None
    report, val_report = ScanReport(), ScanReport()
    train = scan_class_folders(train_root, limits, report)
    val = scan_class_folders(val_root, limits, val_report) if val_root else {}
    report.skipped += val_report.skipped
    if not train:
        raise DataError(f"{train_root} has no class folders: expected {data}/train/<class>/<image> (and maybe val/)")
    empty = [name for name, paths in train.items() if not paths]
    if empty:
        raise DataError(f"class folder {train_root / empty[0]} has no readable images: add images or remove it")
    if len(train) < 2:
        raise DataError(f"{train_root} has a single class ({next(iter(train))}): a classifier needs at least two")
    if val_root:
        unknown = sorted(set(val) - set(train))
        if unknown:
            raise DataError(f"class {unknown[0]!r} is in {val_root} but not in {train_root}: the model cannot learn it")
    else:
        train, val = split_fraction(train, val_fraction, seed)
    warnings = report.warnings()
    missing = [name for name in train if not val.get(name)]
    if missing:
        warnings.append(f"{len(missing)} class(es) have no validation images: {', '.join(missing[:5])}")
    class_names = tuple(train)
    index = {name: i for i, name in enumerate(class_names)}

    def samples(classes: dict[str, list[Path]]) -> tuple[Sample, ...]:
        return tuple(Sample(path, index[name]) for name, paths in classes.items() for path in paths)

    if not any(val.values()):
        raise DataError(f"no validation images: add {data}/val/<class>/ folders, or more images per class")
    val_warnings = val_report.warnings() if val_root else report.warnings()
    return Splits(class_names, samples(train), samples(val), tuple(warnings), tuple(val_warnings))


class TrainDataset(Dataset):
    """Decoded like serving, then augmented and normalized by ``transform`` (uint8 HWC RGB -> CHW float).

    Items are ``(pixels, label, failed)``. An image that fails to decode (truncated
    after the scan) is replaced by the next readable one, so every batch keeps its size
    and every rank of a distributed run its step count; ``failed`` is then 1 + its index
    (0 for an image that decoded), so an epoch counts each unreadable file once (a
    replacement that fails too is counted when it is asked for itself) and the trainer
    learns which. A failure prints one warning line naming the file, unless its index is
    in ``reported`` (the trainer adds each epoch's, so a file is named once per run).
    """

    def __init__(self, samples: tuple[Sample, ...], spec: PreprocessSpec, transform: Callable, limits: DecodeLimits):
        self.samples = samples
        self.spec = spec
        self.transform = transform
        self.limits = limits
        self.reported: frozenset[int] = frozenset()

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        failed = 0
        for attempt in range(min(len(self.samples), 16)):
            sample = self.samples[(i + attempt) % len(self.samples)]
            try:
                image, _ = decode_image(sample.path.read_bytes(), self.spec, self.limits)
            except (ImageRejected, OSError) as err:
                if attempt == 0:
                    failed = i + 1
                    if i not in self.reported:
                        _warn_skipped(sample, err)
                continue
            return torch.from_numpy(self.transform(np.asarray(image))), sample.label, failed
        raise DataError(f"16 images in a row near {self.samples[i].path} failed to decode: check the dataset")


class EvalDataset(Dataset):
    """The served preprocessing, unchanged: ``preprocess_image(bytes, spec, limits)``.

    Items are ``(pixels, label)``; an image that fails to decode gets ``INVALID_LABEL``
    and is left out of the metrics (with one warning line while ``report`` is on).
    """

    def __init__(self, samples: tuple[Sample, ...], spec: PreprocessSpec, limits: DecodeLimits):
        self.samples = samples
        self.spec = spec
        self.limits = limits
        self.report = True

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        sample = self.samples[i]
        try:
            pixels = preprocess_image(sample.path.read_bytes(), self.spec, self.limits)
        except (ImageRejected, OSError) as err:
            if self.report:
                _warn_skipped(sample, err)
            height, width = self.spec.input_size
            return torch.zeros(3, height, width), INVALID_LABEL
        return torch.from_numpy(pixels), sample.label


def _warn_skipped(sample: Sample, err: Exception) -> None:
    # One line from the worker instead of a traceback; the loop counts the image.
    print(f"warning: skipping {sample.path}: {err}", file=sys.stderr)
