"""The GPU kit end to end on this CPU: the stdlib HTTP client against the real server, and
``run.sh --cpu-smoke`` from a copy of a freshly built kit (the carried, stripped tritonserver
serves the kit's CPU repository and labels the sample photos)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tritonclf.serving.stub_health import STUB_EXECUTABLE, child_pids, group_pids
from tritonclf_lab.gpu_kit import gpu_kit_cli, runner
from tritonclf_lab.gpu_kit.http_client import TritonHTTP, TritonHTTPError
from tritonclf_lab.gpu_kit.runner import program_name
from tritonclf_lab.gpu_kit.server import shm_prefix
from tritonclf_lab.gpu_kit.sweep import closed_loop

from ..conftest import CAT_CLASSES, SAMPLES

pytestmark = pytest.mark.integration


@pytest.fixture
def client(server, metadata):
    client = TritonHTTP("127.0.0.1", server.http_port, metadata.model_name)
    yield client
    client.close()


def test_stdlib_client_classifies_a_batch_of_sample_photos(client):
    chelsea, coffee = (SAMPLES / "chelsea.jpg").read_bytes(), (SAMPLES / "coffee.jpg").read_bytes()
    answers = client.classify([chelsea, coffee], top_k=3)
    assert [len(a) for a in answers] == [3, 3]
    assert answers[0][0].index in CAT_CLASSES and answers[0][0].label.startswith(("tabby", "tiger", "Egyptian"))
    assert answers[1][0].index == 967 and answers[1][0].score > answers[1][1].score


def test_stdlib_client_gets_the_servers_one_line_rejection(client):
    with pytest.raises(TritonHTTPError, match="not a decodable image: the bytes are text") as info:
        client.classify([b"definitely not a jpeg"])
    assert info.value.status == 400


def test_stdlib_client_reads_per_model_statistics_and_the_sweep_counts_every_answer(client, server, metadata):
    before = {m["name"]: m["inference_count"] for m in client.statistics()["model_stats"]}
    load = closed_loop(
        ("127.0.0.1", server.http_port), metadata.model_name, [(SAMPLES / "coffee.jpg").read_bytes()], 2, 2.0
    )
    after = {m["name"]: m["inference_count"] for m in client.statistics()["model_stats"]}
    assert load.errors == 0 and load.images > 0
    assert after[metadata.model_name] - before[metadata.model_name] == load.images
    assert load.summary()["p99_ms"] >= load.summary()["p50_ms"] > 0


@pytest.fixture(scope="module")
def kit(export_dir, tmp_path_factory):
    """A freshly built kit (xz -1: the same files, compressed fast), moved away from where it was built.

    The folder it was built in is gone: nothing in the kit may point back at it.
    """
    tmp = tmp_path_factory.mktemp("kit")
    started = time.monotonic()
    # The size limit is make gpu-kit's business (-9e); -1 makes a bigger kit of the same files.
    argv = ["--export", str(export_dir), "--output", str(tmp / "built" / "gpu-kit"), "--xz-level", "-1"]
    assert gpu_kit_cli.main([*argv, "--max-mib", "200", "--cache-dir", str(tmp / "cache")]) == 0
    print(f"kit built in {time.monotonic() - started:.0f} s")
    shutil.copytree(tmp / "built" / "gpu-kit", tmp / "elsewhere" / "gpu-kit", symlinks=True)
    shutil.rmtree(tmp / "built")
    return tmp / "elsewhere" / "gpu-kit"


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """Where the kit unpacks, shared by this module's runs (a rerun finds it unpacked)."""
    return tmp_path_factory.mktemp("kit-work")


def test_cpu_smoke_from_a_copy_of_the_kit_serves_the_sample_photos_through_the_stubs_own_prefix(kit, work):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHON"] = sys.executable
    started = time.monotonic()
    run = subprocess.run(
        ["bash", str(kit / "run.sh"), "--cpu-smoke", "--work", str(work)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    print(f"cpu-smoke ran in {time.monotonic() - started:.0f} s")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "standalone: skipped: needs CUDA: skipped in --cpu-smoke" in run.stdout
    assert "accuracy: skipped: needs CUDA: skipped in --cpu-smoke" in run.stdout
    results = json.loads((kit / "results.json").read_text())
    assert results["served"]["labels_ok"] is True
    assert results["served"]["samples"]["coffee.jpg"][0] == 967
    assert results["served"]["samples"]["chelsea.jpg"][0] in CAT_CLASSES
    assert results["served"]["sweep"][0]["errors"] == 0 and results["served"]["sweep"][0]["images"] > 0
    assert results["phases"]["served"]["status"] == "ok"
    assert "model.onnx" in results["run"]["kit"]["export_left_out"]
    assert (kit / "logs" / "tritonserver.log").is_file()
    # One preflight line each for what the server takes from the host.
    for check in ("libpython", "libcuda", "stub_python"):
        assert len([line for line in run.stdout.splitlines() if line.startswith(f"preflight: {check}: ok")]) == 1
    assert results["preflight"]["details"]["libpython"]["source"] == "host"
    assert (work / "triton" / "libpython" / "3.12" / "libpython3.12.so.1.0").is_file()  # for a host without one
    assert set(results["run"]["kit"]["carried_libpython"]) == {"3.12"}
    # From inside a stub: its interpreter runs in the kit's prefix (PATH, not PYTHONPATH, reaches it).
    stub = results["preflight"]["details"]["stub_python"]["report"]
    assert stub["prefix"] == str(work / "stub-python") and stub["isolated"] is True
    assert stub["bytes_intact"] is True and stub["numpy"]["version"].startswith("1.")


class PhaseWatch(threading.Thread):
    """Records every process of the served phase's group; stops the phase once one of its stubs runs."""

    def __init__(self):
        super().__init__(daemon=True)
        self.phase: int | None = None
        self.stopped = False
        self.seen: dict[int, str] = {}
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            self.phase = self.phase or _child_running(os.getpid(), "tritonclf_lab.gpu_kit.phases")
            if self.phase:
                # A process on its way out reads as no name: keep the last name it had.
                names = {pid: program_name(pid) for pid in group_pids(self.phase)}
                self.seen.update({pid: name for pid, name in names.items() if name})
                if not self.stopped and STUB_EXECUTABLE in self.seen.values():
                    os.kill(self.phase, signal.SIGSTOP)  # hung, as in a CUDA call that never returns
                    self.stopped = True
            time.sleep(0.05)


@pytest.mark.long  # a phase run to its timeout
def test_a_phase_that_runs_out_of_time_ends_its_server_and_every_stub(kit, work, tmp_path):
    """A hung phase (stopped once its stubs run) times out; nothing of its process group survives."""
    runner.unpack(kit, work)
    argv = ["--kit", str(kit), "--work", str(work), "--results", str(tmp_path / "results.json"), "--cpu-smoke"]
    watch = PhaseWatch()
    watch.start()
    try:
        row = runner.run_phase("served", runner.parse_args(argv), budget_s=20.0, grace_s=0.0)
    finally:
        watch.done.set()
        watch.join()
    print(f"the phase ran {row['seconds']} s; ended: {row.get('left_running')}")
    assert watch.stopped, f"the served phase's stubs never started: {row}, saw {watch.seen}"
    assert row["status"] == "timeout"
    assert {"tritonserver", STUB_EXECUTABLE} <= set(watch.seen.values())
    assert any(name.startswith("tritonserver:") for name in row["left_running"])
    assert group_pids(watch.phase) == []
    survivors = [f"{name}:{pid}" for pid, name in watch.seen.items() if _alive(pid)]
    assert survivors == [], survivors
    assert not list(Path("/dev/shm").glob(f"{shm_prefix(watch.phase)}*"))  # its stubs' regions went with them


def _child_running(parent: int, marker: str) -> int | None:
    for pid in child_pids(parent):
        try:
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                return pid
        except OSError:
            continue
    return None


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in {"Z", "X"}


def test_accuracy_phase_code_runs_on_the_cpu_with_only_the_preprocessing_differing(export_dir):
    from tritonclf_lab.gpu_kit.phase_accuracy import compare

    report = compare(export_dir, "cpu")
    assert report["labels_ok"] is True
    assert report["images"] == 4 * 8 + 4 and report["flips"] == 0
    # Normalized units: torch's antialiased bicubic vs Pillow's differ most at sharp edges (0.63 measured).
    assert report["max_pixel_delta"] < 1.0


def test_standalone_phase_code_measures_every_row_on_the_cpu(export_dir, tmp_path):
    from tritonclf_lab.gpu_kit.context import Context
    from tritonclf_lab.gpu_kit.mix import write_mix
    from tritonclf_lab.gpu_kit.phase_standalone import measure
    from tritonclf_lab.gpu_kit.results import Results

    ctx = Context(tmp_path, Results(tmp_path / "results.json"), budget_s=10.0)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "export").symlink_to(export_dir)
    section = measure(ctx, write_mix(tmp_path / "mix", count=4, seed=2), "cpu", (1, 2))
    assert section["decode_and_model"]["images_per_s"] > 0
    assert set(section["model"]["eager"]) == {"1", "2"}  # as results.json keeps them
    assert section["decode_preprocess"]["mix_batch"] == 4
    assert Results(tmp_path / "results.json").section("standalone")["device"] == "cpu"
