"""The one timm model factory: for fine-tuning (a new head), for export and evaluation (the weights whole).

    model = create_model("efficientnet_lite0", num_classes=10)                  # bundled ImageNet weights
    model = create_model("resnet50", num_classes=10, init="hub")                # timm's hub (needs a network)
    model = create_model("convnext_tiny", num_classes=10, weights=Path("in1k.pth"))
    model = create_model("resnet18", num_classes=10, init="random")             # tests, from scratch
    model = create_model("resnet18", 3, weights=Path("runs/x/best.pth"), head="keep")   # a trained model

With ``head="new"`` (training) the pretrained head is dropped and a new one of
``num_classes`` outputs created, as timm does for ``pretrained=True, num_classes=N``.
With ``head="keep"`` (export, evaluation) the weights are loaded as they are, head
included, and ``init="random"`` is seeded, so two exports hold the same numbers.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import timm
import torch
from timm.data import resolve_data_config
from torch import nn

from tritonclf.preprocess import PreprocessSpec
from tritonclf.training import weights as weights_lib
from tritonclf.training.choices import INITS


class ModelError(ValueError):
    """The model cannot be created as asked; the message says what to do."""


class NoWeights(ModelError):
    """No offline weights for this architecture; the command adds which of its flags give some."""


def similar_names(name: str, names: list[str], count: int = 5) -> list[str]:
    """Names that start with ``name``, then the most similar ones (best first), then those containing it."""
    starting = sorted(n for n in names if n.startswith(name))
    close = difflib.get_close_matches(name, names, n=2 * count, cutoff=0.6)
    close.sort(key=lambda n: (-difflib.SequenceMatcher(None, name, n).ratio(), n))
    containing = sorted(n for n in names if name in n)
    return list(dict.fromkeys([*starting, *close, *containing]))[:count]


def check_model_name(name: str) -> None:
    """A one-line error with close names for an architecture timm does not know."""
    if not timm.is_model(name):
        close = similar_names(name, timm.list_models())
        hint = f"; did you mean {', '.join(close)}?" if close else "; see timm.list_models()"
        raise ModelError(f"unknown timm model {name!r}{hint}")


def _drop_head(state: dict, model: nn.Module) -> dict:
    prefixes = model.pretrained_cfg.get("classifier") or ()
    prefixes = (prefixes,) if isinstance(prefixes, str) else tuple(prefixes)
    return {k: v for k, v in state.items() if not any(k == p or k.startswith(p + ".") for p in prefixes)}


def create_model(
    name: str,
    num_classes: int | None = None,
    *,
    init: str = "auto",
    weights: Path | None = None,
    head: str = "new",
    drop_rate: float = 0.0,
) -> nn.Module:
    """A timm model with its weights: from ``weights`` (a file) or ``init`` (bundled, hub, random; auto: bundled).

    ``head="new"``: pretrained backbone, freshly initialized ``num_classes`` head (``weights``' head dropped).
    ``head="keep"``: the weights whole (``num_classes`` must match them; None keeps the architecture's).
    ``drop_rate`` is timm's dropout before the classifier (the article's ``Dropout(0.5)`` head).
    """
    check_model_name(name)
    if init not in INITS:
        raise ModelError(f"--init must be one of {', '.join(INITS)}, not {init!r}")
    if head not in ("new", "keep"):
        raise ValueError(f"head is 'new' or 'keep', not {head!r}")
    imagenet_head = head == "keep" and num_classes not in (None, 1000)
    if init == "auto" and weights is None:
        if name != weights_lib.BUNDLED_MODEL or imagenet_head:
            raise NoWeights(
                f"no offline weights for {name!r}"
                + (f" with {num_classes} classes" if name == weights_lib.BUNDLED_MODEL else "")
                + f": ImageNet weights are bundled only for {weights_lib.BUNDLED_MODEL} (1000 classes)"
            )
        init = "bundled"
    if init == "bundled" and (name != weights_lib.BUNDLED_MODEL or imagenet_head):
        raise ModelError(f"bundled weights exist only for {weights_lib.BUNDLED_MODEL} with 1000 classes")
    if head == "keep":
        return _whole_model(name, num_classes, init, weights)
    try:
        if init == "bundled":
            model = timm.create_model(name, drop_rate=drop_rate)
            weights_lib.load_bundled_weights(model)
            model.reset_classifier(num_classes)
        else:
            model = timm.create_model(name, pretrained=init == "hub", num_classes=num_classes, drop_rate=drop_rate)
    except (RuntimeError, OSError) as err:  # hub unreachable, bad kwargs
        raise ModelError(f"cannot create {name!r} ({init} weights): {' '.join(str(err).split())[:200]}") from None
    if weights is not None:
        _load_backbone(model, name, weights)
    return model


def _whole_model(name: str, num_classes: int | None, init: str, weights: Path | None) -> nn.Module:
    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    if init == "random":
        torch.manual_seed(0)  # the same numbers on every export: benchmarks compare like with like
    try:
        model = timm.create_model(name, pretrained=init == "hub" and weights is None, **kwargs)
    except (RuntimeError, OSError) as err:
        raise ModelError(f"cannot create {name!r} ({init} weights): {' '.join(str(err).split())[:200]}") from None
    if weights is not None:
        weights_lib.load_weights_file(model, weights)
    elif init == "bundled":
        weights_lib.load_bundled_weights(model)
    return model


def _load_backbone(model: nn.Module, name: str, weights: Path) -> None:
    state = _drop_head(weights_lib.extract_state_dict(weights_lib.read_checkpoint(weights)), model)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as err:
        raise ModelError(f"{weights} does not fit {name!r}: {' '.join(str(err).split())[:200]}") from None
    backbone_missing = _drop_head(dict.fromkeys(result.missing_keys), model)
    if backbone_missing or result.unexpected_keys:
        examples = [*backbone_missing, *result.unexpected_keys][:3]
        raise ModelError(
            f"{weights} does not fit {name!r}: {len(backbone_missing)} missing, "
            f"{len(result.unexpected_keys)} unexpected keys (e.g. {examples})"
        )


def resolve_spec(model: nn.Module, input_size: int | None = None) -> PreprocessSpec:
    """The preprocessing spec exactly as ``training/export.py`` resolves it; ``input_size`` overrides the size."""
    args = {"input_size": (3, input_size, input_size)} if input_size else {}
    return PreprocessSpec.from_timm_config(resolve_data_config(args, model=model))
