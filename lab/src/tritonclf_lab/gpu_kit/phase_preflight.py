"""Phase 0, preflight: can the stub link libpython, is /dev/shm big enough, does nvJPEG decode.

Each check is one boolean in ``results.json``'s ``preflight.checks``; the runner skips
the phases that need a failed check, with one line each.
"""

from __future__ import annotations

import os
import subprocess
import sysconfig
import time
from pathlib import Path

from tritonclf_lab.gpu_kit.context import Context, python_tag
from tritonclf_lab.gpu_kit.server import STUB

# The Python backend moves every request's tensors through /dev/shm; Docker's default 64 MiB
# is the smallest it is known to work with.
MIN_SHM_BYTES = 64 * 2**20


def libpython_dir() -> str | None:
    """The folder holding this interpreter's shared libpython, when it is not on the loader's path."""
    libdir, soname = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME")
    if libdir and soname and (Path(libdir) / soname).is_file():
        return libdir
    return None


def missing_libraries(binary: Path, env: dict[str, str]) -> list[str]:
    """The shared libraries ``ldd`` cannot find for ``binary`` in ``env``."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, env=env, check=False).stdout
    return [line.split()[0] for line in out.splitlines() if "not found" in line]


def check_libpython(ctx: Context) -> dict:
    """The stub for this Python resolves every library (libpython included)."""
    stub = ctx.triton / "stubs" / python_tag() / STUB
    if not stub.is_file():
        return {"ok": False, "reason": f"the kit carries no stub for Python {python_tag()}"}
    found_in = libpython_dir()
    env = dict(os.environ)
    # The stub also links the kit's CUDA runtime (its RPATH does not reach the kit's lib/).
    folders = (str(ctx.triton / "lib"), found_in, env.get("LD_LIBRARY_PATH"))
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in folders if p)
    missing = missing_libraries(stub, env)
    reason = f"the stub cannot find {', '.join(missing)}" if missing else ""
    return {"ok": not missing, "libpython_dir": found_in, "stub": str(stub), "reason": reason}


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

    checks = {"libpython": check_libpython(ctx), "shm": check_shm()}
    if not ctx.cpu_smoke:
        checks["cuda"] = _guarded(check_cuda)
        checks["nvjpeg"] = (
            _guarded(check_nvjpeg, sample_photo("chelsea").read_bytes())
            if checks["cuda"]["ok"]
            else {
                "ok": False,
                "reason": "no CUDA device",
            }
        )
    for name, check in checks.items():
        ctx.say(f"preflight: {name}: {'ok' if check['ok'] else 'FAILED: ' + check.get('reason', '')}")
    ctx.results.update("preflight", {"checks": {k: v["ok"] for k, v in checks.items()}, "details": checks})
    return all(check["ok"] for check in checks.values())


def _guarded(check, *args) -> dict:
    try:
        return check(*args)
    except Exception as err:  # any failure of a probe is that check's answer, in one line
        return {"ok": False, "reason": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"}
