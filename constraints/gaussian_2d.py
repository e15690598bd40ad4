"""Mean and covariance on R^2: the answer is N(m, Σ), H* = ½ log det(2πe Σ)."""

from maxent_mdn import Covariance, MaxEntProblem, Mean, Real

MEAN = [0.5, -1.0]
COV = [[1.0, 0.6], [0.6, 2.0]]

problem = MaxEntProblem(
    dim=2,
    support=Real(),
    name="gaussian-2d",
    constraints=[Mean(MEAN), Covariance(COV, mean=MEAN)],
)
