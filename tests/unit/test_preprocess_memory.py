"""Shapes cannot blow up memory: a panorama is resized by region, within one level of the full resize."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tritonclf import preprocess
from tritonclf.preprocess import PreprocessSpec, resize_and_crop

from ..conftest import SAMPLES

WIDTH, HEIGHT = 3000, 3000


def test_region_resize_of_a_panorama_matches_the_full_resize_within_one_level(monkeypatch):
    panorama = Image.open(SAMPLES / "chelsea.jpg").convert("RGB").resize((6000, 80))
    spec = PreprocessSpec(input_size=(224, 224))
    region = np.asarray(resize_and_crop(panorama, spec), dtype=int)
    monkeypatch.setattr(preprocess, "_MAX_RESIZED_PIXELS", 10**12)
    full = np.asarray(resize_and_crop(panorama, spec), dtype=int)
    assert region.shape == full.shape == (224, 224, 3)
    assert np.abs(region - full).max() <= 1
