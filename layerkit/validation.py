"""Input validation at the public boundary: one place that turns bad input into clear errors.

Every message names who complains (a layer's repr, or a loss), what was expected and what was
received, e.g. ``Linear(3, 4): expected x of shape (..., 3), got (5, 2)``.
"""

from __future__ import annotations

import math
import numbers
import os
import time

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_dtype(dtype, who: str) -> np.dtype:
    """Return ``dtype`` as a numpy dtype if it is float32 or float64, else raise TypeError."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{who}: dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{who}: dtype must be float32 or float64, got {dt}")
    return dt


def _format_pattern(pattern) -> str:
    parts = ["..." if p is Ellipsis else str(p) for p in pattern]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def _matches(shape: tuple, pattern) -> bool:
    """True if ``shape`` fits ``pattern``: ints must match, strings match any size,
    one leading ``...`` matches any number (>= 0) of leading axes."""
    pattern = tuple(pattern)
    if pattern and pattern[0] is Ellipsis:
        fixed = pattern[1:]
        if len(shape) < len(fixed):
            return False
        shape = shape[len(shape) - len(fixed):]
        pattern = fixed
    if len(shape) != len(pattern):
        return False
    return all(isinstance(p, str) or p == s for p, s in zip(pattern, shape))


def check_array(who: str, x, pattern, *, name: str = "x", kind: str = "float") -> np.ndarray:
    """Validate one array argument and return it as an ndarray (never copied or cast).

    Parameters
    ----------
    who : str
        Who is checking, usually ``repr(layer)``; starts the error message.
    x : array_like
        The argument. Must already be an ndarray (lists are not silently converted).
    pattern : tuple
        Expected shape: ints are exact sizes, strings are free symbols (``"N"``), a leading
        ``...`` allows any number of leading axes.
    name : str
        The argument's name in messages.
    kind : {"float", "int"}
        ``"float"``: dtype float32 or float64. ``"int"``: any integer dtype.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{who}: expected {name} to be a numpy array, got {type(x).__name__}")
    if kind == "float":
        if x.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{who}: expected {name} of dtype float32 or float64, got {x.dtype}")
    elif kind == "int":
        if not np.issubdtype(x.dtype, np.integer):
            raise TypeError(f"{who}: expected {name} of an integer dtype, got {x.dtype}")
    else:  # pragma: no cover - programming error inside layerkit
        raise ValueError(f"unknown kind {kind!r}")
    if not _matches(x.shape, pattern):
        raise ValueError(
            f"{who}: expected {name} of shape {_format_pattern(pattern)}, got {tuple(x.shape)}"
        )
    return x


def check_finite(who: str, x: np.ndarray, name: str = "x") -> None:
    """Raise ValueError if ``x`` holds NaN or infinity."""
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{who}: {name} contains NaN or infinity")


def positive_int(who: str, name: str, value) -> int:
    """Return ``value`` as an int if it is a positive integer (not bool), else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{who}: {name} must be a positive integer, got {value!r}")
    return int(value)


def integer(who: str, name: str, value, *, or_none: bool = False) -> int | None:
    """``value`` as an int if it is an integer (not bool; None too when ``or_none``), else raise
    ValueError."""
    if or_none and value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        what = "an integer or None" if or_none else "an integer"
        raise ValueError(f"{who}: {name} must be {what}, got {value!r}")
    return int(value)


def number_in(who: str, name: str, value, low: float, high: float, *,
              low_open: bool = False, high_open: bool = False) -> float:
    """Return ``value`` as a float if it lies in the interval, else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{who}: {name} must be a number, got {value!r}")
    v = float(value)
    ok_low = v > low if low_open else v >= low
    ok_high = v < high if high_open else v <= high
    if np.isnan(v) or not (ok_low and ok_high):
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ValueError(f"{who}: {name} must be in {lo}{low}, {high}{hi}, got {value!r}")
    return v


def one_of(who: str, name: str, value, choices) -> str:
    """Return ``value`` if it is one of ``choices``, else raise ValueError listing them."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{who}: {name} must be one of {listed}, got {value!r}")
    return value


def flag(who: str, name: str, value) -> bool:
    """``value`` as a bool; a ValueError naming ``who`` unless it is True or False."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{who}: {name} must be True or False, got {value!r}")
    return bool(value)


def has_methods(who: str, name: str, obj, methods: tuple[str, ...]) -> None:
    """Raise TypeError naming what is missing unless every one of ``methods`` of ``obj`` is
    callable."""
    missing = [m for m in methods if not callable(getattr(obj, m, None))]
    if missing:
        raise TypeError(f"{who}: expected {name} with {' and '.join(methods)}, got "
                        f"{type(obj).__name__} without {', '.join(missing)}")


def check_ids(who: str, ids, pattern, name: str, vocab_size: int) -> np.ndarray:
    """``ids`` as an integer array of the shape ``pattern`` with values in [0, vocab_size)."""
    check_array(who, ids, pattern, name=name, kind="int")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"{who}: expected {name} in [0, {vocab_size}), got values from "
                         f"{ids.min()} to {ids.max()}")
    return ids


def check_dy(who, dy, shape: tuple) -> np.ndarray:
    """Validate an upstream gradient against the shape of the output forward produced: an ndarray
    of dtype float32 or float64 (complex, integer and object arrays are refused, never cast) and
    exactly ``shape`` (nothing broadcast). Finiteness is the caller's business. ``who`` is a
    string or an object whose str() names it (a layer: formatted only for an error)."""
    if not isinstance(dy, np.ndarray):
        raise TypeError(f"{who}: expected dy to be a numpy array, got {type(dy).__name__}")
    if dy.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{who}: expected dy of dtype float32 or float64, got {dy.dtype}")
    if dy.shape != tuple(shape):
        raise ValueError(f"{who}: expected dy of shape {tuple(shape)} (the output of forward), "
                         f"got {dy.shape}")
    return dy


def _physical_memory() -> float:
    """Bytes of memory an allocation can get: MemAvailable of /proc/meminfo where there is one
    (an allocation beyond it would thrash, not fail), else the machine's RAM, else infinity."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return math.inf


#: Seconds a reading of the available memory is reused: every forward checks its allocations,
#: and reading /proc/meminfo each time cost more than many small layers' forward itself.
MEMORY_READING_S = 1.0
_reading = {"at": -math.inf, "bytes": math.inf}


def _available_memory() -> float:
    """:func:`_physical_memory`, read again only when the last reading is older than
    :data:`MEMORY_READING_S`."""
    now = time.monotonic()
    if now - _reading["at"] >= MEMORY_READING_S:
        _reading["bytes"], _reading["at"] = _physical_memory(), now
    return _reading["bytes"]


def _gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.3g} GiB"


def allocation(who: str, what: str, shape: tuple, dtype) -> tuple:
    """Check, before allocating it, that an array of ``shape`` and ``dtype`` (sized by the user's
    hyperparameters or input) fits in this machine's memory; raise MemoryError naming ``who``,
    ``what`` and the size otherwise. Returns ``shape``."""
    nbytes = float(np.dtype(dtype).itemsize) * math.prod(float(s) for s in shape)
    ram = _available_memory()
    if nbytes > ram:
        raise MemoryError(f"{who}: {what} of shape {tuple(shape)} ({np.dtype(dtype)}) would need "
                          f"{_gib(nbytes)}, more than the {_gib(ram)} of memory available")
    return shape


def initial_weight(who: str, name: str, value, shape: tuple, dtype) -> np.ndarray:
    """What a ``weight_init`` returned for parameter ``name``, as a contiguous array of ``dtype``;
    a ValueError naming ``who`` unless it is an array of exactly ``shape`` with finite values."""
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{who}: weight_init must return a numpy array for {name}, got "
                         f"{type(value).__name__}")
    if value.shape != tuple(shape):
        raise ValueError(f"{who}: weight_init returned {name} of shape {value.shape}, expected "
                         f"{tuple(shape)}")
    if not np.issubdtype(value.dtype, np.floating) and not np.issubdtype(value.dtype, np.integer):
        raise ValueError(f"{who}: weight_init returned {name} of dtype {value.dtype}, expected "
                         f"real numbers")
    with np.errstate(over="ignore"):           # 1e300 in float32: inf, refused below
        out = np.ascontiguousarray(value, dtype=dtype)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{who}: weight_init returned {name} with NaN or infinity "
                         f"(in {np.dtype(dtype)})")
    return out


def generator(who: str, name: str, seed) -> np.random.Generator:
    """``np.random.default_rng(seed)`` for None, a non-negative integer (not bool) or a Generator;
    a ValueError naming ``who`` for anything else (numpy's own message names neither)."""
    if seed is None or isinstance(seed, np.random.Generator):
        return np.random.default_rng(seed)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"{who}: {name} must be None, a non-negative integer or a numpy "
                         f"Generator, got {seed!r}")
    return np.random.default_rng(int(seed))


#: Sizes a kernel indexes with (int32 in places): window hyperparameters must stay below it.
SIZE_LIMIT = 2 ** 31


def window_within_limits(who: str, win) -> None:
    """Raise ValueError naming ``who`` if a kernel size, stride, dilation or padding of the
    window geometry ``win`` is SIZE_LIMIT or more (numpy and the kernels would overflow)."""
    for name, values in (("kernel_size", win.kernel), ("stride", win.stride),
                         ("dilation", win.dilation),
                         ("padding", tuple(p for pair in win.padding for p in pair))):
        if any(v >= SIZE_LIMIT for v in values):
            raise ValueError(f"{who}: {name} must be below 2**31, got {values}")
