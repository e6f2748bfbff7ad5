"""The one image-suffix list and how folders of images are listed. No server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tritonclf.image_files import IMAGE_SUFFIXES, ImageFilesError, image_paths, is_image_file, list_images
from tritonclf.preprocess import DecodeLimits


def test_suffixes_cover_every_format_the_preprocessing_decodes():
    """A format the server decodes has a suffix here, so no folder listing skips it."""
    names = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp"}
    assert {names[f] for f in DecodeLimits().allowed_formats} <= set(IMAGE_SUFFIXES)
    assert ".jpeg" in IMAGE_SUFFIXES


def test_is_image_file_ignores_case_and_hidden_files():
    assert is_image_file(Path("IMG_0001.JPEG")) and is_image_file(Path("a/b.webp"))
    assert not is_image_file(Path("notes.txt")) and not is_image_file(Path(".thumb.jpg"))


def test_image_paths_expands_folders_sorted_and_keeps_files_as_given(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("b.png", "a.jpg", "sub/c.gif", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    given = tmp_path / "notes.txt"  # named explicitly: sent as is, the server judges it
    assert image_paths([tmp_path, given]) == [tmp_path / "a.jpg", tmp_path / "b.png", tmp_path / "sub/c.gif", given]
    assert list_images(tmp_path, recursive=False) == [tmp_path / "a.jpg", tmp_path / "b.png"]


def test_image_paths_names_a_missing_path_and_an_empty_folder(tmp_path):
    with pytest.raises(ImageFilesError, match=r"no such file or folder: .*missing\.jpg"):
        image_paths([tmp_path / "missing.jpg"])
    with pytest.raises(ImageFilesError, match=r"no images \(\.jpg, .*\) in folder"):
        image_paths([tmp_path])
