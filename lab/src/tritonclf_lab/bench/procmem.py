"""Resident memory of a process and its descendants (tritonserver and its Python-backend stubs), from /proc."""

from __future__ import annotations

from pathlib import Path

PROC = Path("/proc")


def parent_pids(proc: Path = PROC) -> dict[int, int]:
    """{pid: parent pid} of every process that can be read."""
    parents = {}
    for stat in proc.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # exited while we looked
            continue
        # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
        fields = text[text.rfind(")") + 2 :].split()
        parents[int(stat.parent.name)] = int(fields[1])
    return parents


def descendants(pid: int, parents: dict[int, int]) -> list[int]:
    """``pid`` and every process below it."""
    children: dict[int, list[int]] = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, []))
    return found


def rss_bytes(pid: int, proc: Path = PROC) -> int:
    """VmRSS of one process; 0 if it is gone."""
    try:
        for line in (proc / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss_bytes(pid: int, proc: Path = PROC) -> int:
    """Resident memory of ``pid`` and its descendants, summed (shared pages count once per process)."""
    return sum(rss_bytes(p, proc) for p in descendants(pid, parent_pids(proc)))
