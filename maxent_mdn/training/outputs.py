"""Writing a run to disk (atomically) and reloading a trained model."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..model import Flow
from ..problem.scale import standardization
from ..problem.support import Support
from .checkpoint import CheckpointError
from .config import SolverConfig, saved_settings
from .evaluate import sample_many
from .files import atomic_write, write_csv
from .result import Result

__all__ = ["FORMAT", "load_model", "save_run"]

FORMAT = "maxent-mdn/1"


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.Tensor):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def save_run(result: Result, out: str | Path, samples: int = 100_000, plot: bool = True) -> Path:
    """Write ``result.json``, ``samples.npy``, ``history.csv``, ``model.pt``, ``density.png`` and ``certificate.png``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result.summary(), indent=2, default=_json_default, allow_nan=True) + "\n"
    atomic_write(out / "result.json", lambda f: f.write(text.encode()))
    x = sample_many(result.flow, samples)
    atomic_write(out / "samples.npy", lambda f: np.save(f, x.numpy()))
    write_csv(result.history, out / "history.csv")
    payload = {
        "format": FORMAT,
        "config": dataclasses.asdict(result.config),
        "problem": {
            "name": result.problem.name,
            "dim": result.problem.dim,
            "support": result.problem.support.to_dict(),
        },
        "standardize": standardization(result.problem) if result.config.standardize else None,
        "state_dict": result.flow.state_dict(),
        "lagrangian": result.lagrangian,
        "custom_model": result.custom_model,
    }
    atomic_write(out / "model.pt", lambda f: torch.save(payload, f))
    if plot:
        from ..viz import plot_certificate, plot_density  # seaborn/matplotlib only when drawing

        reference = None if result.reference is None else result.reference.entropy
        figures = {
            "density.png": lambda: plot_density(
                result.flow, result.problem, result.reference, out / "density.png", samples=x
            ),
            "certificate.png": lambda: plot_certificate(
                result.history, out / "certificate.png", reference, title=result.problem.name
            ),
        }
        for name, draw in figures.items():
            try:
                draw()
            except Exception as err:  # noqa: BLE001 - a figure must not cost the run: everything else is written
                warnings.warn(
                    f"{name} not drawn ({type(err).__name__}: {err}); the results are saved", stacklevel=2
                )
    return out


def load_model(path: str | Path, device: str = "cpu") -> tuple[Flow, dict[str, Any]]:
    """Rebuild a trained flow from ``model.pt``; returns ``(flow, metadata)``.

    Raises:
        CheckpointError: missing, unreadable or corrupt file, another format,
            or parameters that do not fit the recorded architecture.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    if not path.is_file():
        raise CheckpointError(f"model file not found: {path}")
    try:
        payload = torch.load(path, map_location=device, weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a bad file
        raise CheckpointError(f"cannot read model file {path}: {type(err).__name__}: {err}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a maxent-mdn model file (format {FORMAT})")
    if payload.get("custom_model"):
        raise CheckpointError(
            f"{path} holds a model that was passed to solve(model=...), which the file cannot rebuild: "
            "build the same model and load torch.load(path)['state_dict'] into it"
        )
    try:
        cfg = SolverConfig(**saved_settings(payload["config"]))
        problem = payload["problem"]
        cfg = dataclasses.replace(cfg, device=str(device))  # rebuilt where the caller wants it
        flow = cfg.build_flow(
            problem["dim"], Support.from_dict(problem["support"]), payload.get("standardize")
        )
        flow.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, RuntimeError, ValueError) as err:
        raise CheckpointError(f"model file {path} does not match its recorded architecture: {err}") from None
    flow.eval()
    return flow, payload
