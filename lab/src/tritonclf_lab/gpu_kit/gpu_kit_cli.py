"""``tritonclf gpu-kit``: write the self-contained GPU kit folder (``make gpu-kit``).

    tritonclf gpu-kit --export exports/efficientnet_lite0 --output gpu-kit
    tritonclf gpu-kit --build-args "--backend python-ort"      # the repository's build options

The kit holds: ``triton.tar.xz`` (the wheel's tritonserver, libraries without the grafted
libpython, the Python backend, a stub per ``--python-tags`` version, caches, and a
``libpython3.12.so.1.0`` for a GPU host without one; stripped), ``numpy.tar.xz`` (numpy
1.26.4 for Python 3.12, the server stubs' only: numpy 2 corrupts BYTES inputs in the
Python backend), ``models.tar.xz`` (the export's files that the repositories serve,
``repository/`` built with ``--build-args``, ``repository-cpu/``, the same on the CPU,
for ``--cpu-smoke``, and ``probe/``, the preflight's look inside a stub), ``src/``
(tritonclf and this lab, for ``PYTHONPATH``), ``run.sh`` and ``kit.json`` (what was
built, how, and the payloads' hashes). It refuses to write a kit over ``--max-mib``: the
GPU host takes at most 64 MiB of extra files.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tritonclf
import tritonclf_lab
from tritonclf import contract
from tritonclf.export_metadata import load_metadata
from tritonclf.files import sha256_file
from tritonclf.repository import build_cli
from tritonclf.serving import launcher
from tritonclf_lab.gpu_kit import pack
from tritonclf_lab.gpu_kit.probe import build_probe_repository

# What the GPU host serves: GPU preprocessing (nvJPEG) into the torch FP16 classifier with CUDA graphs.
# Change this one line (or pass --build-args) to switch.
KIT_BUILD_ARGS = "--preprocess torch --backend torch --device gpu"
NUMPY_PIN = "numpy==1.26.4"
TARGET_PYTHON = "3.12"
MAX_MIB = 60
# xz -9e: about 23.5 MB for Triton's parts, minutes of one core the first time (then cached).
XZ_LEVEL = "-9e"
MODELS_XZ_LEVEL = "-6"
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tritonclf" / "gpu-kit"
RUN_SCRIPT = Path(__file__).with_name("run.sh")


class KitError(RuntimeError):
    """The kit cannot be built as asked; the message says why and what to do."""


def cpu_build_args(build_args: str) -> list[str]:
    """The kit's build options on the cpu, one instance per model: the repository --cpu-smoke serves.

    One instance each: the smoke proves the kit serves, and CI machines are small.
    """
    args = shlex.split(build_args)
    out, index = [], 0
    while index < len(args):
        arg = args[index]
        if arg == "--device" and index + 1 < len(args):
            index += 2
            continue
        if not arg.startswith("--device="):
            out.append(arg)
        index += 1
    return [*out, "--device", "cpu", "--preprocess-instances", "1", "--classifier-instances", "1"]


def numpy_wheel(cache: Path, given: Path | None) -> Path:
    """The numpy 1.26.4 cp312 manylinux wheel: the one given, else downloaded once into the cache."""
    if given is not None:
        if not given.is_file():
            raise KitError(f"no numpy wheel at {given}")
        return given
    found = sorted(cache.glob("numpy-1.26.4-cp312-*manylinux*x86_64*.whl"))
    if found:
        return found[0]
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
    command += ["--python-version", TARGET_PYTHON, "--platform", "manylinux2014_x86_64", NUMPY_PIN, "-d", str(cache)]
    if subprocess.run(command, check=False).returncode != 0:
        raise KitError(f"pip could not download {NUMPY_PIN} for Python {TARGET_PYTHON}; pass --numpy-wheel")
    return numpy_wheel(cache, None)


def libpython_candidates(tag: str) -> list[Path]:
    """Shared libpython{tag} builds on this machine: pyenv's (newest first), then the system's."""
    soname = f"libpython{tag}.so.1.0"
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = sorted(glob.glob(str(pyenv / f"{tag}.*" / "lib" / soname)), key=_version_key, reverse=True)
    system = [f"/usr/lib/x86_64-linux-gnu/{soname}", f"/usr/lib64/{soname}", f"/usr/local/lib/{soname}"]
    return [Path(p) for p in [*found, *system] if Path(p).is_file()]


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parents[1].name
    return tuple(int(part) if part.isdigit() else -1 for part in version.split("."))


def carried_libpython(given: Path | None, tag: str) -> Path:
    """The ``libpython{tag}.so.1.0`` the kit carries for a host without one: the one given, else found here."""
    if given is not None:
        if not given.is_file() or not given.name.startswith(f"libpython{tag}.so"):
            raise KitError(f"--libpython {given}: not a libpython{tag}.so.1.0 file")
        return given
    found = libpython_candidates(tag)
    if not found:
        raise KitError(
            f"no shared libpython{tag}.so.1.0 on this machine (pyenv's or the system's) for the kit to carry: "
            f"install one (pyenv install {tag}) or pass --libpython PATH"
        )
    return found[0]


def triton_payload(cache: Path, python_tags: list[str], level: str, libpythons: dict[str, Path]) -> Path:
    """The wheel's serving parts and the carried libpythons, stripped, as a cached tar.xz."""
    root = launcher.binary_path().parents[2]
    version = (root / "tritonserver" / "bin" / "tritonserver").stat()
    carried = [f"{tag}={p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for tag, p in sorted(libpythons.items())]
    key = pack.cache_key("triton", str(root), str(version.st_size), str(version.st_mtime_ns), level, *python_tags)
    key = pack.cache_key(key, *carried)
    output = cache / f"triton-{key}.tar.xz"
    if output.is_file():
        return output
    with tempfile.TemporaryDirectory(prefix="gpu-kit-triton-") as tmp:
        staging = Path(tmp)
        pack.stage(pack.triton_parts(root, launcher.library_dir(), python_tags, libpythons), staging)
        count = pack.strip_elves(staging)
        size_mb = pack.folder_bytes(staging) / 1e6
        print(f"triton: {count} ELF files stripped, {size_mb:.1f} MB; compressing (xz {level})", flush=True)
        return pack.tar_xz(staging, output, level=level)


def numpy_payload(cache: Path, wheel: Path, level: str) -> Path:
    """The importable files of numpy (no tests, headers or stubs) as a cached tar.xz."""
    output = cache / f"{wheel.stem}{level}.tar.xz"
    if output.is_file():
        return output
    with tempfile.TemporaryDirectory(prefix="gpu-kit-numpy-") as tmp:
        pack.numpy_parts(wheel, Path(tmp))
        return pack.tar_xz(Path(tmp), output, level=level)


def build_models(export: Path, staging: Path, build_args: str) -> dict[str, list[str]]:
    """export/, repository/ (the kit's options), repository-cpu/ and probe/ under ``staging``; the build lines."""
    runs = {"repository": shlex.split(build_args), "repository-cpu": cpu_build_args(build_args)}
    for folder, extra in runs.items():
        argv = ["--export", str(export), "--repository", str(staging / folder), *extra]
        if build_cli.main(argv) != 0:
            raise KitError(f"tritonclf build {shlex.join(extra)} failed (its error is above)")
    build_probe_repository(staging / "probe")
    served = {pack.cache_key(sha256_file(p)) for p in staging.rglob("*") if p.is_file()}
    target = staging / "export"
    target.mkdir()
    left_out = []
    for path in sorted(export.iterdir()):
        if not path.is_file():
            continue
        big_and_unserved = path.stat().st_size > 1 << 20 and pack.cache_key(sha256_file(path)) not in served
        if big_and_unserved:
            left_out.append(path.name)
        else:
            shutil.copy2(path, target / path.name)
    return {"build_args": {k: shlex.join(v) for k, v in runs.items()}, "export_left_out": left_out}


def write_kit(  # noqa: PLR0917 - one call site, every argument named there
    export: Path,
    output: Path,
    build_args: str,
    python_tags: list[str],
    wheel: Path | None,
    max_mib: float,
    cache: Path,
    level: str = XZ_LEVEL,
    libpython: Path | None = None,
) -> dict:
    """Build the kit into a staging folder beside ``output``, check its size, then swap it in."""
    if not (export / contract.METADATA_FILENAME).is_file():
        raise KitError(f"no export at {export} (no {contract.METADATA_FILENAME}): run `make export`")
    metadata = load_metadata(export / contract.METADATA_FILENAME)
    libpythons = {TARGET_PYTHON: carried_libpython(libpython, TARGET_PYTHON)}
    cache.mkdir(parents=True, exist_ok=True)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}-staging-", dir=output.parent))
    try:
        started = time.monotonic()
        payloads = {
            "triton.tar.xz": triton_payload(cache, python_tags, level, libpythons),
            "numpy.tar.xz": numpy_payload(cache, numpy_wheel(cache, wheel), level),
        }
        for name, path in payloads.items():
            shutil.copy2(path, staging / name)
        with tempfile.TemporaryDirectory(prefix="gpu-kit-models-") as tmp:
            models = build_models(export, Path(tmp), build_args)
            saved = pack.link_duplicates(Path(tmp))
            # Float weights hardly compress: a fast level loses little.
            pack.tar_xz(Path(tmp), staging / "models.tar.xz", level=min(level, MODELS_XZ_LEVEL))
        for package in (tritonclf, tritonclf_lab):
            source = Path(package.__file__).parent
            shutil.copytree(source, staging / "src" / source.name, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy2(RUN_SCRIPT, staging / "run.sh")
        os.chmod(staging / "run.sh", 0o755)
        manifest = {
            "model": metadata.model_name,
            "python_tags": python_tags,
            "target_python": TARGET_PYTHON,
            "numpy": NUMPY_PIN,
            "carried_libpython": {tag: str(path.resolve()) for tag, path in libpythons.items()},
            **models,
            "duplicate_bytes_stored_once": saved,
            "payloads": {
                name: {"bytes": (staging / name).stat().st_size, "sha256": sha256_file(staging / name)}
                for name in ("triton.tar.xz", "numpy.tar.xz", "models.tar.xz")
            },
            "build_seconds": round(time.monotonic() - started, 1),
        }
        (staging / "kit.json").write_text(json.dumps(manifest, indent=2) + "\n")
        total = pack.folder_bytes(staging)
        manifest["kit_bytes"] = total
        if total > max_mib * 2**20:
            raise KitError(f"the kit is {total / 2**20:.1f} MiB, over the {max_mib:g} MiB limit: {_sizes(staging)}")
        (staging / "kit.json").write_text(json.dumps(manifest, indent=2) + "\n")
        os.chmod(staging, 0o755)  # mkdtemp made it private
        if output.exists():
            shutil.rmtree(output)
        os.rename(staging, output)
        return manifest
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _sizes(folder: Path) -> str:
    return ", ".join(f"{p.name} {p.stat().st_size / 2**20:.1f} MiB" for p in sorted(folder.iterdir()) if p.is_file())


def main(argv: list[str] | None = None) -> int:
    """Build the kit; one line per payload, or one error line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", type=Path, default=Path("exports/efficientnet_lite0"))
    parser.add_argument("--output", type=Path, default=Path("gpu-kit"))
    parser.add_argument("--build-args", default=KIT_BUILD_ARGS, help="tritonclf build options (default: %(default)s)")
    parser.add_argument(
        "--python-tags",
        default=f"{TARGET_PYTHON},{launcher.python_tag()}",
        help="Python backend stubs to carry (default: the GPU host's and this one's: %(default)s)",
    )
    parser.add_argument("--numpy-wheel", type=Path, help="numpy 1.26.4 cp312 wheel (default: pip download, cached)")
    parser.add_argument(
        "--libpython",
        type=Path,
        help=f"libpython{TARGET_PYTHON}.so.1.0 to carry for a host without one (default: pyenv's newest, else the "
        "system's)",
    )
    parser.add_argument("--max-mib", type=float, default=MAX_MIB, help="size limit (default: %(default)s)")
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR, help="default: %(default)s")
    parser.add_argument("--xz-level", default=XZ_LEVEL, help="xz preset; -1 for a fast test kit (default: %(default)s)")
    args = parser.parse_args(argv)
    tags = sorted({t.strip() for t in args.python_tags.split(",") if t.strip()})
    try:
        manifest = write_kit(
            export=args.export,
            output=args.output,
            build_args=args.build_args,
            python_tags=tags,
            wheel=args.numpy_wheel,
            max_mib=args.max_mib,
            cache=args.cache_dir,
            level=args.xz_level,
            libpython=args.libpython,
        )
    except (KitError, launcher.EmbeddedServerError, FileNotFoundError) as err:
        print(f"gpu-kit: error: {err}", file=sys.stderr)
        return 1
    for name, payload in manifest["payloads"].items():
        print(f"{args.output}/{name}: {payload['bytes'] / 2**20:.1f} MiB")
    if manifest["export_left_out"]:
        print(f"left out of the kit's export (no repository serves it): {', '.join(manifest['export_left_out'])}")
    total = manifest["kit_bytes"] / 2**20
    print(f"{args.output}/: {total:.1f} MiB in all (limit {args.max_mib:g}); run: bash {args.output}/run.sh")
    return 0


if __name__ == "__main__":
    sys.exit(main())
