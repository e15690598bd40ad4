"""``maxent-mdn figures``: every comparison figure, drawn from the experiment CSVs alone (PNG + PDF)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from .save import save_figure

__all__ = ["FIGURES", "draw_figures"]

_ORDER = ["gaussian", "gumbel-mog", "exact-mog", "rad"]


def _save(fig: plt.Figure, out: Path, name: str) -> list[Path]:
    fig.tight_layout()
    return [
        save_figure(fig, out / f"{name}.pdf", close=False),
        save_figure(fig, out / f"{name}.png", dpi=130),
    ]


def _dirichlet(t: pd.DataFrame, out: Path) -> list[Path]:
    t = t.assign(
        dim=t["case"].str.extract(r"(\d+)d").astype(int)[0], entropy_abs_error=t["entropy_error"].abs()
    )
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    sns.pointplot(t, x="dim", y="kl", hue="base", hue_order=_ORDER, errorbar="sd", dodge=0.3, ax=axes[0])
    axes[0].set(
        xlabel="dimension D", ylabel="KL(q || Dir(α))", yscale="log", title="Dirichlet: KL to the answer"
    )
    sns.pointplot(
        t,
        x="dim",
        y="entropy_abs_error",
        hue="base",
        hue_order=_ORDER,
        errorbar="sd",
        dodge=0.3,
        ax=axes[1],
        legend=False,
    )
    axes[1].set(xlabel="dimension D", ylabel="|H(q) − H*|", yscale="log", title="entropy error")
    return _save(fig, out, "dirichlet")


def _multimodal(t: pd.DataFrame, out: Path) -> list[Path]:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    sns.barplot(t, x="case", y="kl", hue="base", hue_order=_ORDER, errorbar="sd", ax=axes[0])
    axes[0].set(yscale="log", ylabel="KL(q || p*)", xlabel="", title="multimodal cases: KL")
    sns.barplot(
        t, x="case", y="max_violation", hue="base", hue_order=_ORDER, errorbar="sd", ax=axes[1], legend=False
    )
    axes[1].set(yscale="log", ylabel="max |E_q T − b|", xlabel="", title="constraint violation")
    return _save(fig, out, "multimodal")


def _multimodal_curves(t: pd.DataFrame, out: Path) -> list[Path]:
    t = t[t["seed"] == t["seed"].min()]
    cases = sorted(t["case"].unique())
    fig, axes = plt.subplots(1, len(cases), figsize=(4.5 * len(cases), 3.4), squeeze=False)
    for ax, case in zip(axes[0], cases, strict=True):
        sub = t[t["case"] == case]
        ref = sub[sub["base"] == sub["base"].iloc[0]]
        ax.fill_between(ref["x"], ref["p"], color="0.85", label="reference p*")
        sns.lineplot(sub, x="x", y="q", hue="base", hue_order=_ORDER, ax=ax, legend=ax is axes[0][0])
        ax.set(title=case, ylabel="density")
    return _save(fig, out, "multimodal_densities")


def _option(t: pd.DataFrame, out: Path) -> list[Path]:
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
    sns.barplot(t, x="base", y="kl", order=_ORDER, errorbar="sd", ax=axes[0])
    axes[0].set(yscale="log", ylabel="KL(q || Buchen–Kelly)", xlabel="", title="option pricing: KL")
    sns.barplot(t, x="base", y="pricing_error", order=_ORDER, errorbar="sd", ax=axes[1])
    axes[1].set(ylabel="max |C_q(K) − C(K)|, held-out K", xlabel="", title="held-out pricing error")
    return _save(fig, out, "option_pricing")


def _estimator_curves(t: pd.DataFrame, out: Path) -> list[Path]:
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    sns.lineplot(t, x="nested", y="entropy", hue="estimator", marker="o", errorbar="sd", ax=ax)
    ax.axhline(t["truth"].mean(), color="k", ls="--", lw=1, label="true H (independent, M = 65536)")
    ax.set(xscale="log", xlabel="nested batch size M", ylabel="entropy estimate", title="entropy estimators")
    ax.legend(fontsize=7)
    return _save(fig, out, "estimator_bias")


def _estimators(t: pd.DataFrame, out: Path) -> list[Path]:
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    sns.barplot(t, x="estimator", y="kl", errorbar="sd", ax=ax)
    ax.set(yscale="log", ylabel="final KL(q || p*)", title="training with each entropy estimator")
    return _save(fig, out, "estimator_training")


def _temperature(t: pd.DataFrame, out: Path) -> list[Path]:
    t = t.assign(
        schedule=[
            f"anneal {a:g}" if a > 0 else f"τ = {tau:g}"
            for tau, a in zip(t["tau"], t["anneal_rate"], strict=True)
        ]
    )
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    sns.barplot(t, x="schedule", y="kl", errorbar="sd", ax=axes[0])
    axes[0].set(yscale="log", ylabel="KL(q || p*)", xlabel="", title="temperature: KL")
    sns.barplot(t, x="schedule", y="seconds", errorbar="sd", ax=axes[1])
    axes[1].set(ylabel="seconds", xlabel="", title="wall-clock")
    return _save(fig, out, "temperature")


def _density(t: pd.DataFrame, out: Path) -> list[Path]:
    fig, ax = plt.subplots(figsize=(8, 3.4))
    sns.barplot(t, x="case", y="test_ll", hue="base", hue_order=_ORDER, errorbar="sd", ax=ax)
    low = t["test_ll"].min()
    ax.set(
        ylim=(low - 0.2, t["test_ll"].max() + 0.1),
        ylabel="test log-likelihood",
        xlabel="",
        title="2D density estimation",
    )
    return _save(fig, out, "density_estimation")


FIGURES: dict[str, Callable[[pd.DataFrame, Path], list[Path]]] = {
    "dirichlet": _dirichlet,
    "multimodal": _multimodal,
    "multimodal_curves": _multimodal_curves,
    "option": _option,
    "estimator_curves": _estimator_curves,
    "estimators": _estimators,
    "temperature": _temperature,
    "density": _density,
}


def draw_figures(results: str | Path, out: str | Path) -> list[Path]:
    """Draw every figure whose CSV exists in ``results``; returns the files written."""
    results, out = Path(results), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sns.set_theme(style="whitegrid", context="paper")
    written: list[Path] = []
    for table, draw in FIGURES.items():
        path = results / f"{table}.csv"
        if path.is_file():
            written += draw(pd.read_csv(path), out)
    if not written:
        raise FileNotFoundError(f"no experiment CSVs in {results}; run maxent-mdn reproduce first")
    return written
