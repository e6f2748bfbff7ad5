"""Run ``tritonclf build`` and SIGKILL it at its Nth file operation: a build killed midway, on cue.

    python -m tests.kill_build_at N --export EXPORT --repository REPO [build options...]

The operations counted are where a crash can land between two states of the repository:
a file copy or a tree removal (the kill comes halfway through, so a partial file or
a half-removed folder exists somewhere), an fsync (data written, not renamed into
place), a rename or replace (just before it). When N is past the last operation the
build completes and prints ``operations: COUNT`` on stderr.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path

from tritonclf.repository import build_cli

_real = {
    "copyfile": shutil.copyfile,
    "fsync": os.fsync,
    "rename": os.rename,
    "replace": os.replace,
    "rmtree": shutil.rmtree,
}


class KillSwitch:
    """Counts the file operations and kills this process at the chosen one."""

    def __init__(self, kill_at: int):
        self.kill_at, self.count = kill_at, 0

    def reached(self) -> bool:
        """Count one operation; True when it is the one to die at."""
        self.count += 1
        return self.count == self.kill_at

    def copyfile(self, src, dst, *args, **kwargs):
        """shutil.copyfile, or half of it and death."""
        if self.reached():
            data = Path(src).read_bytes()
            with open(dst, "wb") as out:
                out.write(data[: len(data) // 2])
            _die()
        return _real["copyfile"](src, dst, *args, **kwargs)

    def rmtree(self, path, *args, **kwargs):
        """shutil.rmtree, or half of it and death."""
        if self.reached():
            files = sorted(p for p in Path(path).rglob("*") if p.is_file())
            for file in files[: max(1, len(files) // 2)]:
                file.unlink()
            _die()
        return _real["rmtree"](path, *args, **kwargs)

    def wrap(self, name: str):
        """The real operation, or death just before it."""

        def operation(*args, **kwargs):
            if self.reached():
                _die()
            return _real[name](*args, **kwargs)

        return operation


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main(argv: list[str]) -> int:
    """Install the counting wrappers and run the build with the remaining arguments."""
    switch = KillSwitch(int(argv[0]))
    shutil.copyfile, shutil.rmtree = switch.copyfile, switch.rmtree
    for name, module in (("fsync", os), ("rename", os), ("replace", os)):
        setattr(module, name, switch.wrap(name))
    code = build_cli.main(argv[1:])
    print(f"operations: {switch.count}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
