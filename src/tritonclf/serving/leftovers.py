"""What one tritonserver leaves behind when it dies: its Python-backend stubs and their shared memory.

The Python backend names each stub's shared-memory region ``<prefix><uuid>`` (a file in
``/dev/shm``) and passes the name to the stub as its second argument; the prefix is the
backend setting ``shm-region-prefix-name`` (Triton's default:
``triton_python_backend_shm_region_``). The launcher gives every server it starts a prefix
of its own, so what carries that prefix belongs to that server and to no other: another
server on the same machine, ours or not, is never touched.

Why anything is left: a stub polls its parent every 300 ms and, once the parent is gone,
tears itself down; but a stub that was answering a request at that moment waits, holding
Python's GIL, for the dead server to take the answer, while its teardown thread waits for the
GIL (python_backend ``pb_stub.cc``, Triton 2.51). It never exits, and it ignores SIGTERM and
SIGINT by design, so only SIGKILL ends it. Regions are removed by the server, so a server that
did not shut down cleanly leaves them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import signal
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from tritonclf.serving.stub_health import PROC, STUB_EXECUTABLE, cmdline, process_state
from tritonclf.serving.triton_args import option_values

SHM_DIR = Path("/dev/shm")
TRITON_REGION_PREFIX = "triton_python_backend_shm_region_"
# The start of every prefix the launcher makes; TRITONCLF_SHM_PREFIX replaces it (the test suite
# gives its own, to find afterwards whatever its servers left).
DEFAULT_PREFIX_START = f"{TRITON_REGION_PREFIX}tritonclf-"
PREFIX_SETTING = "python,shm-region-prefix-name="
# The launcher's variable for the start of its servers' prefixes.
PREFIX_START_VARIABLE = "TRITONCLF_SHM_PREFIX"
_GONE_STATES = ("Z", "X")


def prefix_start(env: Mapping[str, str]) -> str:
    """``TRITONCLF_SHM_PREFIX`` from ``env``, else ``triton_python_backend_shm_region_tritonclf-``."""
    return env.get(PREFIX_START_VARIABLE) or DEFAULT_PREFIX_START


def new_region_prefix(start: str = DEFAULT_PREFIX_START) -> str:
    """A prefix no other server uses: ``start``, this process's pid and a random token.

    Triton's own names continue with a UUID (hex digits and dashes), so a prefix that
    carries ``tritonclf-`` never matches the regions of a server started without one.
    """
    return f"{start}{os.getpid()}-{secrets.token_hex(4)}_"


def region_prefix(args: Sequence[str]) -> str | None:
    """The ``shm-region-prefix-name`` a tritonserver command line gives the Python backend, if any."""
    settings = [v for v in option_values(args, "--backend-config") if v.startswith(PREFIX_SETTING)]
    return settings[-1][len(PREFIX_SETTING) :] if settings else None


def stub_pids(prefix: str, proc: Path = PROC) -> list[int]:
    """The processes that serve a region named with ``prefix``: stubs, and a stub still being exec'd by bash.

    A stub's argv is ``triton_python_backend_stub <model.py> <region> ...``; for a moment before
    that, Python's backend runs it as ``bash -c " exec <stub> <model.py> <region> ..."``.
    """
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        argv = cmdline(entry.name, proc)
        program = os.path.basename(argv[0]) if argv else ""
        if program == STUB_EXECUTABLE:
            words = argv[1:3]
        elif program == "bash" and len(argv) > 2:
            words = argv[2].split()
        else:
            continue
        if any(word.startswith(prefix) for word in words):
            found.append(int(entry.name))
    return sorted(found)


def regions(prefix: str, shm_dir: Path = SHM_DIR) -> list[Path]:
    """The shared-memory regions named with ``prefix``."""
    try:
        return sorted(p for p in shm_dir.iterdir() if p.name.startswith(prefix))
    except OSError:
        return []


@dataclasses.dataclass(frozen=True)
class Removed:
    """What was removed: stub pids, region names and their bytes."""

    stubs: tuple[int, ...] = ()
    regions: tuple[str, ...] = ()
    region_bytes: int = 0

    def __bool__(self) -> bool:
        """Whether anything was there to remove."""
        return bool(self.stubs or self.regions)

    def describe(self) -> str:
        """One line, e.g. ``2 Python-backend stubs (pids 11, 12) and 4 shared-memory regions (45.1 MB)``."""
        parts = []
        if self.stubs:
            plural = "s" if len(self.stubs) > 1 else ""
            pids = ", ".join(map(str, self.stubs))
            parts.append(f"{len(self.stubs)} Python-backend stub{plural} (pid{plural} {pids})")
        if self.regions:
            plural = "s" if len(self.regions) > 1 else ""
            parts.append(f"{len(self.regions)} shared-memory region{plural} ({self.region_bytes / 1e6:.1f} MB)")
        return " and ".join(parts) or "nothing"


def _reap(pid: int) -> None:
    """Collect the exit status of an adopted child (the launcher is a subreaper); nothing for others."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def kill_stubs(pids: Iterable[int], timeout_s: float = 10.0, proc: Path = PROC) -> list[int]:
    """SIGKILL each pid and wait until it is gone; the pids that were alive to kill."""
    killed = []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            if process_state(pid, proc) not in (None, *_GONE_STATES):
                killed.append(pid)
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    waiting = list(pids)
    while waiting and time.monotonic() < deadline:
        for pid in waiting:
            _reap(pid)
        waiting = [pid for pid in waiting if process_state(pid, proc) not in (None, *_GONE_STATES)]
        if waiting:
            time.sleep(0.05)
    return killed


def remove_leftovers(prefix: str, shm_dir: Path = SHM_DIR, proc: Path = PROC) -> Removed:
    """Kill the stubs serving ``prefix``'s regions, then delete the regions. Call once their server has exited."""
    stubs = kill_stubs(stub_pids(prefix, proc), proc=proc)
    names, size = [], 0
    for path in regions(prefix, shm_dir):
        try:
            length = path.stat().st_size
            path.unlink()
        except FileNotFoundError:  # the stub or the server removed it meanwhile
            continue
        names.append(path.name)
        size += length
    return Removed(tuple(stubs), tuple(names), size)
