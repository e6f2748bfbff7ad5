"""The export's classifier in torch for the standalone and accuracy phases.

The same architecture and weights as the served torch classifier (``timm.create_model``
plus the export's safetensors, tensors only); the standalone phase replays it in the
served model's CUDA graphs (``serving/backend_models/cuda_graphs.py``), so its numbers
are what the served model could do at best.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from tritonclf import contract
from tritonclf.export_metadata import ExportMetadata, load_metadata


def load_export(export: Path) -> ExportMetadata:
    """The export's metadata."""
    return load_metadata(export / contract.METADATA_FILENAME)


def load_model(export: Path, device: str, half: bool) -> torch.nn.Module:
    """The timm architecture + safetensors weights, eval mode, on ``device``."""
    import timm
    from safetensors.torch import load_model as load_weights

    metadata = load_export(export)
    weights = export / (metadata.state_dict_filename or contract.WEIGHTS_FILENAME)
    if not weights.is_file():
        raise FileNotFoundError(f"the kit's export has no {weights.name}: build the kit with --backend torch")
    model = timm.create_model(metadata.model_name, pretrained=False, num_classes=metadata.num_classes)
    load_weights(model, str(weights), strict=True)
    model = model.eval().to(device)
    return model.half() if half else model


def rate(step, images_per_step: int, seconds: float, *, sync=None, min_steps: int = 3) -> float:
    """Images/s of ``step()`` repeated for about ``seconds`` (after one warm-up call)."""
    step()
    if sync:
        sync()
    steps, started = 0, time.perf_counter()
    while steps < min_steps or time.perf_counter() - started < seconds:
        step()
        steps += 1
    if sync:
        sync()
    return images_per_step * steps / (time.perf_counter() - started)
