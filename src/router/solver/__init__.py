"""Solvers: the only place OR-Tools is imported."""
