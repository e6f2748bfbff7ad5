"""What a test session started and left running: tritonserver launchers and binaries, stubs, shared memory.

The session gives every server it starts (through ``TRITONCLF_SHM_PREFIX``, which every child
inherits) a shared-memory prefix that starts with a tag of its own. The launcher, the
tritonserver binary (``--backend-config=python,shm-region-prefix-name=...``) and each stub (its
region's name) carry that tag in their arguments or environment, and so do the regions in
``/dev/shm``: what carries this session's tag is this session's, never another session's on
the same machine.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from pathlib import Path

from tritonclf.serving import leftovers
from tritonclf.serving.stub_health import STUB_EXECUTABLE

PROC = Path("/proc")
PROGRAMS = frozenset({"tritonserver", STUB_EXECUTABLE})


def new_session_prefix() -> str:
    """The start of every region name of this session's servers."""
    return f"{leftovers.TRITON_REGION_PREFIX}tritonclf-test{os.getpid()}-{secrets.token_hex(3)}-"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _running(pid: str) -> bool:
    stat = _read(PROC / pid / "stat").decode(errors="replace")
    return bool(stat) and stat[stat.rfind(")") + 2] not in "ZX"


def session_processes(prefix: str) -> dict[int, str]:
    """{pid: command line} of the running launchers, tritonservers and stubs that carry ``prefix``."""
    marker = f"{leftovers.PREFIX_START_VARIABLE}={prefix}".encode()
    found = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        argv = [a.decode(errors="replace") for a in _read(entry / "cmdline").split(b"\0") if a]
        programs = {os.path.basename(a) for a in argv[:2]}  # the binary itself, or python + the launcher script
        if not programs & PROGRAMS or not _running(entry.name):
            continue
        environment = _read(entry / "environ").split(b"\0")
        if any(prefix in a for a in argv) or any(v.startswith(marker) for v in environment):
            found[int(entry.name)] = " ".join(argv)[:200]
    return found


def find_leftovers(prefix: str, wait_s: float) -> tuple[dict[int, str], list[Path]]:
    """What carries ``prefix`` after up to ``wait_s`` seconds for servers still stopping to finish."""
    deadline = time.monotonic() + wait_s
    while True:
        processes, regions = session_processes(prefix), leftovers.regions(prefix)
        if not (processes or regions) or time.monotonic() > deadline:
            return processes, regions
        time.sleep(0.5)


def remove(processes: dict[int, str], regions: list[Path]) -> None:
    """SIGKILL this session's leftover processes and delete its regions, so that they do not outlive it."""
    for pid in processes:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for path in regions:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
