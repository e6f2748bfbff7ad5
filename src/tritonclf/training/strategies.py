"""Which parameters train, and at which learning rate: transfer-learning strategies for any timm model.

    stages = find_stages(model)                        # head + backbone stages, from timm's metadata
    apply_strategy(model, stages, "fine_tune_last")    # requires_grad per parameter
    groups = create_param_groups(model, stages, "gradual_unfreeze", lr_head=1e-3, lr_backbone=1e-4)

Stages come from the model's own metadata, never from names like ``layer4``:
``group_matcher(coarse=True)`` splits the parameters into ordered blocks (timm's
layer-decay groups), the classifier named in ``pretrained_cfg["classifier"]`` is
the head, and ``feature_info`` (the reduction stages, as used by ``features_only``)
merges consecutive blocks into stages. Models without ``feature_info`` use the
blocks as stages.

Strategies: ``feature_extract`` (head only), ``fine_tune_last`` (last stage + head),
``gradual_unfreeze`` (head first, then one more stage from the top every K epochs),
``full`` (everything).
"""

from __future__ import annotations

import dataclasses

from timm.models import group_parameters
from torch import nn

from tritonclf.training.choices import STRATEGIES


class StrategyError(ValueError):
    """The strategy cannot be applied to this model as asked."""


@dataclasses.dataclass(frozen=True)
class Stages:
    """Parameter names: the classifier head, and the backbone stages from input to output."""

    head: tuple[str, ...]
    stages: tuple[tuple[str, ...], ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Every parameter's name, head last."""
        return tuple(n for stage in self.stages for n in stage) + self.head


def _classifier_names(model: nn.Module) -> tuple[str, ...]:
    """Parameters of the classifier timm resets in ``reset_classifier`` (``pretrained_cfg["classifier"]``)."""
    prefixes = model.pretrained_cfg.get("classifier") if hasattr(model, "pretrained_cfg") else None
    if isinstance(prefixes, str):
        prefixes = (prefixes,)
    if not prefixes:
        classifier = model.get_classifier()
        prefixes = tuple(name for name, module in model.named_modules() if module is classifier and name)
    return tuple(
        name for name, _ in model.named_parameters() if any(name == p or name.startswith(p + ".") for p in prefixes)
    )


def _module_positions(model: nn.Module) -> tuple[dict[str, int], dict[str, int]]:
    """Registration order of every module, and the position of the last module inside each one."""
    order = [name for name, _ in model.named_modules()]
    position = {name: i for i, name in enumerate(order)}
    subtree_end = dict(position)
    for i, name in enumerate(order):
        parts = name.split(".")
        for depth in range(1, len(parts)):
            subtree_end[".".join(parts[:depth])] = i
    return position, subtree_end


def _feature_stage_of(model: nn.Module, param_names: list[str]) -> list[int] | None:
    """Index of the ``feature_info`` stage each parameter belongs to, or None without usable feature_info."""
    feature_info = getattr(model, "feature_info", None)
    modules = [f.get("module") for f in feature_info or [] if isinstance(f, dict)]
    position, subtree_end = _module_positions(model)
    if len(modules) < 2 or any(m not in position for m in modules):
        return None
    ends = [subtree_end[m] for m in modules]
    stages = []
    for name in param_names:
        owner = position.get(name.rpartition(".")[0], 0)
        # Parameters after the last feature stage (e.g. conv_head, a final norm) join it.
        stages.append(next((k for k, end in enumerate(ends) if owner <= end), len(ends) - 1))
    return stages


def find_stages(model: nn.Module) -> Stages:
    """Split a timm model's parameters into head and ordered backbone stages."""
    head = _classifier_names(model)
    if not head:
        raise StrategyError(f"cannot find the classifier of {type(model).__name__}: no parameters under its head")
    try:
        matcher = model.group_matcher(coarse=True)
    except (AttributeError, NotImplementedError):
        matcher = None
    if matcher:
        blocks = [list(names) for _, names in sorted(group_parameters(model, matcher).items())]
    else:
        blocks = [[name for name, _ in child.named_parameters(prefix=cname)] for cname, child in model.named_children()]
    head_set = set(head)
    blocks = [[n for n in block if n not in head_set] for block in blocks]
    blocks = [block for block in blocks if block]
    block_stage = _feature_stage_of(model, [block[-1] for block in blocks])
    if block_stage is None:
        stages = [tuple(block) for block in blocks]
    else:
        merged: dict[int, list[str]] = {}
        for block, stage in zip(blocks, block_stage, strict=True):
            merged.setdefault(stage, []).extend(block)
        stages = [tuple(names) for _, names in sorted(merged.items())]
    result = Stages(head=head, stages=tuple(stages))
    every = {name for name, _ in model.named_parameters()}
    if set(result.names) != every or len(result.names) != len(every):
        raise StrategyError(f"the stages of {type(model).__name__} do not cover each parameter exactly once")
    return result


def trainable_stage_count(strategy: str, num_stages: int, epoch: int, unfreeze_every: int) -> int:
    """How many backbone stages (from the top) train in ``epoch`` (0-based)."""
    if strategy == "feature_extract":
        return 0
    if strategy == "fine_tune_last":
        return min(1, num_stages)
    if strategy == "gradual_unfreeze":
        if unfreeze_every < 1:
            raise StrategyError(f"--unfreeze-every must be at least 1 epoch, got {unfreeze_every}")
        return min(num_stages, epoch // unfreeze_every)
    if strategy == "full":
        return num_stages
    raise StrategyError(f"unknown strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")


def trainable_names(stages: Stages, strategy: str, epoch: int = 0, unfreeze_every: int = 1) -> set[str]:
    """Names of the parameters that train in ``epoch`` under ``strategy``."""
    count = trainable_stage_count(strategy, len(stages.stages), epoch, unfreeze_every)
    top = stages.stages[len(stages.stages) - count :] if count else ()
    return set(stages.head).union(*top)


def apply_strategy(
    model: nn.Module, stages: Stages, strategy: str, epoch: int = 0, unfreeze_every: int = 1
) -> set[str]:
    """Set ``requires_grad`` for ``epoch``; returns the trainable names."""
    names = trainable_names(stages, strategy, epoch, unfreeze_every)
    for name, param in model.named_parameters():
        param.requires_grad_(name in names)
    return names


def freeze_frozen_batchnorm(model: nn.Module) -> None:
    """After ``model.train()``: batch norms whose parameters are all frozen keep their running statistics.

    A frozen backbone should compute the features it was trained with; updating its
    statistics on a small new dataset would shift them under a head that never saw that.
    """
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            params = list(module.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                module.eval()


def _no_weight_decay(model: nn.Module) -> set[str]:
    """Biases, norms and the model's own no-decay list (position embeddings, tokens) skip weight decay."""
    skip = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    return {name for name, param in model.named_parameters() if param.ndim <= 1 or name in skip}


def create_param_groups(
    model: nn.Module,
    stages: Stages,
    strategy: str,
    *,
    lr_head: float,
    lr_backbone: float,
    lr_stage_decay: float = 1.0,
    weight_decay: float = 0.05,
) -> list[dict]:
    """Optimizer groups for every parameter the strategy will ever train, each with its own LR.

    The head gets ``lr_head``; the last stage ``lr_backbone``, each stage below it
    ``lr_stage_decay`` times the one above. Stages that are still frozen are in the
    optimizer from the start (AdamW skips parameters without gradients), so
    gradual unfreezing needs no new groups and resuming restores every group's state.
    """
    if strategy not in STRATEGIES:
        raise StrategyError(f"unknown strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
    if min(lr_head, lr_backbone) <= 0 or not 0 < lr_stage_decay <= 1:
        raise StrategyError("learning rates must be positive and --lr-stage-decay in (0, 1]")
    params = dict(model.named_parameters())
    no_decay = _no_weight_decay(model)
    ever = trainable_names(stages, strategy, epoch=10**9, unfreeze_every=1)
    named = [("head", stages.head, lr_head)]
    for depth, stage in enumerate(reversed(stages.stages)):
        index = len(stages.stages) - 1 - depth
        named.append((f"stage{index}", stage, lr_backbone * lr_stage_decay**depth))
    groups = []
    for group_name, group_names, lr in named:
        names = [n for n in group_names if n in ever]
        for decay in (True, False):
            chosen = [n for n in names if (n in no_decay) != decay]
            if chosen:
                groups.append(
                    {
                        "name": group_name if decay else f"{group_name}_no_decay",
                        "params": [params[n] for n in chosen],
                        "param_names": chosen,
                        "lr": lr,
                        "initial_lr": lr,
                        "weight_decay": weight_decay if decay else 0.0,
                    }
                )
    return groups
