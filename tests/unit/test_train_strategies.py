"""Strategies train exactly the intended parameters (counted), on a ResNet and an EfficientNet."""

from __future__ import annotations

import pytest
import timm
import torch

from tritonclf.training.strategies import (
    StrategyError,
    apply_strategy,
    create_param_groups,
    find_stages,
    freeze_frozen_batchnorm,
    trainable_stage_count,
)

# The oracle, written by hand from each architecture's module names: the code under
# test never sees these names, it finds the stages from timm's metadata.
EXPECTED = {
    "resnet18": {
        "head": ("fc.",),
        "stages_top_down": [("layer4.",), ("layer3.",), ("layer2.",), ("layer1.",), ("conv1.", "bn1.")],
    },
    "efficientnet_lite0": {
        "head": ("classifier.",),
        "stages_top_down": [
            ("blocks.5.", "blocks.6.", "conv_head.", "bn2."),
            ("blocks.3.", "blocks.4."),
            ("blocks.2.",),
            ("blocks.1.",),
            ("conv_stem.", "bn1.", "blocks.0."),
        ],
    },
}


@pytest.fixture(scope="module", params=sorted(EXPECTED))
def arch(request):
    torch.manual_seed(0)
    return request.param, timm.create_model(request.param, num_classes=3)


def count(model, prefixes) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if n.startswith(tuple(prefixes)))


def trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def expected_count(name, model, unfrozen_stages: int) -> int:
    spec = EXPECTED[name]
    prefixes = [*spec["head"]]
    for stage in spec["stages_top_down"][:unfrozen_stages]:
        prefixes += stage
    return count(model, prefixes)


def test_each_strategy_trains_exactly_the_intended_parameters(arch):
    name, model = arch
    total = sum(p.numel() for p in model.parameters())
    stages = find_stages(model)
    assert len(stages.stages) == 5
    apply_strategy(model, stages, "feature_extract")
    assert trainable(model) == expected_count(name, model, 0) < 0.01 * total
    apply_strategy(model, stages, "fine_tune_last")
    assert trainable(model) == expected_count(name, model, 1)
    apply_strategy(model, stages, "full")
    assert trainable(model) == total == expected_count(name, model, 5)


def test_gradual_unfreezing_follows_its_schedule(arch):
    name, model = arch
    stages = find_stages(model)
    counts = []
    for epoch in range(12):
        apply_strategy(model, stages, "gradual_unfreeze", epoch=epoch, unfreeze_every=2)
        counts.append(trainable(model))
    # Head alone for two epochs, then one more stage (from the top) every two epochs, then everything.
    expected = [expected_count(name, model, min(epoch // 2, 5)) for epoch in range(12)]
    assert counts == expected
    assert len(set(counts)) == 6 and counts == sorted(counts)


def test_lr_groups_are_what_was_asked(arch):
    name, model = arch
    stages = find_stages(model)
    groups = create_param_groups(
        model, stages, "full", lr_head=1e-2, lr_backbone=1e-3, lr_stage_decay=0.5, weight_decay=0.05
    )
    by_name = {g["name"]: g for g in groups}
    assert by_name["head"]["lr"] == 1e-2 and by_name["head"]["weight_decay"] == 0.05
    assert by_name["head_no_decay"]["weight_decay"] == 0.0
    for depth in range(5):
        stage = f"stage{4 - depth}"
        assert by_name[stage]["lr"] == pytest.approx(1e-3 * 0.5**depth)
        assert by_name[f"{stage}_no_decay"]["lr"] == by_name[stage]["lr"]
        prefixes = EXPECTED[name]["stages_top_down"][depth]
        names = by_name[stage]["param_names"] + by_name[f"{stage}_no_decay"]["param_names"]
        assert all(n.startswith(prefixes) for n in names)
        assert sum(p.numel() for n, p in model.named_parameters() if n in names) == count(model, prefixes)
    # Every parameter exactly once; biases and norm weights never decay.
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    assert all(p.ndim > 1 for g in groups if g["weight_decay"] for p in g["params"])
    # Frozen-for-good stages are not in the optimizer at all.
    head_only = create_param_groups(model, stages, "feature_extract", lr_head=1e-2, lr_backbone=1e-3)
    assert {g["name"] for g in head_only} == {"head", "head_no_decay"}
    last_only = create_param_groups(model, stages, "fine_tune_last", lr_head=1e-2, lr_backbone=1e-3)
    assert {g["name"] for g in last_only} == {"head", "head_no_decay", "stage4", "stage4_no_decay"}


def test_frozen_parameters_and_batchnorm_statistics_do_not_change_in_a_step():
    torch.manual_seed(0)
    model = timm.create_model("resnet18", num_classes=3)
    stages = find_stages(model)
    apply_strategy(model, stages, "fine_tune_last")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.AdamW(create_param_groups(model, stages, "fine_tune_last", lr_head=0.1, lr_backbone=0.1))
    model.train()
    freeze_frozen_batchnorm(model)
    model(torch.randn(4, 3, 32, 32)).logsumexp(-1).mean().backward()
    optimizer.step()
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed, "the step changed nothing"
    assert all(k.startswith(("layer4.", "fc.")) for k in changed)
    assert "layer4.0.bn1.running_mean" in changed and "layer3.0.bn1.running_mean" not in changed


def test_gradual_unfreezing_hands_new_stages_to_the_optimizer_with_their_own_lr():
    torch.manual_seed(0)
    model = timm.create_model("resnet18", num_classes=3)
    stages = find_stages(model)
    groups = create_param_groups(model, stages, "gradual_unfreeze", lr_head=1e-2, lr_backbone=1e-3)
    optimizer = torch.optim.AdamW(groups)
    layer4 = model.layer4[1].conv2.weight
    for epoch in (0, 1):
        apply_strategy(model, stages, "gradual_unfreeze", epoch=epoch)
        before = layer4.detach().clone()
        optimizer.zero_grad(set_to_none=True)
        model(torch.randn(4, 3, 32, 32)).logsumexp(-1).mean().backward()
        optimizer.step()
        moved = not torch.equal(before, layer4)
        assert moved == (epoch == 1)
        assert (layer4 in optimizer.state) == (epoch == 1)
    group = next(g for g in optimizer.param_groups if any(p is layer4 for p in g["params"]))
    assert group["name"] == "stage4" and group["lr"] == 1e-3


@pytest.mark.parametrize("name", ["convnext_atto", "vit_tiny_patch16_224", "mobilenetv3_small_050", "regnetx_002"])
def test_stages_cover_any_timm_architecture_once(name):
    model = timm.create_model(name, num_classes=4)
    stages = find_stages(model)
    classifier = {n for n, _ in model.get_classifier().named_parameters(prefix="x")}
    assert len(stages.head) == len(classifier) == 2
    assert len(stages.stages) >= 4
    assert sorted(stages.names) == sorted(n for n, _ in model.named_parameters())


def test_unknown_strategy_and_bad_schedule_are_refused():
    with pytest.raises(StrategyError, match="unknown strategy 'freeze_all'"):
        trainable_stage_count("freeze_all", 5, 0, 1)
    with pytest.raises(StrategyError, match="--unfreeze-every must be at least 1"):
        trainable_stage_count("gradual_unfreeze", 5, 0, 0)
