"""Phase 2, accuracy: GPU preprocessing + FP16 against Pillow + FP32, on the gate's photos and framings.

The reference is what the CPU path serves: ``preprocess.py`` (Pillow) and the model in
FP32 on the CPU. The candidate is the GPU path: ``torch_preprocess`` on the GPU (nvJPEG,
torch's resize) and the model in FP16. Both see the same JPEG bytes. A top-1 flip counts
only where the reference's margin between its top two classes exceeds ``MARGIN``; flips
on near-ties are reported apart, as in the build's FP16 accuracy gate.
"""

from __future__ import annotations

import io

import numpy as np

from tritonclf.samples import EXPECTED_TOP1
from tritonclf_lab.gpu_kit.context import Context

MARGIN = 0.05
MIN_AGREEMENT = 0.995
JPEG_QUALITY = 95


def margin_agreement(reference: np.ndarray, candidate: np.ndarray, margin: float = MARGIN) -> dict:
    """Top-1 agreement of two probability batches, flips on near-ties (reference margin <= ``margin``) apart."""
    ordered = np.sort(reference, axis=1)
    margins = ordered[:, -1] - ordered[:, -2]
    flipped = reference.argmax(1) != candidate.argmax(1)
    decisive = margins > margin
    counted = int((flipped & decisive).sum())
    return {
        "images": len(reference),
        "decisive_images": int(decisive.sum()),
        "flips": counted,
        "near_tie_flips": int((flipped & ~decisive).sum()),
        "top1_agreement": round(1.0 - counted / max(1, int(decisive.sum())), 4),
        "max_abs_delta": float(np.abs(reference - candidate).max()),
        "margin": margin,
    }


def run(ctx: Context) -> bool:
    """Compare on the GPU and record; True when the agreement and the sample labels hold."""
    report = compare(ctx.export, "cuda")
    ctx.results.update("accuracy", report)
    wrong = [name for name, expected in EXPECTED_TOP1.items() if report["sample_top1"].get(name) not in expected]
    ctx.say(
        f"accuracy: top-1 agreement {report['top1_agreement']:.2%} on {report['decisive_images']} decisive images "
        f"({report['near_tie_flips']} near-tie flips apart), max |prob delta| {report['max_abs_delta']:.3g}, "
        f"max pixel delta {report['max_pixel_delta']:.3g}; "
        f"sample labels {'ok' if not wrong else 'WRONG: ' + ', '.join(wrong)}"
    )
    return report["labels_ok"] and report["top1_agreement"] >= MIN_AGREEMENT


def compare(export, device: str) -> dict:
    """The report: Pillow + FP32 on the CPU against torch preprocessing + the model on ``device``.

    On ``cuda`` the candidate runs in FP16; on ``cpu`` (tests) in FP32, so only the
    preprocessing differs.
    """
    import torch

    from tritonclf import preprocess, torch_preprocess
    from tritonclf.repository.accuracy_gate import gate_framings
    from tritonclf.samples import sample_photos
    from tritonclf_lab.gpu_kit.gpu_model import load_export, load_model

    spec = load_export(export).preprocess
    photos = sample_photos()
    datas = []
    for image in gate_framings(photos):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=JPEG_QUALITY)
        datas.append(buffer.getvalue())
    datas += [p.read_bytes() for p in photos]  # the sample photos as they are, last
    half = device == "cuda"
    with torch.inference_mode():
        cpu_model = load_model(export, "cpu", half=False)
        pixels = torch.from_numpy(np.stack([preprocess.preprocess_image(d, spec) for d in datas]))
        reference = torch.softmax(cpu_model(pixels), -1).numpy()
        model = load_model(export, device, half=half)
        candidate_pixels = torch.stack(torch_preprocess.preprocess_batch(datas, spec, device=device))
        pixel_delta = float((candidate_pixels.cpu() - pixels).abs().max())
        dtype = torch.float16 if half else torch.float32
        candidate = torch.softmax(model(candidate_pixels.to(dtype)).float(), -1).cpu().numpy()
    report = {**margin_agreement(reference, candidate), "max_pixel_delta": pixel_delta, "device": device}
    labels = {path.name: int(probs.argmax()) for path, probs in zip(photos, candidate[-len(photos) :], strict=True)}
    report["sample_top1"] = labels
    report["labels_ok"] = all(labels.get(name) in expected for name, expected in EXPECTED_TOP1.items())
    return report
