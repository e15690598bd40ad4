r"""A maximum-entropy problem, and loading one from a user's spec file."""

from __future__ import annotations

import importlib.util
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from .._checks import positive_int
from .constraints import Expectation
from .support import Interval, Real, Simplex, Support

__all__ = ["MaxEntProblem", "SpecError", "load_spec"]


class SpecError(ValueError):
    """A spec file or problem definition that cannot be used; the message says why."""


class MaxEntProblem:
    r"""Maximize :math:`H(q) = -\mathbb E_q[\log q]` subject to :math:`\mathbb E_q[T_j(x)] \;\mathrm{rel}_j\; b_j`, :math:`x \in` support.

    Args:
        dim: number of coordinates :math:`D` (for :class:`Simplex`, all of them).
        support: :class:`Real` (default), :class:`Positive`, :class:`Interval`, :class:`Simplex`.
        constraints: a list of :class:`Expectation` (or its conveniences).
        name: used for output folders and tables.
        grid_box: optional ``[(low, high), ...]`` per free coordinate for the
            grid reference solver (default: the support's bounds, or a box
            guessed from the constraints for unbounded supports).

    Example:
        >>> from maxent_mdn import Expectation, Real
        >>> problem = MaxEntProblem(dim=1, support=Real(), name="quartic", constraints=[
        ...     Expectation(lambda x: x[..., 0] ** 2, 1.0, name="m2"),
        ...     Expectation(lambda x: x[..., 0] ** 4, 1.5, name="m4"),
        ... ])
        >>> problem.rows
        [('m2', 0), ('m4', 0)]
    """

    def __init__(
        self,
        dim: int,
        constraints: Sequence[Expectation] = (),
        support: Support | None = None,
        name: str = "maxent",
        grid_box: Sequence[tuple[float, float]] | None = None,
    ) -> None:
        try:
            self.dim = positive_int("dim", dim)
        except ValueError as err:
            raise SpecError(str(err)) from None
        self.support = Real() if support is None else support
        if not isinstance(self.support, Support):
            raise SpecError(
                f"support must be Real(), Positive(), Interval(low, high) or Simplex(), got {support!r}"
            )
        if isinstance(self.support, Simplex) and dim < 2:
            raise SpecError(f"a Simplex support needs dim >= 2 coordinates, got dim={dim}")
        self.constraints = list(constraints)
        for i, c in enumerate(self.constraints):
            if not isinstance(c, Expectation):
                raise SpecError(f"constraint {i} is a {type(c).__name__}, not an Expectation")
            if c.name is None:
                c.name = f"T{i}"
        names = [c.name for c in self.constraints]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise SpecError(f"constraint names must be unique; repeated: {', '.join(duplicates)}")
        bounded = isinstance(self.support, Interval | Simplex)
        if not self.constraints and not bounded:
            raise SpecError(
                f"no constraints on an unbounded support ({self.support!r}): the entropy is unbounded, "
                "so there is no maximum-entropy distribution; add constraints or use a bounded support"
            )
        self.name = str(name)
        self.grid_box = None if grid_box is None else [(float(lo), float(hi)) for lo, hi in grid_box]

    @property
    def rows(self) -> list[tuple[str, int]]:
        """``(constraint name, index)`` for each scalar row of :math:`T`."""
        return [(c.name, i) for c in self.constraints for i in range(c.size)]

    @property
    def labels(self) -> list[str]:
        """A label for each scalar row, e.g. ``mean[0]``, ``covariance[0,1]``, ``m4`` (see :attr:`Expectation.labels`)."""
        return [label for c in self.constraints for label in c.labels]

    @property
    def targets(self) -> Tensor:
        """All targets :math:`b` stacked, ``(M,)`` float64."""
        if not self.constraints:
            return torch.zeros(0, dtype=torch.float64)
        return torch.cat([c.target for c in self.constraints])

    @property
    def relations(self) -> list[str]:
        """The relation of each scalar row."""
        return [c.relation for c in self.constraints for _ in range(c.size)]

    def statistics(self, x: Tensor) -> Tensor:
        """All constraint statistics at ``x`` ``(n, D)``, stacked as ``(n, M)``."""
        if x.ndim != 2 or x.shape[-1] != self.dim:
            raise ValueError(
                f"problem {self.name!r} expects points of shape (n, {self.dim}), got {tuple(x.shape)}"
            )
        if not self.constraints:
            return x.new_zeros(x.shape[0], 0)
        return torch.cat([c.evaluate(x) for c in self.constraints], -1)

    def __repr__(self) -> str:
        return f"MaxEntProblem(name={self.name!r}, dim={self.dim}, support={self.support!r}, constraints={self.constraints})"


def load_spec(path: str | Path) -> MaxEntProblem:
    """Load a spec file: a Python module that defines ``problem = MaxEntProblem(...)``.

    ``path`` may also name a shipped spec (``"gaussian_3d"``; see :mod:`.shipped`).

    Raises:
        SpecError: the file is missing or unreadable, has a syntax error (file
            and line given), fails while running, or defines no ``problem`` of
            the right type.

    Example:
        >>> load_spec("quartic_bimodal_1d").name
        'quartic-bimodal-1d'
    """
    from .shipped import resolve_spec, shipped_specs

    path = resolve_spec(path)
    if not path.is_file():
        hint = f" (nor a shipped spec: {', '.join(shipped_specs())})" if len(path.parts) == 1 else ""
        raise SpecError(f"spec file not found: {path}{hint}")
    module_name = f"_maxent_spec_{abs(hash(str(path.resolve())))}"
    try:
        source = path.read_text()
        code = compile(source, str(path), "exec")
    except SyntaxError as err:
        raise SpecError(f"syntax error in spec {err.filename}, line {err.lineno}: {err.msg}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"cannot read spec {path}: {err}") from None
    spec = importlib.util.spec_from_loader(module_name, loader=None, origin=str(path))
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    module.__file__ = str(path)
    sys.modules[module_name] = module
    try:
        exec(code, module.__dict__)  # noqa: S102 - running the user's spec is the point
    except SpecError as err:
        raise SpecError(f"in spec {path}: {err}") from None
    except Exception as err:  # noqa: BLE001 - a user's file: report where it failed, not a traceback
        frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename == str(path)]
        where = f", line {frames[-1].lineno}" if frames else ""
        raise SpecError(f"spec {path}{where} raised {type(err).__name__}: {err}") from None
    finally:
        sys.modules.pop(module_name, None)
    problem = getattr(module, "problem", None)
    if problem is None:
        raise SpecError(f"spec {path} defines no variable named 'problem'")
    if not isinstance(problem, MaxEntProblem):
        raise SpecError(f"spec {path}: 'problem' is a {type(problem).__name__}, not a MaxEntProblem")
    return problem
