"""The MEFN case: E[log x_i] = ψ(α_i) − ψ(Σα) on the simplex, α = (1, 2, 3); the answer is Dirichlet(α), H* = −1.2443."""

from scipy.special import digamma

from maxent_mdn import LogMean, MaxEntProblem, Simplex

ALPHA = [1.0, 2.0, 3.0]

problem = MaxEntProblem(
    dim=3,
    support=Simplex(),
    name="dirichlet",
    constraints=[LogMean([float(digamma(a) - digamma(sum(ALPHA))) for a in ALPHA])],
)
