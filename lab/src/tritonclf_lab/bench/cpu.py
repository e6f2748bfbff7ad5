"""Who used the CPU during a run: this process, the server's process tree, and everything else on the machine.

On a machine shared with other work, a low number can mean a slow server or a busy
neighbour. Each run records the cores the server and the client used and the cores
other processes took (machine busy time minus both), so a reader can tell. In a
container the machine's busy time counts the whole host, so "other" includes it.
"""

from __future__ import annotations

import dataclasses
import time

import psutil

from tritonclf_lab.bench.procmem import process_tree


def machine_busy_s() -> float:
    """CPU seconds all cores have spent busy since boot: everything but idle and iowait."""
    times = psutil.cpu_times()
    return times.user + times.nice + times.system + times.irq + times.softirq + times.steal


def process_cpu_s(process: psutil.Process) -> float:
    """User + system CPU seconds of one process (all its threads); 0 if it is gone."""
    try:
        times = process.cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0.0
    return times.user + times.system


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of ``pid`` and its descendants (tritonserver and its Python-backend stubs)."""
    return sum(process_cpu_s(process) for process in process_tree(pid))


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
