"""A repository build killed midway leaves the previous versions intact and nothing partial where it is loaded.

The repository starts with versions 1 and 2 of each model; the killed build makes
version 3 and prunes version 1 (``--keep-versions 2``). It is killed with SIGKILL at
every file operation in turn (tests/kill_build_at.py) and at random moments of
the real command while it writes (after its first staging folder appears, before it
exits: each kill must find the build still running). After each kill: every file Triton
or a user would load (no path component starting with a dot) is complete, its old
content or the finished build's; version 2 is byte for byte what it was; version 1 is
whole or gone; leftovers are dot-named only; preflight finds no error (it warns about
the one interrupted state that can remain: the new config.pbtxt beside the old
version); and the next build completes the repository.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tritonclf.repository.build import BuildOptions, build_repository
from tritonclf.repository.pbtxt import parse
from tritonclf.repository.preflight_checks import check_repository

from ..conftest import ROOT

pytestmark = pytest.mark.long
MODELS = ("efficientnet_lite0", "efficientnet_lite0_preprocess", "efficientnet_lite0_model")
BUILD_ARGS = ("--backend", "python-ort", "--max-batch-size", "8", "--keep-versions", "2")


def visible_files(repository: Path) -> dict[str, str]:
    """{relative path: sha256} of every file a loader would see (no dot-named component)."""
    files = {}
    for path in repository.rglob("*"):
        relative = path.relative_to(repository)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            files[str(relative)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def hidden_paths(root: Path) -> list[str]:
    """Dot-named leftovers under ``root`` (staging folders beside the repository, temporary files)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob(".*"))


@pytest.fixture(scope="module")
def states(export_dir, tmp_path_factory):
    """A two-version repository (the starting point) and the files of the finished third build."""
    base = tmp_path_factory.mktemp("build-killed")
    start = base / "start" / "model_repository"
    build_repository(export_dir, start, BuildOptions(keep_versions=2))
    build_repository(export_dir, start, BuildOptions(max_batch_size=16, keep_versions=2))
    finished = base / "finished" / "model_repository"
    shutil.copytree(start, finished)
    run_build(export_dir, finished, kill_at=10**9)
    return start, visible_files(start), visible_files(finished)


def run_build(export_dir: Path, repository: Path, kill_at: int) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "tests.kill_build_at", str(kill_at)]
    command += ["--export", str(export_dir), "--repository", str(repository), *BUILD_ARGS]
    # cwd: tests/ is a package of the checkout, not of the installed tritonclf.
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd=ROOT)


def fresh_copy(start: Path, where: Path) -> Path:
    """The starting repository in a new folder (hard links: builds never write into an existing file)."""
    repository = where / "model_repository"
    shutil.copytree(start, repository, copy_function=os.link)
    return repository


def assert_consistent_after_kill(repository: Path, before: dict[str, str], finished: dict[str, str]) -> list[str]:
    """Check the invariants; returns preflight's warnings."""
    after = visible_files(repository)
    for path, digest in after.items():
        if path.endswith("manifest.json"):
            json.loads((repository / path).read_text())  # complete; preflight checks what it lists
        else:
            assert digest in (before.get(path), finished.get(path)), f"{path} is neither old nor new: partial?"
    for model in MODELS:
        version2 = {p: d for p, d in before.items() if p.startswith(f"{model}/2/")}
        assert all(after.get(p) == d for p, d in version2.items()), f"{model}/2 changed"
        version1 = {p: d for p, d in before.items() if p.startswith(f"{model}/1/")}
        present = {p for p in version1 if p in after}
        assert present in (set(), set(version1)), f"{model}/1 is half removed: {sorted(present)}"
        parse((repository / model / "config.pbtxt").read_text())
    findings = check_repository(repository)
    assert [str(f) for f in findings if f.severity == "error"] == []
    return [f.message for f in findings]


def assert_next_build_completes(export_dir: Path, repository: Path, finished: dict[str, str]) -> None:
    assert run_build(export_dir, repository, kill_at=10**9).returncode == 0
    assert [str(f) for f in check_repository(repository)] == []
    after = visible_files(repository)
    for model in MODELS:
        config = f"{model}/config.pbtxt"
        assert after[config] == finished[config]


def test_build_killed_at_every_file_operation_leaves_a_loadable_repository(export_dir, states, tmp_path):
    start, before, finished = states
    counted = run_build(export_dir, fresh_copy(start, tmp_path / "count"), kill_at=10**9)
    operations = int(counted.stderr.rsplit("operations:", 1)[1])
    assert operations >= 15, counted.stderr
    interrupted = 0
    for kill_at in range(1, operations + 1):
        where = tmp_path / f"kill-{kill_at}"
        repository = fresh_copy(start, where)
        result = run_build(export_dir, repository, kill_at)
        assert result.returncode == -signal.SIGKILL, f"operation {kill_at}: {result.stderr}"
        warnings = assert_consistent_after_kill(repository, before, finished)
        interrupted += any(w.startswith("config.pbtxt is newer than version") for w in warnings)
        assert_next_build_completes(export_dir, repository, finished)
        shutil.rmtree(where)
    # One kill per model lands between its config and its version: preflight must have said so each time.
    assert interrupted == len(MODELS)


def start_build(export_dir: Path, repository: Path) -> tuple[subprocess.Popen, float]:
    """Start the real build command; return it once it has begun writing (its first staging folder exists)."""
    command = [sys.executable, "build/build_repository.py", "--export", str(export_dir), *BUILD_ARGS]
    process = subprocess.Popen([*command, "--repository", str(repository)], cwd=ROOT, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not any(repository.parent.glob(f".{repository.name}-staging-*")):
        assert process.poll() is None, "the build ended before a staging folder was seen"
        assert time.monotonic() < deadline, "no staging folder within 60 s"
        time.sleep(0.002)
    return process, time.monotonic()


def timed_build(export_dir: Path, repository: Path) -> float:
    """Seconds from the build's first staging folder to its exit."""
    process, began = start_build(export_dir, repository)
    assert process.wait(120) == 0
    return time.monotonic() - began


def test_build_command_killed_at_random_moments_leaves_a_loadable_repository(export_dir, states, tmp_path):
    start, before, finished = states
    # How long the build writes, from its first staging folder to its exit (the faster of two runs, the first
    # one reading a cold cache): every kill lands in the first 40% of that window.
    writing_seconds = min(timed_build(export_dir, fresh_copy(start, tmp_path / f"timing-{i}")) for i in range(2))
    rng = random.Random(6)
    changed = 0
    for attempt in range(8):
        where = tmp_path / f"attempt-{attempt}"
        repository = fresh_copy(start, where)
        process, _ = start_build(export_dir, repository)
        time.sleep(rng.uniform(0, 0.4 * writing_seconds))
        process.send_signal(signal.SIGKILL)
        # Killed, not exited: the build was still running, and it had begun writing (a staging folder existed).
        code = process.wait(60)
        assert code == -signal.SIGKILL, f"attempt {attempt}: the build ended before the kill ({writing_seconds:.2f} s)"
        assert visible_files(repository) != finished or hidden_paths(where), f"attempt {attempt}: build was complete"
        changed += visible_files(repository) != before
        assert_consistent_after_kill(repository, before, finished)
        assert all(path.startswith(".") or "/." in path for path in hidden_paths(where))
        assert_next_build_completes(export_dir, repository, finished)
        shutil.rmtree(where)
    print(f"{changed} of 8 kills after a visible change; {writing_seconds:.2f} s of writing")
    # Some kills must land after the build changed what a loader sees, not only inside staging.
    assert changed >= 1, f"every kill landed before the first visible change ({writing_seconds:.2f} s of writing)"
