"""Phase 1, standalone limits: what one process on this GPU does without Triton.

- decode + preprocess: the JPEG mix (0.3/1.2/12 MP) through ``torch_preprocess`` on the
  GPU (batched nvJPEG, resize, crop, normalize), whole-mix batches, and per size;
- the model in FP16 at batch 1 to 128, eager and with CUDA graphs;
- decode + model in one process: the mix in batches of 32, JPEG bytes to top-1 on the
  host. The served phase divides its best rate by this one.
"""

from __future__ import annotations

from collections import defaultdict

from tritonclf_lab.gpu_kit.context import Context
from tritonclf_lab.gpu_kit.mix import megapixels, write_mix

BATCH_SIZES = (1, 8, 32, 64, 128)
PIPELINE_BATCH = 32


def by_size(paths) -> dict[str, list[bytes]]:
    """The mix's bytes grouped by megapixels label (``"0.3 MP"``)."""
    groups: dict[str, list[bytes]] = defaultdict(list)
    for path in paths:
        groups[f"{megapixels(path):.1f} MP"].append(path.read_bytes())
    return dict(groups)


def run(ctx: Context) -> bool:
    """Measure on the GPU and record; True when every measurement ran."""
    measure(ctx, write_mix(ctx.mix_dir), "cuda", BATCH_SIZES)
    return True


def measure(ctx: Context, paths: list, device: str, batch_sizes: tuple[int, ...]) -> dict:
    """Every measurement on ``device`` (``cpu`` runs the same code in FP32 without graphs, for tests)."""
    import torch

    from tritonclf import torch_preprocess
    from tritonclf.serving.backend_models.cuda_graphs import GraphRunner
    from tritonclf_lab.gpu_kit.gpu_model import load_export, load_model, rate

    on_gpu = device == "cuda"
    mix = [p.read_bytes() for p in paths]
    spec = load_export(ctx.export).preprocess
    sync = torch.cuda.synchronize if on_gpu else None
    slice_s = max(0.5, min(4.0, ctx.remaining_s() / 20))

    def preprocess(datas):
        return torch.stack(torch_preprocess.preprocess_batch(datas, spec, device=device))

    whole = rate(lambda: preprocess(mix), len(mix), slice_s, sync=sync)
    decode = {"mix_batch": len(mix), "images_per_s": round(whole, 1)}
    for label, datas in by_size(paths).items():
        decode[label] = round(rate(lambda d=datas: preprocess(d), len(datas), slice_s / 2, sync=sync), 1)
    ctx.results.update("standalone", {"decode_preprocess": decode})
    ctx.say(f"standalone: {device} decode + preprocess images/s: {decode}")

    model = load_model(ctx.export, device, half=on_gpu)
    dtype = torch.float16 if on_gpu else torch.float32
    torch.backends.cudnn.benchmark = True
    shape = (3, *spec.input_size)
    eager, graphed = {}, {}

    def eager_run(pixels):
        return torch.softmax(model(pixels.to(dtype)).float(), -1)

    with torch.inference_mode():
        graphs = GraphRunner(model, batch_sizes, shape, device) if on_gpu else eager_run
        for batch in batch_sizes:
            pixels = torch.randn((batch, *shape), device=device, dtype=dtype)
            eager[batch] = round(rate(lambda p=pixels: eager_run(p), batch, slice_s / 2, sync=sync))
            if on_gpu:
                graphed[batch] = round(rate(lambda p=pixels: graphs(p), batch, slice_s / 2, sync=sync))
            ctx.results.update("standalone", {"model": {"dtype": str(dtype), "eager": eager, "cuda_graphs": graphed}})
    ctx.say(f"standalone: {dtype} images/s eager {eager}; CUDA graphs {graphed}")

    batches = [mix[i : i + PIPELINE_BATCH] for i in range(0, len(mix), PIPELINE_BATCH)]

    def pipeline():
        for datas in batches:
            graphs(preprocess(datas)).argmax(-1).cpu()

    with torch.inference_mode():
        pipeline_rate = rate(pipeline, len(mix), max(1.0, min(10.0, ctx.remaining_s() - 5)))
    row = {"batch": PIPELINE_BATCH, "images_per_s": round(pipeline_rate, 1)}
    name = torch.cuda.get_device_name(0) if on_gpu else "cpu"
    section = ctx.results.update("standalone", {"decode_and_model": row, "device": name})
    ctx.say(f"standalone: decode + model in one process: {row['images_per_s']} images/s")
    return section
