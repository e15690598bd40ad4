"""``maxent-mdn figures``: every comparison figure, drawn from the experiment CSVs alone (PNG + PDF)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from ..experiments.registry import MIXTURE_SWEEPS
from .kl_axis import draw_kl_targets, kl_shown
from .mixture import mixture_flows, mixture_modes, mixture_separation, mixture_table
from .save import save_pdf_and_png
from .tables import previous_runs, write_results_table

__all__ = ["FIGURES", "draw_figures"]

_ORDER = ["gaussian", "gumbel-mog", "exact-mog", "rad"]


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
    return save_pdf_and_png(fig, out, "dirichlet")


def _multimodal(t: pd.DataFrame, out: Path) -> list[Path]:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    sns.barplot(t, x="case", y="kl", hue="base", hue_order=_ORDER, errorbar="sd", ax=axes[0])
    axes[0].set(yscale="log", ylabel="KL(q || p*)", xlabel="", title="multimodal cases: KL")
    sns.barplot(
        t, x="case", y="max_violation", hue="base", hue_order=_ORDER, errorbar="sd", ax=axes[1], legend=False
    )
    axes[1].set(yscale="log", ylabel="max |E_q T − b|", xlabel="", title="constraint violation")
    return save_pdf_and_png(fig, out, "multimodal")


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
    return save_pdf_and_png(fig, out, "multimodal_densities")


def _option(t: pd.DataFrame, out: Path) -> list[Path]:
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
    sns.barplot(t, x="base", y="kl", order=_ORDER, errorbar="sd", ax=axes[0])
    axes[0].set(yscale="log", ylabel="KL(q || Buchen–Kelly)", xlabel="", title="option pricing: KL")
    sns.barplot(t, x="base", y="pricing_error", order=_ORDER, errorbar="sd", ax=axes[1])
    axes[1].set(ylabel="max |C_q(K) − C(K)|, held-out K", xlabel="", title="held-out pricing error")
    return save_pdf_and_png(fig, out, "option_pricing")


def _estimator_curves(t: pd.DataFrame, out: Path) -> list[Path]:
    t = t.assign(error=t["entropy"] - t["truth"])
    fig, ax = plt.subplots(figsize=(5.8, 3.8))
    sns.lineplot(t, x="nested", y="error", hue="estimator", marker="o", errorbar="sd", ax=ax)
    ax.axhline(0.0, color="k", ls="--", lw=1)
    ax.set(
        xscale="log",
        yscale="symlog",
        xlabel="nested batch size M",
        ylabel="Ĥ − H (symlog)",
        title="entropy estimators vs the model's true entropy",
    )
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.legend(fontsize=7)
    return save_pdf_and_png(fig, out, "estimator_bias")


def _estimators(t: pd.DataFrame, out: Path) -> list[Path]:
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    sns.barplot(t, x="estimator", y="kl", errorbar="sd", ax=ax)
    ax.set(yscale="log", ylabel="final KL(q || p*)", title="training with each entropy estimator")
    return save_pdf_and_png(fig, out, "estimator_training")


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
    seconds = "cpu_seconds" if "cpu_seconds" in t else "seconds"  # one thread: CPU time = uncontended wall
    sns.barplot(t, x="schedule", y=seconds, errorbar="sd", ax=axes[1])
    axes[1].set(ylabel="seconds (one thread)", xlabel="", title="wall-clock")
    return save_pdf_and_png(fig, out, "temperature")


def _density(t: pd.DataFrame, out: Path) -> list[Path]:
    """Test log-likelihood per dataset and model; error bars: sd over seeds, or the test-set stderr for one seed."""
    g = t.groupby(["case", "base"])
    summary = g["test_ll"].agg(["mean", "std", "count"]).join(g["test_ll_stderr"].mean())
    summary["err"] = summary["std"].where(summary["count"] > 1, summary["test_ll_stderr"])
    cases = list(dict.fromkeys(t["case"]))
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for k, base in enumerate(b for b in _ORDER if b in set(t["base"])):
        rows = summary.xs(base, level="base").reindex(cases)
        ax.errorbar(
            [i + 0.18 * (k - 1.5) for i in range(len(cases))],
            rows["mean"],
            yerr=rows["err"],
            fmt="o",
            capsize=3,
            label=base,
            color=sns.color_palette()[k],
        )
    ax.set_xticks(range(len(cases)), cases)
    ax.set(ylabel="test log-likelihood (nats)", title="2D density estimation (higher is better)")
    ax.legend(fontsize=8)
    return save_pdf_and_png(fig, out, "density_estimation")


def _family(case: str) -> str:
    """The problem family of a ``scale`` case: ``dirichlet-10d`` -> dirichlet, ``power-bimodal-8`` -> power moments."""
    for prefix, family in (
        ("dirichlet", "Dirichlet"),
        ("power", "power moments"),
        ("quartic-product", "quartic products"),
        ("quartic", "quartic 2D"),
        ("trimodal", "trimodal x⁶"),
        ("gaussian", "Gaussian"),
    ):
        if case.startswith(prefix):
            return family
    return case


def _scale(t: pd.DataFrame, out: Path) -> list[Path]:
    """Accuracy at scale: KL vs dimension and vs seconds, per family, with the issue's targets 0.01 and 0.02.

    Rows with ``when == "previous"`` (``scale_previous.csv``: the same runs at earlier defaults) are drawn in
    grey behind the others, with an arrow per case from its previous median to its current one.
    """
    t = t.assign(
        family=t["case"].map(_family),
        verdict=t["converged"].map({True: "converged", False: "not converged"}),
        kl_shown=kl_shown(t["kl"]),
    )
    seconds = "cpu_seconds" if "cpu_seconds" in t else "seconds"
    previous = t["when"].eq("previous") if "when" in t else pd.Series(False, index=t.index)
    now, before = t[~previous], t[previous]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    style = {"hue": "family", "style": "verdict", "style_order": ["converged", "not converged"], "s": 60}
    for ax, x in zip(axes, ("dim", seconds), strict=True):
        if not before.empty:
            grey = {"style": "verdict", "style_order": ["converged", "not converged"], "s": 30}
            sns.scatterplot(before, x=x, y="kl_shown", ax=ax, color="0.75", legend=False, **grey)
            _arrows(ax, before, now, x)
        sns.scatterplot(now, x=x, y="kl_shown", ax=ax, legend=ax is axes[1], **style)
        ax.set(xscale="log", yscale="log", ylabel="")
        draw_kl_targets(ax)
    axes[0].set(xlabel="dimension D", ylabel="KL(q || p*)", title="KL vs dimension")
    axes[1].set(xlabel="CPU seconds (one thread)", title="KL vs cost")
    if not before.empty:
        axes[1].scatter([], [], color="0.75", s=30, label="grey: previous defaults")
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return save_pdf_and_png(fig, out, "scale")


def _arrows(ax: plt.Axes, before: pd.DataFrame, now: pd.DataFrame, x: str) -> None:
    """A grey arrow per case from its median (x, KL) in ``before`` to its median in ``now``."""
    start = before.groupby("case")[[x, "kl_shown"]].median()
    end = now.groupby("case")[[x, "kl_shown"]].median()
    for case in start.index.intersection(end.index):
        (x0, y0), (x1, y1) = start.loc[case], end.loc[case]
        ax.annotate(
            "", xy=(x1, y1), xytext=(x0, y0), arrowprops={"arrowstyle": "->", "color": "0.6", "lw": 0.6}
        )


FIGURES: dict[str, Callable[[pd.DataFrame, Path], list[Path]]] = {
    "dirichlet": _dirichlet,
    "multimodal": _multimodal,
    "multimodal_curves": _multimodal_curves,
    "option": _option,
    "estimator_curves": _estimator_curves,
    "estimators": _estimators,
    "temperature": _temperature,
    "density": _density,
    "scale": _scale,
    "mixture_separation": mixture_separation,
    "mixture_flows": mixture_flows,
    "mixture_modes": mixture_modes,
}


#: experiments whose figure also draws ``<name>_previous.csv``, the same runs at earlier defaults
BESIDE_PREVIOUS = ("scale",)


def _beside_previous(path: Path) -> pd.DataFrame:
    """The table at ``path``, with ``<name>_previous.csv``'s rows added (``when`` = "previous"/"now") for the
    experiments of :data:`BESIDE_PREVIOUS` where that file exists."""
    t = pd.read_csv(path)
    before = previous_runs(path) if path.stem in BESIDE_PREVIOUS else None
    if before is None:
        return t
    return pd.concat([t.assign(when="now"), before.assign(when="previous")], ignore_index=True)


def draw_figures(results: str | Path, out: str | Path) -> list[Path]:
    """Draw every figure whose CSV exists in ``results``, and the results table; returns the files written."""
    results, out = Path(results), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sns.set_theme(style="whitegrid", context="paper")
    written: list[Path] = []
    for table, draw in FIGURES.items():
        path = results / f"{table}.csv"
        if path.is_file():
            written += draw(_beside_previous(path), out)
    if not written:
        raise FileNotFoundError(f"no experiment CSVs in {results}; run maxent-mdn reproduce first")
    table = write_results_table(results, out)
    sweeps = {
        n: pd.read_csv(results / f"{n}.csv") for n in MIXTURE_SWEEPS if (results / f"{n}.csv").is_file()
    }
    if sweeps:  # the mixture experiment's own table: median KL and cost per setting
        (out / "mixture.md").write_text(mixture_table(sweeps))
        written.append(out / "mixture.md")
    return written + ([table] if table else [])
