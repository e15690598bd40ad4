r"""Temperature schedules for the Gumbel-softmax base (the base owns its schedule; the solver calls ``on_step``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..._checks import positive_float, positive_int

__all__ = ["TemperatureSchedule"]


@dataclass(frozen=True)
class TemperatureSchedule:
    r"""Constant or exponentially annealed temperature.

    .. math::

        \tau_t = \max\big(\tau_{\min},\ \tau_0 \exp(-r \lfloor t / k \rfloor k)\big),

    updated every :math:`k` (``every``) steps, as in Jang et al. (2017);
    ``rate = 0`` keeps :math:`\tau_0`.

    Example:
        >>> s = TemperatureSchedule(tau0=1.0, rate=1e-3, tau_min=0.1, every=500)
        >>> s(0), round(s(1000), 4), s(100000)
        (1.0, 0.3679, 0.1)
    """

    tau0: float = 0.5
    rate: float = 0.0
    tau_min: float = 0.05
    every: int = 500

    def __post_init__(self) -> None:
        positive_float("tau", self.tau0)
        positive_float("tau_min", self.tau_min)
        positive_int("tau update interval", self.every)
        if not (math.isfinite(self.rate) and self.rate >= 0):
            raise ValueError(f"the annealing rate must be a finite number >= 0, got {self.rate}")

    def __call__(self, step: int) -> float:
        if self.rate == 0:
            return self.tau0
        t = (step // self.every) * self.every
        return max(self.tau_min, self.tau0 * math.exp(-self.rate * t))
