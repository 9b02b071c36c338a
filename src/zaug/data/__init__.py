"""Self-supervised training samples drawn from the user's own stacks."""

from .lateral import (  # noqa: E402
    anisotropy_factor,
    degrade_avgpool,
    degrade_gaussian,
    lateral_pairs,
    sample_positions,
    simulate_anisotropy,
    target_rows,
)

__all__ = [
    "anisotropy_factor",
    "degrade_avgpool",
    "degrade_gaussian",
    "lateral_pairs",
    "sample_positions",
    "simulate_anisotropy",
    "target_rows",
]
