"""Training-time augmentation with albumentations 2.x, in presets.

    transform = TrainTransform(spec, "strong", hflip=0.5)   # uint8 HWC RGB -> float32 CHW
    pixels = transform(np.asarray(image))

Every preset has the same shape: RandomResizedCrop, horizontal flip, shift/scale/rotate
(``Affine``, the 2.x successor of ``ShiftScaleRotate``), one of noise/blur/motion blur,
one of optical/grid/elastic distortion, one of CLAHE/equalize/color jitter, coarse
dropout, normalize. They differ in limits and probabilities:

- ``article``: the seed article's ``get_train_transforms`` value for value, its
  albumentations 1.x arguments translated to 2.x (see :func:`create_article_albumentations`
  and docs/TRAINING.md for what maps to what);
- ``light`` (the default) and ``strong``: our own magnitudes (:data:`PRESETS`);
- ``none``: the eval transform itself.

Normalization is always ``tritonclf.preprocess.normalize`` with the model's spec: the
mean and std live in one place.
"""

from __future__ import annotations

import dataclasses
import math
import os

import cv2
import numpy as np
from PIL import Image

from tritonclf.preprocess import INTERPOLATIONS, PreprocessSpec, normalize, resize_and_crop
from tritonclf.training.choices import AUGMENTATIONS

# albumentations asks PyPI for a newer version at import: no network calls from training.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
import albumentations as A


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


def create_albumentations(spec: PreprocessSpec, strength: Strength, hflip: float) -> A.Compose:
    """The geometric and photometric part of the recipe, ending at the network's input size (uint8)."""
    height, width = spec.input_size
    interpolation = getattr(cv2, INTERPOLATIONS[spec.interpolation].cv2)
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


def create_article_albumentations(spec: PreprocessSpec, hflip: float = 0.5) -> A.Compose:
    """The seed article's training transforms in albumentations 2.x, up to the network's input size.

    The article wrote them for albumentations 1.x; where 2.x renamed or re-scaled an
    argument, the 1.x default or unit is carried over so the same images come out:

    - ``ShiftScaleRotate(shift_limit=0.1, scale_limit=0.2, rotate_limit=15)`` -> ``Affine``
      with translate +-10 %, scale 0.8-1.2, rotate +-15 degrees; 1.x reflected the border
      (``BORDER_REFLECT_101``), 2.x fills with black unless told, so it is told.
    - ``GaussNoise(var_limit=(10, 50))`` (variance in 0-255 pixel units) -> ``std_range``
      as a fraction of 255: ``sqrt(10) / 255`` to ``sqrt(50) / 255``.
    - ``CoarseDropout(max_holes=8, max_height=size // 8, max_width=size // 8)``: 1.x set the
      unset minimums to the maximums, so exactly 8 holes of exactly ``size // 8`` pixels.
    - ``OpticalDistortion``/``GridDistortion``/``ElasticTransform``: same limits; their 1.x
      border was reflected too. ``ElasticTransform``'s 1.x ``alpha_affine`` is gone in 2.x.
    - ``RandomResizedCrop`` and the warps interpolate bilinearly, the 1.x default.
    """
    height, width = spec.input_size
    reflect = cv2.BORDER_REFLECT_101
    return A.Compose(
        [
            A.RandomResizedCrop(size=(height, width), scale=(0.8, 1.0), interpolation=cv2.INTER_LINEAR),
            A.HorizontalFlip(p=hflip),
            A.Affine(
                translate_percent=(-0.1, 0.1),
                scale=(0.8, 1.2),
                rotate=(-15, 15),
                interpolation=cv2.INTER_LINEAR,
                border_mode=reflect,
                p=0.5,
            ),
            A.OneOf(
                [
                    A.GaussNoise(std_range=(math.sqrt(10) / 255, math.sqrt(50) / 255)),
                    A.GaussianBlur(blur_limit=(3, 7)),
                    A.MotionBlur(blur_limit=7),
                ],
                p=0.3,
            ),
            A.OneOf(
                [
                    A.OpticalDistortion(distort_limit=0.5, border_mode=reflect),
                    A.GridDistortion(num_steps=5, border_mode=reflect),
                    A.ElasticTransform(alpha=1, sigma=50, border_mode=reflect),
                ],
                p=0.2,
            ),
            A.OneOf(
                [
                    A.CLAHE(clip_limit=4.0),
                    A.Equalize(),
                    A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.1),
                ],
                p=0.3,
            ),
            A.CoarseDropout(
                num_holes_range=(8, 8),
                hole_height_range=(height // 8, height // 8),
                hole_width_range=(width // 8, width // 8),
                fill=0,
                p=0.3,
            ),
        ]
    )


class TrainTransform:
    """Picklable (DataLoader workers) callable: uint8 HWC RGB array -> normalized float32 CHW array."""

    def __init__(self, spec: PreprocessSpec, augmentation: str = "light", hflip: float = 0.5):
        if augmentation not in AUGMENTATIONS:
            raise ValueError(f"augmentation {augmentation!r} is not one of {AUGMENTATIONS}")
        if not 0.0 <= hflip <= 1.0:
            raise ValueError(f"hflip must be a probability in [0, 1], got {hflip}")
        self.spec = spec
        self.augmentation = augmentation
        self.pipeline = None
        if augmentation == "article":
            self.pipeline = create_article_albumentations(spec, hflip)
        elif augmentation != "none":
            self.pipeline = create_albumentations(spec, PRESETS[augmentation], hflip)

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
