"""``--aug article`` and ``training/configs/article.yaml`` hold the seed article's numbers.

The article (``get_train_transforms``, ``ImageClassificationTrainer``) wrote its recipe for
albumentations 1.x; these tests pin the 2.x translation to its values, and check the two
translations that change units (noise variance, dropout hole sizes) by their effect on pixels.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import timm
import yaml
from PIL import Image

from tritonclf.preprocess import PreprocessSpec
from tritonclf.training.augment import AUGMENTATIONS, TrainTransform, create_article_albumentations
from tritonclf.training.config import ConfigError, create_mixer, parse_config
from tritonclf.training.model import create_model

from ..conftest import ROOT

SIZE = 224
ARTICLE_YAML = ROOT / "training" / "configs" / "article.yaml"


@pytest.fixture(scope="module")
def steps():
    return create_article_albumentations(PreprocessSpec(input_size=(SIZE, SIZE))).transforms


def _name(transform) -> str:
    return type(transform).__name__


def test_article_preset_has_the_articles_transforms_in_order_with_its_probabilities(steps):
    assert "article" in AUGMENTATIONS
    assert [(_name(t), t.p) for t in steps] == [
        ("RandomResizedCrop", 1.0),
        ("HorizontalFlip", 0.5),
        ("Affine", 0.5),  # ShiftScaleRotate(p=0.5)
        ("OneOf", 0.3),
        ("OneOf", 0.2),
        ("OneOf", 0.3),
        ("CoarseDropout", 0.3),
    ]
    groups = [[_name(t) for t in step.transforms] for step in steps if _name(step) == "OneOf"]
    assert groups == [
        ["GaussNoise", "GaussianBlur", "MotionBlur"],
        ["OpticalDistortion", "GridDistortion", "ElasticTransform"],
        ["CLAHE", "Equalize", "ColorJitter"],
    ]
    # 1.x children default to p=0.5: within OneOf these are weights, so each is picked a third of the time.
    assert {t.p for step in steps if _name(step) == "OneOf" for t in step.transforms} == {0.5}


def test_article_preset_limits_are_the_articles(steps):
    crop, _, affine, noise_blur, distortion, color, dropout = steps
    assert crop.size == (SIZE, SIZE) and crop.scale == (0.8, 1.0) and crop.interpolation == cv2.INTER_LINEAR
    assert affine.translate_percent == {"x": (-0.1, 0.1), "y": (-0.1, 0.1)}  # shift_limit=0.1
    assert affine.scale == {"x": (0.8, 1.2), "y": (0.8, 1.2)}  # scale_limit=0.2
    assert affine.rotate == (-15, 15)  # rotate_limit=15
    assert affine.border_mode == cv2.BORDER_REFLECT_101  # ShiftScaleRotate's 1.x border
    gauss_noise, gaussian_blur, motion_blur = noise_blur.transforms
    assert gauss_noise.std_range == pytest.approx((np.sqrt(10) / 255, np.sqrt(50) / 255))  # var_limit=(10, 50)
    assert gaussian_blur.blur_limit == (3, 7) and motion_blur.blur_limit == (3, 7)
    optical, grid, elastic = distortion.transforms
    assert optical.distort_limit == (-0.5, 0.5) and grid.num_steps == 5
    assert (elastic.alpha, elastic.sigma) == (1, 50)
    clahe, _, jitter = color.transforms
    assert clahe.clip_limit == (1, 4.0)
    assert (jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue) == (
        (0.8, 1.2),
        (0.8, 1.2),
        (0.8, 1.2),
        (-0.1, 0.1),
    )
    # max_holes=8, max_height=max_width=img_size//8, minimums defaulting to the maximums in 1.x.
    assert dropout.num_holes_range == (8, 8)
    assert dropout.hole_height_range == dropout.hole_width_range == (SIZE // 8, SIZE // 8)


def test_article_noise_has_the_articles_variance_in_pixel_units(steps):
    gauss_noise = steps[3].transforms[0]
    gray = np.full((SIZE, SIZE, 3), 128, np.uint8)
    variances = []
    for seed in range(8):
        gauss_noise.set_random_seed(seed)
        noisy = gauss_noise(image=gray, force_apply=True)["image"].astype(np.float64)
        variances.append(noisy.var())
    assert min(variances) >= 9 and max(variances) <= 52  # var_limit=(10, 50), up to rounding to uint8


def test_article_dropout_cuts_eight_holes_of_an_eighth_of_the_side(steps):
    dropout = steps[-1]
    white = np.full((SIZE, SIZE, 3), 255, np.uint8)
    dropout.set_random_seed(0)
    out = dropout(image=white, force_apply=True)["image"]
    zero = (out == 0).all(-1).astype(np.uint8)
    hole = SIZE // 8
    assert hole * hole <= zero.sum() <= 8 * hole * hole
    count, _, stats, _ = cv2.connectedComponentsWithStats(zero, connectivity=4)
    boxes = [(int(w), int(h)) for w, h in stats[1:, [cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT]]]
    assert 1 <= count - 1 <= 8
    assert all(w >= hole and h >= hole for w, h in boxes)  # overlapping holes merge into larger shapes
    assert (hole, hole) in boxes


def test_article_transform_gives_normalized_arrays_reproducibly():
    transform = TrainTransform(PreprocessSpec(input_size=(SIZE, SIZE)), "article")
    image = np.asarray(Image.effect_mandelbrot((320, 240), (-2, -1.5, 1, 1.5), 60).convert("RGB"))
    runs = []
    for _ in range(2):
        transform.set_seed(7)
        runs.append([transform(image) for _ in range(4)])
    for a, b in zip(*runs, strict=True):
        assert a.shape == (3, SIZE, SIZE) and a.dtype == np.float32
        np.testing.assert_array_equal(a, b)


def test_article_yaml_reproduces_the_articles_optimiser_schedule_and_mixing():
    config = parse_config(["--config", str(ARTICLE_YAML), "--data", "d", "--output", "o"])
    assert (config.model, config.strategy, config.aug, config.hflip) == ("resnet50", "full", "article", 0.5)
    assert (config.lr_backbone, config.lr_head, config.lr_stage_decay) == (1e-5, 1e-3, 1.0)
    assert (config.weight_decay, config.label_smoothing, config.drop_rate) == (0.01, 0.1, 0.5)
    assert (config.schedule_unit, config.warmup_epochs, config.min_lr_ratio, config.epochs) == ("epoch", 0, 0, 100)
    assert (config.mixup, config.cutmix, config.mixup_prob) == (0.2, 0.0, 0.5)  # mixup(alpha=0.2) on half
    assert config.amp == "auto"
    mixer = create_mixer(config, 10)
    assert (mixer.mixup_alpha, mixer.cutmix_alpha, mixer.prob, mixer.label_smoothing) == (0.2, 0.0, 0.5, 0.1)


def test_timm_flag_names_are_accepted_and_the_old_alpha_keys_explain_the_change(tmp_path):
    config = parse_config(["--data", "d", "--output", "o", "--smoothing", "0.2", "--drop", "0.3", "--mixup", "0.8"])
    assert (config.label_smoothing, config.drop_rate, config.mixup, config.mixup_prob) == (0.2, 0.3, 0.8, 1.0)
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump({"data": "d", "output": "o", "mixup": 0.3, "mixup_alpha": 0.2}))
    with pytest.raises(ConfigError, match="--mixup is the mixup alpha"):
        parse_config(["--config", str(old)])
    with pytest.raises(ConfigError, match="Beta alphas as in timm"):
        parse_config(["--data", "d", "--output", "o", "--cutmix", "-1"])


def test_drop_rate_reaches_timms_head_dropout():
    model = create_model("resnet18", 3, init="random", drop_rate=0.5)
    assert model.drop_rate == 0.5 and model.num_classes == 3
    assert timm.create_model("resnet18").drop_rate == 0.0
