r"""Moment constraints :math:`\mathbb E_q[T(x)] \;(=, \le, \ge)\; b`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

__all__ = ["RELATIONS", "Covariance", "Expectation", "LogMean", "Mean", "SecondMoment"]

RELATIONS: tuple[str, ...] = ("==", "<=", ">=")

Statistic = Callable[[Tensor], Tensor]


def _as_vector(name: str, target: float | Sequence[float] | Tensor) -> Tensor:
    try:
        vec = torch.as_tensor(target, dtype=torch.float64).detach().clone().reshape(-1)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(
            f"constraint {name!r}: target must be a number or a sequence of numbers, got {target!r}"
        ) from None
    if vec.numel() == 0:
        raise ValueError(f"constraint {name!r}: target is empty")
    if not torch.isfinite(vec).all():
        raise ValueError(f"constraint {name!r}: target must be finite, got {vec.tolist()}")
    return vec


class Expectation:
    r"""The constraint :math:`\mathbb E_q[T(x)] \;\mathrm{rel}\; b` for a statistic :math:`T: \mathbb R^D \to \mathbb R^m`.

    Args:
        fn: maps points ``(..., D)`` to ``(...)`` (:math:`m = 1`) or ``(..., m)``;
            must be written with torch operations (it is differentiated).
        target: :math:`b`, a number or a length-:math:`m` sequence.
        name: label used in tables (default ``"T<k>"`` from its position).
        relation: ``"=="``, ``"<="`` or ``">="`` (the same for all :math:`m` rows).

    Example:
        >>> c = Expectation(lambda x: x[..., 0] ** 2, 1.0, name="m2")
        >>> c.evaluate(torch.tensor([[2.0], [0.0]]))
        tensor([[4.],
                [0.]])
    """

    def __init__(
        self,
        fn: Statistic,
        target: float | Sequence[float] | Tensor,
        name: str | None = None,
        relation: str = "==",
    ) -> None:
        label = name if name is not None else getattr(fn, "__name__", "T")
        if not callable(fn):
            raise TypeError(f"constraint {label!r}: fn must be callable, got {type(fn).__name__}")
        if relation not in RELATIONS:
            raise ValueError(
                f"constraint {label!r}: relation must be one of {', '.join(RELATIONS)}, got {relation!r}"
            )
        self.fn = fn
        self.target = _as_vector(label, target)
        self.name = name
        self.relation = relation

    @property
    def size(self) -> int:
        """Number of scalar rows :math:`m`."""
        return self.target.numel()

    @property
    def labels(self) -> list[str]:
        """One label per scalar row, as tables and ``history.csv`` show it: ``name`` or ``name[k]``."""
        name = self.name or "T"
        return [name] if self.size == 1 else [f"{name}[{k}]" for k in range(self.size)]

    def evaluate(self, x: Tensor) -> Tensor:
        """The statistic at ``x`` ``(n, D)`` as ``(n, m)``, with a clear error if its shape is wrong."""
        out = self.fn(x)
        label = self.name or "constraint"
        if not isinstance(out, Tensor):
            raise TypeError(f"constraint {label!r}: fn must return a torch.Tensor, got {type(out).__name__}")
        if not out.is_floating_point():
            raise TypeError(f"constraint {label!r}: fn must return floating-point values, got {out.dtype}")
        n = x.shape[0]
        if out.shape == (n,):
            out = out.unsqueeze(-1)
        if out.shape != (n, self.size):
            want = f"({n},)" if self.size == 1 else f"({n}, {self.size})"
            raise ValueError(
                f"constraint {label!r}: fn maps points of shape {tuple(x.shape)} to {tuple(out.shape)}, "
                f"expected {want} to match its {self.size}-element target"
            )
        return out

    def __repr__(self) -> str:
        target = self.target.tolist()
        return f"{type(self).__name__}(name={self.name!r}, relation={self.relation!r}, target={target})"


class Mean(Expectation):
    r""":math:`\mathbb E[x_i] = m_i` for every coordinate (or the given ``dims``).

    Example:
        >>> Mean([0.0, 1.0]).size
        2
    """

    def __init__(
        self, target: float | Sequence[float], dims: Sequence[int] | None = None, name: str = "mean"
    ) -> None:
        idx = None if dims is None else list(dims)
        super().__init__(lambda x: x if idx is None else x[..., idx], target, name=name)
        self.dims = idx

    @property
    def labels(self) -> list[str]:
        """``mean[i]`` per coordinate :math:`i` (the coordinates of ``dims`` when given)."""
        dims = self.dims if self.dims is not None else range(self.size)
        return [f"{self.name}[{d}]" for d in dims]


class SecondMoment(Expectation):
    r"""Raw second moments: :math:`\mathbb E[x_i^2] = s_i` (vector target) or
    :math:`\mathbb E[x_i x_j] = S_{ij}` for :math:`i \le j` (matrix target).

    Example:
        >>> SecondMoment([[1.0, 0.2], [0.2, 2.0]]).size
        3
    """

    def __init__(
        self, target: float | Sequence[float] | Sequence[Sequence[float]], name: str = "second_moment"
    ) -> None:
        mat = torch.as_tensor(target, dtype=torch.float64)
        if mat.ndim == 2:
            if mat.shape[0] != mat.shape[1] or not torch.allclose(mat, mat.T):
                raise ValueError(f"constraint {name!r}: a matrix target must be square and symmetric")
            rows, cols = torch.triu_indices(mat.shape[0], mat.shape[0])
            super().__init__(lambda x: x[..., rows] * x[..., cols], mat[rows, cols], name=name)
            self.matrix: Tensor | None = mat
            self._pairs = list(zip(rows.tolist(), cols.tolist(), strict=True))
        else:
            super().__init__(lambda x: x.pow(2), mat.reshape(-1), name=name)
            self.matrix = None
            self._pairs = []

    @property
    def labels(self) -> list[str]:
        """``second_moment[i,j]`` for a matrix target, ``second_moment[i]`` for a vector one."""
        if not self._pairs:
            return [f"{self.name}[{i}]" for i in range(self.size)]
        return [f"{self.name}[{i},{j}]" for i, j in self._pairs]


class Covariance(Expectation):
    r""":math:`\mathbb E[(x_i - m_i)(x_j - m_j)] = \Sigma_{ij}` for :math:`i \le j`, about a *given* mean :math:`m`.

    Use together with :class:`Mean` (the same :math:`m`); with both, the
    maximum-entropy answer on :math:`\mathbb R^D` is :math:`\mathcal N(m, \Sigma)`.

    Example:
        >>> Covariance([[1.0, 0.5], [0.5, 2.0]], mean=[0.0, 0.0]).size
        3
    """

    def __init__(
        self,
        matrix: Sequence[Sequence[float]] | Tensor,
        mean: Sequence[float] | Tensor,
        name: str = "covariance",
    ) -> None:
        cov = torch.as_tensor(matrix, dtype=torch.float64)
        loc = torch.as_tensor(mean, dtype=torch.float64).reshape(-1)
        if cov.ndim != 2 or cov.shape[0] != cov.shape[1] or cov.shape[0] != loc.numel():
            raise ValueError(
                f"constraint {name!r}: covariance must be a D x D matrix matching a length-D mean"
            )
        if not torch.allclose(cov, cov.T):
            raise ValueError(f"constraint {name!r}: covariance must be symmetric")
        rows, cols = torch.triu_indices(cov.shape[0], cov.shape[0])

        def stat(x: Tensor) -> Tensor:
            centred = x - loc.to(x)
            return centred[..., rows] * centred[..., cols]

        super().__init__(stat, cov[rows, cols], name=name)
        self.matrix, self.mean = cov, loc
        self._pairs = list(zip(rows.tolist(), cols.tolist(), strict=True))

    @property
    def labels(self) -> list[str]:
        r"""``covariance[i,j]`` for each entry :math:`i \le j`."""
        return [f"{self.name}[{i},{j}]" for i, j in self._pairs]


class LogMean(Expectation):
    r""":math:`\mathbb E[\log x_i] = b_i` for every coordinate (the Dirichlet constraints on the simplex).

    Example:
        >>> LogMean([-1.0, -2.0]).size
        2
    """

    def __init__(self, target: float | Sequence[float], name: str = "log_mean") -> None:
        super().__init__(lambda x: torch.log(x), target, name=name)

    @property
    def labels(self) -> list[str]:
        """``log_mean[i]`` per coordinate."""
        return [f"{self.name}[{i}]" for i in range(self.size)]
