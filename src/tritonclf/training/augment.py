"""Training-time augmentation with albumentations 2.x, in strength presets.

    transform = TrainTransform(spec, "strong", hflip=0.5)   # uint8 HWC RGB -> float32 CHW
    pixels = transform(np.asarray(image))

The seed recipe: RandomResizedCrop, horizontal flip, shift/scale/rotate (``Affine``,
the 2.x successor of ``ShiftScaleRotate``), one of noise/blur/motion blur, one of
optical/grid/elastic distortion, one of CLAHE/equalize/color jitter, coarse dropout,
normalize. ``none`` trains on the eval transform itself. Normalization is always
``tritonclf.preprocess.normalize`` with the model's spec: the mean and std live in one place.
"""

from __future__ import annotations

import dataclasses
import os

import cv2
import numpy as np
from PIL import Image

from tritonclf.preprocess import PreprocessSpec, normalize, resize_and_crop

# albumentations asks PyPI for a newer version at import: no network calls from training.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
import albumentations as A

_CV2_INTERPOLATION = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
    "box": cv2.INTER_AREA,
    "hamming": cv2.INTER_LINEAR,
}


@dataclasses.dataclass(frozen=True)
class Strength:
    """Magnitudes and probabilities of one preset."""

    crop_scale: tuple[float, float]
    shift: float
    scale: float
    rotate_deg: float
    affine_p: float
    noise_blur_p: float
    distortion_p: float
    color_p: float
    dropout_p: float


PRESETS = {
    "light": Strength(
        crop_scale=(0.6, 1.0),
        shift=0.05,
        scale=0.1,
        rotate_deg=10,
        affine_p=0.5,
        noise_blur_p=0.0,
        distortion_p=0.0,
        color_p=0.2,
        dropout_p=0.0,
    ),
    "strong": Strength(
        crop_scale=(0.3, 1.0),
        shift=0.1,
        scale=0.2,
        rotate_deg=20,
        affine_p=0.7,
        noise_blur_p=0.3,
        distortion_p=0.3,
        color_p=0.4,
        dropout_p=0.5,
    ),
}
AUGMENTATIONS = ("none", *PRESETS)


def create_albumentations(spec: PreprocessSpec, strength: Strength, hflip: float) -> A.Compose:
    """The geometric and photometric part of the recipe, ending at the network's input size (uint8)."""
    height, width = spec.input_size
    interpolation = _CV2_INTERPOLATION[spec.interpolation]
    steps = [
        A.RandomResizedCrop(size=(height, width), scale=strength.crop_scale, interpolation=interpolation),
        A.HorizontalFlip(p=hflip),
        A.Affine(
            translate_percent=(-strength.shift, strength.shift),
            scale=(1 - strength.scale, 1 + strength.scale),
            rotate=(-strength.rotate_deg, strength.rotate_deg),
            interpolation=interpolation,
            p=strength.affine_p,
        ),
    ]
    if strength.noise_blur_p:
        steps.append(
            A.OneOf(
                [A.GaussNoise(std_range=(0.02, 0.1)), A.GaussianBlur(blur_limit=(3, 5)), A.MotionBlur(blur_limit=5)],
                p=strength.noise_blur_p,
            )
        )
    if strength.distortion_p:
        steps.append(
            A.OneOf(
                [
                    A.OpticalDistortion(distort_limit=0.1),
                    A.GridDistortion(distort_limit=0.2),
                    A.ElasticTransform(alpha=1, sigma=20),
                ],
                p=strength.distortion_p,
            )
        )
    if strength.color_p:
        steps.append(
            A.OneOf(
                [
                    A.CLAHE(clip_limit=2.0),
                    A.Equalize(),
                    A.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05),
                ],
                p=strength.color_p,
            )
        )
    if strength.dropout_p:
        steps.append(
            A.CoarseDropout(
                num_holes_range=(1, 4),
                hole_height_range=(0.05, 0.15),
                hole_width_range=(0.05, 0.15),
                fill=0,
                p=strength.dropout_p,
            )
        )
    return A.Compose(steps)


class TrainTransform:
    """Picklable (DataLoader workers) callable: uint8 HWC RGB array -> normalized float32 CHW array."""

    def __init__(self, spec: PreprocessSpec, augmentation: str = "light", hflip: float = 0.5):
        if augmentation not in AUGMENTATIONS:
            raise ValueError(f"augmentation {augmentation!r} is not one of {AUGMENTATIONS}")
        if not 0.0 <= hflip <= 1.0:
            raise ValueError(f"hflip must be a probability in [0, 1], got {hflip}")
        self.spec = spec
        self.augmentation = augmentation
        self.pipeline = None if augmentation == "none" else create_albumentations(spec, PRESETS[augmentation], hflip)

    def set_seed(self, seed: int) -> None:
        """Seed albumentations' own generators (per DataLoader worker and epoch)."""
        if self.pipeline is not None:
            self.pipeline.set_random_seed(seed)

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        """Augment (or eval-resize) and normalize one image."""
        image = Image.fromarray(pixels)
        if self.pipeline is None:
            image = resize_and_crop(image, self.spec)
        else:
            image = Image.fromarray(self.pipeline(image=pixels)["image"])
        return normalize(image, self.spec)
