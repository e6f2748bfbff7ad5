"""The torch preprocessing against timm's eval transform and against the Pillow path, in-process."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from timm.data import create_transform

from tritonclf.preprocess import (
    INTERPOLATIONS,
    TORCH_INTERPOLATIONS,
    DecodeLimits,
    ImageRejected,
    PreprocessSpec,
    open_image,
    preprocess_image,
)
from tritonclf.samples import sample_photos
from tritonclf.torch_preprocess import _torch_decodable, check_spec, orient, preprocess_batch
from tritonclf_lab.bad_images import BAD_INPUTS, ODD_IMAGES, encode, photo

# EfficientNet-Lite0's pretrained_cfg: bicubic, crop_pct 0.875, ImageNet mean/std.
SPEC = PreprocessSpec(input_size=(224, 224))
STD = np.asarray(SPEC.std, dtype=np.float32).reshape(3, 1, 1)
# Measured on the four sample photos (torch 2.14, torchvision 0.29): max 6 levels of 255, mean 0.17.
# torch's antialiased bicubic and Pillow's round differently near edges; the rest is identical.
MAX_LEVELS_VS_TIMM = 8
MEAN_LEVELS_VS_TIMM = 0.3


def levels(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| of normalized pixels, in 8-bit levels."""
    return np.abs(a - b) * STD * 255


def timm_eval(data: bytes) -> np.ndarray:
    transform = create_transform(
        input_size=(3, *SPEC.input_size),
        interpolation=SPEC.interpolation,
        crop_pct=SPEC.crop_pct,
        mean=SPEC.mean,
        std=SPEC.std,
    )
    return transform(Image.open(io.BytesIO(data)).convert("RGB")).numpy()


def test_torch_preprocessing_is_within_a_few_levels_of_timms_eval_transform():
    datas = [path.read_bytes() for path in sample_photos()]
    # Full decodes, as timm and nvJPEG do (on a CPU, draft decodes differ as in the Pillow path).
    results = preprocess_batch(datas, SPEC, DecodeLimits(jpeg_draft=False))
    diffs = [levels(t.numpy(), timm_eval(d)) for t, d in zip(results, datas, strict=True)]
    assert max(d.max() for d in diffs) <= MAX_LEVELS_VS_TIMM
    assert max(d.mean() for d in diffs) <= MEAN_LEVELS_VS_TIMM


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=lambda bad: bad.name)
def test_torch_preprocessing_rejects_hostile_input_with_the_pillow_message(bad):
    [result] = preprocess_batch([bad.make()], SPEC)
    assert isinstance(result, ImageRejected) and str(result) == bad.message


def test_a_rejected_image_leaves_its_batch_neighbours_decoded():
    good = photo().resize((320, 240))
    results = preprocess_batch([encode(good, "JPEG"), b"", encode(good, "PNG")], SPEC)
    assert [type(r).__name__ for r in results] == ["Tensor", "ImageRejected", "Tensor"]


@pytest.mark.parametrize("name", sorted(ODD_IMAGES))
def test_odd_encodings_come_out_close_to_the_pillow_path(name):
    data = ODD_IMAGES[name][1]()
    [result] = preprocess_batch([data], SPEC)
    pillow = preprocess_image(data, SPEC, DecodeLimits(jpeg_draft=False))
    assert result.shape == (3, 224, 224) and result.dtype == torch.float32
    assert levels(result.numpy(), pillow).mean() <= MEAN_LEVELS_VS_TIMM


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_turns_pixels_as_pillow_does(orientation):
    image = Image.fromarray(np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3))
    exif = Image.Exif()
    exif[0x0112] = orientation
    tagged = Image.open(io.BytesIO(encode(image, "PNG", exif=exif.tobytes())))
    expected = np.asarray(ImageOps.exif_transpose(tagged).convert("RGB"))
    turned = orient(torch.from_numpy(np.array(image)).permute(2, 0, 1), orientation)
    np.testing.assert_array_equal(turned.permute(1, 2, 0).numpy(), expected)


def test_exif_rotated_jpeg_is_decoded_upright():
    [rotated] = preprocess_batch([ODD_IMAGES["exif-rotated-jpeg"][1]()], SPEC)
    [upright] = preprocess_batch([encode(photo(), "JPEG", quality=92)], SPEC)
    assert levels(rotated.numpy(), upright.numpy()).mean() < 3


def test_interpolations_without_a_torch_kernel_are_refused():
    with pytest.raises(ValueError, match="use --preprocess pillow"):
        check_spec(PreprocessSpec(input_size=(224, 224), interpolation="lanczos"))


def test_one_interpolation_table_names_each_librarys_kernel():
    import cv2

    assert TORCH_INTERPOLATIONS == ("nearest", "bilinear", "bicubic")
    image = torch.rand(1, 3, 32, 32)
    for name, kernels in INTERPOLATIONS.items():
        assert isinstance(kernels.pillow, Image.Resampling) and isinstance(getattr(cv2, kernels.cv2), int)
        if name in TORCH_INTERPOLATIONS:
            check_spec(PreprocessSpec(input_size=(16, 16), interpolation=name))
            assert torch.nn.functional.interpolate(image, size=(16, 16), mode=kernels.torch).shape == (1, 3, 16, 16)
        else:
            with pytest.raises(ValueError, match=f"supports interpolation nearest, bilinear, bicubic; .*'{name}'"):
                check_spec(PreprocessSpec(input_size=(16, 16), interpolation=name))


def test_large_jpegs_use_pillows_draft_decode_on_a_cpu_and_the_device_decoder_on_a_gpu():
    large = encode(photo().resize((1600, 1200)), "JPEG", quality=90)
    opened = open_image(large)
    assert not _torch_decodable(opened, SPEC, DecodeLimits(), torch.device("cpu"))
    assert _torch_decodable(opened, SPEC, DecodeLimits(jpeg_draft=False), torch.device("cpu"))
    assert _torch_decodable(opened, SPEC, DecodeLimits(), torch.device("cuda"))
    [result] = preprocess_batch([large], SPEC)
    assert levels(result.numpy(), preprocess_image(large, SPEC)).mean() <= MEAN_LEVELS_VS_TIMM
