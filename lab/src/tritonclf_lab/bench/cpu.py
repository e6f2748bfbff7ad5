"""Who used the CPU during a run: this process, the server's process tree, and everything else on the machine.

On a machine shared with other work, a low number can mean a slow server or a busy
neighbour. Each run records the cores the server and the client used and the cores
other processes took (machine busy time from ``/proc/stat`` minus both), so a reader
can tell. In a container ``/proc/stat`` counts the whole host, so "other" includes it.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

from tritonclf_lab.bench.procmem import PROC, descendants, parent_pids

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
# /proc/stat's cpu line: user nice system idle iowait irq softirq steal ...; idle and iowait are not busy.
_IDLE_FIELDS = (3, 4)
_BUSY_FIELD_COUNT = 8


def machine_busy_s(proc: Path = PROC) -> float:
    """CPU seconds all cores have spent busy since boot."""
    fields = [int(v) for v in (proc / "stat").read_text().splitlines()[0].split()[1 : _BUSY_FIELD_COUNT + 1]]
    return sum(v for i, v in enumerate(fields) if i not in _IDLE_FIELDS) / _TICKS_PER_S


def process_cpu_s(pid: int, proc: Path = PROC) -> float:
    """User + system CPU seconds of one process (all its threads); 0 if it is gone."""
    try:
        text = (proc / str(pid) / "stat").read_text()
    except OSError:
        return 0.0
    # Fields after the command name (which may hold spaces): state is [0], utime [11], stime [12].
    fields = text[text.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


def tree_cpu_s(pid: int, proc: Path = PROC) -> float:
    """CPU seconds of ``pid`` and its descendants (tritonserver and its Python-backend stubs)."""
    return sum(process_cpu_s(p, proc) for p in descendants(pid, parent_pids(proc)))


@dataclasses.dataclass(frozen=True)
class CpuSnapshot:
    """Counters at one instant."""

    wall_s: float
    machine_busy_s: float
    own_cpu_s: float
    server_cpu_s: float


def snapshot(server_pid: int | None = None) -> CpuSnapshot:
    """Read the counters now."""
    return CpuSnapshot(
        wall_s=time.perf_counter(),
        machine_busy_s=machine_busy_s(),
        own_cpu_s=time.process_time(),
        server_cpu_s=tree_cpu_s(server_pid) if server_pid else 0.0,
    )


def cores_used(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    """Average cores used between two snapshots by this process, the server and everything else."""
    wall = after.wall_s - before.wall_s
    if wall <= 0:
        return {"client_cpu_cores": 0.0, "server_cpu_cores": 0.0, "other_cpu_cores": 0.0}
    own = after.own_cpu_s - before.own_cpu_s
    server = after.server_cpu_s - before.server_cpu_s
    busy = after.machine_busy_s - before.machine_busy_s
    return {
        "client_cpu_cores": own / wall,
        "server_cpu_cores": server / wall,
        # Clock ticks are coarse (10 ms): never report a negative neighbour.
        "other_cpu_cores": max(0.0, (busy - own - server) / wall),
    }
