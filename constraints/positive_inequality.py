"""An inequality: E[x] = 1 and E[x²] ≤ 1.5 on (0, ∞).

Without the second constraint the answer is the exponential with mean 1, whose
E[x²] = 2 violates it, so the inequality is active: p ∝ exp(η1 x + η2 x²), η2 < 0.
Reference: the grid solver.
"""

from maxent_mdn import Expectation, MaxEntProblem, Mean, Positive

problem = MaxEntProblem(
    dim=1,
    support=Positive(),
    name="positive-inequality",
    constraints=[
        Mean(1.0),
        Expectation(lambda x: x[..., 0] ** 2, 1.5, name="m2", relation="<="),
    ],
)
