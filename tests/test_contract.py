"""The model contract: the code that trains, evaluates and draws models asks them, and never checks their class."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

from maxent_mdn import MaxEntModel, make_flow, make_rad

PACKAGE = Path(__file__).resolve().parents[1] / "maxent_mdn"
CONCRETE = r"(Flow|RADFlow|GumbelMoG|ExactMoG|StandardNormal|BaseDistribution)"


def test_no_model_class_checks_outside_the_model_package() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "model" in path.relative_to(PACKAGE).parts[:1]:
            continue
        text = path.read_text()
        for pattern in (
            rf"isinstance\([^)]*\b{CONCRETE}\b",
            r"getattr\([^)]*[\"']discrete[\"']",
            r"\.base\.tau\b",
        ):
            offenders += [f"{path.relative_to(PACKAGE)}: {m.group(0)}" for m in re.finditer(pattern, text)]
    assert not offenders, offenders


@pytest.mark.parametrize("base", ["gumbel-mog", "exact-mog", "gaussian", "rad"])
def test_every_model_the_solver_builds_meets_the_contract(base: str) -> None:
    model = make_rad(2) if base == "rad" else make_flow(2, base=base, transform="coupling", layers=2)
    assert isinstance(model, MaxEntModel)
    assert model.discrete == (base == "rad")
    assert (model.temperature is not None) == (base == "gumbel-mog")
    assert model.uses_nested_batch == (base == "gumbel-mog")
    x, log_q = model.rsample_and_log_prob(64, **model.evaluation_kwargs(256))
    assert x.shape == (64, 2) and log_q.shape == (64,) and torch.isfinite(log_q).all()
    # every model takes the evaluation arguments of log_prob, used or not
    assert model.log_prob(x.detach(), num_nested=256, exact=False).shape == (64,)


def test_the_temperature_is_set_through_the_flow() -> None:
    flow = make_flow(1, base="gumbel-mog", tau=0.5)
    flow.temperature = 0.2
    assert flow.base.tau == pytest.approx(0.2)
    with pytest.raises(AttributeError, match="StandardNormal has no temperature"):
        make_flow(1, base="gaussian").temperature = 0.2


def test_the_exact_score_of_a_gumbel_flow_is_eq_1_through_the_layers() -> None:
    flow = make_flow(2, base="gumbel-mog", transform="coupling", layers=2)
    x = flow.sample((32,))
    z, ladj = flow.pull(x)
    torch.testing.assert_close(flow.log_prob(x, exact=True), flow.base.exact_log_prob(z) + ladj)


def test_the_model_owns_its_temperature_schedule_and_the_solver_only_calls_on_step() -> None:
    """A model passed to solve keeps its own tau (before, the solver overwrote it with the setting's 0.5);
    an annealing base lowers tau by its own schedule, every 500 steps."""
    from maxent_mdn import Flow, GumbelMoG, MaxEntProblem, Mean, SecondMoment, solve

    problem = MaxEntProblem(1, [Mean(0.0), SecondMoment(1.0)])
    fast = {"inner_steps": 250, "test_batches": 5, "eval_samples": 500, "batch": 64, "log_every": 250}
    own = Flow(GumbelMoG(1, 3, tau=0.2), [])
    result = solve(problem, model=own, steps=500, progress=False, **fast)
    assert result.history["tau"].dropna().to_numpy() == pytest.approx(0.2)
    annealed = Flow(GumbelMoG(1, 3, tau=1.0, anneal_rate=1e-3, tau_min=0.1), [])
    result = solve(problem, model=annealed, steps=1000, progress=False, **fast)
    taus = result.history.dropna(subset=["tau"]).set_index("step")["tau"]
    assert taus[250] == 1.0 and taus[750] == pytest.approx(math.exp(-0.5)) and annealed.temperature < 1.0
