"""Grouped and depthwise Conv2D against PyTorch: forward, and forward + backward.

Run from the repository root::

    python benchmarks/grouped_conv.py                  # the table in benchmarks/README.md
    python benchmarks/grouped_conv.py --repeat 5 --im2col   # also layerkit forced to im2col

``Conv2D(C, C, 3, padding=1, groups=G)``, float32, on 1 thread (numba's, numpy's BLAS and
PyTorch's), both libraries with the same weights and input. layerkit and PyTorch are timed
alternately in this one process (timing.paired_median_ms), so a slow phase of a shared machine
hits both alike; the ratio is layerkit's median / PyTorch's. "algorithm" is what layerkit's
"auto" picks (Conv2D.algorithm_for). With ``--im2col`` the depthwise rows are also timed with
``algorithm="im2col"`` (paired with PyTorch again). The forward + backward computes ∂L/∂x, ∂L/∂W
and ∂L/∂b on both sides. Before timing, the outputs and gradients of the two libraries are
compared (they must agree to float32 rounding), so the table never times a wrong result.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))                           # this checkout's layerkit
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numba  # noqa: E402
import numpy as np  # noqa: E402

import layerkit as lk  # noqa: E402
from layerkit import threads as lk_threads  # noqa: E402
from timing import paired_median_ms  # noqa: E402

# (N, C, map size, G): the rows of the README table
CASES = [
    (32, 64, 16, 1),
    (32, 64, 16, 2),
    (32, 64, 16, 8),
    (32, 64, 16, 64),
    (32, 128, 8, 128),
    (16, 32, 56, 32),
]


def _pair(n, c, size, g, algorithm, torch, rng):
    """(layerkit forward, layerkit fwd+bwd, torch forward, torch fwd+bwd) closures."""
    layer = lk.Conv2D(c, c, 3, padding=1, groups=g, algorithm=algorithm, seed=0)
    layer.params["bias"][...] = rng.standard_normal(c).astype(np.float32)
    x = rng.standard_normal((n, c, size, size)).astype(np.float32)
    dy = rng.standard_normal((n, c, size, size)).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(layer.params["weight"], requires_grad=True)
    bt = torch.tensor(layer.params["bias"], requires_grad=True)
    dyt = torch.tensor(dy)

    def lk_fwd():
        return layer.forward(x)

    def lk_both():
        layer.forward(x)
        return layer.backward(dy)

    def t_fwd():
        with torch.no_grad():
            return torch.nn.functional.conv2d(xt, wt, bt, padding=1, groups=g)

    def t_both():
        xt.grad = wt.grad = bt.grad = None
        torch.nn.functional.conv2d(xt, wt, bt, padding=1, groups=g).backward(dyt)
        return xt.grad

    # the same result first (float32 rounding): the timings are of correct computations
    layer.zero_grad()
    y, dx = lk_fwd(), layer.backward(dy)
    t_both()
    scale = float(np.abs(y).max())
    np.testing.assert_allclose(y, t_fwd().numpy(), rtol=1e-4, atol=1e-4 * scale)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-4, atol=1e-4 * float(np.abs(dx).max()))
    for got, want in ((layer.grads["weight"], wt.grad), (layer.grads["bias"], bt.grad)):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-3,
                                   atol=1e-4 * float(np.abs(want.numpy()).max()))
    return layer, x, lk_fwd, lk_both, t_fwd, t_both


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15, help="paired samples per cell")
    parser.add_argument("--im2col", action="store_true",
                        help="also time the depthwise rows with algorithm='im2col'")
    parser.add_argument("--quick", action="store_true", help="the first and a depthwise row, "
                                                             "3 samples (a smoke run)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    numba.set_num_threads(1)
    repeat = 3 if args.quick else args.repeat
    cases = [CASES[0], CASES[3]] if args.quick else CASES
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"float32, 1 thread, paired medians of {repeat} samples (ms, layerkit / PyTorch); "
          f"load average {load:.2f} at the start")
    print("| N, C, map | G | algorithm | forward | ratio | fwd+bwd | ratio |")
    print("|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    with lk_threads.blas_threads(1):
        for n, c, size, g in cases:
            algorithms = ["auto"] + (["im2col"] if args.im2col and g == c else [])
            for algorithm in algorithms:
                layer, x, lk_fwd, lk_both, t_fwd, t_both = _pair(n, c, size, g, algorithm,
                                                                 torch, rng)
                fa, fb = paired_median_ms(lk_fwd, t_fwd, repeat=repeat)
                ba, bb = paired_median_ms(lk_both, t_both, repeat=repeat)
                label = f"{g} (depthwise)" if g == c else str(g)
                print(f"| {n}, {c}, {size}×{size} | {label} | {layer.algorithm_for(x.shape)} | "
                      f"{fa:.2f} / {fb:.2f} | {fa / fb:.2f} | {ba:.2f} / {bb:.2f} | "
                      f"{ba / bb:.2f} |", flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.2f} at the end")


if __name__ == "__main__":
    main()
