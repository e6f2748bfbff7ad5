"""What every phase is handed: the unpacked kit's paths, the results file, the phase's deadline."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tritonclf_lab.gpu_kit.results import Results


@dataclass
class Context:
    """One phase's view of the run."""

    work: Path
    results: Results
    budget_s: float
    cpu_smoke: bool = False
    libpython_mode: str = "auto"  # host_libs.LIBPYTHON_MODES
    started: float = field(default_factory=time.monotonic)

    @property
    def models(self) -> Path:
        """The unpacked ``models.tar.xz``: export/, repository/, repository-cpu/."""
        return self.work / "models"

    @property
    def export(self) -> Path:
        """The kit's export (model.json and the weights its repositories serve)."""
        return self.models / "export"

    @property
    def repository(self) -> Path:
        """The repository this run serves: the CPU one in --cpu-smoke."""
        return self.models / ("repository-cpu" if self.cpu_smoke else "repository")

    @property
    def triton(self) -> Path:
        """The unpacked ``triton.tar.xz``."""
        return self.work / "triton"

    @property
    def probe_repository(self) -> Path:
        """The one-model repository the preflight serves to look inside a stub."""
        return self.models / "probe"

    @property
    def numpy_dir(self) -> Path:
        """The unpacked numpy 1.26 (for the stub of the Python it was built for only)."""
        return self.work / "numpy"

    @property
    def stub_prefix(self) -> Path:
        """The stubs' venv-style Python prefix (stub_python.py)."""
        return self.work / "stub-python"

    @property
    def driver_links(self) -> Path:
        """Where the kit links ``libcuda.so`` when the host has only ``libcuda.so.1``."""
        return self.work / "driver"

    @property
    def carried_libpython(self) -> Path:
        """The kit's ``libpython3.X.so.1.0`` for this Python, when it carries one."""
        return self.triton / "libpython" / python_tag()

    @property
    def mix_dir(self) -> Path:
        """The generated JPEG mix, shared by the phases."""
        return self.work / "mix"

    @property
    def logs(self) -> Path:
        """Server logs and the like."""
        return self.work / "logs"

    def remaining_s(self) -> float:
        """Seconds left of this phase's budget."""
        return self.budget_s - (time.monotonic() - self.started)

    def say(self, line: str) -> None:
        """One progress line on stdout, flushed (the device runner shows the tail)."""
        print(line, flush=True)


def python_tag() -> str:
    """``3.12`` for the running interpreter."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"
