"""Resident memory of a process and its descendants (tritonserver and its Python-backend stubs)."""

from __future__ import annotations

import psutil


def process_tree(pid: int) -> list[psutil.Process]:
    """``pid`` and every process below it; empty once it is gone."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def descendants(pid: int) -> list[int]:
    """The ids of ``pid`` and every process below it."""
    return [process.pid for process in process_tree(pid)]


def rss_bytes(process: psutil.Process) -> int:
    """Resident memory of one process; 0 if it is gone."""
    try:
        return process.memory_info().rss
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants, summed (shared pages count once per process)."""
    return sum(rss_bytes(process) for process in process_tree(pid))
