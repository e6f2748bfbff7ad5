"""Install NVIDIA's Model Analyzer into its own virtual environment (``.venv-analyzer``).

    tritonclf analyzer-tools                      # what `make analyzer-tools` runs
    .venv-analyzer/bin/model-analyzer --version   # 1.58.0

Model Analyzer pulls numpy 2 and tritonclient 2.73; the server's environment must keep
numpy < 2 (the Python backend corrupts BYTES tensors with numpy 2), so it gets a venv of
its own, pinned by ``analyzer-requirements.txt`` beside this file. Running it again
with the same pins does nothing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from tritonclf.files import sha256_file

REQUIREMENTS = Path(__file__).with_name("analyzer-requirements.txt")
DEFAULT_VENV = Path(".venv-analyzer")
STAMP = ".requirements.sha256"  # the pins the venv was installed from


class InstallError(RuntimeError):
    """Why Model Analyzer could not be installed, in one line."""


def executable(venv: Path) -> Path:
    """The ``model-analyzer`` command of a venv."""
    return venv / "bin" / "model-analyzer"


def is_current(venv: Path) -> bool:
    """Installed from the current pins and runnable."""
    stamp = venv / STAMP
    return executable(venv).is_file() and stamp.is_file() and stamp.read_text().strip() == sha256_file(REQUIREMENTS)


def install(venv: Path, python: str = sys.executable) -> None:
    """Create the venv and install the pinned packages (pip's cache makes a reinstall quick)."""
    if not (venv / "bin" / "python").is_file():
        done = subprocess.run([python, "-m", "venv", str(venv)], check=False, capture_output=True, text=True)
        if done.returncode != 0:
            raise InstallError(f"could not create {venv}: {done.stderr.strip().splitlines()[-1:]}")
    command = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)]
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise InstallError(f"pip could not install Model Analyzer into {venv}: {last}")
    version = subprocess.run([str(executable(venv)), "--version"], check=False, capture_output=True, text=True)
    if version.returncode != 0:
        raise InstallError(f"{executable(venv)} does not run: {version.stderr.strip()[-200:]}")
    (venv / STAMP).write_text(sha256_file(REQUIREMENTS) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Install unless the venv already matches the pins."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="default: %(default)s")
    parser.add_argument("--force", action="store_true", help="reinstall even if up to date")
    args = parser.parse_args(argv)
    if is_current(args.venv) and not args.force:
        print(f"{executable(args.venv)}: up to date")
        return 0
    print(f"installing Model Analyzer into {args.venv} (a few minutes the first time)", flush=True)
    try:
        install(args.venv)
    except InstallError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{executable(args.venv)}: installed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
