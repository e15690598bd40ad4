"""E[log x] and E[log(1 - x)] on (0, 1): the answer is a Beta distribution.

For Beta(a, b), E[log x] = ψ(a) − ψ(a + b) and E[log(1 − x)] = ψ(b) − ψ(a + b); the
targets below are those of Beta(2, 3): −13/12 and −7/12, H* = −0.23491.
"""

import torch

from maxent_mdn import Expectation, Interval, MaxEntProblem

problem = MaxEntProblem(
    dim=1,
    support=Interval(0.0, 1.0),
    name="beta",
    constraints=[
        Expectation(lambda x: torch.log(x[..., 0]), -13 / 12, name="log_x"),
        Expectation(lambda x: torch.log1p(-x[..., 0]), -7 / 12, name="log_1mx"),
    ],
)
