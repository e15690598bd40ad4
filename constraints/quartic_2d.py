"""A multi-modal 2D case: bimodal quartic marginals coupled by a correlation.

E[x_i²] = 1, E[x_i⁴] = 1.5 (i = 1, 2) and E[x1 x2] = 0.5 on R²: the answer
p ∝ exp(Σ_i η2 x_i² + η4 x_i⁴ + ρ x1 x2) has four modes near (±1.1, ±1.1),
the two on the diagonal heavier. Reference: the grid solver.
"""

from maxent_mdn import Expectation, MaxEntProblem, Real

problem = MaxEntProblem(
    dim=2,
    support=Real(),
    name="quartic-2d",
    constraints=[
        Expectation(lambda x: x**2, [1.0, 1.0], name="m2"),
        Expectation(lambda x: x**4, [1.5, 1.5], name="m4"),
        Expectation(lambda x: x[..., 0] * x[..., 1], 0.5, name="cross"),
    ],
)
