"""The Python the server's stubs run: a venv-style prefix of the kit's own, first on the server's PATH.

The Python backend stub starts its interpreter with an isolated configuration
(``PyConfig_InitIsolatedConfig``): it reads no ``PYTHON*`` variable, ``PYTHONPATH``
included, and finds its packages through the ``python3`` first on ``PATH``, the way
CPython finds a venv (a ``pyvenv.cfg`` beside or above the executable). So the kit
writes one::

    stub-python/pyvenv.cfg                  home = the host interpreter's base folder
    stub-python/bin/python3 -> the host interpreter
    stub-python/lib/python3.X/site-packages/
        00-tritonclf-kit-carried.pth         the carried numpy 1.26 (Python 3.12 only)
        10-tritonclf-kit-host.pth            the host's site-packages, after it

numpy 2 in a stub corrupts BYTES inputs (the first model's warmup crashes the server),
so the carried numpy comes first; torch, Pillow and the rest come from the host. The
phases themselves keep the host's numpy. Every Python tag gets the prefix; only the
tag the carried numpy was built for gets the numpy.
"""

from __future__ import annotations

import shutil
import site
import sys
from pathlib import Path

CARRIED_PTH = "00-tritonclf-kit-carried.pth"
HOST_PTH = "10-tritonclf-kit-host.pth"


def host_site_packages() -> list[str]:
    """This interpreter's site-packages folders (a venv's own, plus its base's if it includes them)."""
    return [folder for folder in site.getsitepackages() if Path(folder).is_dir()]


def base_interpreter() -> Path:
    """The interpreter a venv was made from (the venv's own when this is no venv)."""
    return Path(getattr(sys, "_base_executable", "") or sys.executable)


def write_prefix(prefix: Path, tag: str, *, carried: list[Path], host_site: list[str]) -> Path:
    """Write the stub's prefix for Python ``tag`` (replacing any earlier one); returns its ``bin``.

    The stub never runs ``bin/python3``: it only locates the prefix from it, so a link to
    the host interpreter is all it needs.
    """
    if prefix.exists():
        shutil.rmtree(prefix)
    bin_dir = prefix / "bin"
    site_packages = prefix / "lib" / f"python{tag}" / "site-packages"
    bin_dir.mkdir(parents=True)
    site_packages.mkdir(parents=True)
    version = ".".join(map(str, sys.version_info[:3]))
    config = [
        f"home = {base_interpreter().parent}",
        "include-system-site-packages = false",
        f"version = {version}",
        f"executable = {base_interpreter()}",
    ]
    (prefix / "pyvenv.cfg").write_text("\n".join(config) + "\n")
    for name in ("python3", "python", f"python{tag}"):
        (bin_dir / name).symlink_to(sys.executable)
    if carried:
        (site_packages / CARRIED_PTH).write_text("".join(f"{folder}\n" for folder in carried))
    # addsitedir, not a plain path line: the host's own .pth files (editable installs, overlays) count too.
    calls = "; ".join(f"site.addsitedir({folder!r})" for folder in host_site)
    (site_packages / HOST_PTH).write_text(f"import site; {calls}\n" if calls else "")
    return bin_dir
