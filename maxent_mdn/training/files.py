"""Files written so that a crash never leaves a torn one: the one I/O primitive every output goes through."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pandas as pd

__all__ = ["atomic_write", "write_csv"]


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Write ``path`` through a temporary file in the same folder and rename it into place.

    A crash or kill mid-write leaves the previous file (or none), never a torn one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs are ordinary files
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a DataFrame as CSV atomically (no index)."""
    return atomic_write(path, lambda f: f.write(frame.to_csv(index=False).encode()))
