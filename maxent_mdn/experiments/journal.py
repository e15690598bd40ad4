"""The run journal: every finished run's rows, appended as it finishes, so nothing is lost.

A full reproduction is hours of compute. Each finished run is appended to
``<out>/runs.jsonl`` (one JSON line: the run's key, the run, its rows per
table), flushed and fsynced before the next result is taken, so an
interrupted ``reproduce`` keeps every run it finished and the next call skips
them. A run's key is a digest of what defines it (experiment, case, kind,
seed, settings): change a setting and the run is redone; change the *code*
and pass ``--fresh`` to redo the runs asked for (the others' records stay).

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from maxent_mdn.experiments.registry import Run
    >>> journal = Journal(Path(tempfile.mkdtemp()) / "runs.jsonl")
    >>> run = Run("temperature", "quartic_bimodal_1d", "solve", 0, {"tau": 0.1})
    >>> journal.add(run, {"temperature": [{"kl": 0.01}]})
    >>> Journal(journal.path).done(run)
    True
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import asdict
from pathlib import Path

from .registry import Run

__all__ = ["Journal", "run_key"]


def run_key(run: Run) -> str:
    """A stable digest of the run's definition (16 hex digits)."""
    text = json.dumps(asdict(run), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Journal:
    """Append-only record of finished runs, read back on the next ``reproduce``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.records: dict[str, dict[str, list[dict]]] = {}
        self._lines: dict[str, str] = {}
        if self.path.exists():
            self._read()

    def _read(self) -> None:
        lines = self.path.read_text().splitlines()
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                self.records[entry["key"]] = entry["tables"]
                self._lines[entry["key"]] = line
            except (json.JSONDecodeError, KeyError, TypeError):
                # a run killed mid-write leaves a torn last line: that run is simply redone
                warnings.warn(
                    f"{self.path}:{number}: unreadable journal line skipped (that run will be redone)",
                    stacklevel=2,
                )

    def done(self, run: Run) -> bool:
        """Whether ``run`` has a record."""
        return run_key(run) in self.records

    def tables(self, run: Run) -> dict[str, list[dict]]:
        """The rows ``run`` produced, per table."""
        return self.records[run_key(run)]

    def add(self, run: Run, tables: dict[str, list[dict]]) -> None:
        """Record a finished run durably (append, flush, fsync)."""
        key = run_key(run)
        self.records[key] = tables
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"key": key, "run": asdict(run), "tables": tables}, default=_plain)
        self._lines[key] = line
        with self.path.open("a+b") as f:
            torn = f.tell() > 0 and (f.seek(-1, os.SEEK_END), f.read(1))[1] != b"\n"
            f.write((("\n" if torn else "") + line + "\n").encode())  # never glue onto a torn last line
            f.flush()
            os.fsync(f.fileno())

    def forget(self, runs: list[Run]) -> None:
        """Drop the records of ``runs`` (rewriting the file atomically); every other record stays."""
        from ..training.files import atomic_write

        for key in map(run_key, runs):
            self.records.pop(key, None)
            self._lines.pop(key, None)
        if self.path.exists():
            text = "".join(line + "\n" for line in self._lines.values())
            atomic_write(self.path, lambda f: f.write(text.encode()))


def _plain(value: object) -> object:
    """JSON for the numpy/torch scalars that can end up in a row."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot record a value of type {type(value).__name__} in the run journal")
