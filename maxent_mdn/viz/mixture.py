"""Figures and the table of the ``mixture`` experiment: where the mixture base earns its cost (issue 20).

Three CSVs, one per sweep (:func:`~maxent_mdn.experiments.registry.runs`):
``mixture_separation`` (KL against the modes' separation, per base),
``mixture_flows`` (KL and CPU milliseconds per step against the flow, per
base, with RAD beside the flows of its continuous layers) and ``mixture_modes`` (KL against the number of mixture components, the
Gaussian base as the line to beat). Every point is one run (one seed); the
lines join the medians over seeds.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ..experiments.registry import MIXTURE_SWEEPS
from .kl_axis import draw_kl_targets, kl_shown
from .save import save_pdf_and_png

__all__ = ["flow_label", "kl_text", "mixture_flows", "mixture_modes", "mixture_separation", "mixture_table"]

_BASES = ["gaussian", "gumbel-mog", "exact-mog", "rad"]
#: one colour per base in every figure, whichever bases a table has
_PALETTE = dict(zip(_BASES, ("C0", "C1", "C2", "C3"), strict=True))
#: RAD's two variants share a colour: the flow axis already says which couplings sit between the folds
_HUE = {"rad-spline": "rad"}
_FLOWS = ["planar-10", "planar-40", "coupling", "spline-4", "spline-8", "spline-16"]


def flow_label(row: pd.Series) -> str:
    """The flow of a run as the sweep names it: ``planar-10``, ``coupling``, ``spline-8`` ...

    Example:
        >>> flow_label(pd.Series({"transform": "planar", "layers": 40.0, "bins": 16}))
        'planar-40'
    """
    if row["transform"] in ("planar", "radial"):
        return f"{row['transform']}-{int(row['layers'])}"
    if row["transform"] == "coupling":
        return "coupling"
    return f"spline-{int(row['bins'])}"


def _separation(case: str) -> str:
    """``modes-2d-sep8`` -> ``"8"`` (a category on the figure's axis)."""
    match = re.search(r"-sep(\d+(?:\.\d+)?)$", case)
    return match.group(1) if match else case


#: where a diverged run (KL ``inf``) or one above it is drawn
_DIVERGED_AT = 10.0
_KL_LABEL = f"KL(q || p*) (diverged or > {_DIVERGED_AT:g}: at {_DIVERGED_AT:g})"


def _with_kl_shown(t: pd.DataFrame) -> pd.DataFrame:
    return t.assign(kl_shown=kl_shown(t["kl"], ceiling=_DIVERGED_AT))


def mixture_separation(t: pd.DataFrame, out: Path) -> list[Path]:
    """KL against the separation of the modes, in one and two coordinates (2 and 4 modes), per base."""
    t = _with_kl_shown(t).assign(separation=t["case"].map(_separation))
    seps = sorted(set(t["separation"]), key=lambda v: float(v) if v.replace(".", "").isdigit() else math.inf)
    dims = sorted(t["dim"].unique())
    fig, axes = plt.subplots(1, len(dims), figsize=(4.6 * len(dims), 3.6), squeeze=False, sharey=True)
    order = [b for b in _BASES if b in set(t["base"])]
    for ax, dim in zip(axes[0], dims, strict=True):
        part = t[t["dim"] == dim]
        style = {"x": "separation", "y": "kl_shown", "order": seps, "hue": "base", "hue_order": order}
        sns.stripplot(part, palette=_PALETTE, dodge=True, ax=ax, size=4, **style)
        sns.pointplot(
            part,
            palette=_PALETTE,
            estimator=np.median,
            errorbar=None,
            dodge=0.8 - 0.8 / len(order),  # the strip plot's offsets: the medians sit on their points
            ax=ax,
            markers="_",
            linestyles="-",
            legend=False,
            **style,
        )
        ax.set(yscale="log", xlabel="separation of the modes (in mode widths)", ylabel=_KL_LABEL)
        ax.set_title(f"{2**dim} modes in {dim} coordinate{'s' if dim > 1 else ''}")
        draw_kl_targets(ax)
    return save_pdf_and_png(fig, out, "mixture_separation")


def mixture_flows(t: pd.DataFrame, out: Path) -> list[Path]:
    """KL (top) and CPU milliseconds per step (bottom) against the flow, per base, on each case."""
    t = _with_kl_shown(t)
    t = t.assign(
        flow=t.apply(flow_label, axis=1),
        ms_per_step=1e3 * t["cpu_seconds"] / t["steps"].clip(lower=1),
        base=t["base"].replace(_HUE),
    )
    cases = list(dict.fromkeys(t["case"]))
    order = [f for f in _FLOWS if f in set(t["flow"])] + sorted(set(t["flow"]) - set(_FLOWS))
    hue = [b for b in _BASES if b in set(t["base"])]
    fig, axes = plt.subplots(2, len(cases), figsize=(5.2 * len(cases), 6.4), squeeze=False, sharex="col")
    for col, case in enumerate(cases):
        part = t[t["case"] == case]
        for row, (y, label) in enumerate((("kl_shown", _KL_LABEL), ("ms_per_step", "CPU ms per step"))):
            ax = axes[row][col]
            sns.stripplot(
                part,
                x="flow",
                y=y,
                order=order,
                hue="base",
                hue_order=hue,
                palette=_PALETTE,
                dodge=True,
                ax=ax,
                size=4,
                legend=row == 0 and col == len(cases) - 1,
            )
            ax.set(yscale="log", xlabel="flow" if row else "", ylabel=label)
            ax.tick_params(axis="x", rotation=30)
            if row == 0:
                ax.set_title(case)
                draw_kl_targets(ax)
    return save_pdf_and_png(fig, out, "mixture_flows")


def mixture_modes(t: pd.DataFrame, out: Path) -> list[Path]:
    """KL against the Gumbel-MoG base's components K for 2^D modes; the Gaussian base's median as a line,
    the band from its best to its worst seed."""
    t = _with_kl_shown(t)
    cases = list(dict.fromkeys(t["case"]))
    fig, axes = plt.subplots(1, len(cases), figsize=(4.6 * len(cases), 3.6), squeeze=False, sharey=True)
    for ax, case in zip(axes[0], cases, strict=True):
        part = t[t["case"] == case]
        mog = part[part["base"] == "gumbel-mog"]
        sns.stripplot(mog, x="components", y="kl_shown", ax=ax, color=_PALETTE["gumbel-mog"], size=5)
        gaussian = part.loc[part["base"] == "gaussian", "kl_shown"]
        if len(gaussian):
            ax.axhline(
                float(gaussian.median()), color=_PALETTE["gaussian"], lw=1.5, label="Gaussian base (median)"
            )
            ax.axhspan(
                float(gaussian.min()),
                float(gaussian.max()),
                color=_PALETTE["gaussian"],
                alpha=0.15,
                lw=0,
                label="Gaussian base (every seed)",
            )
            ax.legend(fontsize=7)
        dim = int(part["dim"].iloc[0])
        ax.set(yscale="log", xlabel="components K of the Gumbel-MoG base", ylabel=_KL_LABEL)
        ax.set_title(f"{case}: {2**dim} modes")
        draw_kl_targets(ax)
    return save_pdf_and_png(fig, out, "mixture_modes")


def _median_row(group: pd.DataFrame) -> pd.Series:
    converged = group["converged"].astype(bool)
    return pd.Series(
        {
            "seeds": len(group),
            "kl_median": group["kl"].median(),
            "kl_max": group["kl"].max(),
            "converged": f"{int(converged.sum())}/{len(group)}",
            "diverged": int(np.isinf(group["kl"]).sum()),
            "ms_per_step": 1e3 * (group["cpu_seconds"] / group["steps"].clip(lower=1)).median(),
            "seconds_to_converge": group.loc[converged, "cpu_seconds"].median()
            if converged.any()
            else np.nan,
        }
    )


def kl_text(kl: float) -> str:
    """A KL for the table: four decimals, or three significant digits from 1000 on.

    Example:
        >>> kl_text(0.01234567), kl_text(287050419.93), kl_text(float("inf"))
        ('0.0123', '2.87e+08', 'inf')
    """
    return f"{kl:.4f}" if abs(kl) < 1000 else f"{kl:.3g}"


def mixture_table(tables: dict[str, pd.DataFrame]) -> str:
    """Markdown: per sweep, case, flow, components and base, the median KL over seeds, the worst, how many
    converged and diverged, CPU ms per step, and the median CPU seconds of the runs that converged (the price
    of the answer)."""
    lines = [
        "| sweep | case | flow | K | base | seeds | KL median | KL max | converged | diverged | ms/step | s to converge |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for sweep in MIXTURE_SWEEPS:
        t = tables.get(sweep)
        if t is None or t.empty:
            continue
        t = t.assign(flow=t.apply(flow_label, axis=1))
        keys = ["case", "flow", "components", "base"]
        for (case, flow, k, base), group in t.groupby(keys, sort=False):
            r = _median_row(group)
            k_shown = int(k) if base in ("gumbel-mog", "exact-mog") else "-"
            s = "-" if np.isnan(r["seconds_to_converge"]) else f"{r['seconds_to_converge']:.0f}"
            lines.append(
                f"| {sweep.removeprefix('mixture_')} | {case} | {flow} | {k_shown} | {base} | {r['seeds']} "
                f"| {kl_text(r['kl_median'])} | {kl_text(r['kl_max'])} | {r['converged']} | {r['diverged']} "
                f"| {r['ms_per_step']:.1f} | {s} |"
            )
    return "\n".join(lines) + "\n"
