"""Every file a docstring or a document names exists in the checkout.

A path counts when it names one of the checkout's source folders (``src/``, ``lab/``,
``tests/``, ``docs/``, ``build/``, ``clients/``, ``training/``, ``deploy/``) or a package
folder (``tritonclf/...``, ``gpu_kit/...``), or when it is a bare ``NAME.py``. Generated
outputs (``exports/...``, ``model_repository/NAME/1/...``) and placeholders
(``training/NAME.py``) are not files of the checkout and are skipped.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

from ..doc_commands import ROOT

TRACKED = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
TRACKED_NAMES = {Path(p).name for p in TRACKED}
FOLDERS = {"src", "lab", "tests", "docs", "build", "clients", "training", "deploy", ".ci"}
PACKAGE_FOLDERS = {
    "tritonclf", "tritonclf_lab", "bench", "gpu_kit", "repository", "serving", "client", "samples", "backend_models",
}  # fmt: skip
PACKAGE_ROOTS = (ROOT, ROOT / "src", ROOT / "lab/src", ROOT / "src/tritonclf", ROOT / "lab/src/tritonclf_lab")
# Files of other projects, named with their project.
ELSEWHERE = {
    "validate.py",  # timm's validate.py
    "docs/config.md",  # Model Analyzer's configuration reference
    "model.py",  # the name Triton's Python backend loads in a version directory
}
PLACEHOLDERS = {"NAME", "FILE", "RUN", "DIR", "JOB", "MODEL", "TAG"}
PATH = re.compile(r"(?<![\w./-])((?:\.?[\w-]+/)*[\w-]+\.(?:py|md|txt|yaml|sh|toml|in|json))\b")


def named_paths(text: str) -> list[str]:
    """The checkout paths a text names (see the module docstring)."""
    found = []
    for path in PATH.findall(text):
        parts = path.split("/")
        if path in ELSEWHERE or PLACEHOLDERS & set(re.split(r"[/._-]", path)):
            continue
        if len(parts) > 1 and parts[0] not in FOLDERS | PACKAGE_FOLDERS:
            continue
        if len(parts) == 1 and not path.endswith(".py"):
            continue
        found.append(path)
    return found


def exists(path: str, beside: Path) -> bool:
    if "/" not in path:
        return path in TRACKED_NAMES
    return any((base / path).exists() for base in (*PACKAGE_ROOTS, beside))


def docstrings(source: Path) -> list[str]:
    tree = ast.parse(source.read_text())
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef))]
    return [text for text in map(ast.get_docstring, nodes) if text]


def missing_paths() -> list[str]:
    missing = []
    for name in TRACKED:
        file = ROOT / name
        if name.endswith(".py"):
            texts = docstrings(file)
        elif name.endswith(".md"):
            texts = [file.read_text()]
        else:
            continue
        missing += [f"{name}: {p}" for text in texts for p in named_paths(text) if not exists(p, file.parent)]
    return missing


def test_the_checker_finds_a_missing_file_and_skips_outputs_and_placeholders():
    text = "configs in ``model_specs.py``; run python tests/bad_images.py; writes exports/NAME/model.onnx"
    assert named_paths(text) == ["model_specs.py", "tests/bad_images.py"]
    assert named_paths("python training/NAME.py, timm's validate.py, docs/GPU.md") == ["docs/GPU.md"]
    assert not exists("model_specs.py", ROOT) and exists("preprocess.py", ROOT)
    assert exists("tritonclf/preprocess.py", ROOT) and exists("gpu_kit/run.sh", ROOT)


def test_every_file_a_docstring_or_document_names_exists():
    missing = missing_paths()
    assert not missing, "named but not in the checkout:\n" + "\n".join(missing)


def test_the_readme_layout_names_every_package_folder():
    (layout,) = re.findall(r"```\n(src/tritonclf/\n.*?)```", (ROOT / "README.md").read_text(), re.S)
    folders = [
        path.name
        for package in (ROOT / "src/tritonclf", ROOT / "lab/src/tritonclf_lab")
        for path in package.iterdir()
        if (path / "__init__.py").is_file()
    ]
    assert {"training", "repository", "serving", "client", "bench", "gpu_kit"} <= set(folders)
    unnamed = [folder for folder in folders if f"{folder}/" not in layout]
    assert not unnamed, f"README's layout does not name {unnamed}"
