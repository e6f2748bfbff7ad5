"""The helper every Python-backend model file carries to import the files the build copied beside it.

Each ``model.py`` must stand alone in its version folder (the stub has no ``tritonclf`` package),
so the loader cannot be imported from one place: the copies are held equal here instead.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import sys
import types

import pytest

from tritonclf.repository.classifiers.base import BACKEND_MODELS


def loader_sources() -> dict[str, str]:
    found = {}
    for path in sorted(BACKEND_MODELS.glob("*_model.py")):
        source = path.read_text()
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef) and node.name == "_load_beside":
                found[path.name] = ast.get_source_segment(source, node)
    return found


def test_every_model_file_carries_the_same_loader():
    sources = loader_sources()
    assert len(sources) == len(list(BACKEND_MODELS.glob("*_model.py"))) >= 5, sorted(sources)
    first = next(iter(sources.values()))
    assert [name for name, source in sources.items() if source != first] == []


def loader_beside(folder) -> types.FunctionType:
    """The loader, defined as if in a model file in ``folder``."""
    namespace = {"__file__": str(folder / "model.py"), "importlib": importlib, "os": os, "sys": sys}
    exec(next(iter(loader_sources().values())), namespace)
    return namespace["_load_beside"]


def test_the_loader_imports_once_and_forgets_a_file_that_failed(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "modules", dict(sys.modules))
    (tmp_path / "helper.py").write_text("import itertools\nCOUNT = next(itertools.count())\n")
    (tmp_path / "broken.py").write_text("raise RuntimeError('half written')\n")
    load = loader_beside(tmp_path)
    assert load("helper") is load("helper") and load("helper").COUNT == 0
    with pytest.raises(RuntimeError, match="half written"):
        load("broken")
    assert "_tritonclf_broken" not in sys.modules
    (tmp_path / "broken.py").write_text("FIXED = True\n")
    assert load("broken").FIXED
