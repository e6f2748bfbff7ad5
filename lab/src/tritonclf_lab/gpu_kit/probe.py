"""Look inside a stub before the served phase: which Python and numpy the stubs run, and can they read BYTES.

``build_probe_repository`` (kit build time) writes ``models/probe/kit_probe``: ``probe_model.py``
with a generated config (one BYTES input, a warmup that sends one element).
``probe_stub`` (preflight) serves it alone with the served phase's command line and
environment, then reads the report the model wrote from inside its stub.
"""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

from tritonclf.serving.process import ServerStartError
from tritonclf_lab.gpu_kit.context import Context
from tritonclf_lab.gpu_kit.server import HostSetup, first_error, kit_server

MODEL = "kit_probe"
PROBE_TEXT = b"tritonclf gpu kit: bytes intact"
WARMUP_FILE = "probe.bytes"
PROBE_MODEL_SOURCE = Path(__file__).with_name("probe_model.py")
# The first numpy whose BYTES tensors the embedded Triton's Python backend cannot read.
BAD_NUMPY_MAJOR = 2


def build_probe_repository(repository: Path) -> None:
    """The probe's repository (needs tritonclient's protobufs: kit build time, not on the host)."""
    from tritonclf.repository.build import write_model
    from tritonclf.repository.pbtxt import InstanceGroup, ModelSpec, Tensor, WarmupInput, WarmupSample

    spec = ModelSpec(
        name=MODEL,
        inputs=(Tensor("probe", "TYPE_STRING", (1,)),),
        outputs=(Tensor("report", "TYPE_STRING", (1,)),),
        max_batch_size=0,
        backend="python",
        instance_groups=(InstanceGroup(1, "KIND_CPU"),),
        parameters={"expected": PROBE_TEXT.decode()},
        warmup=(WarmupSample("bytes", 1, {"probe": WarmupInput("TYPE_STRING", (1,), WARMUP_FILE)}),),
    )
    write_model(
        repository,
        spec,
        version_files={"model.py": PROBE_MODEL_SOURCE},
        model_dir_files={f"warmup/{WARMUP_FILE}": struct.pack("<I", len(PROBE_TEXT)) + PROBE_TEXT},
        provenance={},
        keep_versions=1,
    )


def report_path(repository: Path) -> Path:
    """Where the probe model writes its report (its only version's folder)."""
    versions = sorted((p for p in (repository / MODEL).iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    return versions[-1] / "stub.json"


def judge(report: dict | None, server_error: str, carried_numpy: Path | None) -> dict:
    """The preflight check from the stub's report: ok when numpy < 2 imported and the BYTES arrived intact.

    ``carried_numpy``: the folder the kit put first in the stubs' prefix (None: the host's numpy is theirs).
    """
    if report is None:
        return {"ok": False, "line": "", "reason": f"the probe stub never started: {server_error or 'no report'}"}
    numpy = report.get("numpy", {})
    version, folder = numpy.get("version"), numpy.get("folder") or ""
    if version:
        carried = carried_numpy is not None and Path(folder).is_relative_to(carried_numpy)
        whose = "the kit's, first in the stubs' prefix" if carried else "the host's"
        where = f"numpy {version} ({whose}: {folder})"
    else:
        where = f"no numpy ({numpy.get('error')})"
    line = f"{where} in the stubs' Python {report.get('python')} (prefix {report.get('prefix')}"
    line += f", {report['libpython']})" if report.get("libpython") else ")"
    problems = []
    if not version:
        problems.append("the stub cannot import numpy")
    elif int(version.split(".")[0]) >= BAD_NUMPY_MAJOR:
        problems.append(f"numpy {version} in a stub corrupts BYTES inputs: it needs numpy < 2")
    if report.get("bytes_intact") is True:
        line += "; a BYTES input arrived intact"
    else:
        problems.append(f"a BYTES input did not arrive intact ({server_error or 'garbled'})")
    return {"ok": not problems, "line": line, "reason": "; ".join(problems), "report": report}


def probe_stub(ctx: Context, setup: HostSetup, timeout_s: float) -> dict:
    """Serve the probe, read its report, stop; the check's dict (``ok``, ``line``, ``reason``)."""
    stale = report_path(ctx.probe_repository)
    stale.unlink(missing_ok=True)
    server = kit_server(ctx, setup, ctx.probe_repository, gpu=False, ready_timeout_s=timeout_s, log_name="probe.log")
    started, error = time.monotonic(), ""
    try:
        server.start()  # ready = the probe loaded and its warmup ran
    except ServerStartError as err:
        error = first_error(ctx.logs / "probe.log") or str(err).splitlines()[0]
    finally:
        server.stop()
    path = report_path(ctx.probe_repository)
    report = json.loads(path.read_text()) if path.is_file() else None
    check = judge(report, error, ctx.numpy_dir if setup.carried_numpy else None)
    check["seconds"] = round(time.monotonic() - started, 1)
    return check
