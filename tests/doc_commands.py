"""The commands README.md, docs/*.md and the Makefile run, with ``--help`` or parsed as written.

A command is ``tritonclf JOB`` (also ``.venv/bin/tritonclf JOB``, ``python -m tritonclf JOB``)
or an entry script ``python build|clients|training/NAME.py``, found anywhere on a line of a
fenced code block (so ``docker run ... python build/onnx2trt.py`` counts too). A ``make``
line in a code block, and every target ``make help`` lists with the Makefile's defaults,
stand for the ``tritonclf`` commands ``make -n -B`` prints for it.

Parsing runs each job's own ``main`` until its argument parser has parsed the arguments
(the values' types included), then stops it: the job never runs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
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
    """Every line inside the document's fenced code blocks, continuation lines (``\\``) joined."""
    return [line for block in FENCE.findall(document.read_text()) for line in joined_lines(block)]


def joined_lines(text: str) -> list[str]:
    """Shell lines: a line ending in a backslash continues on the next."""
    return re.sub(r"\\\n[ \t]*", " ", text).splitlines()


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
    return run_driver(DRIVER, commands)


def run_driver(driver: str, payload) -> list | dict:
    """Run a driver script in a fresh Python from the checkout root (its ``src/`` first) on a JSON payload."""
    src = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", driver, json.dumps(payload)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": src},
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@dataclasses.dataclass(frozen=True)
class Invocation:
    """One documented command: the job and its arguments, and where it is shown."""

    job: str
    argv: tuple[str, ...]
    where: str


# Where a shell command's arguments end.
_SHELL_STOPS = re.compile(r"^(\||\|\||&&|;|&|\)|[0-9]?>.*|<.*)$")
_SCRIPT_JOB = re.compile(r"main\(\[\"([a-z][a-z0-9-]*)\"")


def script_job(script: str) -> str:
    """The job an entry script runs (``python build/build_repository.py`` -> ``build``)."""
    match = _SCRIPT_JOB.search((ROOT / script).read_text())
    assert match, f"{script} does not call tritonclf.cli.main([JOB, ...])"
    return match[1]


def shell_words(rest: str, quote: str = "") -> list[str] | None:
    """The arguments at the start of ``rest``, up to the end of the shell command; None if they cannot be split."""
    if quote:  # the command sits inside a quoted string (bash -c "..."): it ends at the closing quote
        rest = rest.split(quote, 1)[0]
    try:
        words = shlex.split(rest, comments=True)
    except ValueError:
        return None
    for index, word in enumerate(words):
        if _SHELL_STOPS.match(word):
            return words[:index]
    return words


def invocations_in(line: str, where: str) -> list[Invocation]:
    """The ``tritonclf`` commands on one shell line (their arguments as the shell would pass them)."""
    found = []
    for match in COMMAND.finditer(line):
        if match["script"]:
            job = script_job(match["script"])
        elif match["job"]:
            job = match["job"]
        else:
            continue
        before = line[: match.end()]
        quote = next((q for q in "\"'" if before.count(q) % 2), "")  # inside bash -c "...": up to its end
        words = shell_words(line[match.end() :], quote)
        if words is None:
            found.append(Invocation(job, ("<unbalanced quotes>",), where))
            continue
        found.append(Invocation(job, tuple(words), where))
    return found


INLINE_CODE = re.compile(r"(?<!`)`([^`]+)`(?!`)")


def inline_commands(document: Path) -> list[str]:
    """Inline code spans outside the code blocks that are a command with arguments (``tritonclf JOB --flag``).

    A span that is only a name (``tritonclf infer``) refers to the job and is not a command line.
    """
    prose = FENCE.sub("", document.read_text())
    spans = (" ".join(span.split()) for span in INLINE_CODE.findall(prose))
    return [span for span in spans if (match := COMMAND.match(span)) and span[match.end() :].strip()]


def documented_invocations() -> list[Invocation]:
    """Every ``tritonclf`` command the documents show (code blocks and inline), with its arguments."""
    found = []
    for document in DOCUMENTS:
        if document.is_file():
            for line in code_lines(document) + inline_commands(document):
                found += invocations_in(line, f"{document.relative_to(ROOT)}: {line.strip()}")
    return found


MAKE_LINE = re.compile(r"^(?:\$ )?((?:\w+=\S+\s+)*)make\s+(.*)$")
# Set for make -n only: upload refuses to start without it.
MAKE_PLACEHOLDERS = {"S3_URL": "s3://bucket/path"}


def documented_make_lines() -> list[tuple[list[str], str]]:
    """(make arguments, where) for every ``make`` line in the documents' code blocks."""
    found = []
    for document in DOCUMENTS:
        if document.is_file():
            for line in code_lines(document):
                for command in line.split("&&"):
                    match = MAKE_LINE.match(command.strip())
                    if match:
                        words = shlex.split(match[1], comments=True) + (shell_words(match[2]) or [])
                        found.append((words, f"{document.relative_to(ROOT)}: {line.strip()}"))
    return found


def make_targets() -> list[str]:
    """The targets ``make help`` lists."""
    return re.findall(r"^([a-z][a-z-]*):.*## ", (ROOT / "Makefile").read_text(), flags=re.MULTILINE)


def make_invocations(arguments: list[str], where: str) -> list[Invocation]:
    """The ``tritonclf`` commands ``make -n -B ARGUMENTS`` prints (every recipe, prerequisites included)."""
    variables = [f"{k}={v}" for k, v in MAKE_PLACEHOLDERS.items() if not any(a.startswith(f"{k}=") for a in arguments)]
    result = subprocess.run(
        ["make", "-n", "-B", "--no-print-directory", *variables, *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"make -n {' '.join(arguments)} ({where}): {result.stderr}"
    found = []
    for line in joined_lines(result.stdout):
        for job_line in re.findall(r"(?:^|\s)\S*/bin/tritonclf\s.*", line):
            words = shell_words(job_line.strip().split(None, 1)[1])
            if words:
                found.append(Invocation(words[0], tuple(words[1:]), f"{where}: {job_line.strip()}"))
    return found


def makefile_invocations() -> list[Invocation]:
    """What every listed target and every documented ``make`` line runs."""
    found = []
    for target in make_targets():
        found += make_invocations([target], f"make {target} (Makefile defaults)")
    for arguments, where in documented_make_lines():
        found += make_invocations(arguments, where)
    return found


# Runs each job's main until its parser has parsed the arguments, in one interpreter: the
# outermost parse_* call returns (leftover arguments refused), then _Parsed stops the job.
PARSE_DRIVER = """
import argparse, contextlib, io, json, sys
from tritonclf.cli import main
class _Parsed(BaseException):
    pass
depth = [0]
def stop_after(parse):
    def parse_then_stop(self, *args, **kwargs):
        depth[0] += 1
        try:
            parsed = parse(self, *args, **kwargs)
        finally:
            depth[0] -= 1
        if depth[0] == 0:
            raise _Parsed
        return parsed
    return parse_then_stop
for name in ("parse_args", "parse_known_args", "parse_intermixed_args", "parse_known_intermixed_args"):
    setattr(argparse.ArgumentParser, name, stop_after(getattr(argparse.ArgumentParser, name)))
results = []
for job, argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            main([job, *argv])
            outcome = "ran without parsing its arguments with argparse"
        except _Parsed:
            outcome = "parsed"
        except SystemExit as exit_:
            outcome = "parsed" if exit_.code in (0, None) else f"exit {exit_.code}"
        except Exception as error:
            outcome = f"raised {error!r}"
    results.append({"outcome": outcome, "stderr": err.getvalue().strip().splitlines()[-1:]})
print(json.dumps(results))
"""


def parse_failures(invocations: list[Invocation]) -> list[str]:
    """Each invocation whose job's parser refuses its arguments: where it is shown and what the parser said."""
    unique = list(dict.fromkeys(invocations))
    results = run_driver(PARSE_DRIVER, [(i.job, list(i.argv)) for i in unique])
    return [
        f"{i.where}\n    tritonclf {i.job} {shlex.join(i.argv)}: {r['outcome']} {' '.join(r['stderr'])}"
        for i, r in zip(unique, results, strict=True)
        if r["outcome"] != "parsed"
    ]
