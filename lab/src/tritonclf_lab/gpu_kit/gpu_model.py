"""The export's classifier in torch for the standalone and accuracy phases: eager, FP16, CUDA graphs.

The same architecture and weights as the served torch classifier (``timm.create_model``
plus the export's safetensors, tensors only), so the standalone numbers are what the
served model could do at best.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Sequence
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


class Graphs:
    """One CUDA graph per batch size (padded up), softmax in FP32 inside the graph."""

    def __init__(self, model: torch.nn.Module, sizes: Sequence[int], pixel_shape: Sequence[int]):
        """Capture largest first so the smaller graphs share its memory pool."""
        self.sizes = sorted(sizes)
        self.graphs = {}
        pool = torch.cuda.graph_pool_handle()
        for size in reversed(self.sizes):
            static_in = torch.zeros((size, *pixel_shape), dtype=torch.float16, device="cuda")
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):  # cuDNN picks its kernels before the capture
                    model(static_in)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=pool):
                static_out = torch.softmax(model(static_in).float(), dim=-1)
            self.graphs[size] = (graph, static_in, static_out)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        """Probabilities for ``batch`` (FP32 or FP16 pixels on the GPU)."""
        size = self.sizes[bisect.bisect_left(self.sizes, len(batch))]
        graph, static_in, static_out = self.graphs[size]
        static_in[: len(batch)].copy_(batch)
        graph.replay()
        return static_out[: len(batch)]


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
