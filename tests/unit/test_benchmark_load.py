"""The closed-loop load generator with a fake async server, error classification, process memory and CPU. No server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from tritonclient.utils import InferenceServerException

from tritonclf_lab.bench.cpu import CpuSnapshot, cores_used, machine_busy_s, process_cpu_s, snapshot, tree_cpu_s
from tritonclf_lab.bench.images import BenchImage
from tritonclf_lab.bench.load import closed_loop, drive
from tritonclf_lab.bench.procmem import descendants, tree_rss_bytes
from tritonclf_lab.soak_cli import process_memory

IMAGES = [BenchImage(b"ok", 64, 48), BenchImage(b"busy", 128, 96), BenchImage(b"ok", 64, 48), BenchImage(b"bad", 9, 9)]


def test_closed_loop_stops_by_time_and_sorts_failures_by_status():
    """Rejections are counted apart: UNAVAILABLE (overload) vs other errors; latencies keep their image size."""

    async def send(index: int) -> None:
        await asyncio.sleep(0.002)
        data = IMAGES[index].data
        if data == b"busy":
            raise InferenceServerException("queue full", status="StatusCode.UNAVAILABLE")
        if data == b"bad":
            raise InferenceServerException("not an image", status="400")

    result = asyncio.run(closed_loop(send, IMAGES, concurrency=4, duration_s=0.2))

    assert 0.2 <= result.elapsed_s < 1.0
    assert result.latencies_s and min(result.latencies_s) >= 0.002
    assert set(result.size_labels) == {"64x48"}
    assert set(result.errors) == {"UNAVAILABLE", "INVALID_ARGUMENT"}
    assert result.unavailable == result.errors["UNAVAILABLE"] > 0
    assert result.other_errors == result.errors["INVALID_ARGUMENT"] > 0
    assert result.latencies_by_size().keys() == {"64x48"}


def test_closed_loop_keeps_exactly_concurrency_requests_in_flight():
    """Closed loop: never more than ``concurrency`` outstanding, and all of them used."""
    in_flight, peak = 0, 0

    async def send(index: int) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.005)
        in_flight -= 1

    asyncio.run(closed_loop(send, IMAGES, concurrency=3, duration_s=0.1))
    assert peak == 3


def test_closed_loop_counts_a_client_bug_and_a_timeout_instead_of_dying():
    """A KeyError in the client and a request that never answers are errors, not a hung or dead loop."""

    async def send(index: int) -> None:
        if index % 2:
            raise KeyError("label")
        await asyncio.sleep(10)

    result = asyncio.run(closed_loop(send, IMAGES, concurrency=2, duration_s=0.05, timeout_s=0.1))
    assert result.errors.keys() == {"KeyError", "DEADLINE_EXCEEDED"}
    assert result.elapsed_s < 1.0 and not result.latencies_s


def test_drive_runs_until_stopped_and_keeps_every_outcome_with_its_answer():
    """The background mode: requests named and timed, answers kept, the ones in flight at the stop finished."""
    outcomes = []
    stop = asyncio.Event()

    async def send(index: int) -> str:
        await asyncio.sleep(0.01)
        if index == 1:
            raise InferenceServerException("queue full", status="StatusCode.UNAVAILABLE")
        return f"answer {index}"

    def record(outcome) -> None:
        outcomes.append(outcome)
        if len(outcomes) == 20:
            stop.set()

    async def run():
        await drive(send, ["a", "b", "c"], 3, running=lambda: not stop.is_set(), record=record)

    asyncio.run(asyncio.wait_for(run(), 5))
    assert len(outcomes) == 20 + 2  # the other two senders' requests in flight end; none starts after
    assert {o.name for o in outcomes} == {"a", "b", "c"}
    for outcome in outcomes:
        assert outcome.end >= outcome.start + 0.009 and outcome.latency_s == outcome.end - outcome.start
        if outcome.name == "b":
            assert (outcome.status, outcome.message, outcome.value) == ("UNAVAILABLE", "queue full", None)
        else:
            assert outcome.status == "OK" and outcome.value == f"answer {'abc'.index(outcome.name)}"


@pytest.fixture
def sleeping_tree():
    """A real process with a child, both asleep: (parent pid, child pid)."""
    script = (
        "import subprocess, sys, time; "
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print(child.pid, flush=True); time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    time.sleep(0.3)  # both settled into sleep
    yield parent.pid, child
    os.kill(child, signal.SIGKILL)
    parent.kill()
    parent.wait()


def _status_kib(pid: int, field: str) -> int:
    """The reference: a ``kB`` field of /proc/PID/status, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def _stat_cpu_s(pid: int) -> float:
    """The reference: utime + stime of /proc/PID/stat (fields after the command name)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy_s() -> float:
    """The reference: /proc/stat's cpu line, every field but idle and iowait (user nice system idle iowait ...)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return sum(v for i, v in enumerate(fields) if i not in (3, 4)) / os.sysconf("SC_CLK_TCK")


def test_tree_rss_sums_a_process_and_its_descendants_as_proc_counts_them(sleeping_tree):
    parent, child = sleeping_tree
    assert descendants(parent) == [parent, child]
    assert tree_rss_bytes(parent) == _status_kib(parent, "VmRSS") + _status_kib(child, "VmRSS")
    assert tree_rss_bytes(2**22 + 12345) == 0 and descendants(2**22 + 12345) == []  # no such process


def test_tree_rss_of_this_process_is_its_own_memory():
    """At least our own resident set."""
    assert tree_rss_bytes(os.getpid()) > 10 * 1024 * 1024


def test_cpu_counters_are_the_proc_stat_numbers(sleeping_tree):
    """Busy = user+nice+system+irq+softirq+steal (not idle, not iowait); a process is utime+stime."""
    parent, child = sleeping_tree
    before = _machine_busy_s()
    busy = machine_busy_s()
    after = _machine_busy_s()
    assert before <= busy + 1e-9 and busy <= after + 1e-9
    assert process_cpu_s(psutil.Process(child)) == pytest.approx(_stat_cpu_s(child))
    assert tree_cpu_s(parent) == pytest.approx(_stat_cpu_s(parent) + _stat_cpu_s(child))
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    gone = psutil.Process(finished.pid)
    finished.wait()
    assert process_cpu_s(gone) == 0.0


def test_soak_memory_is_the_proc_status_and_smaps_numbers(sleeping_tree):
    """PSS, RSS and the private heap (RssAnon) of a process, as the kernel reports them."""
    _, child = sleeping_tree
    memory = process_memory(psutil.Process(child))
    assert memory["rss"] == _status_kib(child, "VmRSS")
    assert memory["anon"] == _status_kib(child, "RssAnon")
    pss = next(line for line in Path(f"/proc/{child}/smaps_rollup").read_text().splitlines() if line.startswith("Pss:"))
    assert memory["pss"] == int(pss.split()[1]) * 1024


def test_cores_used_splits_the_machine_between_client_server_and_others():
    """Over 2 s: 4 busy core-seconds = 0.5 client + 2.5 server + 1.0 someone else."""
    before = CpuSnapshot(wall_s=10.0, machine_busy_s=100.0, own_cpu_s=5.0, server_cpu_s=20.0)
    after = CpuSnapshot(wall_s=12.0, machine_busy_s=104.0, own_cpu_s=5.5, server_cpu_s=22.5)
    assert cores_used(before, after) == {
        "client_cpu_cores": pytest.approx(0.25),
        "server_cpu_cores": pytest.approx(1.25),
        "other_cpu_cores": pytest.approx(0.5),
    }
    # Tick rounding can make the remainder slightly negative: reported as nobody else.
    quiet = CpuSnapshot(wall_s=12.0, machine_busy_s=102.9, own_cpu_s=5.5, server_cpu_s=22.5)
    assert cores_used(before, quiet)["other_cpu_cores"] == 0.0


def test_cpu_snapshot_sees_this_process_work():
    """Spinning shows up as client CPU: the seconds the kernel counted for this process, over the wall time."""
    me = psutil.Process()
    counted_before = sum(me.cpu_times()[:2])
    before = snapshot()
    # Spin for 0.2 s of CPU, not of wall time: on a busy machine this process gets a share of a core.
    deadline = time.perf_counter() + 30
    while sum(me.cpu_times()[:2]) - counted_before < 0.2 and time.perf_counter() < deadline:
        pass
    after = snapshot()
    counted = sum(me.cpu_times()[:2]) - counted_before
    used = cores_used(before, after)
    client_cpu_s = used["client_cpu_cores"] * (after.wall_s - before.wall_s)
    assert counted >= 0.2 and client_cpu_s == pytest.approx(counted, abs=0.05)
    assert used["server_cpu_cores"] == 0.0 and used["other_cpu_cores"] >= 0.0
