"""The closed-loop load generator with a fake async server, error classification, and /proc memory. No server."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from tritonclient.utils import InferenceServerException

from tritonclf_lab.bench.cpu import CpuSnapshot, cores_used, machine_busy_s, process_cpu_s, snapshot
from tritonclf_lab.bench.images import BenchImage
from tritonclf_lab.bench.load import closed_loop, drive
from tritonclf_lab.bench.procmem import descendants, parent_pids, tree_rss_bytes

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


def test_tree_rss_sums_a_process_and_its_descendants(tmp_path):
    """A fake /proc: server 10 with stubs 11 and 12 (12 has a child 13); 20 is unrelated."""
    tree = {10: 1, 11: 10, 12: 10, 13: 12, 20: 1}
    for pid, parent in tree.items():
        folder = tmp_path / str(pid)
        folder.mkdir()
        # A command name with spaces and a parenthesis, as Python-backend stubs can have.
        (folder / "stat").write_text(f"{pid} (stub (py) x) S {parent} 0 0\n")
        (folder / "status").write_text(f"Name:\tx\nVmRSS:\t    {pid} kB\n")
    assert parent_pids(tmp_path) == tree
    assert sorted(descendants(10, tree)) == [10, 11, 12, 13]
    assert tree_rss_bytes(10, tmp_path) == (10 + 11 + 12 + 13) * 1024


def test_tree_rss_of_this_process_is_its_own_memory():
    """On the real /proc: at least our own resident set."""
    assert tree_rss_bytes(os.getpid()) > 10 * 1024 * 1024


def test_cpu_counters_read_proc_stat_and_process_ticks(tmp_path):
    """Busy = user+nice+system+irq+softirq+steal (not idle, not iowait); a process is utime+stime."""
    ticks = os.sysconf("SC_CLK_TCK")
    (tmp_path / "stat").write_text(f"cpu  {ticks} 0 {ticks} 99999 88888 0 0 {ticks} 0 0\ncpu0 1 2 3\n")
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "stat").write_text(f"7 (tritonserver (x)) S 1 7 7 0 -1 0 0 0 0 0 {2 * ticks} {ticks} 0 0\n")
    assert machine_busy_s(tmp_path) == pytest.approx(3.0)
    assert process_cpu_s(7, tmp_path) == pytest.approx(3.0)
    assert process_cpu_s(8, tmp_path) == 0.0  # gone


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
    """Spinning for a moment shows up as client CPU, close to one core."""
    before = snapshot()
    end = time.perf_counter() + 0.2
    while time.perf_counter() < end:
        pass
    used = cores_used(before, snapshot())
    assert used["client_cpu_cores"] > 0.5 and used["server_cpu_cores"] == 0.0
