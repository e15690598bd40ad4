"""The ``maxent-mdn`` command line (console script ``maxent_mdn.cli:main``)."""

from .commands import NOT_CONVERGED
from .parser import build_parser, main

_parser = build_parser  # the name the README test uses

__all__ = ["NOT_CONVERGED", "build_parser", "main"]
