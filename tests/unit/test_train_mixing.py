"""Mixup/CutMix (timm's) targets sum to one, and the mixed, label-smoothed loss matches a hand computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from timm.data.mixup import mixup_target

from tritonclf.training.loop import CosineSchedule
from tritonclf.training.mixing import Mixer, soft_cross_entropy

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
    loss = soft_cross_entropy(logits, mixup_target(labels, NUM_CLASSES, lam, smoothing))
    by_hand = lam * F.cross_entropy(logits, labels, label_smoothing=smoothing) + (1 - lam) * F.cross_entropy(
        logits, labels.flip(0), label_smoothing=smoothing
    )
    torch.testing.assert_close(loss, by_hand)


def test_smoothed_targets_put_the_rest_on_every_class():
    targets = mixup_target(torch.tensor([2]), NUM_CLASSES, 1.0, 0.1)[0]
    assert targets[2] == pytest.approx(0.9 + 0.1 / NUM_CLASSES)
    assert targets.sum() == pytest.approx(1.0)


@pytest.mark.parametrize(("mixup", "cutmix"), [(0.8, 0.0), (0.0, 1.0), (0.8, 1.0), (0.0, 0.0)])
def test_mixer_targets_sum_to_one(batch, mixup, cutmix):
    images, labels, _ = batch
    rng = np.random.default_rng(1)
    mixer = Mixer(NUM_CLASSES, mixup_alpha=mixup, cutmix_alpha=cutmix, label_smoothing=0.1, rng=rng)
    for _ in range(10):
        mixed, targets = mixer(images.clone(), labels)
        assert mixed.shape == images.shape and targets.shape == (6, NUM_CLASSES)
        torch.testing.assert_close(targets.sum(-1), torch.ones(6))
        assert (targets >= 0).all()


def test_mixup_blends_images_at_the_targets_ratio(batch):
    images, labels, _ = batch
    mixed, targets = Mixer(NUM_CLASSES, mixup_alpha=0.4, rng=np.random.default_rng(3))(images.clone(), labels)
    lam = float(targets[0, labels[0]])  # image 0 (class 0) is paired with image 5 (class 1)
    assert 0.0 < lam < 1.0
    torch.testing.assert_close(mixed, lam * images + (1 - lam) * images.flip(0))


def test_cutmix_target_ratio_is_the_share_of_pixels_kept():
    images = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 3, 32, 32).clone()
    labels = torch.tensor([0, 1, 2, 3])
    mixer = Mixer(NUM_CLASSES, cutmix_alpha=1.0, rng=np.random.default_rng(7))
    for _ in range(5):
        mixed, targets = mixer(images.clone(), labels)
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


def _kinds(mixer: Mixer, batch, monkeypatch, draws: int = 400, seed: int = 0) -> dict[str, int]:
    """How many batches came out plain, mixed up or cut-mixed (timm's CutMix box calls counted)."""
    import timm.data.mixup as timm_mixup

    images, labels, _ = batch
    boxes = []
    cutmix_box = timm_mixup.cutmix_bbox_and_lam
    monkeypatch.setattr(timm_mixup, "cutmix_bbox_and_lam", lambda *a, **k: (boxes.append(a), cutmix_box(*a, **k))[1])
    mixer.rng = np.random.default_rng(seed)
    counts = {"plain": 0, "mixup": 0, "cutmix": 0}
    for _ in range(draws):
        before = len(boxes)
        mixed, targets = mixer(images.clone(), labels)
        if len(boxes) > before:
            counts["cutmix"] += 1
        elif torch.equal(targets, mixup_target(labels, NUM_CLASSES, 1.0, mixer.label_smoothing)):
            counts["plain"] += 1
            assert torch.equal(mixed, images)
        else:
            counts["mixup"] += 1
    return counts


def test_timms_common_recipe_mixes_every_batch_half_mixup_half_cutmix(batch, monkeypatch):
    # timm train.py --mixup 0.8 --cutmix 1.0: mixup-prob 1.0, switch-prob 0.5 by default.
    counts = _kinds(Mixer(NUM_CLASSES, mixup_alpha=0.8, cutmix_alpha=1.0), batch, monkeypatch)
    assert counts["plain"] == 0
    assert 150 <= counts["mixup"] <= 250 and 150 <= counts["cutmix"] <= 250


def test_mixup_prob_half_mixes_about_half_the_batches_as_the_article_does(batch, monkeypatch):
    counts = _kinds(Mixer(NUM_CLASSES, mixup_alpha=0.2, prob=0.5), batch, monkeypatch)
    assert counts["cutmix"] == 0 and 160 <= counts["mixup"] <= 240


def test_alpha_zero_turns_a_method_off(batch, monkeypatch):
    assert _kinds(Mixer(NUM_CLASSES), batch, monkeypatch, 50) == {"plain": 50, "mixup": 0, "cutmix": 0}
    only_cutmix = Mixer(NUM_CLASSES, cutmix_alpha=1.0, switch_prob=0.0)
    assert _kinds(only_cutmix, batch, monkeypatch, 100)["mixup"] == 0


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


def test_an_odd_batch_mixes_all_but_its_last_image(batch):
    images, labels, _ = batch
    odd_images, odd_labels = images[:5].clone(), labels[:5]
    mixer = Mixer(NUM_CLASSES, mixup_alpha=0.4, rng=np.random.default_rng(3))
    mixed, targets = mixer(odd_images.clone(), odd_labels)
    lam = float(targets[0, odd_labels[0]])
    assert 0.0 < lam < 1.0
    torch.testing.assert_close(mixed[:4], lam * odd_images[:4] + (1 - lam) * odd_images[:4].flip(0))
    torch.testing.assert_close(mixed[4], odd_images[4])
    torch.testing.assert_close(targets[4], mixup_target(odd_labels[4:], NUM_CLASSES)[0])
    torch.testing.assert_close(targets.sum(-1), torch.ones(5))


def test_the_loss_is_timms_soft_target_cross_entropy_in_fp32(batch):
    from timm.loss import SoftTargetCrossEntropy

    _, labels, logits = batch
    targets = mixup_target(labels, NUM_CLASSES, 0.7, 0.1)
    assert soft_cross_entropy(logits.half(), targets).dtype == torch.float32
    torch.testing.assert_close(soft_cross_entropy(logits, targets), SoftTargetCrossEntropy()(logits, targets))


def test_cosine_schedule_after_warmup_is_timms_cosine_lr_scheduler_for_one_group():
    """timm's CosineLRScheduler (warmup as a prefix, stepped per update) gives the same LRs after warmup.

    Ours stays because timm's floor ``lr_min`` and ``warmup_lr_init`` are one absolute LR for
    every group, and the trainer's groups span 100x (head 1e-3, backbone 1e-5, per-stage
    decay): ``--min-lr-ratio`` ends each group at its own fraction. Its warmup also never
    takes a step at LR 0 (``(step + 1) / warmup_steps``), where timm's starts at ``warmup_lr_init``.
    """
    from timm.scheduler import CosineLRScheduler

    total, warmup, lr, ratio = 100, 10, 1e-3, 0.01
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    timm_schedule = CosineLRScheduler(
        optimizer, t_initial=total - warmup, lr_min=ratio * lr, warmup_t=warmup, warmup_prefix=True, t_in_epochs=False
    )
    ours = CosineSchedule(total_steps=total, warmup_steps=warmup, min_ratio=ratio)
    for step in range(warmup, total + 5):
        assert lr * ours.factor(step) == pytest.approx(timm_schedule._get_values(step, on_epoch=False)[0], rel=1e-9)


def test_cosine_schedule_ends_each_param_group_at_its_own_floor():
    """What timm's single absolute lr_min cannot express: the head and the backbone each end at 1% of their LR."""
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in (1e-3, 1e-5)]
    optimizer = torch.optim.AdamW(groups)
    for group in optimizer.param_groups:
        group["initial_lr"] = group["lr"]
    schedule = CosineSchedule(total_steps=10, min_ratio=0.01)
    schedule.apply(optimizer, 10)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([1e-5, 1e-7])


def test_the_mixing_follows_the_mixers_generator_and_leaves_numpys_global_state_alone(batch):
    images, labels, _ = batch
    runs = []
    for noise in (0, 1):
        np.random.seed(noise)  # whatever else drew from numpy before
        before = np.random.get_state()[1].copy()
        mixer = Mixer(NUM_CLASSES, mixup_alpha=0.8, cutmix_alpha=1.0, rng=np.random.default_rng(11))
        runs.append([mixer(images.clone(), labels) for _ in range(4)])
        np.testing.assert_array_equal(np.random.get_state()[1], before)
    for (mixed_a, targets_a), (mixed_b, targets_b) in zip(*runs, strict=True):
        torch.testing.assert_close(mixed_a, mixed_b)
        torch.testing.assert_close(targets_a, targets_b)
