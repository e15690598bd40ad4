"""Mean and a correlated covariance on R^3: the answer is N(m, Σ), H* = ½ log det(2πe Σ)."""

from maxent_mdn import Covariance, MaxEntProblem, Mean, Real

MEAN = [1.0, 0.0, -1.0]
COV = [
    [2.0, 0.8, 0.3],
    [0.8, 1.0, -0.4],
    [0.3, -0.4, 1.5],
]

problem = MaxEntProblem(
    dim=3,
    support=Real(),
    name="gaussian-3d",
    constraints=[Mean(MEAN), Covariance(COV, mean=MEAN)],
)
