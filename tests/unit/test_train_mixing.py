"""Mixup/CutMix targets sum to one, and the mixed, label-smoothed loss matches a hand computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tritonclf.training.loop import CosineSchedule
from tritonclf.training.mixing import Mixer, mix_targets, smooth_one_hot, soft_cross_entropy

NUM_CLASSES = 5


@pytest.fixture
def batch():
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(6, 3, 16, 16, generator=generator)
    labels = torch.tensor([0, 1, 2, 3, 4, 1])
    logits = torch.randn(6, NUM_CLASSES, generator=generator)
    return images, labels, logits


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("lam", [1.0, 0.7, 0.25])
def test_mixed_loss_matches_a_hand_computation(batch, lam, smoothing):
    _, labels, logits = batch
    loss = soft_cross_entropy(logits, mix_targets(labels, NUM_CLASSES, lam, smoothing))
    by_hand = lam * F.cross_entropy(logits, labels, label_smoothing=smoothing) + (1 - lam) * F.cross_entropy(
        logits, labels.flip(0), label_smoothing=smoothing
    )
    torch.testing.assert_close(loss, by_hand)


def test_smoothed_targets_put_the_rest_on_every_class():
    targets = smooth_one_hot(torch.tensor([2]), NUM_CLASSES, 0.1)[0]
    assert targets[2] == pytest.approx(0.9 + 0.1 / NUM_CLASSES)
    assert targets.sum() == pytest.approx(1.0)


@pytest.mark.parametrize(("mixup", "cutmix"), [(0.8, 0.0), (0.0, 1.0), (0.8, 1.0), (0.0, 0.0)])
def test_mixer_targets_sum_to_one(batch, mixup, cutmix):
    images, labels, _ = batch
    rng = np.random.default_rng(1)
    mixer = Mixer(NUM_CLASSES, mixup_alpha=mixup, cutmix_alpha=cutmix, label_smoothing=0.1, rng=rng)
    for _ in range(10):
        mixed, targets = mixer(images, labels)
        assert mixed.shape == images.shape and targets.shape == (6, NUM_CLASSES)
        torch.testing.assert_close(targets.sum(-1), torch.ones(6))
        assert (targets >= 0).all()


def test_mixup_blends_images_at_the_targets_ratio(batch):
    images, labels, _ = batch
    mixer = Mixer(NUM_CLASSES, mixup_alpha=0.4, rng=np.random.default_rng(3))
    mixed, targets = mixer(images, labels)
    lam = float(targets[0, labels[0]])  # image 0 (class 0) is paired with image 5 (class 1)
    assert 0.0 < lam < 1.0
    torch.testing.assert_close(mixed, lam * images + (1 - lam) * images.flip(0))


def test_cutmix_target_ratio_is_the_share_of_pixels_kept():
    images = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 3, 32, 32).clone()
    labels = torch.tensor([0, 1, 2, 3])
    mixer = Mixer(NUM_CLASSES, cutmix_alpha=1.0, rng=np.random.default_rng(7))
    for _ in range(5):
        mixed, targets = mixer(images, labels)
        kept = float((mixed[0] == 0).float().mean())
        assert targets[0, 0] == pytest.approx(kept)
        assert targets[0, 3] == pytest.approx(1 - kept)  # image 0 is paired with image 3


def test_impossible_mixing_settings_are_refused():
    with pytest.raises(ValueError, match="Beta alphas as in timm"):
        Mixer(NUM_CLASSES, mixup_alpha=-0.2)
    with pytest.raises(ValueError, match="--mixup-prob is a probability"):
        Mixer(NUM_CLASSES, mixup_alpha=0.8, prob=1.5)
    with pytest.raises(ValueError, match="label-smoothing"):
        Mixer(NUM_CLASSES, label_smoothing=1.0)


def _kinds(mixer: Mixer, batch, draws: int = 400) -> dict[str, int]:
    """How many batches came out plain, mixed up or cut-mixed (CutMix calls counted on the instance)."""
    images, labels, _ = batch
    cutmix_calls = []
    cutmix = mixer.cutmix
    mixer.cutmix = lambda imgs, lam: (cutmix_calls.append(lam), cutmix(imgs, lam))[1]
    counts = {"plain": 0, "mixup": 0, "cutmix": 0}
    for _ in range(draws):
        before = len(cutmix_calls)
        _, targets = mixer(images, labels)
        if len(cutmix_calls) > before:
            counts["cutmix"] += 1
        elif torch.equal(targets, smooth_one_hot(labels, NUM_CLASSES, mixer.label_smoothing)):
            counts["plain"] += 1
        else:
            counts["mixup"] += 1
    return counts


def test_timms_common_recipe_mixes_every_batch_half_mixup_half_cutmix(batch):
    # timm train.py --mixup 0.8 --cutmix 1.0: mixup-prob 1.0, switch-prob 0.5 by default.
    counts = _kinds(Mixer(NUM_CLASSES, mixup_alpha=0.8, cutmix_alpha=1.0, rng=np.random.default_rng(0)), batch)
    assert counts["plain"] == 0
    assert 150 <= counts["mixup"] <= 250 and 150 <= counts["cutmix"] <= 250


def test_mixup_prob_half_mixes_about_half_the_batches_as_the_article_does(batch):
    counts = _kinds(Mixer(NUM_CLASSES, mixup_alpha=0.2, prob=0.5, rng=np.random.default_rng(0)), batch)
    assert counts["cutmix"] == 0 and 160 <= counts["mixup"] <= 240


def test_alpha_zero_turns_a_method_off(batch):
    assert _kinds(Mixer(NUM_CLASSES, rng=np.random.default_rng(0)), batch, 50) == {"plain": 50, "mixup": 0, "cutmix": 0}
    only_cutmix = Mixer(NUM_CLASSES, cutmix_alpha=1.0, switch_prob=0.0, rng=np.random.default_rng(0))
    assert _kinds(only_cutmix, batch, 100)["mixup"] == 0


def test_cosine_schedule_per_epoch_matches_torchs_cosine_annealing_stepped_each_epoch():
    epochs, steps_per_epoch = 6, 4
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    reference = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    schedule = CosineSchedule(total_steps=epochs * steps_per_epoch, steps_per_epoch=steps_per_epoch)
    for epoch in range(epochs):
        for step in range(epoch * steps_per_epoch, (epoch + 1) * steps_per_epoch):
            assert 1e-3 * schedule.factor(step) == pytest.approx(optimizer.param_groups[0]["lr"])
        optimizer.step()
        reference.step()


def test_cosine_schedule_warms_up_linearly_then_decays_to_the_floor():
    schedule = CosineSchedule(total_steps=100, warmup_steps=10, min_ratio=0.01)
    assert [schedule.factor(s) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert schedule.factor(55) == pytest.approx(0.01 + 0.99 * 0.5)
    assert schedule.factor(100) == pytest.approx(0.01)
    factors = [schedule.factor(s) for s in range(10, 101)]
    assert factors == sorted(factors, reverse=True)
