"""The spec files shipped with the package, found the same way from a checkout and from an installed wheel.

In a checkout they live in the top-level ``constraints/`` folder, where users
find and copy them; the wheel carries the same files as
``maxent_mdn/constraints/`` (``setup.cfg`` maps the one onto the other). A spec
argument that names no file but a shipped spec (``gaussian_3d`` or
``gaussian_3d.py``) loads the shipped one, so ``maxent-mdn train gaussian_3d``
works from any directory.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["resolve_spec", "shipped_specs", "specs_dir"]

_PACKAGED = Path(__file__).resolve().parents[1] / "constraints"  # an installed wheel
_CHECKOUT = Path(__file__).resolve().parents[2] / "constraints"  # a source checkout (or editable install)


def specs_dir() -> Path:
    """The folder of the shipped specs: the wheel's copy where installed, else the checkout's ``constraints/``.

    Example:
        >>> (specs_dir() / "gaussian_3d.py").is_file()
        True
    """
    return _PACKAGED if _PACKAGED.is_dir() else _CHECKOUT


def shipped_specs() -> list[str]:
    """The names of the shipped specs (file stems, sorted).

    Example:
        >>> "quartic_bimodal_1d" in shipped_specs()
        True
    """
    return sorted(p.stem for p in specs_dir().glob("*.py") if not p.stem.startswith("_"))


def resolve_spec(spec: str | Path) -> Path:
    """``spec`` itself when it is a file, else the shipped spec it names (``name`` or ``name.py``), else ``spec``.

    A path with a folder in it is never taken for a shipped name, so a typo in
    a user's own path still reports that path as missing.

    Example:
        >>> resolve_spec("dirichlet").name, resolve_spec("dirichlet").parent == specs_dir()
        ('dirichlet.py', True)
    """
    path = Path(spec)
    if path.is_file() or len(path.parts) != 1:
        return path
    shipped = specs_dir() / (path.name if path.suffix == ".py" else f"{path.name}.py")
    return shipped if shipped.is_file() else path
