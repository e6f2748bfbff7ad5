"""What a build records about itself (versions, time), on Python 3.10 and from a checkout that is not installed.

NVIDIA's 24.10 container runs Python 3.10, which has no ``datetime.UTC``; the docs'
container flow runs the checkout with ``PYTHONPATH=src``, where ``importlib.metadata``
finds no distribution of this project. Everything that stamps a record goes through here.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import re
from pathlib import Path

PROJECT = "triton-image-classifier"
_PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"  # src/tritonclf/ -> the checkout


def distribution_version(name: str) -> str | None:
    """The installed distribution's version, or None when it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def project_version(distribution: str = PROJECT, pyproject: Path = _PYPROJECT) -> str:
    """This project's version: installed, else the checkout's ``pyproject.toml``, else ``unknown``."""
    installed = distribution_version(distribution)
    if installed:
        return installed
    try:
        # No tomllib on Python 3.10; the one line we need is plain.
        match = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(), re.MULTILINE)
    except OSError:
        return "unknown"
    return match.group(1) if match else "unknown"


def utc_timestamp() -> str:
    """Now, in UTC, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
