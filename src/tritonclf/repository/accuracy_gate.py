"""FP16 accuracy gate: the reduced-precision classifier must still say what the FP32 ONNX model says.

Both models see the same real photos through the same preprocessing as serving;
the gate compares their probabilities: top-1 agreement, top-5 overlap, max and
mean |delta probability|. A build fails past the thresholds, and the numbers go
into the manifest either way.

Top-1 agreement counts only images where FP32 itself was decisive: where its top
two classes are closer than ``near_tie_margin``, FP16's rounding may swap them
without the model having changed its mind; such flips are counted and reported
apart. One near-tie among 32 images would otherwise fail a 0.995 gate on its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from tritonclf.preprocess import PreprocessSpec, normalize, resize_and_crop, to_rgb

# A function from an NCHW float32 batch to probabilities [N, classes].
Runner = Callable[[np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True)
class GateThresholds:
    """When a candidate model is rejected."""

    min_top1_agreement: float = 0.995
    max_mean_abs_delta: float = 1e-3
    # FP32 top-1 minus top-2 probability below which an image is a near tie. FP16 moves a
    # probability by about 1e-3 (the mean-delta bound); 0.01 leaves a tenfold margin.
    near_tie_margin: float = 0.01


@dataclasses.dataclass(frozen=True)
class GateReport:
    """How the candidate compares with the FP32 reference."""

    images: int
    top1_agreement: float  # over the decisive images (FP32 margin >= near_tie_margin); 1.0 if there are none
    decisive_images: int
    near_tie_flips: int  # top-1 changes where FP32's top two were closer than near_tie_margin
    near_tie_margin: float
    top5_overlap: float  # mean fraction of the reference's top-5 found in the candidate's top-5
    max_abs_delta: float
    mean_abs_delta: float

    def failures(self, thresholds: GateThresholds) -> list[str]:
        """One line per threshold this report breaks."""
        problems = []
        if self.top1_agreement < thresholds.min_top1_agreement:
            problems.append(f"top-1 agreement {self.top1_agreement:.2%} is below {thresholds.min_top1_agreement:.2%}")
        if self.mean_abs_delta > thresholds.max_mean_abs_delta:
            problems.append(
                f"mean |delta probability| {self.mean_abs_delta:.2e} is above {thresholds.max_mean_abs_delta:.0e}"
            )
        return problems


def compare(
    reference: np.ndarray, candidate: np.ndarray, near_tie_margin: float = GateThresholds.near_tie_margin
) -> GateReport:
    """Compare two [N, classes] probability arrays."""
    if reference.shape != candidate.shape or reference.ndim != 2:
        raise ValueError(f"shapes differ or are not [N, classes]: {reference.shape} vs {candidate.shape}")
    ref_top5 = np.argsort(-reference, axis=1)[:, :5]
    cand_top5 = np.argsort(-candidate, axis=1)[:, :5]
    overlap = [len(set(a) & set(b)) / ref_top5.shape[1] for a, b in zip(ref_top5, cand_top5, strict=True)]
    delta = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
    top_two = np.sort(reference.astype(np.float64), axis=1)[:, -2:]
    decisive = (top_two[:, 1] - top_two[:, 0]) >= near_tie_margin
    agrees = ref_top5[:, 0] == cand_top5[:, 0]
    return GateReport(
        images=len(reference),
        top1_agreement=float(agrees[decisive].mean()) if decisive.any() else 1.0,
        decisive_images=int(decisive.sum()),
        near_tie_flips=int((~agrees & ~decisive).sum()),
        near_tie_margin=near_tie_margin,
        top5_overlap=float(np.mean(overlap)),
        max_abs_delta=float(delta.max()),
        mean_abs_delta=float(delta.mean()),
    )


def gate_framings(photos: Sequence[Path], variants_per_photo: int = 8) -> list[Image.Image]:
    """Real photos, each also mirrored and cropped a few ways: the gate's images before preprocessing.

    A handful of photos alone would make top-1 agreement move in 25% steps; the
    variants are still real pixels, seen from slightly different framings.
    """
    framings = []
    for path in photos:
        upright = to_rgb(ImageOps.exif_transpose(Image.open(path)))
        for variant in range(variants_per_photo):
            image = ImageOps.mirror(upright) if variant % 2 else upright
            shrink = 1.0 - 0.08 * (variant // 2)
            width, height = image.size
            box_w, box_h = int(width * shrink), int(height * shrink)
            left, top = (width - box_w) * (variant % 3) // 2, (height - box_h) * (variant % 2)
            framings.append(image.crop((left, top, left + box_w, top + box_h)))
    return framings


def gate_images(photos: Sequence[Path], spec: PreprocessSpec, variants_per_photo: int = 8) -> np.ndarray:
    """The gate's framings through the serving preprocessing: one float32 NCHW batch."""
    framings = gate_framings(photos, variants_per_photo)
    return np.stack([normalize(resize_and_crop(image, spec), spec) for image in framings])


def run_in_batches(runner: Runner, pixels: np.ndarray, batch_size: int) -> np.ndarray:
    """Feed a large array through a runner in chunks no larger than its max batch size."""
    return np.concatenate([runner(pixels[i : i + batch_size]) for i in range(0, len(pixels), batch_size)])


def onnx_runner(onnx_path: Path, input_name: str, output_name: str) -> Runner:
    """An ONNX Runtime CPU session as a Runner (the FP32 reference, or an FP16 ONNX candidate)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return lambda batch: session.run([output_name], {input_name: batch})[0]


def tensorrt_runner(engine: bytes, input_name: str, output_name: str) -> Runner:
    """A TensorRT engine as a Runner, through polygraphy (GPU host only)."""
    from polygraphy.backend.trt import EngineFromBytes, TrtRunner

    runner = TrtRunner(EngineFromBytes(engine))
    runner.activate()
    return lambda batch: np.asarray(runner.infer({input_name: batch})[output_name])
