"""Versions of installed packages, recorded beside what a job produced.

NVIDIA's container runs the checkout with ``PYTHONPATH=src`` (docs/GPU.md), so our own
distribution, and any optional one, may be absent: a missing package is ``None``, never
an error that stops a build.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable


def installed_version(distribution: str) -> str | None:
    """The installed version of a distribution (``numpy``, ``nvidia-pytriton``), or ``None``."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def installed_versions(distributions: Iterable[str]) -> dict[str, str | None]:
    """``installed_version`` for each name, in order."""
    return {name: installed_version(name) for name in distributions}
