"""Figures (matplotlib with the Agg backend, seaborn styling)."""

from .certificate import plot_certificate
from .density import plot_density, plot_exact_density

__all__ = ["plot_certificate", "plot_density", "plot_exact_density"]
