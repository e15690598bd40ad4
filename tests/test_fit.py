"""Density-estimation mode: datasets, likelihood scoring against quadrature, MLE training, ``maxent-mdn fit``."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch
from truth import soft_mixture_density_1d_many

from maxent_mdn import ElementwiseAffine, Flow, GumbelMoG
from maxent_mdn.cli import main
from maxent_mdn.datasets import DATASETS, Dataset, load_dataset
from maxent_mdn.training.fit import MODELS, fit, log_likelihood, make_density_model


@pytest.mark.parametrize("name", DATASETS)
def test_datasets_are_seeded_finite_and_split(name: str) -> None:
    a, b, c = load_dataset(name, seed=0), load_dataset(name, seed=0), load_dataset(name, seed=1)
    assert (a.train.shape, a.val.shape, a.test.shape) == ((10_000, 2), (5_000, 2), (20_000, 2))
    assert torch.equal(a.test, b.test) and not torch.equal(a.test, c.test)
    assert torch.isfinite(a.train).all() and a.train.dtype == torch.float32
    assert a.train.abs().max() < 8


def test_dataset_shapes_are_what_they_claim() -> None:
    radius = load_dataset("8gaussians").test.norm(dim=-1)
    assert abs(float(radius.median()) - 4 / math.sqrt(2)) < 0.1
    rings = load_dataset("rings").test.norm(dim=-1).numpy()
    for r in (0.75, 1.5, 2.25, 3.0):  # every ring is populated, and the gaps between them are empty
        assert np.mean(np.abs(rings - r) < 0.3) > 0.08  # the inner ring holds 10% of the points
    assert np.mean(np.abs(rings - 1.125) < 0.1) < 0.01
    board = load_dataset("checkerboard").test.numpy()
    square = (np.floor(board[:, 0] / 2) + np.floor(board[:, 1] / 2)) % 2
    assert len(np.unique(square)) == 1  # only one colour of squares is occupied


def test_unknown_dataset_and_model_are_named() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'spiral'; choose one of 8gaussians"):
        load_dataset("spiral")
    with pytest.raises(ValueError, match="unknown model 'maf'"):
        make_density_model("maf")


def test_gumbel_likelihood_matches_the_soft_marginal_by_quadrature() -> None:
    """log_likelihood of a Gumbel-MoG flow (independent estimate, large M) vs quadrature + the layer's log-det."""
    weights, mu, sigma = np.array([0.3, 0.7]), np.array([-1.5, 1.0]), np.array([0.4, 0.8])
    base = GumbelMoG(1, 2, tau=0.5).double()
    layer = ElementwiseAffine(1).double()
    with torch.no_grad():
        base.logits.copy_(torch.from_numpy(np.log(weights)))
        base.mu.copy_(torch.from_numpy(mu).unsqueeze(-1))
        base.log_sigma.copy_(torch.from_numpy(np.log(sigma)).unsqueeze(-1))
        layer.shift.fill_(0.5)
        layer.log_scale.fill_(math.log(2.0))
    flow = Flow(base, [layer])
    x = torch.tensor([[-2.0], [-0.5], [1.0], [2.5], [4.0]], dtype=torch.float64)
    z = (x.numpy()[:, 0] - 0.5) / 2.0
    truth = np.log(soft_mixture_density_1d_many(z, weights, mu, sigma, 0.5)) - math.log(2.0)
    with torch.no_grad():
        est = log_likelihood(flow, x, num_nested=200_000).numpy()
    np.testing.assert_allclose(est, truth, atol=0.02)


def test_fit_improves_the_likelihood_and_keeps_the_best_parameters() -> None:
    data = load_dataset("8gaussians", sizes=(2000, 1000, 2000))
    model = make_density_model("gaussian", layers=2, hidden=16)
    with torch.no_grad():
        before = float(log_likelihood(model, data.test).mean())
    result = fit(model, data, steps=150, batch=256, lr=5e-3, eval_every=50, progress=False)
    assert result.test_ll > before + 0.3
    assert result.val_ll == pytest.approx(result.history["val_ll"].max())
    assert result.test_ll_stderr < 0.05 and result.parameters > 0


@pytest.mark.parametrize("model", MODELS)
def test_every_model_fits_one_step_and_scores(model: str) -> None:
    data = load_dataset("moons", sizes=(256, 128, 256))
    result = fit(
        make_density_model(model, layers=1, hidden=8),
        data,
        steps=2,
        eval_every=1,
        progress=False,
        eval_nested=256,
    )
    assert math.isfinite(result.test_ll)
    assert (result.test_ll_eq1 is not None) == (model == "gumbel-mog")


def test_cli_fit_writes_its_outputs(tmp_path: pytest.TempPathFactory, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    code = main(["fit", "moons", "--model", "rad", "--steps", "5", "--out", str(out), "--no-progress"])
    assert code == 0
    summary = json.loads((out / "result.json").read_text())
    assert {"test_ll", "test_ll_stderr", "parameters", "seconds"} <= set(summary)
    samples = np.load(out / "samples.npy")
    assert samples.shape == (100_000, 2) and samples.dtype == np.float64
    assert (out / "density.png").stat().st_size > 10_000
    assert "test log-likelihood" in capsys.readouterr().out


def test_a_test_mean_decided_by_points_without_mass_is_named() -> None:
    """A held-out point where the model has (numerically) no mass decides the mean: fit says so, not silently."""
    data = load_dataset("moons", sizes=(256, 128, 256))
    far = data.test.clone()
    far[:2] = 200.0  # log q there is about -200² under a flow that is the identity this far out
    model = make_density_model("gaussian", layers=1, hidden=8)
    with pytest.warns(
        RuntimeWarning, match=r"2 of 256 test points score more than 1000 nats below the median"
    ):
        result = fit(
            model, Dataset("moons", data.train, data.val, far), steps=2, eval_every=1, progress=False
        )
    assert result.test_ll < -100.0  # the mean is what it is; the warning says why
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit(make_density_model("gaussian", layers=1, hidden=8), data, steps=2, eval_every=1, progress=False)
