"""E[x] = 2 on (0, ∞): the answer is the exponential distribution with mean 2, H* = 1 + log 2."""

from maxent_mdn import MaxEntProblem, Mean, Positive

problem = MaxEntProblem(dim=1, support=Positive(), name="exponential", constraints=[Mean(2.0)])
