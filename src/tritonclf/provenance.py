"""What a job records about itself (versions, time), on Python 3.10 and from a checkout that is not installed.

NVIDIA's 24.10 container runs Python 3.10, which has no ``datetime.UTC``; the docs'
container flow runs the checkout with ``PYTHONPATH=src``, where ``importlib.metadata``
finds no distribution of this project or of optional packages. A missing package is
``None``, never an error that stops a build. Everything that stamps a record goes
through here.
"""

from __future__ import annotations

import datetime
import importlib.metadata
from collections.abc import Iterable

import tritonclf


def distribution_version(name: str) -> str | None:
    """The installed distribution's version (``numpy``, ``nvidia-pytriton``), or None when it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def installed_versions(names: Iterable[str]) -> dict[str, str | None]:
    """``distribution_version`` for each name, in order."""
    return {name: distribution_version(name) for name in names}


def project_version() -> str:
    """This project's version: the package's own ``__version__`` (pyproject reads it from there too)."""
    return tritonclf.__version__


def utc_timestamp() -> str:
    """Now, in UTC, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
