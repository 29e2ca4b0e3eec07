"""Quick timing of float32 MaxPool2D (2×2, stride 2) against PyTorch on 2 threads.

Run: python benchmarks/pooling_quick.py. Warm-up, then the median of 10 runs per entry, both
libraries in the same process (two-thread timings drift by up to 25 % between runs: compare the
ratios). "fwd" for PyTorch is without autograd (no indices kept); "fwd (grad)" records the graph
like layerkit, which always keeps the argmax for backward.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from layerkit.layers.pooling import MaxPool2D  # noqa: E402
from timing import median_ms  # noqa: E402

SHAPES = [(64, 16, 28, 28), (32, 64, 32, 32)]
REPEAT = 10




def main():
    torch.set_num_threads(2)
    rows = []
    for shape in SHAPES:
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        layer = MaxPool2D(2, stride=2)
        dy = np.ones(layer(x).shape, dtype=np.float32)
        xt = torch.from_numpy(x)
        xg = xt.clone().requires_grad_(True)
        dyt = torch.from_numpy(dy)

        def lk_fwd():
            layer(x)

        def lk_fwd_bwd():
            layer(x)
            layer.backward(dy)

        def t_fwd():
            with torch.no_grad():
                F.max_pool2d(xt, 2, 2)

        def t_fwd_grad():
            F.max_pool2d(xg, 2, 2)

        def t_fwd_bwd():
            xg.grad = None
            F.max_pool2d(xg, 2, 2).backward(dyt)

        lk_f, lk_fb = median_ms(lk_fwd), median_ms(lk_fwd_bwd)
        t_f, t_fg, t_fb = median_ms(t_fwd), median_ms(t_fwd_grad), median_ms(t_fwd_bwd)
        rows.append((shape, "fwd", lk_f, t_f))
        rows.append((shape, "fwd (grad)", lk_f, t_fg))
        rows.append((shape, "fwd+bwd", lk_fb, t_fb))
    print(f"float32 MaxPool2D(kernel_size=2), torch threads = {torch.get_num_threads()}, "
          f"median of {REPEAT}")
    print(f"{'shape':<18} {'op':<11} {'layerkit ms':>12} {'torch ms':>10} {'ratio':>7}")
    for shape, op, a, b in rows:
        print(f"{str(shape):<18} {op:<11} {a:>12.3f} {b:>10.3f} {a / b:>7.2f}")


if __name__ == "__main__":
    main()
