"""Argument checks shared by the public constructors: one clear message each."""

from __future__ import annotations

import math

__all__ = ["choice", "count", "non_negative_float", "positive_float", "positive_int"]


def positive_int(name: str, value: object) -> int:
    """Return ``value`` as an ``int`` if it is a whole number ≥ 1, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def count(name: str, value: object, zero: str) -> int:
    """Return ``value`` if it is a whole number >= 0, else raise ``ValueError`` saying what 0 means."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer (0: {zero}), got {value!r}")
    return value


def positive_float(name: str, value: object) -> float:
    """Return ``value`` as a ``float`` if it is finite and > 0, else raise ``ValueError``."""
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {value!r}") from None
    if not math.isfinite(x) or x <= 0:
        raise ValueError(f"{name} must be a positive, finite number, got {value!r}")
    return x


def non_negative_float(name: str, value: object) -> float:
    """Return ``value`` as a ``float`` if it is finite and >= 0, else raise ``ValueError``."""
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a non-negative number, got {value!r}") from None
    if not math.isfinite(x) or x < 0:
        raise ValueError(f"{name} must be a non-negative, finite number, got {value!r}")
    return x


def choice(name: str, value: str, options: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``options``, else raise ``ValueError`` listing them."""
    if value not in options:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(options)}")
    return value
