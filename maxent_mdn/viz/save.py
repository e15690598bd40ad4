"""Saving figures atomically (temporary file + rename), in the format the suffix names."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

__all__ = ["save_figure", "save_pdf_and_png"]


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


def save_pdf_and_png(fig: Figure, out: Path, name: str) -> list[Path]:
    """A comparison figure as ``out/name.pdf`` and ``out/name.png`` (after ``tight_layout``); closes it."""
    fig.tight_layout()
    return [
        save_figure(fig, out / f"{name}.pdf", close=False),
        save_figure(fig, out / f"{name}.png", dpi=130),
    ]
