"""What the safety checks cost: the Winograd range check, Linear's own copy of x, and the
per-layer claim that keeps two threads' backwards apart. Each is timed against the call it
protects, in one process, alternating (medians), 1 thread by default.

    python benchmarks/safety_costs.py [--repeat 30] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import sys

from timing import paired_median_ms


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np
    import layerkit as lk
    from layerkit.kernels import winograd
    from layerkit.layers.conv_algorithms import WINOGRAD_RANGE

    rng = np.random.default_rng(0)
    rows = []

    # Winograd: the range check over a padded VGG-block input, against the whole forward
    conv = lk.Conv2D(64, 64, 3, padding=1, algorithm="winograd", seed=0)
    x = rng.standard_normal((8, 64, 32, 32)).astype(np.float32)
    xp = np.zeros((8, 64, 34, 34), np.float32)
    xp[:, :, 1:33, 1:33] = x
    bad = np.zeros((8, 8, 8), np.bool_)
    field = np.empty((34, 34), np.float32)

    def check():
        for n in range(8):
            winograd.unsafe_tiles(xp, n, 0, 8, 32, 32, WINOGRAD_RANGE, bad, field)

    conv.eval()
    rows.append(("Winograd range check", "VGG block (8, 64, 32, 32) forward",
                 *paired_median_ms(check, lambda: conv.forward(x), repeat=args.repeat)))

    # Linear keeps its own copy of x
    lin = lk.Linear(400, 120, seed=0)
    xl = rng.standard_normal((64, 400)).astype(np.float32)
    dy = np.ones((64, 120), np.float32)
    scratch = np.empty_like(xl)

    def step():
        lin.forward(xl)
        lin.backward(dy)

    rows.append(("Linear's copy of x", "Linear 64x400->120 forward+backward",
                 *paired_median_ms(lambda: np.copyto(scratch, xl), step, repeat=args.repeat)))

    # the backward claim: a wrapped backward against the same backward unwrapped
    relu = lk.ReLU()
    xr = rng.standard_normal((4, 8))
    dr = np.ones((4, 8))
    relu.forward(xr)
    raw = type(relu).backward.__wrapped__
    calls = 2000

    def guarded():
        for _ in range(calls):
            relu.backward(dr)

    def unguarded():
        for _ in range(calls):
            raw(relu, dr)

    g, u = paired_median_ms(guarded, unguarded, repeat=args.repeat)
    rows.append(("backward claim (per call)", "ReLU (4, 8) backward, unwrapped",
                 1e3 * (g - u) / calls, 1e3 * u / calls))

    print(f"{'check':28} {'cost':>10} {'call':>10} {'share':>6}  the call it protects")
    for name, what, cost, base in rows:
        unit = "us" if "per call" in name else "ms"
        print(f"{name:28} {cost:7.3f} {unit} {base:7.3f} {unit} {cost / base:6.1%}  {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
