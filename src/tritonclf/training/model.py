"""Create the timm model to fine-tune: pretrained backbone, new head for the dataset's classes.

    model = create_model("efficientnet_lite0", num_classes=10)                  # bundled ImageNet weights
    model = create_model("resnet50", num_classes=10, init="hub")                # timm's hub (needs a network)
    model = create_model("convnext_tiny", num_classes=10, weights=Path("in1k.pth"))
    model = create_model("resnet18", num_classes=10, init="random")             # tests, from scratch

The pretrained head is dropped and a new one of ``num_classes`` outputs created,
as timm does for ``pretrained=True, num_classes=N``.
"""

from __future__ import annotations

from pathlib import Path

import timm
from timm.data import resolve_data_config
from torch import nn

from tritonclf.preprocess import PreprocessSpec
from tritonclf.training import weights as weights_lib

INITS = ("auto", "bundled", "hub", "random")


class ModelError(ValueError):
    """The model cannot be created as asked; the message says what to do."""


def check_model_name(name: str) -> None:
    """A one-line error with close names for an architecture timm does not know."""
    if not timm.is_model(name):
        close = timm.list_models(f"*{name}*")[:5] or timm.list_models(f"{name[:4]}*")[:5]
        hint = f"; did you mean {', '.join(close)}?" if close else "; see timm.list_models()"
        raise ModelError(f"unknown timm model {name!r}{hint}")


def _drop_head(state: dict, model: nn.Module) -> dict:
    prefixes = model.pretrained_cfg.get("classifier") or ()
    prefixes = (prefixes,) if isinstance(prefixes, str) else tuple(prefixes)
    return {k: v for k, v in state.items() if not any(k == p or k.startswith(p + ".") for p in prefixes)}


def create_model(
    name: str, num_classes: int, *, init: str = "auto", weights: Path | None = None, drop_rate: float = 0.0
) -> nn.Module:
    """A timm model with pretrained backbone weights and a freshly initialized ``num_classes`` head.

    ``drop_rate`` is timm's dropout before the classifier (the article's ``Dropout(0.5)`` head).
    """
    check_model_name(name)
    if init not in INITS:
        raise ModelError(f"--init must be one of {', '.join(INITS)}, not {init!r}")
    if init == "auto" and weights is None:
        init = "bundled" if name == weights_lib.BUNDLED_MODEL else ""
        if not init:
            raise ModelError(
                f"no offline weights for {name!r}: pass --weights FILE, --init hub (needs timm's hub) "
                f"or --init random; ImageNet weights are bundled only for {weights_lib.BUNDLED_MODEL}"
            )
    if init == "bundled" and name != weights_lib.BUNDLED_MODEL:
        raise ModelError(f"bundled weights exist only for {weights_lib.BUNDLED_MODEL}, not {name!r}")
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
    return model


def resolve_spec(model: nn.Module, input_size: int | None = None) -> PreprocessSpec:
    """The preprocessing spec exactly as ``training/export.py`` resolves it; ``input_size`` overrides the size."""
    args = {"input_size": (3, input_size, input_size)} if input_size else {}
    return PreprocessSpec.from_timm_config(resolve_data_config(args, model=model))
