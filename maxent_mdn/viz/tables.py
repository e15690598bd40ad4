"""The results table of the README, computed from the experiment CSVs alone (Markdown).

One row per experiment, case and setting: the mean and standard deviation over
seeds of KL(q‖p*) with the model's density and with the nearest-neighbour
entropy, the largest constraint violation, how many seeds converged, and the
mean CPU seconds. ``maxent-mdn figures`` writes it next to the figures
(``results.md``), so every number quoted in the README traces to CSV rows.

Example:
    >>> import pandas as pd
    >>> t = pd.DataFrame({"case": ["c", "c"], "base": ["gaussian"] * 2, "seed": [0, 1],
    ...                   "kl": [0.01, 0.03], "kl_knn": [0.02, 0.02], "max_violation": [0.001, 0.002],
    ...                   "converged": [True, False], "cpu_seconds": [10.0, 12.0]})
    >>> print(results_table({"multimodal": t}).splitlines()[2])
    | multimodal | c | gaussian | 0.020 ± 0.014 | 0.020 ± 0.000 | 0.0020 | 1/2 | 11 |
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

__all__ = ["SOLVE_TABLES", "previous_runs", "results_table", "scale_table", "write_results_table"]

#: the experiment CSVs with one solve per row, in the order the table lists them
SOLVE_TABLES = ("dirichlet", "multimodal", "option", "estimators", "temperature", "scale")


def _setting(row: pd.Series, experiment: str) -> str:
    if experiment == "estimators":
        return f"gumbel-mog, {row['estimator']}"
    if experiment == "temperature":
        if row.get("anneal_rate", 0) > 0:
            return f"gumbel-mog, τ 1 → 0.05 (rate {row['anneal_rate']:g})"
        return f"gumbel-mog, τ = {row['tau']:g}"
    return str(row["base"])


def _mean_sd(values: pd.Series, digits: int) -> str:
    values = values.dropna()
    if values.empty:
        return "–"
    sd = values.std() if len(values) > 1 else 0.0
    return f"{_num(values.mean(), digits)} ± {_num(sd, digits)}"


def _num(value: float, digits: int) -> str:
    """Fixed point for ordinary values, three significant digits for blow-ups (KL of 10^5 and the like)."""
    return f"{value:.{digits}f}" if abs(value) < 100 else f"{value:.3g}"


def results_table(tables: dict[str, pd.DataFrame]) -> str:
    """Markdown table of the solve experiments in ``tables`` (name → CSV contents)."""
    lines = [
        "| experiment | case | setting | KL (model density) | KL (kNN) | max violation | converged | CPU s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for experiment in SOLVE_TABLES:
        t = tables.get(experiment)
        if t is None or t.empty:
            continue
        t = t.assign(setting=[_setting(r, experiment) for _, r in t.iterrows()])
        for (case, setting), g in t.groupby(["case", "setting"], sort=False):
            extra = ""
            if "pricing_error" in g and g["pricing_error"].notna().any():
                extra = f" (held-out pricing error ${_num(g['pricing_error'].mean(), 3)})"
            seconds = g["cpu_seconds"] if "cpu_seconds" in g else g["seconds"]
            lines.append(
                f"| {experiment} | {case} | {setting}{extra} | {_mean_sd(g['kl'], 3)} | "
                f"{_mean_sd(g['kl_knn'], 3)} | {_num(g['max_violation'].max(), 4)} | "
                f"{int(g['converged'].sum())}/{len(g)} | {seconds.mean():.0f} |"
            )
    return "\n".join(lines) + "\n"


def scale_table(t: pd.DataFrame, previous: pd.DataFrame | None = None) -> str:
    """Markdown table of the ``scale`` experiment: per case, over seeds, the KL, the certificate and the verdicts.

    ``worst row`` is the largest violation in units of its row's tolerance (1% of max(|b|, spread):
    1.00 is at the tolerance); ``false converged`` counts seeds that converged with a KL above 0.02,
    which the verdict must never allow. With ``previous`` (the same runs at earlier defaults), a last
    column gives its KL per case, and its converged count, beside this run's.

    Example:
        >>> row = {"case": "c", "dim": 1, "rows": 2, "kl": 0.001, "kl_upper": 0.01, "worst_row_pct": 0.5,
        ...        "constraints_met": True, "converged": True, "seconds": 10.0}
        >>> scale_table(pd.DataFrame([row]), pd.DataFrame([{**row, "kl": 0.1, "converged": False}])).splitlines()[2]
        '| c | 1 | 2 | 0.0010 ± 0.0000 | 0.0010 | 0.0100 | 0.50 | 1/1 | 1/1 | 0/1 | 10 | 0.1000 ± 0.0000 (0/1) |'
    """
    head = "| case | D | rows | KL (mean ± sd) | KL max | kl_upper max | worst row (× tol) | constraints met "
    head += "| converged | false converged | CPU s |"
    rule = "|---|---|---|---|---|---|---|---|---|---|---|"
    if previous is not None:
        head, rule = head + " KL before (converged) |", rule + "---|"
    lines = [head, rule]
    for case, g in t.groupby("case", sort=False):
        seconds = g["cpu_seconds"] if "cpu_seconds" in g else g["seconds"]
        n = len(g)
        false = int((g["converged"] & (g["kl"] > 0.02)).sum())
        lines.append(
            f"| {case} | {int(g['dim'].iloc[0])} | {int(g['rows'].iloc[0]) if 'rows' in g else '–'} "
            f"| {_mean_sd(g['kl'], 4)} | {_num(g['kl'].max(), 4)} | {_num(g['kl_upper'].max(), 4)} "
            f"| {g['worst_row_pct'].max():.2f} | {int(g['constraints_met'].sum())}/{n} "
            f"| {int(g['converged'].sum())}/{n} | {false}/{n} | {seconds.mean():.0f} |"
            + ("" if previous is None else f" {_before(previous[previous['case'] == case])} |")
        )
    return "\n".join(lines) + "\n"


def _before(g: pd.DataFrame) -> str:
    """A case's KL and converged count at the previous defaults (``–`` where it was not run)."""
    if g.empty:
        return "–"
    return f"{_mean_sd(g['kl'], 4)} ({int(g['converged'].sum())}/{len(g)})"


def previous_runs(path: str | Path) -> pd.DataFrame | None:
    """The rows of ``<name>_previous.csv`` beside the experiment table ``path`` (``<name>.csv``): the same runs
    at earlier defaults, kept for comparison; ``None`` where there is no such file.

    Example:
        >>> previous_runs("no/such/scale.csv") is None
        True
    """
    path = Path(path)
    before = path.with_name(f"{path.stem}_previous.csv")
    return pd.read_csv(before) if before.is_file() else None


def write_results_table(results: str | Path, out: str | Path) -> Path | None:
    """Write ``out/results.md`` from the solve CSVs in ``results`` (``None`` if there are none), and
    ``out/scale.md`` (:func:`scale_table`) where ``scale.csv`` exists, beside ``scale_previous.csv`` (the same
    runs at earlier defaults) where that exists too."""
    results = Path(results)
    if (results / "scale.csv").is_file():
        Path(out).mkdir(parents=True, exist_ok=True)
        scale = results / "scale.csv"
        (Path(out) / "scale.md").write_text(scale_table(pd.read_csv(scale), previous_runs(scale)))
    tables = {n: pd.read_csv(results / f"{n}.csv") for n in SOLVE_TABLES if (results / f"{n}.csv").is_file()}
    if not tables:
        return None
    path = Path(out) / "results.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(results_table(tables))
    return path
