"""The kit's run (``bash gpu-kit/run.sh [--cpu-smoke] [--skip PHASE]``): unpack, then each phase in turn.

Every phase runs in its own process group with its budget as a hard timeout, so a hung
CUDA call or server costs one phase, not the run. When a phase ends, on time or not, the
runner ends what is left of its group: the phase's tritonserver and every stub stay in
it (``TritonProcess(new_session=False)``; python_backend forks its stubs without a
session of their own), so a rerun on the same host never finds a second server beside
the first. Each phase writes its numbers into ``results.json`` as it measures them, and
the runner adds each phase's status, so a run cut short (by a time limit on the host,
say) still reports what it got.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tritonclf.serving import leftovers
from tritonclf.serving.stub_health import group_pids
from tritonclf_lab.gpu_kit import pack
from tritonclf_lab.gpu_kit.host_libs import LIBPYTHON_MODES
from tritonclf_lab.gpu_kit.plan import PHASES, RUN_LIMIT_S, decide, parse_skips
from tritonclf_lab.gpu_kit.results import Results
from tritonclf_lab.gpu_kit.server import SHM_DIR, shm_prefix

# payload -> the folder under the work folder it unpacks into (triton.tar.xz holds triton/ itself).
PAYLOADS = {"triton.tar.xz": ("triton", "."), "numpy.tar.xz": ("numpy", "numpy"), "models.tar.xz": ("models", "models")}
GRACE_S = 15.0
# After SIGTERM, time for tritonserver to stop its stubs and remove its /dev/shm regions
# (its --exit-timeout-secs is 10) before SIGKILL ends what is left.
TERM_GRACE_S = 20.0


def unpack(kit: Path, work: Path) -> float:
    """Unpack the payloads into ``work`` unless the same payloads are there already; returns seconds."""
    started = time.monotonic()
    manifest = json.loads((kit / "kit.json").read_text())
    stamp = work / ".unpacked"
    wanted = json.dumps({name: manifest["payloads"][name]["sha256"] for name in PAYLOADS}, sort_keys=True)
    if stamp.is_file() and stamp.read_text() == wanted:
        return 0.0
    work.mkdir(parents=True, exist_ok=True)
    for name, (folder, into) in PAYLOADS.items():
        if (work / folder).exists():
            shutil.rmtree(work / folder)
        (work / into).mkdir(parents=True, exist_ok=True)
        pack.extract(kit / name, work / into)
    stamp.write_text(wanted)
    return time.monotonic() - started


def served_needs_cuda(repository: Path) -> bool:
    """Whether the repository's configs put an instance on a GPU."""
    return any("KIND_GPU" in config.read_text() for config in repository.glob("*/config.pbtxt"))


def program_name(pid: int) -> str:
    """The program a process runs (its argv[0]'s name: /proc's comm cuts names at 15 characters)."""
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return ""
    return os.path.basename(argv0)


def process_names(pids: list[int]) -> list[str]:
    """``name:pid`` of each process still there (for the run's record)."""
    return [f"{name}:{pid}" for pid in pids if (name := program_name(pid))]


def end_group(pgid: int, term_grace_s: float = TERM_GRACE_S, shm_dir: Path = SHM_DIR) -> list[str]:
    """End every process of group ``pgid``: SIGTERM (and SIGCONT for a stopped one), then SIGKILL.

    Then removes the /dev/shm regions its servers named after the group (what a SIGKILLed
    server leaves). Returns what was running when it started (``name:pid``); empty when
    the group was gone.
    """
    members = group_pids(pgid)
    if not members:
        remove_shm_regions(pgid, shm_dir)
        return []
    names = process_names(members)
    for sig in (signal.SIGTERM, signal.SIGCONT):
        _signal_group(pgid, sig)
    deadline = time.monotonic() + term_grace_s
    while group_pids(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if group_pids(pgid):
        _signal_group(pgid, signal.SIGKILL)
        deadline = time.monotonic() + 10.0
        while group_pids(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
    remove_shm_regions(pgid, shm_dir)
    return names


def remove_shm_regions(pgid: int, shm_dir: Path = SHM_DIR) -> int:
    """Remove the shared-memory regions of group ``pgid``'s servers (``server.shm_prefix``); returns how many."""
    removed = 0
    for region in leftovers.regions(shm_prefix(pgid), shm_dir):
        with contextlib.suppress(FileNotFoundError):
            region.unlink()
            removed += 1
    return removed


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group ended meanwhile
        os.killpg(pgid, sig)


def phase_command(phase: str, args: argparse.Namespace, budget_s: float) -> list[str]:
    """The command line of one phase's process."""
    command = [sys.executable, "-m", "tritonclf_lab.gpu_kit.phases", phase, "--work", str(args.work)]
    command += ["--results", str(args.results), "--budget-s", str(budget_s), "--libpython", args.libpython]
    return command + (["--cpu-smoke"] if args.cpu_smoke else [])


def run_phase(phase: str, args: argparse.Namespace, budget_s: float, grace_s: float = GRACE_S) -> dict:
    """One phase in a process group of its own; its status (ok, failed or timeout), seconds and leftovers.

    ``left_running`` names what was still running of the phase's group when it ended or
    timed out (the runner ended it); a timeout always ends the whole group.
    """
    started = time.monotonic()
    process = subprocess.Popen(phase_command(phase, args, budget_s), start_new_session=True)
    try:
        code = process.wait(timeout=budget_s + grace_s)
        status = "ok" if code == 0 else "failed"
    except subprocess.TimeoutExpired:
        status = "timeout"
    finally:  # on time, late, or interrupted (Ctrl-C, SIGTERM to the run): nothing of the phase survives it
        left = end_group(process.pid)
        process.wait()
    row = {"status": status, "seconds": round(time.monotonic() - started, 1), "budget_s": budget_s}
    return {**row, "left_running": left} if left else row


def default_work(kit: Path) -> Path:
    """A folder under the system's temp dir, one per kit location.

    Not inside the kit: the kit folder is what travels to the GPU host (at most 64 MiB),
    and the unpacked payloads are five times its size.
    """
    tag = hashlib.sha256(str(kit.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"tritonclf-gpu-kit-{tag}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The run's options."""
    parser = argparse.ArgumentParser(prog="run.sh", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kit", type=Path, required=True, help="the kit folder (run.sh passes its own)")
    parser.add_argument("--work", type=Path, help="where payloads unpack (default: a folder in the temp dir)")
    parser.add_argument("--results", type=Path, help="results file (default: KIT/results.json)")
    parser.add_argument("--skip", action="append", default=[], help=f"phase(s) to skip: {', '.join(PHASES)}")
    parser.add_argument("--cpu-smoke", action="store_true", help="no GPU: serve the CPU repository, skip CUDA phases")
    parser.add_argument(
        "--libpython",
        choices=LIBPYTHON_MODES,
        default="auto",
        help="the stub's libpython: the host's, else the kit's (auto); or force one (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    args.work = (args.work or default_work(args.kit)).resolve()
    args.results = (args.results or args.kit / "results.json").resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the phases; 0 when every phase that ran passed."""
    args = parse_args(argv)
    # A SIGTERM to the run (a device's time limit) unwinds like Ctrl-C: run_phase ends the phase's group.
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        skips = parse_skips(args.skip)
    except ValueError as err:
        print(f"run.sh: {err}", file=sys.stderr)
        return 2
    started = time.monotonic()
    results = Results(args.results)
    for phase in PHASES:
        if phase not in skips:
            results.drop(phase)
    unpack_s = unpack(args.kit, args.work)
    results.update(
        "run",
        {
            "cpu_smoke": args.cpu_smoke,
            "python": sys.version.split()[0],
            "libpython": args.libpython,
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "unpack_s": round(unpack_s, 1),
            "kit": json.loads((args.kit / "kit.json").read_text()),
        },
    )
    print(f"run.sh: kit unpacked in {unpack_s:.1f} s into {args.work}; results: {args.results}", flush=True)
    needs_cuda = served_needs_cuda(args.work / "models" / ("repository-cpu" if args.cpu_smoke else "repository"))
    statuses: dict[str, dict] = {}
    for phase in PHASES:
        checks = results.section("preflight").get("checks") if "preflight" in statuses else None
        step = decide(phase, skips, checks, cpu_smoke=args.cpu_smoke, served_needs_cuda=needs_cuda)
        if not step.runs:
            print(f"{phase}: skipped: {step.reason}", flush=True)
            statuses[phase] = {"status": "skipped", "reason": step.reason}
        else:
            statuses[phase] = run_phase(phase, args, step.budget_s)
            row = statuses[phase]
            print(f"{phase}: {row['status']} in {row['seconds']:.1f} s (budget {step.budget_s:.0f} s)", flush=True)
            if row.get("left_running"):
                print(f"{phase}: ended what it left running: {', '.join(row['left_running'])}", flush=True)
        results.update("phases", {phase: statuses[phase]})
    logs = args.work / "logs"
    if logs.is_dir():  # the server's log and any phase's traceback, beside results.json
        shutil.copytree(logs, args.results.parent / "logs", dirs_exist_ok=True)
    total = round(time.monotonic() - started, 1)
    failed = [p for p, s in statuses.items() if s["status"] in ("failed", "timeout")]
    results.update("run", {"total_s": total, "failed": failed, "within_limit": total <= RUN_LIMIT_S})
    print(f"run.sh: {'FAILED: ' + ', '.join(failed) if failed else 'ok'} in {total:.0f} s", flush=True)
    return 1 if failed else 0


def _interrupted(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    sys.exit(main())
