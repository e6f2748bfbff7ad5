"""The commands README.md and docs/*.md show, and running one with ``--help``.

A command is ``tritonclf JOB`` (also ``.venv/bin/tritonclf JOB``, ``python -m tritonclf JOB``)
or an entry script ``python build|clients|training/NAME.py``, found anywhere on a line of a
fenced code block (so ``docker run ... python build/onnx2trt.py`` counts too).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "model_repository/README.md")
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", flags=re.MULTILINE | re.DOTALL)
# A command starts a shell command: at the line's start (after a "$ " prompt), after &&, ;, |
# or a quote, with optional VAR=value assignments before it.
COMMAND = re.compile(
    r"(?:^|&&|;|\||\"|\$)\s*(?:\w+=\S*\s+)*(?:"
    r"(?:\.venv/bin/|python3? -m )?tritonclf(?:\s+(?P<job>[a-z][a-z0-9-]*))?(?=\s|$|[\"'`)])"
    r"|python3? (?P<script>(?:build|clients|training)/\w+\.py)"
    r")",
    flags=re.MULTILINE,
)
PYTHON_RUN = re.compile(r"\bpython[\d.]* (-m [\w.]+|[\w./-]+\.py)\b")
# Runs each command's --help in one interpreter (one start-up, not one per command): a job
# through the console script's entry point, a script as `python SCRIPT` would. It reports
# the exit status, the output and whether torch had been imported by then.
DRIVER = """
import contextlib, io, json, runpy, sys
from tritonclf.cli import main
results = {}
for command in json.loads(sys.argv[1]):
    program, _, name = command.partition(" ")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            if program == "python":
                sys.argv = [name, "--help"]
                runpy.run_path(name, run_name="__main__")
                code = 0
            else:
                code = main([name, "--help"] if name else ["--help"])
        except SystemExit as exit_:
            code = exit_.code
        except Exception as error:
            code, _ = f"raised {error!r}", print(repr(error), file=err)
    results[command] = {"code": code, "stdout": out.getvalue(), "stderr": err.getvalue(),
                        "torch": "torch" in sys.modules}
print(json.dumps(results))
"""


def code_lines(document: Path) -> list[str]:
    """Every line inside the document's fenced code blocks."""
    return [line for block in FENCE.findall(document.read_text()) for line in block.splitlines()]


def documented_commands() -> dict[str, list[str]]:
    """``"tritonclf JOB"`` or ``"python SCRIPT"`` -> the lines that show it (``README.md: LINE``)."""
    found: dict[str, list[str]] = {}
    for document in DOCUMENTS:
        if not document.is_file():
            continue
        for line in code_lines(document):
            for match in COMMAND.finditer(line):
                if match["script"]:
                    key = f"python {match['script']}"
                else:
                    key = f"tritonclf {match['job']}" if match["job"] else "tritonclf"
                found.setdefault(key, []).append(f"{document.relative_to(ROOT)}: {line.strip()}")
    return dict(sorted(found.items()))


def documented_python_runs() -> list[tuple[str, str]]:
    """Every ``python FILE.py`` and ``python -m MODULE`` in the docs' code blocks: (target, line)."""
    runs = []
    for document in DOCUMENTS:
        if document.is_file():
            for line in code_lines(document):
                runs += [(match[1], line.strip()) for match in PYTHON_RUN.finditer(line)]
    return runs


def run_helps(commands: list[str]) -> dict[str, dict]:
    """``COMMAND --help`` for each command, from the checkout root: exit code, output, torch imported."""
    src = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(commands)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": src},
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
