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

from tritonclf.serving.triton_args import option_values

# The parameter as text format writes it; reading the text keeps protobuf out of the server's start.
_PARAMETER = re.compile(r'key:\s*"response_cache_bytes"\s*value\s*\{\s*string_value:\s*"(\d+)"', re.MULTILINE)


def repositories(args: Sequence[str]) -> list[str]:
    """Every ``--model-repository`` value in tritonserver arguments (both spellings, repeated, its alias)."""
    return option_values(args, "--model-repository", "--model-store")


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
    if option_values(args, "--cache-config"):
        return None
    size = max([requested_cache_bytes(Path(r)) for r in repositories(args) if "://" not in r] or [0])
    return f"--cache-config=local,size={size}" if size else None
