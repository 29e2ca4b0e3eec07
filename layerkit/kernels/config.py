"""The one place numba's settings come from.

``cache=True`` so a second run does not compile again; ``fastmath`` off (it breaks float64
gradient checks); ``parallel`` chosen per kernel by passing ``parallel=True`` to :func:`jit`.
Setting ``NUMBA_DISABLE_JIT=1`` runs the kernels as plain Python (for coverage).
"""

import numba

CACHE = True
FASTMATH = False


def jit(*, parallel: bool = False):
    """``numba.njit`` with the project's settings."""
    return numba.njit(cache=CACHE, fastmath=FASTMATH, parallel=parallel)
