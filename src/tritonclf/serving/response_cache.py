"""The ``--cache-config`` a repository needs: the largest response cache byte budget its configs ask for.

``tritonclf build --response-cache-bytes N`` turns on Triton's response cache in the ensemble's
config and writes N beside it (parameter ``response_cache_bytes``); the cache itself is a server
setting (``--cache-config local,size=N``), so our ``tritonserver`` reads the local repositories it
is given and adds the flag unless the caller passed one. Object-store repositories are not read:
pass the flag yourself (the deploy files do).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

# The parameter as text format writes it; reading the text keeps protobuf out of the server's start.
_PARAMETER = re.compile(r'key:\s*"response_cache_bytes"\s*value\s*\{\s*string_value:\s*"(\d+)"', re.MULTILINE)


def repositories(args: Sequence[str]) -> list[str]:
    """Every ``--model-repository`` value in tritonserver arguments (both spellings, repeated)."""
    found, it = [], iter(args)
    for arg in it:
        if arg.startswith("--model-repository="):
            found.append(arg.split("=", 1)[1])
        elif arg in ("--model-repository", "--model-store"):
            found.append(next(it, ""))
        elif arg.startswith("--model-store="):
            found.append(arg.split("=", 1)[1])
    return found


def requested_cache_bytes(repository: Path) -> int:
    """The largest budget a model config in this local repository asks for (0: none)."""
    sizes = [0]
    for config in Path(repository).glob("*/config.pbtxt"):
        try:
            sizes += [int(m) for m in _PARAMETER.findall(config.read_text())]
        except OSError:
            continue
    return max(sizes)


def cache_flag(args: Sequence[str]) -> str | None:
    """``--cache-config=local,size=N`` for the local repositories in ``args``, or None."""
    if any(a == "--cache-config" or a.startswith("--cache-config=") for a in args):
        return None
    size = max([requested_cache_bytes(Path(r)) for r in repositories(args) if "://" not in r] or [0])
    return f"--cache-config=local,size={size}" if size else None
