"""Phase 0, preflight: what the server needs from this host, a look inside a stub, /dev/shm, CUDA, nvJPEG.

One line per check, saying what was found and what the kit did about it:

- ``libpython``: the stub's libpython3.X.so.1.0, the host's or the kit's carried one, and
  every other library of the stub resolved (``ldd`` with the server's LD_LIBRARY_PATH);
- ``libcuda``: ``libcuda.so`` as python_backend opens it, or the link the kit made to
  the host's ``libcuda.so.1`` (not needed by ``--cpu-smoke``);
- ``stub_python``: the kit's probe model served alone reports, from inside its stub, the
  numpy it imported (the carried 1.26 on the GPU host's Python) and whether a BYTES input
  arrived intact;
- ``shm``, ``cuda``, ``nvjpeg``.

Each check is one boolean in ``results.json``'s ``preflight.checks``; the runner skips
the phases that need a failed check, with one line each.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from tritonclf_lab.gpu_kit.context import Context, python_tag
from tritonclf_lab.gpu_kit.probe import probe_stub
from tritonclf_lab.gpu_kit.server import STUB, HostSetup, prepare_host

# The Python backend moves every request's tensors through /dev/shm; Docker's default 64 MiB
# is the smallest it is known to work with.
MIN_SHM_BYTES = 64 * 2**20
# Seconds of the budget kept for the checks after the probe (torch's import and an nvJPEG decode).
AFTER_PROBE_S = 20.0


def missing_libraries(binary: Path, env: dict[str, str]) -> list[str]:
    """The shared libraries ``ldd`` cannot find for ``binary`` in ``env``."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, env=env, check=False).stdout
    return [line.split()[0] for line in out.splitlines() if "not found" in line]


def check_libpython(ctx: Context, setup: HostSetup) -> dict:
    """The chosen libpython, and the stub for this Python resolving every library with it."""
    stub = ctx.triton / "stubs" / python_tag() / STUB
    check = {**setup.libpython.as_dict(), "line": setup.libpython.line, "stub": str(stub)}
    if not stub.is_file():
        return {**check, "ok": False, "reason": f"the kit carries no stub for Python {python_tag()}"}
    if not setup.libpython.ok:
        return check
    env = {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join(setup.library_path(ctx))}
    missing = missing_libraries(stub, env)
    if missing:
        return {**check, "ok": False, "reason": f"the stub cannot find {', '.join(missing)}"}
    return check


def check_libcuda(setup: HostSetup, *, needed: bool) -> dict:
    """``libcuda.so`` found or linked; a machine without a driver passes only when nothing needs CUDA."""
    check = {**setup.libcuda.as_dict(), "line": setup.libcuda.line}
    if not setup.libcuda.ok and not needed:
        line = f"{setup.libcuda.line}; no NVIDIA driver, none needed by --cpu-smoke"
        return {**check, "ok": True, "line": line, "reason": ""}
    return check


def check_shm(path: str = "/dev/shm") -> dict:
    """Size of the shared-memory filesystem the Python backend needs."""
    try:
        stat = os.statvfs(path)
    except OSError as err:
        return {"ok": False, "reason": f"{path}: {err}"}
    total, free = stat.f_blocks * stat.f_frsize, stat.f_bavail * stat.f_frsize
    ok = free >= MIN_SHM_BYTES
    reason = "" if ok else f"{path} has {free / 2**20:.0f} MiB free, under {MIN_SHM_BYTES / 2**20:.0f} MiB"
    return {"ok": ok, "total_bytes": total, "free_bytes": free, "reason": reason}


def check_cuda() -> dict:
    """Whether torch sees a CUDA device."""
    import torch

    if not torch.cuda.is_available():
        return {"ok": False, "reason": f"torch {torch.__version__} sees no CUDA device"}
    return {
        "ok": True,
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "capability": ".".join(map(str, torch.cuda.get_device_capability(0))),
    }


def check_nvjpeg(photo: bytes) -> dict:
    """One JPEG decoded by nvJPEG (torchvision.io.decode_jpeg on cuda) matches the CPU decode's shape."""
    import torch
    from torchvision.io import decode_jpeg

    data = torch.frombuffer(bytearray(photo), dtype=torch.uint8)
    started = time.perf_counter()
    on_gpu = decode_jpeg(data, device="cuda")
    torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    on_cpu = decode_jpeg(data)
    ok = tuple(on_gpu.shape) == tuple(on_cpu.shape)
    diff = float((on_gpu.cpu().float() - on_cpu.float()).abs().mean()) if ok else None
    return {"ok": ok, "shape": list(on_gpu.shape), "first_decode_s": round(seconds, 3), "mean_abs_diff_vs_cpu": diff}


def run(ctx: Context) -> bool:
    """Every check; True when all that ran passed."""
    from tritonclf.samples import sample_photo

    setup = prepare_host(ctx)
    checks = {"libpython": check_libpython(ctx, setup), "libcuda": check_libcuda(setup, needed=not ctx.cpu_smoke)}
    if checks["libpython"]["ok"]:
        timeout_s = max(10.0, ctx.remaining_s() - AFTER_PROBE_S)
        checks["stub_python"] = probe_stub(ctx, setup, timeout_s=timeout_s)
    else:
        checks["stub_python"] = {"ok": False, "reason": "not probed: the stub cannot link"}
    checks["shm"] = check_shm()
    if not ctx.cpu_smoke:
        checks["cuda"] = _guarded(check_cuda)
        checks["nvjpeg"] = (
            _guarded(check_nvjpeg, sample_photo("chelsea").read_bytes())
            if checks["cuda"]["ok"]
            else {"ok": False, "reason": "no CUDA device"}
        )
    for name, check in checks.items():
        said = "; ".join(dict.fromkeys(part for part in (check.get("line", ""), check.get("reason", "")) if part))
        ctx.say(f"preflight: {name}: {'ok' if check['ok'] else 'FAILED'}{': ' + said if said else ''}")
    ctx.results.update("preflight", {"checks": {k: v["ok"] for k, v in checks.items()}, "details": checks})
    return all(check["ok"] for check in checks.values())


def _guarded(check, *args) -> dict:
    try:
        return check(*args)
    except Exception as err:  # any failure of a probe is that check's answer, in one line
        return {"ok": False, "reason": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"}
