"""The values a tritonserver command line gives its options, read the way Triton reads them.

Triton parses its arguments with ``getopt_long`` and every option takes a value, so
``--name=value`` and ``--name value`` are the same (the value is the next argument even
when it starts with ``--``). An option given twice keeps both values: repeated options
(``--model-repository``, ``--backend-config``) use them all, the others the last.

    >>> option_values(["--http-port", "9000", "--http-port=9001"], "--http-port")
    ['9000', '9001']
    >>> last_value(["--model-repository=m"], "--model-control-mode", "none")
    'none'
"""

from __future__ import annotations

from collections.abc import Sequence


def option_values(args: Sequence[str], *names: str) -> list[str]:
    """Every value given to any of ``names`` (an option and its aliases), in command-line order."""
    values = []
    i = 0
    while i < len(args):
        name, separator, value = args[i].partition("=")
        if not separator and name.startswith("--"):
            # The next argument is this option's value, never an option of its own.
            value = args[i + 1] if i + 1 < len(args) else None
            i += 1
        if name in names and value is not None:
            values.append(value)
        i += 1
    return values


def last_value(args: Sequence[str], name: str, default: str) -> str:
    """The value in effect for a single-valued option: the last one given, else Triton's default."""
    values = option_values(args, name)
    return values[-1] if values else default


def model_control_mode(args: Sequence[str]) -> str:
    """``none`` (Triton's default), ``poll`` or ``explicit``."""
    return last_value(args, "--model-control-mode", "none").lower()
