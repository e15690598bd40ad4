"""E[x^2] = 1, E[x^4] = 1.5 on R: a bimodal answer p ∝ exp(η2 x² + η4 x⁴), modes ±1.096, H* ≈ 1.14171."""

from maxent_mdn import Expectation, MaxEntProblem, Real

problem = MaxEntProblem(
    dim=1,
    support=Real(),
    name="quartic-bimodal-1d",
    constraints=[
        Expectation(lambda x: x[..., 0] ** 2, 1.0, name="m2"),
        Expectation(lambda x: x[..., 0] ** 4, 1.5, name="m4"),
    ],
)
