"""CUDA graphs for a classifier: one captured graph per batch size, softmax in FP32 inside it.

Torch only, no Triton and no tritonclf import: the repository build copies this file beside
``torch_classifier_model.py`` (the stub has no tritonclf package), and the GPU kit's
standalone phase imports it from the package, so the served model and the kit's
standalone measurement replay the same graphs.
"""

import bisect

import torch


class GraphRunner:
    """One captured CUDA graph per batch size; a batch runs in the smallest graph that holds it."""

    def __init__(self, model, batch_sizes, pixel_shape, device):
        """Capture largest first so the smaller graphs reuse its memory pool."""
        self.sizes = sorted(batch_sizes)
        self.graphs = {}
        pool = torch.cuda.graph_pool_handle()
        for size in reversed(self.sizes):
            static_in = torch.zeros((size, *pixel_shape), dtype=torch.float16, device=device)
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):
                for _ in range(3):  # cuDNN picks its kernels before capture
                    model(static_in)
            torch.cuda.current_stream(device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=pool):
                static_out = torch.softmax(model(static_in).float(), dim=-1)
            self.graphs[size] = (graph, static_in, static_out)

    def __call__(self, batch):
        """Pad into the graph's input, replay, return a copy of the real rows (the next replay overwrites)."""
        size = self.sizes[bisect.bisect_left(self.sizes, len(batch))]
        graph, static_in, static_out = self.graphs[size]
        static_in[: len(batch)].copy_(batch)
        graph.replay()
        return static_out[: len(batch)].clone()
