"""Put a working ``perf_analyzer`` (Triton's load generator) in this virtual environment's ``bin``.

    .venv/bin/tritonclf perf-tools      # what `make perf-tools` runs
    .venv/bin/perf_analyzer --version

The ``perf-analyzer`` wheel on the index needs glibc 2.38; Debian 12 has 2.36. The
``tritonclient==2.41.1`` manylinux1 wheel still carries a perf_analyzer binary that
runs here, so this downloads that wheel (hash-checked, never installed: the project
uses tritonclient 2.73), extracts the binary into ``lib/perf_analyzer/``, links the
two libraries it needs (``libb64.so.0d``, ``libcudart.so.12``) from the copies the
``nvidia-pytriton`` wheel already ships (their file names carry a hash suffix) or
from the system, and writes ``bin/perf_analyzer``: a wrapper that sets
``LD_LIBRARY_PATH`` and runs it. Running it again when the tool works does nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path

from tritonclf.cli_options import fail
from tritonclf.files import sha256_file

VERSION = "2.41.1"
WHEEL = f"tritonclient-{VERSION}-py3-none-manylinux1_x86_64.whl"
WHEEL_SHA256 = "22ad56ae5ab25518862dec85af0a8246a32a1e14e2ee1d86f1444ce432c254e1"
BINARY_IN_WHEEL = f"tritonclient-{VERSION}.data/data/bin/perf_analyzer"
# soname -> file name patterns, in the order they are tried inside site-packages.
LIBRARIES = {
    "libb64.so.0d": ("nvidia_pytriton.libs/libb64-*.so.0d",),
    "libcudart.so.12": ("nvidia_pytriton.libs/libcudart-*.so.12*", "nvidia/cuda_runtime/lib/libcudart.so.12"),
}
WRAPPER = """#!/bin/sh
# Written by tritonclf perf-tools: perf_analyzer {version} from the tritonclient {version} wheel,
# with the libraries it needs linked beside it. Rerun `make perf-tools` to recreate it.
lib="$(dirname "$(readlink -f "$0")")/../lib/perf_analyzer"
LD_LIBRARY_PATH="$lib${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}" exec "$lib/perf_analyzer" "$@"
"""


class InstallError(RuntimeError):
    """Why perf_analyzer could not be installed, in one line."""


def installed_version(wrapper: Path) -> str | None:
    """What ``perf_analyzer --version`` says through the wrapper; None if it does not run."""
    if not wrapper.is_file():
        return None
    try:
        done = subprocess.run([str(wrapper), "--version"], check=False, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    # "Perf Analyzer Version 2.41.1 (commit b752bdd)", on stderr.
    text = (done.stdout + done.stderr).strip()
    return text if done.returncode == 0 and VERSION in text else None


def download_wheel(folder: Path) -> Path:
    """``pip download`` the wheel into ``folder`` and check its hash."""
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
    command += ["--platform", "manylinux1_x86_64", "--dest", str(folder), f"tritonclient=={VERSION}"]
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    wheel = folder / WHEEL
    if done.returncode != 0 or not wheel.is_file():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise InstallError(f"pip could not download tritonclient=={VERSION}: {last}")
    if sha256_file(wheel) != WHEEL_SHA256:
        raise InstallError(f"{WHEEL} does not have the expected SHA-256 {WHEEL_SHA256}; not using it")
    return wheel


def find_library(soname: str, site_packages: Path) -> Path | None:
    """A file providing ``soname``: from site-packages (pytriton's bundled copies), else the system's."""
    for pattern in LIBRARIES[soname]:
        found = sorted(site_packages.glob(pattern))
        if found:
            return found[0]
    for folder in ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/local/cuda/lib64"):
        candidate = Path(folder) / soname
        if candidate.exists():
            return candidate
    return None


def link_libraries(lib_dir: Path, site_packages: Path) -> dict[str, Path]:
    """Symlinks named by soname in ``lib_dir``; relative inside the venv so it can move."""
    linked = {}
    for soname in LIBRARIES:
        target = find_library(soname, site_packages)
        if target is None:
            raise InstallError(
                f"no {soname} found: run `make setup` (nvidia-pytriton ships it), "
                f"or apt-get install libb64-0d / pip install nvidia-cuda-runtime-cu12"
            )
        link = lib_dir / soname
        link.unlink(missing_ok=True)
        link.symlink_to(os.path.relpath(target, lib_dir))
        linked[soname] = target
    return linked


def install(venv: Path, site_packages: Path) -> str:
    """Download, extract, link, wrap, verify; returns the version line."""
    wrapper = venv / "bin" / "perf_analyzer"
    lib_dir = venv / "lib" / "perf_analyzer"
    lib_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="perf-analyzer-") as tmp:
        wheel = download_wheel(Path(tmp))
        with zipfile.ZipFile(wheel) as archive, archive.open(BINARY_IN_WHEEL) as source:
            staged = lib_dir / ".perf_analyzer.tmp"
            with open(staged, "wb") as target:
                shutil.copyfileobj(source, target)
            staged.chmod(0o755)
            staged.replace(lib_dir / "perf_analyzer")
    link_libraries(lib_dir, site_packages)
    staged = wrapper.with_name(".perf_analyzer.tmp")
    staged.write_text(WRAPPER.format(version=VERSION))
    staged.chmod(0o755)
    staged.replace(wrapper)
    version = installed_version(wrapper)
    if version is None:
        missing = subprocess.run(
            ["ldd", str(lib_dir / "perf_analyzer")],
            check=False,
            capture_output=True,
            text=True,
            env={**os.environ, "LD_LIBRARY_PATH": str(lib_dir)},
        ).stdout
        unresolved = [line.split()[0] for line in missing.splitlines() if "not found" in line]
        raise InstallError(f"perf_analyzer does not run; unresolved libraries: {', '.join(unresolved) or 'none'}")
    return version


def main(argv: list[str] | None = None) -> int:
    """Install unless a working perf_analyzer is already there."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="reinstall even if perf_analyzer works")
    args = parser.parse_args(argv)
    venv = Path(sys.prefix)
    if sys.prefix == sys.base_prefix:
        return fail("perf-tools", "run this with the virtual environment's python (.venv/bin/python)")
    wrapper = venv / "bin" / "perf_analyzer"
    version = None if args.force else installed_version(wrapper)
    if version:
        print(f"{wrapper}: {version} (already installed)")
        return 0
    try:
        version = install(venv, Path(sysconfig.get_paths()["purelib"]))
    except InstallError as err:
        return fail("perf-tools", err)
    print(f"{wrapper}: {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
