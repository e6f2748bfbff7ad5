"""Dataset scanning, splits, bad input and configuration: one-line errors and counted skips, never tracebacks."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from tritonclf.preprocess import DecodeLimits, PreprocessSpec, preprocess_image
from tritonclf.training.augment import TrainTransform
from tritonclf.training.config import ConfigError, parse_config
from tritonclf.training.data import INVALID_LABEL, DataError, EvalDataset, Sample, TrainDataset, load_splits
from tritonclf.training.train_cli import main

from ..training_data import write_colour_dataset

SPEC = PreprocessSpec(input_size=(32, 32))


@pytest.fixture
def dataset(tmp_path):
    return write_colour_dataset(tmp_path / "data", train_per_class=5, val_per_class=2)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_imagefolder_layout_is_scanned_with_sorted_classes(dataset):
    splits = load_splits(dataset)
    assert splits.class_names == ("blue", "green", "red")
    assert len(splits.train) == 15 and len(splits.val) == 6 and not splits.warnings
    assert {s.label for s in splits.val} == {0, 1, 2}


def test_without_val_folder_a_seeded_stratified_fraction_is_held_out(dataset):
    for path in (dataset / "val").rglob("*.png"):
        path.unlink()
    for folder in (dataset / "val").iterdir():
        folder.rmdir()
    (dataset / "val").rmdir()
    first = load_splits(dataset, val_fraction=0.4, seed=1)
    assert first == load_splits(dataset, val_fraction=0.4, seed=1)
    assert [sum(s.label == c for s in first.val) for c in range(3)] == [2, 2, 2]
    assert not {s.path for s in first.train} & {s.path for s in first.val}
    assert load_splits(dataset, val_fraction=0.4, seed=2).val != first.val


def test_non_images_and_unreadable_files_are_skipped_counted_and_reported(dataset, capsys, tmp_path):
    (dataset / "train" / "red" / "notes.txt").write_text("not an image")
    (dataset / "train" / "red" / ".DS_Store").write_bytes(b"\0\0")
    (dataset / "train" / "blue" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 garbage")
    (dataset / "train" / "blue" / "fake.png").write_text("<html></html>")
    splits = load_splits(dataset)
    assert len(splits.train) == 15
    joined = "\n".join(splits.warnings)
    assert "skipped 2 file(s): unreadable image" in joined
    assert "skipped 1 file(s): not an image file name" in joined
    assert "skipped 1 file(s): hidden file" in joined


def test_a_class_missing_from_val_is_a_warning(dataset):
    for path in (dataset / "val" / "green").iterdir():
        path.unlink()
    splits = load_splits(dataset)
    assert any("no validation images: green" in w for w in splits.warnings)


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        (lambda root: root / "missing", "does not exist"),
        (lambda root: (root / "empty").mkdir() or root / "empty", "has no class folders"),
        (lambda root: root, "has a single class"),
        (lambda root: (root / "train" / "grey").mkdir() or root, "has no readable images"),
        (lambda root: (root / "val" / "purple").mkdir() or root, "'purple' is in"),
    ],
    ids=["missing", "empty", "single-class", "empty-class", "val-only-class"],
)
def test_unusable_folders_are_one_line_errors(tmp_path, capsys, prepare, message):
    root = write_colour_dataset(tmp_path / "d", train_per_class=2, val_per_class=1)
    if message == "has a single class":
        root = write_colour_dataset(tmp_path / "one", train_per_class=2, val_per_class=1, classes={"red": (200, 0, 0)})
    data = prepare(root)
    with pytest.raises(DataError, match=message):
        load_splits(data)
    assert (
        main(["--data", str(data), "--output", str(tmp_path / "out"), "--model", "resnet18", "--init", "random"]) == 2
    )
    assert message in one_line_error(capsys)


def test_unknown_model_is_a_one_line_error_with_suggestions(dataset, tmp_path, capsys):
    assert main(["--data", str(dataset), "--output", str(tmp_path / "out"), "--model", "resnet_18"]) == 2
    err = one_line_error(capsys)
    assert "unknown timm model 'resnet_18'" in err


def test_suggestions_for_a_mistyped_model_are_the_closest_names(dataset, tmp_path, capsys):
    assert main(["--data", str(dataset), "--output", str(tmp_path / "out"), "--model", "efficientnet_lite9"]) == 2
    err = one_line_error(capsys)
    assert "did you mean efficientnet_lite0, efficientnet_lite1, efficientnet_lite2, efficientnet_lite3, " in err


def test_a_model_without_offline_weights_says_what_to_pass(dataset, tmp_path, capsys):
    assert main(["--data", str(dataset), "--output", str(tmp_path / "out"), "--model", "resnet18"]) == 2
    assert "--init random" in one_line_error(capsys)


def test_image_that_fails_after_the_scan_is_replaced_in_training_and_left_out_of_validation(dataset, capsys):
    good = (dataset / "train" / "red" / "000.png").read_bytes()
    truncated = dataset / "train" / "red" / "001.png"
    truncated.write_bytes(good[: len(good) // 2])  # the header still reads; decoding fails
    splits = load_splits(dataset)
    index = next(i for i, s in enumerate(splits.train) if s.path == truncated)
    train_set = TrainDataset(splits.train, SPEC, TrainTransform(SPEC, "none"), DecodeLimits())
    pixels, label, failed = train_set[index]
    assert failed == index + 1 and label == splits.train[index + 1].label and pixels.shape == (3, 32, 32)
    assert train_set[index + 1][2] == 0  # the next one decodes
    eval_set = EvalDataset(splits.train, SPEC, DecodeLimits())
    assert eval_set[index][1] == INVALID_LABEL
    assert capsys.readouterr().err.count(f"warning: skipping {truncated}") == 2
    # Named once per run: the trainer marks what it was told about, and validation stops reporting.
    train_set.reported, eval_set.report = frozenset({index}), False
    assert train_set[index][2] == index + 1 and eval_set[index][1] == INVALID_LABEL
    assert capsys.readouterr().err == ""


def test_validation_pixels_are_exactly_the_served_preprocessing(dataset):
    splits = load_splits(dataset)
    pixels, _ = EvalDataset(splits.val, SPEC, DecodeLimits())[0]
    np.testing.assert_array_equal(pixels.numpy(), preprocess_image(splits.val[0].path.read_bytes(), SPEC))


@pytest.mark.parametrize("augmentation", ["none", "light", "strong", "article"])
def test_augmentation_presets_give_normalized_input_size_arrays(augmentation):
    transform = TrainTransform(PreprocessSpec(input_size=(24, 32)), augmentation, hflip=0.5)
    transform.set_seed(0)
    pixels = np.asarray(Image.new("RGB", (50, 40), (250, 10, 10)))
    out = transform(pixels)
    assert out.shape == (3, 24, 32) and out.dtype == np.float32
    if augmentation == "none":
        spec = transform.spec
        expected = [(v / 255 - m) / s for v, m, s in zip((250, 10, 10), spec.mean, spec.std, strict=True)]
        np.testing.assert_allclose(out[:, 12, 16], expected, rtol=1e-5)


def test_augmentation_is_reproducible_from_its_seed():
    transform = TrainTransform(PreprocessSpec(input_size=(32, 32)), "strong")
    image = np.asarray(Image.effect_mandelbrot((64, 64), (-2, -1.5, 1, 1.5), 100).convert("RGB"))
    runs = []
    for _ in range(2):
        transform.set_seed(123)
        runs.append([transform(image) for _ in range(3)])
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)


def test_cli_flags_override_the_yaml_config_which_overrides_defaults(tmp_path):
    config_file = tmp_path / "c.yaml"
    config_file.write_text(yaml.safe_dump({"data": "d", "output": "o", "epochs": 7, "lr_head": 0.01, "aug": "none"}))
    config = parse_config(["--config", str(config_file), "--epochs", "2"])
    assert (config.epochs, config.lr_head, config.aug, config.batch_size) == (2, 0.01, "none", 32)
    assert str(config.data) == "d"


def test_unknown_or_mistyped_config_keys_are_one_line_errors(tmp_path):
    config_file = tmp_path / "c.yaml"
    config_file.write_text("data: d\noutput: o\nlearning_rate: 0.1\n")
    with pytest.raises(ConfigError, match="unknown option 'learning_rate'"):
        parse_config(["--config", str(config_file)])
    config_file.write_text("data: d\noutput: o\nepochs: many\n")
    with pytest.raises(ConfigError, match="epochs must be a int"):
        parse_config(["--config", str(config_file)])
    with pytest.raises(ConfigError, match="--data and --output are required"):
        parse_config([])


def test_training_decodes_like_serving_exif_rotation_included(tmp_path):
    # A landscape JPEG whose EXIF says "rotate 90": training sees it upright, as the server does.
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (60, 30), (0, 0, 255)).save(buffer, "JPEG", exif=exif)
    path = tmp_path / "x.jpg"
    path.write_bytes(buffer.getvalue())
    shapes = []

    def transform(pixels):
        shapes.append(pixels.shape)
        return np.zeros((3, 32, 32), np.float32)

    pixels, label, failed = TrainDataset((Sample(path, 0),), SPEC, transform, DecodeLimits())[0]
    assert shapes == [(60, 30, 3)] and torch.is_tensor(pixels) and (label, failed) == (0, 0)


def test_the_printed_export_command_survives_a_run_folder_with_a_space(tmp_path):
    import shlex

    from tritonclf.training.trainer import export_hint

    hint = export_hint(tmp_path / "my runs" / "gray crème")
    assert shlex.split(hint) == [
        "python",
        "training/export.py",
        "--weights",
        str(tmp_path / "my runs" / "gray crème" / "best.pth"),
        "--output",
        "exports/gray crème",
    ]
