"""The kit's payloads: the serving parts of the nvidia-pytriton wheel, numpy for the stub, models.

Each payload is a ``tar.xz`` made from a staging folder: ELF files stripped of their
symbol tables (``strip --strip-unneeded``: Triton's binary and libraries shrink by about
half and still run), identical files stored once (tar keeps hard links), compressed with
``xz -9e``. The wheel-derived payloads depend only on the installed wheels, so they are
cached by version and a second ``make gpu-kit`` only repacks the models.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from tritonclf.files import sha256_file

ELF_MAGIC = b"\x7fELF"
# auditwheel grafts the interpreter the wheel was built against; the server never loads it (the
# stub links the host's own libpython), and it is 25 MB.
LEFT_OUT_LIBRARIES = ("libpython",)
# numpy's tests and headers are a third of its files and never imported by the stub.
NUMPY_LEFT_OUT = ("/tests/", "/include/", ".pyi", "/f2py/", "/_pyinstaller/")


def is_elf(path: Path) -> bool:
    """Whether ``path`` is an ELF file (a binary or shared library)."""
    with open(path, "rb") as handle:
        return handle.read(4) == ELF_MAGIC


def triton_parts(
    pytriton_root: Path, libraries: Path, python_tags: Sequence[str], libpythons: Mapping[str, Path] | None = None
) -> list[tuple[Path, str]]:
    """(source, name in the payload) for everything serving needs from the wheel, and the carried libpythons.

    ``triton/bin/tritonserver`` finds ``triton/lib`` through its own RPATH (``$ORIGIN/../lib``);
    ``triton/stubs/3.X/`` holds the Python backend stub per Python version, and the run
    copies the one for its interpreter into ``triton/backends/python/``;
    ``triton/libpython/3.X/`` holds ``libpython3.X.so.1.0`` for a host without one.
    """
    server = pytriton_root / "tritonserver"
    parts = [(server / "bin" / "tritonserver", "triton/bin/tritonserver")]
    parts += [
        (lib, f"triton/lib/{lib.name}")
        for lib in sorted(libraries.iterdir())
        if not lib.name.startswith(LEFT_OUT_LIBRARIES)
    ]
    for folder in ("backends", "caches"):
        parts += [
            (path, f"triton/{path.relative_to(server)}")
            for path in sorted((server / folder).rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts
        ]
    for tag in python_tags:
        stub = server / "python_backend_stubs" / tag / "triton_python_backend_stub"
        if not stub.is_file():
            raise FileNotFoundError(f"the nvidia-pytriton wheel has no Python backend stub for Python {tag}")
        parts.append((stub, f"triton/stubs/{tag}/triton_python_backend_stub"))
    for tag, library in sorted((libpythons or {}).items()):
        parts.append((library, f"triton/libpython/{tag}/libpython{tag}.so.1.0"))
    return parts


def numpy_parts(wheel: Path, target: Path) -> list[str]:
    """Unpack the files of a numpy wheel that importing it needs into ``target``; returns their names."""
    names = []
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            name = info.filename
            if info.is_dir() or any(part in f"/{name}" for part in NUMPY_LEFT_OUT):
                continue
            archive.extract(info, target)
            if info.external_attr >> 16 & 0o111:
                os.chmod(target / name, 0o755)
            names.append(name)
    return names


def stage(parts: Iterable[tuple[Path, str]], staging: Path) -> None:
    """Copy each part to its name under ``staging`` (executable bits kept)."""
    for source, name in parts:
        target = staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def strip_elves(folder: Path) -> int:
    """``strip --strip-unneeded`` every ELF file under ``folder``; returns how many."""
    elves = [p for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink() and is_elf(p)]
    for path in elves:
        os.chmod(path, path.stat().st_mode | 0o200)
        subprocess.run(["strip", "--strip-unneeded", str(path)], check=True)
    return len(elves)


def link_duplicates(folder: Path) -> int:
    """Replace files identical to an earlier one by hard links (tar then stores them once); returns bytes saved."""
    first: dict[tuple[int, str], Path] = {}
    saved = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        size = path.stat().st_size
        if size < 64 * 1024:
            continue
        key = (size, sha256_file(path))
        if key in first:
            path.unlink()
            os.link(first[key], path)
            saved += size
        else:
            first[key] = path
    return saved


def tar_xz(folder: Path, output: Path, *, level: str = "-9e") -> Path:
    """``folder``'s contents as ``output`` (tar.xz), written whole or not at all."""
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = output.with_name(f".{output.name}.partial")
    names = sorted(p.name for p in folder.iterdir())
    # xz's own threads split the input in blocks and compress worse; one thread, best ratio.
    env = {**os.environ, "XZ_OPT": f"{level} -T1"}
    subprocess.run(
        [
            "tar",
            "--sort=name",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "-cJf",
            str(staging),
            "-C",
            str(folder),
            *names,
        ],
        check=True,
        env=env,
    )
    os.replace(staging, output)
    return output


def extract(archive: Path, target: Path) -> None:
    """Unpack a payload into ``target`` (hard links and modes kept); refuses names outside it."""
    with tarfile.open(archive, "r:xz") as tar:
        for member in tar.getmembers():
            resolved = (target / member.name).resolve()
            if not resolved.is_relative_to(target.resolve()):
                raise ValueError(f"{archive.name}: member {member.name!r} points outside the kit")
        # Python 3.12+ warns without a filter; "data" keeps modes and in-archive hard links.
        options = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(target, **options)  # every member was checked above


def cache_key(*parts: str) -> str:
    """A short stable name for a cached payload built from ``parts``."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under ``folder``, each hard-linked file counted once."""
    seen, total = set(), 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            stat = path.stat()
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_size
    return total
