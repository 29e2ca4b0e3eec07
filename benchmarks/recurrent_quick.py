"""Quick timing of float32 RNN, LSTM and GRU against PyTorch on 2 threads.

Run: python benchmarks/recurrent_quick.py. Warm-up, then the median of 10 runs per entry, both
libraries in the same process (two-thread timings drift by up to 25 % between runs: compare the
ratios). "fwd" for PyTorch is without autograd; "fwd+bwd" records the graph and backpropagates
into the input, the weights and the initial state (layerkit always keeps its cache).
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


import numpy as np  # noqa: E402
import torch  # noqa: E402

from layerkit.layers.recurrent import GRU, LSTM, RNN  # noqa: E402
from timing import median_ms  # noqa: E402

SHAPES = [(50, 32, 64, 128), (100, 64, 128, 256)]          # (T, N, D, H)




def main():
    torch.set_num_threads(2)
    rows = []
    for (T, N, D, H) in SHAPES:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((N, T, D)).astype(np.float32)
        for cls, tcls in [(RNN, torch.nn.RNN), (LSTM, torch.nn.LSTM), (GRU, torch.nn.GRU)]:
            layer = cls(D, H, seed=0)
            tl = tcls(D, H, batch_first=True)
            y = layer(x)[0]
            dy = rng.standard_normal(y.shape).astype(np.float32)
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
                    tl(xt)

            def t_fwd_bwd():
                out = tl(xg)[0]
                out.backward(dyt)

            r = dict(layer=cls.__name__, shape=f"T={T} N={N} D={D} H={H}")
            r["lk_fwd"], r["t_fwd"] = median_ms(lk_fwd), median_ms(t_fwd)
            r["lk_fb"], r["t_fb"] = median_ms(lk_fwd_bwd), median_ms(t_fwd_bwd)
            rows.append(r)
            print(f"{r['layer']:5s} {r['shape']:24s} fwd {r['lk_fwd']:8.2f} ms vs torch "
                  f"{r['t_fwd']:8.2f} ({r['lk_fwd'] / r['t_fwd']:.2f}x)   fwd+bwd {r['lk_fb']:8.2f} "
                  f"vs {r['t_fb']:8.2f} ({r['lk_fb'] / r['t_fb']:.2f}x)", flush=True)
    return rows


if __name__ == "__main__":
    main()
