"""Saving figures atomically (temporary file + rename), in the format the suffix names."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

__all__ = ["save_figure"]


def save_figure(fig: Figure, path: str | Path, dpi: int = 120, close: bool = True) -> Path:
    """Write ``fig`` to ``path`` (``.png``, ``.pdf``, ...) through a temporary file, then close it (unless not ``close``).

    Example:
        >>> import tempfile
        >>> fig, ax = plt.subplots()
        >>> save_figure(fig, tempfile.mkdtemp() + "/empty.pdf").suffix
        '.pdf'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        fig.savefig(tmp, dpi=dpi)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
        if close:
            plt.close(fig)
    return path
