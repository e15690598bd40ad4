"""Supports of a maximum-entropy problem.

Each is a :mod:`torch.distributions.constraints` object under a readable name
(:attr:`Support.constraint`); the model layer picks the flow's last bijector
from that constraint through a registry
(:func:`~maxent_mdn.model.support_bijector`), as
:data:`torch.distributions.biject_to` does, so a new support needs a
constraint and a registered bijector, not a new type switch.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.distributions import constraints

__all__ = ["Interval", "Positive", "Real", "Simplex", "Support"]


class Support(ABC):
    """Where the distribution lives; picks the flow's last (support) bijector.

    Subclasses register themselves by class name for :meth:`from_dict` (model files).
    """

    _kinds: ClassVar[dict[str, type[Support]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Support._kinds[cls.__name__] = cls

    @property
    @abstractmethod
    def constraint(self) -> constraints.Constraint:
        """The same set as a :mod:`torch.distributions.constraints` object on vectors (``event_dim`` 1)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (``{"type": "Interval", "low": 0.0, "high": 1.0}``)."""
        return {"type": type(self).__name__, **vars(self)}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Support:
        """Inverse of :meth:`to_dict`; ``ValueError`` names an unknown kind.

        Example:
            >>> Support.from_dict(Interval(0, 2).to_dict())
            Interval(0, 2)
        """
        fields = {k: v for k, v in data.items() if k != "type"} if isinstance(data, dict) else {}
        kind = Support._kinds.get(data.get("type")) if isinstance(data, dict) else None
        if kind is None:
            raise ValueError(f"unknown support {data!r}; known: {', '.join(sorted(Support._kinds))}")
        try:
            return kind(**fields)
        except TypeError as err:
            raise ValueError(f"support {data!r} does not describe a {kind.__name__}: {err}") from None

    def flow_dim(self, dim: int) -> int:
        """Dimension of the unconstrained space the flow's base lives in."""
        return dim

    @abstractmethod
    def contains(self, x: Tensor) -> Tensor:
        """Boolean mask ``x.shape[:-1]``: which points lie in the support."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(vars(self).items()))))


class Real(Support):
    r"""All of :math:`\mathbb R^D`; no support bijector.

    Example:
        >>> Real().contains(torch.zeros(2, 3))
        tensor([True, True])
    """

    constraint = constraints.real_vector

    def contains(self, x: Tensor) -> Tensor:
        return torch.isfinite(x).all(-1)


class Positive(Support):
    r"""The orthant :math:`(0, \infty)^D`, reached with :math:`x = e^y`.

    Example:
        >>> Positive().contains(torch.tensor([[1.0], [-1.0]]))
        tensor([ True, False])
    """

    constraint = constraints.independent(constraints.positive, 1)

    def contains(self, x: Tensor) -> Tensor:
        return (x > 0).all(-1) & torch.isfinite(x).all(-1)


class Interval(Support):
    r"""The box :math:`(a, b)^D`, reached with a scaled sigmoid.

    Example:
        >>> Interval(0.0, 2.0)
        Interval(0, 2)
    """

    def __init__(self, low: float, high: float) -> None:
        low, high = float(low), float(high)
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"Interval needs finite low < high, got low={low}, high={high}")
        self.low, self.high = low, high

    @property
    def constraint(self) -> constraints.Constraint:
        return constraints.independent(constraints.interval(self.low, self.high), 1)

    def contains(self, x: Tensor) -> Tensor:
        return ((x > self.low) & (x < self.high)).all(-1)

    def __repr__(self) -> str:
        return f"Interval({self.low:g}, {self.high:g})"


class Simplex(Support):
    r"""The open simplex :math:`\{x \in (0,1)^D : \sum_i x_i = 1\}`, ``D >= 2``.

    The flow lives on :math:`\mathbb R^{D-1}` and ends with a simplex map
    (:data:`~maxent_mdn.model.factory.SIMPLEX_MAPS`: stick-breaking by default,
    MEFN's additive-logistic map on request); densities are with respect to Lebesgue measure on
    :math:`(x_1, \dots, x_{D-1})`.

    Example:
        >>> Simplex().flow_dim(3)
        2
    """

    constraint = constraints.simplex

    def flow_dim(self, dim: int) -> int:
        if dim < 2:
            raise ValueError(f"a Simplex support needs dim >= 2 coordinates, got dim={dim}")
        return dim - 1

    def contains(self, x: Tensor) -> Tensor:
        return (x > 0).all(-1) & ((x.sum(-1) - 1).abs() < 1e-4)
