"""Order statistics the lab reports (overshoot p50/p99 and friends), computed one way everywhere.

Standard library only (see app/kernel/tables.py for why).
"""

from __future__ import annotations

from typing import Iterable


def percentile(values: Iterable[float], q: float) -> float | None:
    """The q-quantile (0 <= q <= 1) as one of the values: sorted, index round(q * (n - 1)); None when empty.

    Nearest rank, no interpolation: p50 of [1, 2, 3, 4] is 3 (round(1.5) = 2, Python rounds half
    to even), p99 of 100 values is the 99th smallest, q=1 the maximum, q=0 the minimum.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"percentile: q={q!r} is not between 0 and 1")
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[round(q * (len(ordered) - 1))]
