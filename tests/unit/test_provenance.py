"""What builds record about themselves works on Python 3.10 and from a checkout that is not pip-installed.

NVIDIA's 24.10 container runs Python 3.10 (no ``datetime.UTC``) and the docs' container
flow runs the checkout with ``PYTHONPATH=src`` (no installed distribution to ask
``importlib.metadata`` about).
"""

from __future__ import annotations

import ast
import datetime

import tritonclf
from tritonclf.provenance import distribution_version, project_version, utc_timestamp
from tritonclf.repository import build

from ..conftest import ROOT

PACKAGE = ROOT / "src" / "tritonclf"


def test_version_of_a_distribution_that_is_not_installed_is_none():
    assert distribution_version("no-such-distribution-tritonclf") is None
    assert distribution_version("numpy")


def test_project_version_comes_from_the_package_not_an_installed_distribution():
    # pyproject.toml takes the version from tritonclf/__init__.py, so an uninstalled checkout knows it too.
    assert project_version() == tritonclf.__version__
    assert 'path = "src/tritonclf/__init__.py"' in (ROOT / "pyproject.toml").read_text()


def test_utc_timestamp_is_iso_seconds_in_utc():
    stamp = utc_timestamp()
    parsed = datetime.datetime.fromisoformat(stamp)
    assert parsed.utcoffset() == datetime.timedelta(0) and parsed.microsecond == 0


def test_repository_build_info_names_the_project_version():
    info = build._build_info()
    assert info["builder"] == f"triton-image-classifier {project_version()}"
    datetime.datetime.fromisoformat(info["built_at"])


def test_no_module_uses_datetime_utc_or_asks_importlib_metadata_directly():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "provenance.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "UTC":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} datetime.UTC (Python 3.11+)")
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "metadata"
                and getattr(node.value, "id", "") == "importlib"
            ):
                offenders.append(
                    f"{path.relative_to(ROOT)}:{node.lineno} importlib.metadata (use tritonclf.provenance)"
                )
    assert not offenders, "\n".join(offenders)
