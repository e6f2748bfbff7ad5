"""The flags every command that talks to a server shares, and the exit codes of every command.

Flags (the same spelling and meaning in ``infer``, ``evaluate``, ``bench``, ``perf``,
``demo`` and ``soak``):

- ``--url HOST:PORT``: a running server's address for ``--protocol`` (default: Triton's
  port on localhost, 8001 for gRPC, 8000 for HTTP; commands that can start their own
  server start one when it is not given). ``bench`` measures both protocols of one
  server and takes the HTTP address as ``--http-url``.
- ``--protocol grpc|http``: the API to call (``bench`` takes a comma-separated list and
  also knows ``grpc-shm``).
- ``--model NAME``: the ensemble to call (default: the server's only ensemble).
- ``--concurrency N``: requests in flight. Commands that sweep levels (``bench``,
  ``perf``) also take a list ``1,2,4,8`` or an inclusive range ``1:8`` / ``1:16:4``
  (start:end:step, as perf_analyzer's ``--concurrency-range``); the others take one level.
- ``--timeout-s S``: how long one request may take before it counts as failed.

Exit codes:

- 0 (``EXIT_OK``): everything was done.
- 1 (``EXIT_FAILED``): the command ran, but some inputs were rejected or a check failed
  (an image the server refused, a top-1 under ``--min-top1``, a soak problem).
- 2 (``EXIT_UNUSABLE``): nothing could be done: a usage error (argparse's own code), an
  unreachable server, a missing file or model.
- 130: interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import sys

from tritonclf.client.triton_client import PROTOCOLS

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_UNUSABLE = 2
EXIT_INTERRUPTED = 130


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, not {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, not {text!r}")
    return value


def concurrency_levels(text: str) -> tuple[int, ...]:
    """``"8"`` -> (8,); ``"1,2,4"`` -> (1, 2, 4); ``"1:8"`` -> (1, ..., 8); ``"1:16:4"`` -> (1, 5, 9, 13)."""
    hint = "a level (8), a list (1,2,4,8) or a range start:end[:step] (1:8:1)"
    try:
        if ":" in text:
            parts = [int(v) for v in text.split(":")]
            if len(parts) not in (2, 3):
                raise ValueError
            start, end, step = parts[0], parts[1], parts[2] if len(parts) == 3 else 1
            if step < 1 or end < start:
                raise ValueError
            levels = tuple(range(start, end + 1, step))
        else:
            levels = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--concurrency takes {hint}, not {text!r}") from None
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError(f"--concurrency takes positive levels: {hint}, not {text!r}")
    return levels


def as_range(levels: tuple[int, ...]) -> str:
    """Evenly spaced levels as perf_analyzer's ``start:end:step``; other lists raise ValueError."""
    step = levels[1] - levels[0] if len(levels) > 1 else 1
    if step < 1 or list(levels) != list(range(levels[0], levels[-1] + 1, step)):
        raise ValueError(
            f"perf_analyzer sweeps evenly spaced levels (start:end:step), not {','.join(map(str, levels))}"
        )
    return f"{levels[0]}:{levels[-1]}:{step}"


def add_server_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    *,
    url_help: str = "HOST:PORT of the server (default: localhost:8001 for grpc, localhost:8000 for http)",
    protocols: tuple[str, ...] | None = PROTOCOLS,
    model_default: str | None = None,
    model_help: str = "ensemble to call (default: the server's only ensemble)",
) -> None:
    """``--url``, ``--protocol`` (left out when ``protocols`` is None) and ``--model``."""
    parser.add_argument("--url", metavar="HOST:PORT", help=url_help)
    if protocols is not None:
        parser.add_argument("--protocol", choices=protocols, default=protocols[0], help="default: %(default)s")
    parser.add_argument("--model", default=model_default, help=model_help)


def add_concurrency(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, default: int | tuple[int, ...], *, levels: bool = False
) -> None:
    """``--concurrency``: one level, or (``levels=True``) a list or range of them."""
    if levels:
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        help_text = f"levels: 8, 1,2,4,8 or 1:8[:step] (default: {shown})"
        parser.add_argument("--concurrency", type=concurrency_levels, default=default, metavar="LEVELS", help=help_text)
    else:
        help_text = "requests in flight (default: %(default)s)"
        parser.add_argument("--concurrency", type=positive_int, default=default, metavar="N", help=help_text)


def add_timeout(parser: argparse.ArgumentParser | argparse._ArgumentGroup, default: float = 60.0) -> None:
    """``--timeout-s``: per request."""
    parser.add_argument(
        "--timeout-s",
        type=positive_float,
        default=default,
        metavar="S",
        help="per-request timeout (default: %(default)s)",
    )


def fail(command: str, message: object, code: int = EXIT_UNUSABLE) -> int:
    """Print ``COMMAND: error: MESSAGE`` (argparse's form) on stderr, one line; return ``code`` for main()."""
    print(f"{command}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return code
