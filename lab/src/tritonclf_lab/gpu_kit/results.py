"""``results.json``, written after every step so a run cut short still reports what it measured."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


class Results:
    """One JSON object on disk; ``update`` merges a section and rewrites the file atomically.

    Every phase runs in its own process, one after another, so read-merge-write needs no lock.
    """

    def __init__(self, path: Path):
        """Results at ``path`` (created on the first update)."""
        self.path = Path(path)

    def load(self) -> dict[str, Any]:
        """The whole object so far ({} before the first write)."""
        if not self.path.is_file():
            return {}
        return json.loads(self.path.read_text())

    def update(self, section: str, values: dict[str, Any]) -> dict[str, Any]:
        """Merge ``values`` into ``section`` and write; returns the section as written."""
        data = self.load()
        merged = {**data.get(section, {}), **values}
        data[section] = merged
        self._write(data)
        return merged

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, staging = tempfile.mkstemp(prefix=".results-", dir=self.path.parent)
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=2, sort_keys=True, default=str)
            out.write("\n")
        os.replace(staging, self.path)

    def section(self, name: str) -> dict[str, Any]:
        """One section ({} when it was never written)."""
        return self.load().get(name, {})

    def drop(self, section: str) -> None:
        """Forget a section (a phase about to run again starts from nothing)."""
        data = self.load()
        if section in data:
            del data[section]
            self._write(data)
