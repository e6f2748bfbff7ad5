"""Finding and removing what one server left, by its region prefix: real processes, real files, nobody else's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tritonclf.serving import leftovers, stub_health


def fake_stub(tmp_path, region: str) -> subprocess.Popen:
    """A process with a stub's argv (``<stub> <model.py> <region> ...``) that ignores SIGTERM, as stubs do."""
    program = tmp_path / stub_health.STUB_EXECUTABLE
    if not program.exists():
        program.symlink_to(sys.executable)
    model = tmp_path / "model.py"
    model.write_text("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)\n")
    return subprocess.Popen([str(program), str(model), region, "m_model_0_0", "DEFAULT"])


def test_the_prefix_is_read_from_either_spelling_and_is_unique():
    assert leftovers.region_prefix(["--backend-config=python,shm-region-prefix-name=p_"]) == "p_"
    assert leftovers.region_prefix(["--backend-config", "python,shm-region-prefix-name=q_"]) == "q_"
    assert leftovers.region_prefix(["--backend-config=python,shm-default-byte-size=1"]) is None
    first, second = leftovers.new_region_prefix(), leftovers.new_region_prefix()
    assert first != second and first.startswith(leftovers.DEFAULT_PREFIX_START) and first.endswith("_")
    # Triton's own names go on with a UUID (hex): a prefix of ours never matches a region of a server without one.
    assert leftovers.DEFAULT_PREFIX_START[len(leftovers.TRITON_REGION_PREFIX) :][0] not in "0123456789abcdef"


def test_removes_the_stubs_and_regions_of_its_prefix_and_nothing_else(tmp_path):
    mine, theirs = "tritonclf-test-mine_", "tritonclf-test-theirs_"
    shm = tmp_path / "shm"
    shm.mkdir()
    (shm / f"{mine}1").write_bytes(b"x" * 1000)
    (shm / f"{mine}2").write_bytes(b"x" * 500)
    (shm / f"{theirs}1").write_bytes(b"y")
    stubs = {"mine": fake_stub(tmp_path, f"{mine}1"), "theirs": fake_stub(tmp_path, f"{theirs}1")}
    try:
        deadline = time.monotonic() + 30
        while leftovers.stub_pids(mine) != [stubs["mine"].pid] and time.monotonic() < deadline:
            time.sleep(0.05)
        removed = leftovers.remove_leftovers(mine, shm_dir=shm)
        assert removed.stubs == (stubs["mine"].pid,)
        # Gone (and reaped: the launcher adopts orphaned stubs), though it ignores SIGTERM as a stub does.
        assert not os.path.exists(f"/proc/{stubs['mine'].pid}")
        assert sorted(removed.regions) == [f"{mine}1", f"{mine}2"] and removed.region_bytes == 1500
        assert removed.describe() == (
            f"1 Python-backend stub (pid {stubs['mine'].pid}) and 2 shared-memory regions (0.0 MB)"
        )
        assert stubs["theirs"].poll() is None
        assert [p.name for p in shm.iterdir()] == [f"{theirs}1"]
        assert not leftovers.remove_leftovers(mine, shm_dir=shm)
    finally:
        for process in stubs.values():
            process.kill()
            process.wait()


def test_a_stopped_stub_counts_as_not_alive(tmp_path):
    program = tmp_path / stub_health.STUB_EXECUTABLE
    program.symlink_to(sys.executable)
    child = subprocess.Popen([str(program), "-c", "import time; time.sleep(60)", "m_model_0_1", "DEFAULT"])
    try:
        deadline = time.monotonic() + 30
        while stub_health.live_stub_instances(os.getpid()) != ["m_model_0_1"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stub_health.live_stub_instances(os.getpid()) == ["m_model_0_1"]
        os.kill(child.pid, signal.SIGSTOP)
        while stub_health.stub_states(os.getpid())["m_model_0_1"][1] != "T" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stub_health.live_stub_instances(os.getpid()) == []
        line = stub_health.describe({"m_model": ["m_model_0_1"]}, stopped=["m_model_0_1"])
        assert "m_model (m_model_0_1 stopped)" in line
    finally:
        child.kill()
        child.wait()
