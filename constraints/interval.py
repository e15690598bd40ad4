"""E[x] = 0.3 on (0, 1): the answer is a truncated exponential p ∝ exp(η x) with η < 0."""

from maxent_mdn import Interval, MaxEntProblem, Mean

problem = MaxEntProblem(dim=1, support=Interval(0.0, 1.0), name="interval", constraints=[Mean(0.3)])
