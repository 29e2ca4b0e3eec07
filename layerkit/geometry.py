"""Index geometry of sliding windows (convolution, pooling): one place, used by forward and backward.

Per spatial axis, a window of ``kernel`` taps spaced ``dilation`` apart (effective extent
d·(k − 1) + 1) slides with ``stride`` over the input padded with ``pad_lo`` before and ``pad_hi``
after. The output size is

    out = ⌊(in + pad_lo + pad_hi − d·(k − 1) − 1) / s⌋ + 1,

which is the lecture's ⌊(W − K + 2P)/S⌋ + 1 for symmetric padding and d = 1. Output position o
reads input positions o·s − pad_lo + j·d for taps j = 0 … k − 1.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass


def ntuple(who: str, name: str, value, n: int, *, minimum: int = 1) -> tuple[int, ...]:
    """``value`` (an int or a length-n sequence of ints, each >= minimum) as an n-tuple."""
    items = (value,) * n if isinstance(value, numbers.Integral) and not isinstance(value, bool) \
        else tuple(value) if isinstance(value, (tuple, list)) else None
    if items is None or len(items) != n or any(
            isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum for v in items):
        raise ValueError(f"{who}: {name} must be an integer >= {minimum} or a tuple of {n} such "
                         f"integers, got {value!r}")
    return tuple(int(v) for v in items)


def padding_pairs(who: str, padding, kernel: tuple, dilation: tuple, stride: tuple
                  ) -> tuple[tuple[int, int], ...]:
    """``(pad_lo, pad_hi)`` per axis from an int, a tuple, ``"valid"`` or ``"same"``.

    ``"same"`` (stride 1 only) pads d·(k − 1) in total per axis, the odd one after, so the output
    has the input's size (PyTorch's rule).
    """
    n = len(kernel)
    if padding == "valid":
        return ((0, 0),) * n
    if padding == "same":
        if any(s != 1 for s in stride):
            raise ValueError(f"{who}: padding='same' needs stride 1, got stride {stride}")
        total = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in total)
    if isinstance(padding, str):
        raise ValueError(f"{who}: padding must be an int, a tuple, 'valid' or 'same', got {padding!r}")
    return tuple((p, p) for p in ntuple(who, "padding", padding, n, minimum=0))


@dataclass(frozen=True)
class Window:
    """Geometry of one sliding-window operation over n spatial axes."""

    kernel: tuple
    stride: tuple
    dilation: tuple
    padding: tuple          # ((lo, hi), ...) per axis

    @property
    def pad_lo(self) -> tuple:
        return tuple(lo for lo, _ in self.padding)

    @property
    def pad_hi(self) -> tuple:
        return tuple(hi for _, hi in self.padding)

    def output_shape(self, who: str, spatial: tuple) -> tuple:
        """Output spatial shape for an input of spatial shape ``spatial``; raises if empty."""
        out = []
        for ax, (size, k, s, d, (lo, hi)) in enumerate(
                zip(spatial, self.kernel, self.stride, self.dilation, self.padding)):
            extent = d * (k - 1) + 1
            if size + lo + hi < extent:
                raise ValueError(
                    f"{who}: the kernel (extent {extent} with dilation {d}) is larger than the "
                    f"padded input along spatial axis {ax} ({size} + {lo} + {hi} = {size + lo + hi})")
            out.append((size + lo + hi - extent) // s + 1)
        return tuple(out)


def window(who: str, n: int, kernel_size, stride, padding, dilation) -> Window:
    """Validate hyperparameters and build the Window geometry for n spatial axes."""
    kernel = ntuple(who, "kernel_size", kernel_size, n)
    stride_t = ntuple(who, "stride", stride, n)
    dilation_t = ntuple(who, "dilation", dilation, n)
    return Window(kernel, stride_t, dilation_t,
                  padding_pairs(who, padding, kernel, dilation_t, stride_t))
