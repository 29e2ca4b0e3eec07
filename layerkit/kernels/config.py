"""The one place numba's settings come from.

``cache=True`` so a second run does not compile again; ``fastmath`` off (it breaks float64
gradient checks); ``parallel`` chosen per kernel by passing ``parallel=True`` to :func:`jit`.
``error_model="numpy"`` (division by zero gives inf/NaN instead of raising) only for kernels whose
divisions cannot be by zero and must vectorise: the Python error model's zero check on every
division keeps LLVM from vectorising the loop (kernels/tanh.py).
Setting ``NUMBA_DISABLE_JIT=1`` runs the kernels as plain Python (for coverage).
"""

import numba

CACHE = True
FASTMATH = False


def jit(*, parallel: bool = False, error_model: str = "python", nogil: bool = False,
        inline: bool = False):
    """``numba.njit`` with the project's settings (``nogil=True``: the kernel releases the GIL,
    for kernels that Python threads run side by side; ``inline=True``: numba inlines the function
    into its callers before compiling them, where LLVM would leave a call in a hot loop)."""
    return numba.njit(cache=CACHE, fastmath=FASTMATH, parallel=parallel, error_model=error_model,
                      nogil=nogil, inline="always" if inline else "never")


def parallel_if(large: bool, parallel, serial):
    """``parallel`` (a kernel's ``parallel=True`` build) for large work when numba has several
    threads, else its serial twin: a parallel launch costs tens of microseconds, and with one
    thread the parallel build is slower than the serial one."""
    return parallel if large and numba.get_num_threads() > 1 else serial
