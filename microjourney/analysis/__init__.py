"""Pure computations on small tables: statistics and, later, experiments, peak-end, priority."""

from .stats import wilson_interval

__all__ = ["wilson_interval"]
