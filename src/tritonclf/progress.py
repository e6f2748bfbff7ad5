"""Progress of a long job: one status line redrawn on a terminal, plain lines in a log.

    progress = Progress("export", total=4)
    progress.step("export ONNX")      # log: "export [2/4] export ONNX"; terminal: the same line, redrawn
    progress.write("a result line")   # printed whole; on a terminal the status line is redrawn below it
    progress.finish("exported")       # "export: exported in 12.3 s"

Standard library only: the build runs where tqdm (the train extra) is not installed, and
in NVIDIA's container. Steps go to stdout beside the job's results, so a one-line error on
stderr stays one line.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_CLEAR_LINE = "\r\x1b[K"


class Progress:
    """Steps of one job, numbered when the total is known."""

    def __init__(
        self,
        job: str,
        total: int | None = None,
        *,
        stream: TextIO | None = None,
        interactive: bool | None = None,
        enabled: bool = True,
    ) -> None:
        self.job = job
        self.total = total
        self.stream = stream if stream is not None else sys.stdout
        # A terminal gets a redrawn line; a pipe, a file or CI gets one line per step.
        self.interactive = _isatty(self.stream) if interactive is None else interactive
        self.enabled = enabled
        self.done = 0
        self.started = time.monotonic()
        self._status = ""

    @classmethod
    def quiet(cls) -> Progress:
        """No step lines (library callers, tests); ``write`` still prints."""
        return cls("", enabled=False)

    def step(self, what: str) -> None:
        """A step starts: show it with its number and the time since the job started."""
        self.done += 1
        if not self.enabled:
            return
        count = f"{self.done}/{self.total}" if self.total else str(self.done)
        line = f"{self.job} [{count}] {what}"
        if self.interactive:
            self._status = line
            self._emit(f"{_CLEAR_LINE}{line}  ({self.elapsed_s():.0f} s)")
        else:
            self._emit(line + "\n")

    def write(self, text: str, *, stream: TextIO | None = None) -> None:
        """A line of results (or, with ``stream=sys.stderr``, a warning), kept whole.

        On a terminal the status line is cleared first and redrawn after it.
        """
        redraw = self.enabled and self.interactive and self._status
        if redraw:
            self._emit(_CLEAR_LINE)
        target = stream if stream is not None else self.stream
        target.write(text + "\n")
        target.flush()
        if redraw:
            self._emit(f"{self._status}  ({self.elapsed_s():.0f} s)")

    def finish(self, what: str = "done") -> None:
        """The job ended: ``JOB: WHAT in N s`` on a line of its own."""
        if not self.enabled:
            return
        prefix = _CLEAR_LINE if self.interactive else ""
        self._status = ""
        self._emit(f"{prefix}{self.job}: {what} in {self.elapsed_s():.1f} s\n")

    def close(self) -> None:
        """End a status line left on the terminal (after an error), so what follows starts a line."""
        if self.enabled and self.interactive and self._status:
            self._emit("\n")
        self._status = ""

    def elapsed_s(self) -> float:
        """Seconds since the job started."""
        return time.monotonic() - self.started

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _emit(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False
