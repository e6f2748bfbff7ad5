"""Which files are images: one suffix list for the client, the training data, the benchmark and the build.

    image_paths(["photos/", "cat.jpg"])          # files as given, folders expanded (recursive, sorted)
    is_image_file(Path("IMG_0001.JPEG"))          # True

The suffixes are those of the formats the preprocessing decodes by default
(``DecodeLimits.allowed_formats``: JPEG, PNG, WEBP, GIF, BMP); a file is judged by its
name here and by its content when it is decoded.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")


class ImageFilesError(ValueError):
    """A path that is neither a file nor a folder with images; one line for the user."""


def is_image_file(path: Path) -> bool:
    """A file whose name says it is an image (case-insensitive suffix), hidden files excluded."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def list_images(folder: Path, *, recursive: bool = True) -> list[Path]:
    """The image files in ``folder`` (and below, when ``recursive``), sorted."""
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.is_file() and is_image_file(p))


def image_paths(paths: Iterable[str | Path], *, recursive: bool = True) -> list[Path]:
    """Files as given (whatever their name), folders expanded to their images; a missing path or empty folder raises."""
    images: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = list_images(path, recursive=recursive)
            if not found:
                raise ImageFilesError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {path}")
            images.extend(found)
        elif path.is_file():
            images.append(path)
        else:
            raise ImageFilesError(f"no such file or folder: {path}")
    return images
