"""This process's resident high-water mark (``VmHWM``), which psutil does not report.

``resource.getrusage``'s ``ru_maxrss`` is no substitute: Linux carries the parent's peak into
a child over fork and exec, so a measured child process would report its parent's (pytest's).
"""

from __future__ import annotations

from pathlib import Path

_STATUS = Path("/proc/self/status")


def peak_rss_bytes() -> int:
    """The highest resident memory since the process started or since :func:`reset_peak_rss`."""
    for line in _STATUS.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{_STATUS} has no VmHWM line: not Linux?")


def reset_peak_rss() -> None:
    """Reset the high-water mark to the current resident memory (``/proc/self/clear_refs``, Linux 4.0+)."""
    Path("/proc/self/clear_refs").write_text("5")
