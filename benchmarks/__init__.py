"""Benchmarks (not tests): python -m benchmarks.run, python benchmarks/solve_specs.py."""
