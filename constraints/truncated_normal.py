"""E[x] and E[x²] on the interval (−1, 2): the answer is a normal truncated to it, p ∝ exp(η₁x + η₂x²).

The targets are those of N(0.3, 0.8²) truncated to (−1, 2) (rounded): H* = 0.98386.
"""

from maxent_mdn import Expectation, Interval, MaxEntProblem, Mean

problem = MaxEntProblem(
    dim=1,
    support=Interval(-1.0, 2.0),
    name="truncated-normal",
    constraints=[
        Mean(0.355689),
        Expectation(lambda x: x[..., 0] ** 2, 0.583480, name="m2"),
    ],
)
