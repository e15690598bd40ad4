"""Built-in problems, so the demo runs without a spec file (``constraints/`` has the same as files)."""

from __future__ import annotations

from .problem import Expectation, MaxEntProblem, Real

__all__ = ["quartic_bimodal_1d"]


def quartic_bimodal_1d() -> MaxEntProblem:
    r""":math:`\mathbb E[x^2] = 1`, :math:`\mathbb E[x^4] = 1.5` on :math:`\mathbb R`.

    The answer :math:`p^* \propto \exp(\eta_2 x^2 + \eta_4 x^4)`,
    :math:`\eta \approx (2.03196, -0.84399)`, is bimodal (modes :math:`\pm 1.096`),
    :math:`H^* \approx 1.14171`.

    Example:
        >>> quartic_bimodal_1d().targets.tolist()
        [1.0, 1.5]
    """
    return MaxEntProblem(
        dim=1,
        support=Real(),
        name="quartic-bimodal-1d",
        constraints=[
            Expectation(lambda x: x[..., 0] ** 2, 1.0, name="m2"),
            Expectation(lambda x: x[..., 0] ** 4, 1.5, name="m4"),
        ],
    )
