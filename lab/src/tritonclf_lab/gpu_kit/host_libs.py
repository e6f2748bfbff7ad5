"""The shared libraries the kit's server needs from the host: libpython for the stub, ``libcuda.so``.

Each is resolved the way the dynamic loader will resolve it in the server: ``dlopen`` in
a child interpreter started with the server's ``LD_LIBRARY_PATH`` (the loader reads it
once, at process start, so the check cannot run in this process).

- ``libpython3.X.so.1.0``: the stub links it. The host's own (its interpreter's
  ``LIBDIR``, or anywhere the loader finds it) comes first; the kit carries one for
  the GPU host's Python, used only when the host has none.
- ``libcuda.so``: python_backend opens the driver by that unversioned name
  (``dlopen("libcuda.so", RTLD_LAZY)`` in r24.10's ``src/pb_utils.cc``) and, when that
  fails, runs its GPU-memory calls without the driver's functions. Drivers mounted
  into containers often bring only ``libcuda.so.1``: then the kit links
  ``libcuda.so`` to the loaded ``libcuda.so.1`` in a folder of its own, first on the
  server's ``LD_LIBRARY_PATH``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

# dlopen the name, then ask the loader where the object came from (dlinfo RTLD_DI_LINKMAP).
_RESOLVE = r"""
import ctypes, json, sys
class LinkMap(ctypes.Structure):
    _fields_ = [("l_addr", ctypes.c_void_p), ("l_name", ctypes.c_char_p)]
try:
    handle = ctypes.CDLL(sys.argv[1], mode=ctypes.RTLD_LOCAL)
except OSError as err:
    print(json.dumps({"path": None, "error": str(err)}))
    raise SystemExit(0)
libc = ctypes.CDLL(None)
dlinfo = getattr(libc, "dlinfo", None) or ctypes.CDLL("libdl.so.2").dlinfo
link_map = ctypes.POINTER(LinkMap)()
dlinfo(ctypes.c_void_p(handle._handle), 2, ctypes.byref(link_map))
print(json.dumps({"path": link_map.contents.l_name.decode(), "error": ""}))
"""
LIBPYTHON_MODES = ("auto", "host", "carried")


@dataclass(frozen=True)
class Resolution:
    """What one library name resolved to, and what the kit did about it (one line for the report)."""

    name: str
    ok: bool
    path: str | None
    source: str  # "host", "carried", "linked", or "missing"
    line: str
    library_dir: str | None = None  # a folder the server's LD_LIBRARY_PATH needs for it

    def as_dict(self) -> dict:
        """For results.json."""
        return {"ok": self.ok, "path": self.path, "source": self.source, "reason": "" if self.ok else self.line}


def resolve(name: str, library_path: list[str]) -> tuple[str | None, str]:
    """(the path ``dlopen(name)`` loads with ``library_path`` first on LD_LIBRARY_PATH, or None; the error)."""
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join([*library_path, env.get("LD_LIBRARY_PATH", "")]).strip(os.pathsep)
    out = subprocess.run(
        [sys.executable, "-I", "-c", _RESOLVE, name], capture_output=True, text=True, env=env, check=False
    )
    try:
        answer = json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return None, f"the probe interpreter failed: {out.stderr.strip()[-200:]}"
    return answer["path"], answer["error"]


def interpreter_libpython() -> Path | None:
    """This interpreter's own shared libpython (its LIBDIR and INSTSONAME), when it has one."""
    libdir, soname = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME")
    if libdir and soname and soname.endswith(".so.1.0") and (Path(libdir) / soname).is_file():
        return Path(libdir) / soname
    return None


def choose_libpython(tag: str, carried_dir: Path | None, mode: str, library_path: list[str]) -> Resolution:
    """The stub's ``libpython{tag}.so.1.0``: the host's (auto, host), else the carried one (auto, carried)."""
    if mode not in LIBPYTHON_MODES:
        raise ValueError(f"--libpython must be one of {', '.join(LIBPYTHON_MODES)}, not {mode!r}")
    soname = f"libpython{tag}.so.1.0"
    carried = carried_dir / soname if carried_dir is not None and (carried_dir / soname).is_file() else None
    if mode != "carried":
        own = interpreter_libpython()
        if own is not None and own.name == soname:
            return Resolution(soname, True, str(own), "host", f"{soname}: the host's, {own}", str(own.parent))
        found, _ = resolve(soname, library_path)
        if found:
            return Resolution(soname, True, found, "host", f"{soname}: the host's, found by the loader: {found}")
    if mode != "host" and carried is not None:
        why = "forced by --libpython carried" if mode == "carried" else "the host has none"
        line = f"{soname}: the kit's ({why}): {carried}"
        return Resolution(soname, True, str(carried), "carried", line, str(carried_dir))
    missing = "the host has none" + ("" if mode == "host" else f" and the kit carries none for Python {tag}")
    return Resolution(soname, False, None, "missing", f"{soname}: {missing}")


def link_unversioned(name: str, versioned: str, library_path: list[str], link_dir: Path) -> Resolution:
    """``name`` as the loader finds it; when only ``versioned`` resolves, a link ``link_dir/name`` to it.

    ``link_dir`` is emptied first: a link from an earlier run never outlives the driver it pointed at.
    """
    if link_dir.is_dir():
        for stale in link_dir.iterdir():
            stale.unlink()
    found, _ = resolve(name, library_path)
    if found:
        return Resolution(name, True, found, "host", f"{name}: the host's, found by the loader: {found}")
    target, error = resolve(versioned, library_path)
    if not target:
        line = f"{name}: not found, nor {versioned} ({error}): nothing to link"
        return Resolution(name, False, None, "missing", line)
    link_dir.mkdir(parents=True, exist_ok=True)
    real = os.path.realpath(target)
    (link_dir / name).symlink_to(real)
    again, error = resolve(name, [str(link_dir), *library_path])
    if again is None:
        return Resolution(name, False, None, "missing", f"{name}: linked to {real}, still not loadable: {error}")
    line = f"{name}: missing on the host; linked {link_dir / name} -> {real} (the loaded {versioned})"
    return Resolution(name, True, again, "linked", line, str(link_dir))
