"""Figures (matplotlib with the Agg backend, seaborn styling)."""

from .density import plot_density

__all__ = ["plot_density"]
