"""Quick timing of layerkit's Conv2D (float32) against torch.nn.functional.conv2d, same threads.

Run: python benchmarks/conv_quick.py   (prints a table; median of 10 after warm-up, in ms)
"""

import os

# Thread hygiene (must precede the numpy import): numba's OpenMP workers sleep at once, and
# OpenBLAS's workers stop spinning right after a product instead of ~0.1 s later, where they
# would steal a core from the next im2col (measured: Conv2D forward 42 ms -> 29 ms).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")


import numpy as np
import torch

from layerkit.layers.conv import Conv2D
from timing import median_ms  # noqa: E402

THREADS = 2
CASES = [  # name, N, C, O, H=W, K, padding
    ("VGG-ish 64->64 32x32 3x3 p1", 32, 64, 64, 32, 3, 1),
    ("LeNet conv1 1->6 28x28 5x5 p2", 64, 1, 6, 28, 5, 2),
    ("LeNet conv2 6->16 14x14 5x5", 64, 6, 16, 14, 5, 0),
]




def main():
    torch.set_num_threads(THREADS)
    rng = np.random.default_rng(0)
    header = f"{'case':32} {'lk fwd':>8} {'torch fwd':>10} {'ratio':>6} {'lk f+b':>8} {'torch f+b':>10} {'ratio':>6}"
    print(f"float32, {THREADS} threads, median of 10 (ms)")
    print(header)
    print("-" * len(header))
    for name, n, c, o, hw, k, p in CASES:
        layer = Conv2D(c, o, k, padding=p, seed=0)
        x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
        dy = rng.standard_normal(layer(x).shape).astype(np.float32)

        def lk_fwd():
            layer(x)

        def lk_fb():
            layer(x)
            layer.backward(dy)

        xt = torch.from_numpy(x).requires_grad_(True)
        wt = torch.from_numpy(layer.params["weight"].copy()).requires_grad_(True)
        bt = torch.from_numpy(layer.params["bias"].copy()).requires_grad_(True)
        dyt = torch.from_numpy(dy)

        def t_fwd():
            with torch.no_grad():
                torch.nn.functional.conv2d(xt, wt, bt, padding=p)

        def t_fb():
            xt.grad = wt.grad = bt.grad = None
            torch.nn.functional.conv2d(xt, wt, bt, padding=p).backward(dyt)

        a, b = median_ms(lk_fwd), median_ms(t_fwd)
        c2, d2 = median_ms(lk_fb), median_ms(t_fb)
        print(f"{name:32} {a:8.2f} {b:10.2f} {a / b:6.2f} {c2:8.2f} {d2:10.2f} {c2 / d2:6.2f}")


if __name__ == "__main__":
    main()
