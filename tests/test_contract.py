"""The model contract: the code that trains, evaluates and draws models asks them, and never checks their class."""

from __future__ import annotations

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
