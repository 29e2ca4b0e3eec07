"""Re-measure the thresholds behind layerkit's choices of algorithm and of threads.

Run from the repository root::

    python benchmarks/conv_thresholds.py                    # everything: minutes on 2 cores
    python benchmarks/conv_thresholds.py --quick            # tiny shapes, 1 repetition
    python benchmarks/conv_thresholds.py --only winograd --repeat 3

Four tables, float32, forward + backward unless said otherwise:

- ``winograd``: Conv2D(C, C, 3, padding=1), N = 32, Winograd's time / im2col's per channel count
  and image size, on 1 | T threads (numba's and the BLAS's); ``*`` marks the cells "auto" gives
  to Winograd (_WINOGRAD_MIN_CHANNELS and _WINOGRAD_MIN_WORK in layerkit/layers/conv.py).
- ``parallel``: the im2col and col2im kernels alone, serial vs parallel on T threads, on LeNet
  conv2's geometry (6 channels, 5×5 kernel, 14×14 input) for a growing batch, against
  _PARALLEL_MIN (layerkit/layers/conv_algorithms.py), the column size from which the layer
  takes the parallel kernels.
- ``threads``: recurrent layers, the time loop for the whole batch in one thread vs in two
  blocks of rows (layerkit/threads.py), against MIN_STEP_WORK, the multiply-adds per step a
  block needs.
- ``blocks``: im2col convolutions (forward + backward, and forward under ``layerkit.no_grad()``)
  with the columns built COLUMN_BLOCK_BYTES at a time (layerkit/layers/conv_algorithms.py), for
  several block sizes, each time relative to the size the layer uses.

T is numba's thread count (NUMBA_NUM_THREADS); the last two tables need T ≥ 2. The two sides of
each comparison are timed alternately (timing.paired_median_ms), so a slow phase of a shared
machine hits both alike. The results of the last run are in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
from pathlib import Path

# Idle OpenMP / OpenBLAS workers otherwise spin and steal a core from the next numba loop.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import numba  # noqa: E402
import numpy as np  # noqa: E402

import layerkit as lk  # noqa: E402
from layerkit import threads as lk_threads  # noqa: E402
from layerkit.kernels.conv import col2im, col2im_parallel, im2col, im2col_parallel  # noqa: E402
from layerkit.layers import conv_algorithms  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import paired_median_ms  # noqa: E402

MAX_THREADS = numba.config.NUMBA_NUM_THREADS


@contextlib.contextmanager
def on_threads(t: int):
    """numba and numpy's BLAS on ``t`` threads inside the block."""
    before = numba.get_num_threads()
    numba.set_num_threads(t)
    try:
        with lk_threads.blas_threads(t):
            yield
    finally:
        numba.set_num_threads(before)


def _table(header: list, rows: list) -> str:
    cells = [header] + [[str(v) for v in r] for r in rows]
    widths = [max(len(r[j]) for r in cells) for j in range(len(header))]
    lines = ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths)] + lines[1:])


def _fwd_bwd(layer, x):
    """A function running forward(x) and backward(ones) (a recurrent layer's dy is for y)."""
    y = layer.forward(x)
    dy = np.ones_like(y[0] if isinstance(y, tuple) else y)

    def step():
        layer.forward(x)
        layer.backward(dy)
    return step


# -- 1. Winograd vs im2col ---------------------------------------------------------------------

def winograd_table(quick: bool, repeat: int, warmup: int) -> str:
    channels, sizes, n = ((4, 32), (8, 12), 2) if quick else ((16, 32, 64, 128, 256),
                                                             (8, 12, 16, 24, 32), 32)
    counts = sorted({1, MAX_THREADS})
    rng = np.random.default_rng(0)
    rows = []
    for c in channels:
        row = [c]
        for s in sizes:
            if c * s > 256 * 24:                 # 256 channels at 32×32: a minute per cell
                row.append("")
                continue
            x = rng.standard_normal((n, c, s, s)).astype(np.float32)
            layers = [lk.Conv2D(c, c, 3, padding=1, seed=0, algorithm=a)
                      for a in ("winograd", "im2col")]
            ratios = []
            for t in counts:
                with on_threads(t):
                    wg, im = paired_median_ms(*(_fwd_bwd(layer, x) for layer in layers),
                                              repeat=repeat, warmup=warmup)
                ratios.append(f"{wg / im:.2f}")
            auto = lk.Conv2D(c, c, 3, padding=1).algorithm_for(x.shape) == "winograd"
            row.append(" | ".join(ratios) + ("*" if auto else " "))
        rows.append(row)
    threads = " | ".join(str(t) for t in counts)
    return (f"Winograd time / im2col time, fwd+bwd, N = {n}, C = O, on {threads} threads"
            f"\n(* = \"auto\" takes Winograd)\n"
            + _table(["C \\ image"] + [f"{s}×{s}" for s in sizes], rows))


# -- 2. serial vs parallel im2col / col2im -----------------------------------------------------

def parallel_table(quick: bool, repeat: int, warmup: int) -> str:
    if MAX_THREADS < 2:
        return "parallel: needs at least 2 numba threads (NUMBA_NUM_THREADS)"
    batches = (1, 4) if quick else (1, 2, 4, 8, 16, 32, 64, 128)
    geometry = lk.Conv2D(6, 16, 5).geometry                 # LeNet conv2: 14×14 -> 10×10
    args = conv_algorithms.kernel_args(geometry, (10, 10))
    rng = np.random.default_rng(0)
    rows = []
    for n in batches:
        xp = rng.standard_normal((n, 6, 1, 14, 14)).astype(np.float32)
        cols = np.empty((6 * 25, n, 100), dtype=np.float32)
        dxp = np.empty_like(xp)
        times = []
        with on_threads(MAX_THREADS):
            for serial, parallel, src, dst, first in ((im2col, im2col_parallel, xp, cols, (0,)),
                                                      (col2im, col2im_parallel, cols, dxp, ())):
                times += paired_median_ms(lambda: serial(src, dst, *first, *args),
                                          lambda: parallel(src, dst, *first, *args),
                                          repeat=repeat, warmup=warmup)
        picked = "parallel" if cols.size >= conv_algorithms._PARALLEL_MIN else "serial"
        rows.append([n, f"{cols.size:,}"] + [f"{1e3 * t:.0f}" for t in times] + [picked])
    return (f"im2col / col2im on LeNet conv2 (C = 6, 5×5, 14×14), µs, on {MAX_THREADS} threads;"
            f"\nthe layer takes the parallel kernels from {conv_algorithms._PARALLEL_MIN:,} "
            f"elements (_PARALLEL_MIN)\n"
            + _table(["N", "elements", "im2col serial", "parallel", "col2im serial", "parallel",
                      "layer uses"], rows))


# -- 3. recurrent time loop: one block vs two ------------------------------------------------

_RECURRENT = [("LSTM", 100, 64, 128, 256), ("LSTM", 100, 32, 64, 256), ("LSTM", 20, 16, 32, 64),
              ("RNN", 50, 32, 64, 128), ("GRU", 50, 16, 64, 128), ("LSTM", 50, 16, 64, 128),
              ("GRU", 50, 32, 64, 128), ("LSTM", 50, 32, 64, 128)]


@contextlib.contextmanager
def _blocks(k: int):
    """The recurrent time loops in ``k`` blocks (k = 1: serial; 2: split whatever the work)."""
    min_work = lk_threads.MIN_STEP_WORK
    lk_threads.MIN_STEP_WORK = 1 if k > 1 else min_work
    try:
        with on_threads(k):
            yield
    finally:
        lk_threads.MIN_STEP_WORK = min_work


def threads_table(quick: bool, repeat: int, warmup: int) -> str:
    if MAX_THREADS < 2:
        return "threads: needs at least 2 numba threads (NUMBA_NUM_THREADS)"
    if importlib.util.find_spec("threadpoolctl") is None:
        return "threads: needs threadpoolctl (without it the time loops never split)"
    cases = [("RNN", 5, 16, 8, 16), ("LSTM", 5, 16, 8, 16)] if quick else _RECURRENT
    rng = np.random.default_rng(0)
    rows = []
    for kind, steps, n, d, h in cases:
        layer = getattr(lk, kind)(d, h, seed=0)
        x = rng.standard_normal((n, steps, d)).astype(np.float32)
        step = _fwd_bwd(layer, x)

        def in_blocks(k):
            def run():
                with _blocks(k):
                    step()
            return run

        one, two = paired_median_ms(in_blocks(1), in_blocks(2), repeat=repeat, warmup=warmup)
        work = layer.n_gates * h * h * n                  # multiply-adds per step, whole batch
        with on_threads(2):
            chosen = len(lk_threads.batch_blocks(n, layer.n_gates * h * h))
        rows.append([kind, f"({steps}, {n}, {d}, {h})", f"2^{np.log2(work):.2f}",
                     f"{one:.2f}", f"{two:.2f}", f"{two / one:.2f}",
                     "2 blocks" if chosen > 1 else "serial"])
    return (f"recurrent fwd+bwd, ms, one block vs two; each block needs "
            f"2^{np.log2(lk_threads.MIN_STEP_WORK):.0f} multiply-adds per step (MIN_STEP_WORK)"
            f"\nand {lk_threads.MIN_ROWS} rows (MIN_ROWS); work = G·H·H·N per step\n"
            + _table(["layer", "(T, N, D, H)", "work", "1 block", "2 blocks", "ratio",
                      "layer uses"], rows))


# -- 4. im2col's block of samples ------------------------------------------------------------

_BLOCK_CASES = [("LeNet conv1", 64, 1, 6, 28, 5, 2), ("LeNet conv2", 64, 6, 16, 14, 5, 0),
                ("LeNet conv2", 512, 6, 16, 14, 5, 0), ("ResNet 16 ch", 128, 16, 16, 32, 3, 1),
                ("VGG block", 32, 64, 64, 32, 3, 1)]


def blocks_table(quick: bool, repeat: int, warmup: int) -> str:
    chosen = conv_algorithms.COLUMN_BLOCK_BYTES
    sizes = [chosen // 4, chosen, chosen * 4] if quick else \
        [chosen // 4, chosen // 2, chosen, chosen * 2, chosen * 4]
    cases = [("tiny", 4, 2, 3, 8, 3, 1)] if quick else _BLOCK_CASES
    rng = np.random.default_rng(0)
    rows = []

    def with_block(size, fn):
        def run():
            before = conv_algorithms.COLUMN_BLOCK_BYTES
            conv_algorithms.COLUMN_BLOCK_BYTES = size
            try:
                fn()
            finally:
                conv_algorithms.COLUMN_BLOCK_BYTES = before
        return run

    for name, n, c, o, hw, k, p in cases:
        layer = lk.Conv2D(c, o, k, padding=p, seed=0, algorithm="im2col")
        x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
        train = _fwd_bwd(layer, x)

        def infer():
            with lk.no_grad():
                layer.forward(x)

        for what, fn in (("fwd+bwd", train), ("fwd no_grad", infer)):
            cells = []
            for size in sizes:
                if size == chosen:
                    cells.append("1")
                    continue
                other, base = paired_median_ms(with_block(size, fn), with_block(chosen, fn),
                                               repeat=repeat, warmup=warmup)
                cells.append(f"{other / base:.2f}")
            rows.append([f"{name} N={n}", what] + cells)
    return (f"im2col conv, time with columns built B bytes at a time / time with the layer's "
            f"{chosen >> 10} KiB (COLUMN_BLOCK_BYTES), on {numba.get_num_threads()} threads\n"
            + _table(["layer", "pass"] + [f"{s >> 10} KiB" for s in sizes], rows))


TABLES = {"winograd": winograd_table, "parallel": parallel_table, "threads": threads_table,
          "blocks": blocks_table}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny shapes, 1 repetition (a smoke test, not a measurement)")
    parser.add_argument("--only", choices=sorted(TABLES), action="append",
                        help="run only this table (repeatable)")
    parser.add_argument("--repeat", type=int, default=None,
                        help="alternating samples per comparison (default 5; 1 with --quick)")
    args = parser.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 5)
    warmup = 1 if args.quick else 2
    print(f"numba {numba.__version__}, numpy {np.__version__}, {MAX_THREADS} numba threads, "
          f"{os.cpu_count()} CPUs" + (" (--quick: not a measurement)" if args.quick else ""))
    for name in args.only or TABLES:
        print()
        print(TABLES[name](args.quick, repeat, warmup), flush=True)


if __name__ == "__main__":
    main()
