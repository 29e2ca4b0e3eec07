"""tanh inside numba kernels, fast enough to fuse into the recurrent gate loops.

numba's ``math.tanh`` is a scalar libm call (about 19 ns per element here: llvmlite's pip build
has no vector math library), which keeps LLVM from vectorising any loop that uses it. For float32
data this module evaluates tanh as a rational function instead, in float64 arithmetic:

    tanh(x) ≈ x · P(x²) / Q(x²),   P, Q of degree 5 with positive coefficients (Q ≥ 1),

for |x| < 9.1, and ±1 beyond (|tanh x| rounds to 1 in float32 there: 1 − tanh 9.1 ≈ 2.5e-8 is
below half a float32 ulp of 1). The coefficients were fitted here (iteratively reweighted least
squares towards the minimax of the relative error on [0, 9.1]); the fit's relative error is
6.4e-11, so after rounding to float32 the result is within 1 ulp of the true tanh —
tests/test_tanh_kernel.py checks that against numpy's float64 tanh over a sweep of float32
inputs. The loop stays branch-free (a clamp and a division), so it vectorises: about 1 ns per
element against 2.6–3 ns for numpy's float32 ``np.tanh`` on this machine.

float64 data keeps libm's tanh: the approximation is only good to float32 precision. The choice
is made when numba compiles a kernel, from the dtype of an array passed along as ``like``
(``tanh(x, like)``), not from the type of ``x``: numba computes ``0.5 * x`` in float64 even for
float32 ``x``. A runtime flag did not work: a branch to libm inside the loop, even a
loop-invariant one, kept LLVM from vectorising it (measured 3× slower).

Kernels calling :func:`tanh` are compiled with ``error_model="numpy"`` (see kernels/config.py):
numba's default Python error model checks every division for zero, and that check alone stops
the loop from vectorising. Q ≥ 1, so the division here cannot be by zero.

Editing this file: numba's cache checks only the source file of the kernel it compiled, so
kernels elsewhere that call these functions keep their cached machine code until their cache
files (``__pycache__/*.nbi``, ``*.nbc``) are deleted.
"""

from __future__ import annotations

import math

import numpy as np
from numba import types
from numba.extending import overload

from .config import jit

CLIP = 9.1
P0 = 0.9999999999363779
P1 = 0.14090152562087807
P2 = 0.004413891901998821
P3 = 4.196417208681297e-05
P4 = 1.0941354528087191e-07
P5 = 3.565959621683732e-11
Q1 = 0.4742348582974268
Q2 = 0.029158845803582897
Q3 = 0.0004985180901297471
Q4 = 2.5751940148044505e-06
Q5 = 2.8862500841268107e-09


@jit(error_model="numpy", nogil=True)
def tanh_f32(x):
    """tanh to float32 precision, computed in float64 (returns float64; round on store).
    Exactly ±1 for |x| ≥ 9.1 (so σ(±inf) is exactly 1 or 0); NaN stays NaN (the comparisons are
    false for NaN). The ifs compile to selects: the loop stays branch-free."""
    y = float(x)
    if y > CLIP:
        y = CLIP
    if y < -CLIP:
        y = -CLIP
    s = y * y
    num = ((((P5 * s + P4) * s + P3) * s + P2) * s + P1) * s + P0
    den = ((((Q5 * s + Q4) * s + Q3) * s + Q2) * s + Q1) * s + 1.0
    r = y * num / den
    if y == CLIP:
        r = 1.0
    if y == -CLIP:
        r = -1.0
    return r


def tanh(x, like):
    """tanh(x) to the precision of ``like``'s dtype: :func:`tanh_f32` for float32 arrays, libm's
    tanh otherwise. (This body runs under NUMBA_DISABLE_JIT; compiled code uses the overload.)"""
    if like.dtype == np.float32:
        return tanh_f32(x)
    return math.tanh(x)


@overload(tanh, jit_options={"error_model": "numpy", "nogil": True})
def _tanh_overload(x, like):
    if getattr(like, "dtype", None) == types.float32:
        return lambda x, like: tanh_f32(x)
    return lambda x, like: math.tanh(x)


# The one kernel-side sigmoid (numba, scalar); numpy code uses layers/activations.sigmoid.
@jit(error_model="numpy", nogil=True)
def sigmoid(x, like):
    """σ(x) = (1 + tanh(x/2)) / 2: its absolute error is half of tanh's plus one rounding, and it
    saturates to 0 or 1 without overflow (far in the negative tail it returns 0, not a tiny
    positive number: an absolute, not a relative, accuracy)."""
    return 0.5 + 0.5 * tanh(0.5 * x, like)
