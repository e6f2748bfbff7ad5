"""Model names and repository paths Triton can start a Python-backend model from.

    model_name_problem("gray crème")       # "has a space and a non-ASCII letter ..."; None for a good name
    suggest_model_name("gray crème")       # "gray_creme"
    repository_path_problem(Path("my models/model_repository"))

Triton 2.51's Python backend (python_backend r24.10, ``src/stub_launcher.cc``) starts the stub
of every model with ``bash -c "exec STUB REPOSITORY/NAME/VERSION/model.py SHM_REGION SIZE ..."``.
A space in the model's folder path (the repository's path or the model's name) splits that
command, and the stub aborts the whole server reading a size from the wrong word
(``std::invalid_argument: stol``); a shell character changes the command; and the stub's
Python, started with an isolated configuration, reads paths as ASCII, so a non-ASCII letter
leaves the model UNAVAILABLE (``UnicodeEncodeError``). All three were seen with the embedded
server. Later python_backend releases refuse the shell characters in names outright.

So a model name is ASCII letters, digits, ``_``, ``-`` and ``.``, starting with a letter or
digit: it then also reads the same in a URL (``/v2/models/NAME/infer``) and on a command line.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from tritonclf import contract

# The build adds the longest suffix to the ensemble's name; a folder name has at most 255 bytes.
MAX_NAME_LENGTH = 255 - max(len(contract.PREPROCESS_SUFFIX), len(contract.CLASSIFIER_SUFFIX))
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_ALLOWED = "ASCII letters, digits, '_', '-' and '.', starting with a letter or digit"
# What bash reads as more than a character of a word, and newer python_backend releases refuse.
_SHELL_CHARACTERS = frozenset(";|&$`<>()[]{}\\\"'*?~#!")


def _what_is_wrong(text: str, allowed: re.Pattern[str] | None) -> list[str]:
    """The kinds of characters in ``text`` a stub's command line cannot carry."""
    kinds = []
    if any(c.isspace() for c in text):
        kinds.append("a space")
    if any(ord(c) > 127 for c in text):
        kinds.append("a non-ASCII letter")
    shell = sorted({c for c in text if c in _SHELL_CHARACTERS})
    if shell:
        kinds.append(f"shell characters ({''.join(shell)})")
    if allowed is not None and not kinds:
        others = sorted({c for c in text if not (c.isascii() and (c.isalnum() or c in "_.-"))})
        if others:
            kinds.append(f"the characters {''.join(others)!r}")
    return kinds


def model_name_problem(name: str) -> str | None:
    """Why Triton cannot serve a model of this name, in one phrase; None for a name it can."""
    if not name:
        return "is empty"
    kinds = _what_is_wrong(name, _NAME)
    if kinds:
        return f"has {' and '.join(kinds)}: model names are {_ALLOWED}"
    if not _NAME.fullmatch(name):
        return f"does not start with a letter or digit: model names are {_ALLOWED}"
    if len(name) > MAX_NAME_LENGTH:
        return f"is longer than {MAX_NAME_LENGTH} characters"
    return None


def suggest_model_name(text: str) -> str:
    """A name Triton serves that reads like ``text``: accents dropped, other characters as ``_``; may be empty."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", ascii_text).strip("_.-")
    return name[:MAX_NAME_LENGTH]


def describe_name_problem(name: str, problem: str, flag: str = "--name") -> str:
    """The one-line error for a bad name, with a name to use instead when one can be made."""
    suggestion = suggest_model_name(name)
    hint = f"; for example {flag} {suggestion}" if suggestion and suggestion != name else ""
    return f"model name {name!r} {problem}{hint}"


def repository_path_problem(repository: Path) -> str | None:
    """Why the Python backend cannot start models under this folder; None when it can."""
    path = str(Path(repository).resolve())
    kinds = _what_is_wrong(path, None)
    if not kinds:
        return None
    return (
        f"its path {path!r} has {' and '.join(kinds)}: Triton's Python backend starts its models through "
        "a shell command line that cannot carry them; serve it from a path without them"
    )
