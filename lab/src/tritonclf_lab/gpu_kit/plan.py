"""Which phases run, with what budget, and why a phase is skipped: pure logic, no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Seconds per phase on the GPU host; together well under the run's 8 minutes, leaving room
# for unpacking, interpreter start-up and the server's start and stop.
# The preflight starts a server once (the stub probe) before torch's checks.
BUDGETS_S: dict[str, float] = {"preflight": 45.0, "standalone": 75.0, "accuracy": 45.0, "served": 240.0}
PHASES = tuple(BUDGETS_S)
RUN_LIMIT_S = 8 * 60
# What each phase needs from the preflight's checks.
NEEDS: dict[str, tuple[str, ...]] = {
    "preflight": (),
    "standalone": ("cuda", "nvjpeg"),
    "accuracy": ("cuda", "nvjpeg"),
    "served": ("libpython", "stub_python", "shm"),
}
CUDA_CHECKS = frozenset({"cuda", "nvjpeg"})
# A repository with GPU instances also needs the driver where python_backend looks for it.
SERVED_GPU_CHECKS = CUDA_CHECKS | {"libcuda"}


@dataclass(frozen=True)
class Step:
    """One phase's decision: run it within ``budget_s``, or skip it for ``reason``."""

    phase: str
    budget_s: float
    reason: str = ""

    @property
    def runs(self) -> bool:
        """Whether the phase runs."""
        return not self.reason


def decide(
    phase: str, skipped: Iterable[str], checks: Mapping[str, bool] | None, *, cpu_smoke: bool, served_needs_cuda: bool
) -> Step:
    """Run or skip ``phase``, given the flags and the preflight's checks (None before the preflight ran).

    A check the preflight never made (its phase skipped) counts as passed: the phase then
    fails on its own with its own message, which says more than a guess here.
    """
    budget = BUDGETS_S[phase]
    if phase in set(skipped):
        return Step(phase, budget, f"skipped by --skip-{phase}")
    needs = set(NEEDS[phase])
    if phase == "served" and served_needs_cuda:
        needs |= SERVED_GPU_CHECKS
    if cpu_smoke and needs & CUDA_CHECKS:
        return Step(phase, budget, "needs CUDA: skipped in --cpu-smoke")
    failed = sorted(name for name in needs if checks is not None and checks.get(name) is False)
    if failed:
        return Step(phase, budget, f"preflight failed: {', '.join(failed)}")
    return Step(phase, budget)


def parse_skips(values: Iterable[str]) -> list[str]:
    """Phase names from ``--skip`` values (comma-separated allowed); ValueError for an unknown one."""
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in PHASES]
    if unknown:
        raise ValueError(f"unknown phase {unknown[0]!r}; phases: {', '.join(PHASES)}")
    return names
