"""The benchmark command: layerkit against PyTorch (CPU), float32, side by side.

Run from the repository root::

    python benchmarks/run.py                  # everything, 1 and 2 threads -> benchmarks/results.json
    python benchmarks/run.py --quick          # tiny shapes, 2 repetitions (a smoke test)
    python benchmarks/run.py --only LSTM --threads 2 --repeat 20 --json /tmp/lstm.json
    python benchmarks/run.py --markdown       # also print the tables as Markdown (for the README)
    python benchmarks/run.py --orders natural # only the natural import order

How it measures
    One worker subprocess per thread count t and import order, with OPENBLAS_NUM_THREADS, OMP_NUM_THREADS,
    MKL_NUM_THREADS and NUMBA_NUM_THREADS set to t in its environment (numpy's BLAS reads them
    once, at import), plus ``torch.set_num_threads(t)``; threadpoolctl, if installed, limits the
    pools once more. Inside a worker both libraries run in the same process: after warm-up, one
    sample of layerkit, one of PyTorch, alternately, ``--repeat`` times (default 10); the table
    gives the medians and their ratio layerkit / PyTorch (< 1: layerkit is faster). Each worker
    also measures the machine's float32 GEMM peak (a 2048 x 2048 numpy matmul, best of 7, at
    the start and at the end, the larger counts) at its thread count; GFLOP/s of the compute-bound cases are reported with their fraction of that peak.
    "fwd" is inference: PyTorch's runs under ``torch.no_grad()``, layerkit's under
    ``layerkit.no_grad()`` (no cache kept for a backward); "fwd+bwd" records the graph and
    backpropagates into the input and every parameter, as layerkit's backward does.

    Apart from the timings: JIT cost (``import layerkit`` and the first forward + backward of
    each layer family, in a subprocess with a fresh, empty NUMBA_CACHE_DIR ("cold") and then again
    with the cache it left ("warm"); and the same for ``layerkit gradcheck``, seconds to its first
    output line and in total, see cold_start.py) and the peak memory of the end-to-end training steps (one
    subprocess per library and model: ru_maxrss after a few steps, minus ru_maxrss before the
    first step; for layerkit also tracemalloc's peak, which sees numpy's allocations).

Import order (``--orders``, default both): each worker imports the libraries first, in the
order a user's script does — "natural": ``import numpy``, ``import torch``, ``import layerkit``
— or "layerkit-first", and reports the order with each row. The workers run in the user's
environment: no ``OMP_WAIT_POLICY`` or ``OPENBLAS_THREAD_TIMEOUT`` is set for them
(``--hygiene`` sets PASSIVE and 4, as before layerkit managed the pools itself; see DESIGN.md,
"Performance facts").
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "results.json"
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------

@dataclass
class Bench:
    """One timed comparison: ``lk()`` and ``torch()`` do the same work."""

    name: str
    op: str                    # "fwd", "fwd+bwd", "train step" or "sample"
    shape: str
    lk: Callable[[], object]
    torch: Callable[[], object]
    gflop: Optional[float] = None          # floating-point work per call (None: not meaningful)
    items: Optional[int] = None            # images / characters per call (end-to-end cases)
    item_unit: Optional[str] = None
    extra: dict = field(default_factory=dict)


def _rng():
    import numpy as np
    return np.random.default_rng(0)


def conv_benches(quick: bool):
    import numpy as np
    import torch
    import torch.nn.functional as F

    from layerkit import Conv1D, Conv2D, no_grad

    # name, N, C, O, spatial, K, padding
    cases = [
        ("Conv2D LeNet conv1", 64, 1, 6, (28, 28), 5, 2),
        ("Conv2D LeNet conv2", 64, 6, 16, (14, 14), 5, 0),
        ("Conv2D VGG block", 32, 64, 64, (32, 32), 3, 1),
        ("Conv2D ImageNet first layer", 16, 3, 64, (224, 224), 3, 1),
        ("Conv1D 128->128 k=5", 32, 128, 128, (200,), 5, 0),
    ]
    out = []
    for name, n, c, o, sp, k, p in cases:
        if quick:
            n, c, o = 2, min(c, 4), min(o, 4)
            sp = tuple(min(s, 12) for s in sp)
        rng = _rng()
        cls, fn = (Conv2D, F.conv2d) if len(sp) == 2 else (Conv1D, F.conv1d)
        layer = cls(c, o, k, padding=p, seed=0)
        x = rng.standard_normal((n, c) + sp).astype(np.float32)
        y = layer(x)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        xt = torch.from_numpy(x).requires_grad_(True)
        wt = torch.from_numpy(layer.params["weight"].copy()).requires_grad_(True)
        bt = torch.from_numpy(layer.params["bias"].copy()).requires_grad_(True)
        dyt = torch.from_numpy(dy)
        gflop = 2.0 * n * o * c * k ** len(sp) * math.prod(y.shape[2:]) / 1e9
        shape = f"N={n} {c}->{o} {'x'.join(map(str, sp))} k={k} p={p}"

        def lk_f(layer=layer, x=x):
            with no_grad():
                layer(x)

        def lk_fb(layer=layer, x=x, dy=dy):
            layer(x)
            layer.backward(dy)

        def t_f(fn=fn, xt=xt, wt=wt, bt=bt, p=p):
            with torch.no_grad():
                fn(xt, wt, bt, padding=p)

        def t_fb(fn=fn, xt=xt, wt=wt, bt=bt, p=p, dyt=dyt):
            xt.grad = wt.grad = bt.grad = None
            fn(xt, wt, bt, padding=p).backward(dyt)

        out.append(Bench(name, "fwd", shape, lk_f, t_f, gflop))
        out.append(Bench(name, "fwd+bwd", shape, lk_fb, t_fb, 3 * gflop))
    return out


def pool_benches(quick: bool):
    import numpy as np
    import torch
    import torch.nn.functional as F

    from layerkit import MaxPool2D, no_grad

    out = []
    for i, shape in enumerate([(64, 16, 28, 28), (32, 64, 32, 32)]):
        if quick:
            shape = (2, 4 * (i + 1), 8, 8)
        x = _rng().standard_normal(shape).astype(np.float32)
        layer = MaxPool2D(2, stride=2)
        dy = _rng().standard_normal(layer(x).shape).astype(np.float32)
        xt = torch.from_numpy(x)
        xg = xt.clone().requires_grad_(True)
        dyt = torch.from_numpy(dy)

        def lk_f(layer=layer, x=x):
            with no_grad():
                layer(x)

        def lk_fb(layer=layer, x=x, dy=dy):
            layer(x)
            layer.backward(dy)

        def t_f(xt=xt):
            with torch.no_grad():
                F.max_pool2d(xt, 2, 2)

        def t_fb(xg=xg, dyt=dyt):
            xg.grad = None
            F.max_pool2d(xg, 2, 2).backward(dyt)

        s = "(" + ", ".join(map(str, shape)) + ") 2x2/2"
        out.append(Bench("MaxPool2D", "fwd", s, lk_f, t_f))
        out.append(Bench("MaxPool2D", "fwd+bwd", s, lk_fb, t_fb))
    return out


def linear_benches(quick: bool):
    import numpy as np
    import torch
    import torch.nn.functional as F

    from layerkit import Linear, no_grad

    out = []
    for i, (n, d, o) in enumerate([(64, 400, 120), (256, 4096, 4096)]):
        if quick:
            n, d, o = 4, 16 * (i + 1), 8 * (i + 1)
        rng = _rng()
        layer = Linear(d, o, seed=0)
        x = rng.standard_normal((n, d)).astype(np.float32)
        dy = rng.standard_normal((n, o)).astype(np.float32)
        xt = torch.from_numpy(x).requires_grad_(True)
        wt = torch.from_numpy(layer.params["weight"].copy()).requires_grad_(True)
        bt = torch.from_numpy(layer.params["bias"].copy()).requires_grad_(True)
        dyt = torch.from_numpy(dy)
        gflop = 2.0 * n * d * o / 1e9

        def lk_f(layer=layer, x=x):
            with no_grad():
                layer(x)

        def lk_fb(layer=layer, x=x, dy=dy):
            layer(x)
            layer.backward(dy)

        def t_f(xt=xt, wt=wt, bt=bt):
            with torch.no_grad():
                F.linear(xt, wt, bt)

        def t_fb(xt=xt, wt=wt, bt=bt, dyt=dyt):
            xt.grad = wt.grad = bt.grad = None
            F.linear(xt, wt, bt).backward(dyt)

        name = f"Linear {d}->{o}"
        out.append(Bench(name, "fwd", f"N={n}", lk_f, t_f, gflop))
        out.append(Bench(name, "fwd+bwd", f"N={n}", lk_fb, t_fb, 3 * gflop))
    return out


def recurrent_benches(quick: bool):
    import numpy as np
    import torch

    from layerkit import GRU, LSTM, RNN, no_grad

    out = []
    for i, (T, N, D, H) in enumerate([(50, 32, 64, 128), (100, 64, 128, 256)]):
        if quick:
            T, N, D, H = 3 + i, 2, 4, 8
        for cls, tcls, gates in [(RNN, torch.nn.RNN, 1), (LSTM, torch.nn.LSTM, 4),
                                 (GRU, torch.nn.GRU, 3)]:
            rng = _rng()
            x = rng.standard_normal((N, T, D)).astype(np.float32)
            layer = cls(D, H, seed=0)
            tl = tcls(D, H, batch_first=True)
            with torch.no_grad():      # the same weights (PyTorch's names and gate order)
                for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(tl, k + "_l0").copy_(torch.from_numpy(layer.params[k]))
            y = layer(x)[0]
            dy = rng.standard_normal(y.shape).astype(np.float32)
            xt = torch.from_numpy(x)
            xg = xt.clone().requires_grad_(True)
            dyt = torch.from_numpy(dy)
            gflop = 2.0 * T * N * gates * H * (D + H) / 1e9

            def lk_f(layer=layer, x=x):
                with no_grad():
                    layer(x)

            def lk_fb(layer=layer, x=x, dy=dy):
                layer(x)
                layer.backward(dy)

            def t_f(tl=tl, xt=xt):
                with torch.no_grad():
                    tl(xt)

            def t_fb(tl=tl, xg=xg, dyt=dyt):
                xg.grad = None
                tl.zero_grad(set_to_none=True)
                tl(xg)[0].backward(dyt)

            s = f"T={T} N={N} D={D} H={H}"
            out.append(Bench(cls.__name__, "fwd", s, lk_f, t_f, gflop))
            out.append(Bench(cls.__name__, "fwd+bwd", s, lk_fb, t_fb, 3 * gflop))
    return out


# --- end to end ----------------------------------------------------------------------------

def _lk_train_step(model, loss, opt, x, y):
    """One layerkit training step on fixed data: zero grads, forward, loss, backward, update."""
    def step():
        opt.zero_grad()
        loss(model(x), y)
        model.backward(loss.backward())
        opt.step()
    return step


def lenet_layerkit(batch: int):
    """layerkit.models.lenet5, its loss, SGD, and a step() closure."""
    import numpy as np

    import layerkit as lk

    model = lk.models.lenet5(seed=0)
    loss, opt = lk.CrossEntropy(), lk.SGD(model, lr=0.01, momentum=0.9)
    rng = _rng()
    x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, batch)

    return _lk_train_step(model, loss, opt, x, y)


def lenet_torch(batch: int):
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    loss, opt = nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))

    def step():
        opt.zero_grad()
        loss(model(x), y).backward()
        opt.step()
    return step


def lenet_gflop(batch: int) -> float:
    """Multiply-adds × 2 of one forward (convolutions and linear layers), × 3 for the step."""
    conv1 = 6 * 1 * 25 * 28 * 28
    conv2 = 16 * 6 * 25 * 10 * 10
    fc = 400 * 120 + 120 * 84 + 84 * 10
    return 3 * 2.0 * batch * (conv1 + conv2 + fc) / 1e9


CHAR = dict(vocab=65, emb=64, hidden=256)


def charlstm_layerkit(steps: int, batch: int):
    """layerkit.models.char_lstm (Embedding -> LSTM -> Linear; no state carried between
    steps, as in the PyTorch model), cross-entropy at every step, Adam."""
    import layerkit as lk

    v, e, h = CHAR["vocab"], CHAR["emb"], CHAR["hidden"]
    model = lk.models.char_lstm(v, embedding_dim=e, hidden_size=h, stateful=False, seed=0)
    loss, opt = lk.CrossEntropy(), lk.Adam(model, lr=2e-3)
    rng = _rng()
    x = rng.integers(0, v, (batch, steps))
    y = rng.integers(0, v, (batch, steps))

    return _lk_train_step(model, loss, opt, x, y)


def charlstm_torch(steps: int, batch: int):
    import torch
    from torch import nn

    v, e, h = CHAR["vocab"], CHAR["emb"], CHAR["hidden"]
    torch.manual_seed(0)

    class CharLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.lstm, self.out = nn.Embedding(v, e), nn.LSTM(e, h, batch_first=True), \
                nn.Linear(h, v)

        def forward(self, x):
            return self.out(self.lstm(self.emb(x))[0])

    model = CharLSTM()
    loss, opt = nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters(), lr=2e-3)
    x = torch.randint(0, v, (batch, steps))
    y = torch.randint(0, v, (batch, steps))

    def step():
        opt.zero_grad()
        loss(model(x).reshape(-1, v), y.reshape(-1)).backward()
        opt.step()
    return step


def charlstm_gflop(steps: int, batch: int) -> float:
    v, e, h = CHAR["vocab"], CHAR["emb"], CHAR["hidden"]
    return 3 * 2.0 * steps * batch * (4 * h * (e + h) + h * v) / 1e9


def e2e_sizes(quick: bool):
    lenet = [8] if quick else [64, 256]
    char = [(5, 4)] if quick else [(100, 32)]          # (T, N)
    return lenet, char


def e2e_benches(quick: bool):
    lenet, char = e2e_sizes(quick)
    out = []
    for b in lenet:
        out.append(Bench("LeNet-5 training step", "train step", f"batch {b}",
                         lenet_layerkit(b), lenet_torch(b), lenet_gflop(b), b, "images/s"))
    for T, N in char:
        out.append(Bench("char-LSTM training step", "train step",
                         f"T={T} N={N} V=65 E=64 H=256", charlstm_layerkit(T, N),
                         charlstm_torch(T, N), charlstm_gflop(T, N), T * N, "chars/s"))
    return out


def sampling_benches(quick: bool):
    """Inference loops of one step at a time (benchmarks/sampling.py has the cases)."""
    import sampling

    length = 20 if quick else 300
    out = [Bench("CharLSTM.sample", "sample", f"{length} chars batch 1 V=76 E=64 H=256",
                 sampling.sample_layerkit(length), sampling.sample_torch(length), None, length,
                 "chars/s")]
    for batch in ((1, 8) if quick else (1, 128)):
        out.append(Bench("Seq2Seq.greedy_decode", "sample", f"batch {batch} S=8 T<=9 E=32 H=128",
                         sampling.greedy_layerkit(batch), sampling.greedy_torch(batch), None,
                         batch, "sequences/s"))
    return out


FAMILIES = [conv_benches, pool_benches, linear_benches, recurrent_benches, e2e_benches,
            sampling_benches]


# --------------------------------------------------------------------------------------------
# Worker: one thread count, every timed case
# --------------------------------------------------------------------------------------------

def gemm_peak_gflops(quick: bool) -> float:
    """float32 GEMM rate of numpy's BLAS (the machine's practical ceiling at this thread count)."""
    import numpy as np

    n = 512 if quick else 2048
    rng = _rng()
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    c = np.empty_like(a)
    np.matmul(a, b, out=c)
    times = []
    for _ in range(3 if quick else 7):
        t0 = time.perf_counter()
        np.matmul(a, b, out=c)
        times.append(time.perf_counter() - t0)
    return 2.0 * n ** 3 / min(times) / 1e9      # best of: the ceiling, not a typical rate


def limit_threads(threads: int):
    """Pin every pool in this process to ``threads`` (the environment did most of it already)."""
    import numba
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=threads)      # keep a reference: the limit lives with it


#: The import orders the workers can start with (``--orders``).
IMPORT_ORDERS = {"natural": ("numpy", "torch", "layerkit"),
                 "layerkit-first": ("layerkit", "numpy", "torch")}


def worker(args) -> None:
    import importlib
    for module in IMPORT_ORDERS[args.order]:          # before anything else imports them
        importlib.import_module(module)
    sys.path.insert(0, str(HERE))
    from timing import paired_median_ms

    threads = args.worker
    limits = limit_threads(threads)      # noqa: F841 - threadpoolctl's limit lives with it
    peak = gemm_peak_gflops(args.quick)
    print(f"# {threads} thread(s), imports {args.order}: float32 GEMM peak {peak:.1f} GFLOP/s",
          flush=True)
    rows = []
    for family in FAMILIES:
        try:
            benches = family(args.quick)
        except Exception as exc:          # a missing layer must not hide every other result
            print(f"# {family.__name__} failed to build: {exc!r}", flush=True)
            raise
        for b in benches:
            full = f"{b.name} {b.op} {b.shape}"
            if args.only and args.only.lower() not in full.lower():
                continue
            lk_ms, t_ms = paired_median_ms(b.lk, b.torch, repeat=args.repeat,
                                           warmup=1 if args.quick else 3,
                                           min_sample_s=0.0 if args.quick else 0.002)
            row = dict(name=b.name, op=b.op, shape=b.shape, threads=threads, order=args.order,
                       layerkit_ms=lk_ms, torch_ms=t_ms, ratio=lk_ms / t_ms,
                       gflop=b.gflop, layerkit_gflops=None, torch_gflops=None,
                       peak_gflops=peak, layerkit_peak_fraction=None,
                       throughput_unit=b.item_unit, layerkit_throughput=None,
                       torch_throughput=None)
            if b.gflop:
                row["layerkit_gflops"] = b.gflop / (lk_ms / 1e3)
                row["torch_gflops"] = b.gflop / (t_ms / 1e3)
                row["layerkit_peak_fraction"] = row["layerkit_gflops"] / peak
            if b.items:
                row["layerkit_throughput"] = b.items / (lk_ms / 1e3)
                row["torch_throughput"] = b.items / (t_ms / 1e3)
            rows.append(row)
            print(format_row(row), flush=True)
    # The peak again at the end, the larger one counts: a shared machine can depress either.
    peak = max(peak, gemm_peak_gflops(args.quick))
    for row in rows:
        row["peak_gflops"] = peak
        if row["layerkit_gflops"] is not None:
            row["layerkit_peak_fraction"] = row["layerkit_gflops"] / peak
    print(f"# {threads} thread(s): float32 GEMM peak (best of start and end) {peak:.1f} GFLOP/s",
          flush=True)
    Path(args.out).write_text(json.dumps(dict(threads=threads, peak_gflops=peak, results=rows,
                                              versions=versions())))


# --------------------------------------------------------------------------------------------
# JIT probe and memory probe (each runs in its own subprocess)
# --------------------------------------------------------------------------------------------

def jit_probe(families: list[str]) -> dict:
    """Seconds for ``import layerkit`` and each family's first float32 forward + backward."""
    t0 = time.perf_counter()
    import numpy as np

    import layerkit as lk
    out = {"import layerkit": time.perf_counter() - t0}
    rng = _rng()
    img = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    seq = rng.standard_normal((2, 3, 5)).astype(np.float32)
    vec = rng.standard_normal((4, 6)).astype(np.float32)
    makers = {
        "dense (Linear, ReLU, CrossEntropy)": [(lambda: lk.Sequential(lk.Linear(6, 5), lk.ReLU()),
                                               vec)],
        "conv (Conv1D, Conv2D)": [(lambda: lk.Conv2D(3, 4, 3, padding=1), img),
                                  (lambda: lk.Conv1D(5, 4, 3), seq.transpose(0, 2, 1).copy())],
        "pooling (MaxPool2D, AvgPool2D)": [(lambda: lk.MaxPool2D(2), img),
                                           (lambda: lk.AvgPool2D(2), img)],
        "recurrent (RNN, LSTM, GRU)": [(lambda: lk.RNN(5, 6), seq), (lambda: lk.LSTM(5, 6), seq),
                                       (lambda: lk.GRU(5, 6), seq)],
    }
    for fam in families:
        t1 = time.perf_counter()
        for make, x in makers[fam]:
            layer = make()
            y = layer(x)
            y = y[0] if isinstance(y, tuple) else y
            layer.backward(np.ones_like(y))
        if fam.startswith("dense"):
            ce = lk.CrossEntropy()
            ce(vec, np.zeros(4, dtype=np.int64))
            ce.backward()
        out[fam] = time.perf_counter() - t1
    return out


JIT_FAMILIES = ["dense (Linear, ReLU, CrossEntropy)", "conv (Conv1D, Conv2D)",
                "pooling (MaxPool2D, AvgPool2D)", "recurrent (RNN, LSTM, GRU)"]


def memory_probe(lib: str, model: str, quick: bool) -> dict:
    """Peak memory of a training step of ``model`` ("lenet<batch>" or "charlstm") in ``lib``."""
    import tracemalloc

    lenet, char = e2e_sizes(quick)
    if model.startswith("lenet"):
        b = int(model[5:])
        step = (lenet_layerkit if lib == "layerkit" else lenet_torch)(b)
    else:
        T, N = char[0]
        step = (charlstm_layerkit if lib == "layerkit" else charlstm_torch)(T, N)
    step()                       # loads the JIT-compiled kernels, fills the optimizer state
    before = _status_mb("VmRSS")
    # Reset the process's RSS high-water mark (Linux >= 4.0), so that the peak below is the
    # steps' own and not the import's (loading numba / torch peaks higher than a small step).
    try:
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:
        reset = False
    for _ in range(3):
        step()
    peak = _status_mb("VmHWM") if reset else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    traced = None
    if lib == "layerkit":
        tracemalloc.start()
        step()
        traced = tracemalloc.get_traced_memory()[1] / 2 ** 20
        tracemalloc.stop()
    return dict(rss_before_mb=before, peak_rss_mb=peak, step_peak_mb=peak - before,
                hwm_reset=reset, tracemalloc_peak_mb=traced)


def _status_mb(key: str) -> float:
    """A memory line of /proc/self/status (kB) in MiB; ru_maxrss when unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --------------------------------------------------------------------------------------------
# Parent: run the workers and probes, print and save
# --------------------------------------------------------------------------------------------

def child_env(threads: int, hygiene: bool = False, **extra) -> dict:
    env = dict(os.environ)
    for k in THREAD_VARS:
        env[k] = str(threads)
    if hygiene:
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        env.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    env.pop("NUMBA_DISABLE_JIT", None)          # a benchmark of the interpreted kernels is moot
    env.update(extra)
    return env


def run_child(argv: list[str], env: dict, *, capture: bool) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(Path(__file__).resolve())] + argv
    res = subprocess.run(cmd, env=env, text=True, stdout=subprocess.PIPE if capture else None)
    if res.returncode != 0:
        raise SystemExit(f"benchmark subprocess failed ({res.returncode}): {' '.join(argv)}")
    return res


def measure_jit(threads: int, quick: bool) -> dict:
    families = JIT_FAMILIES[:1] if quick else JIT_FAMILIES
    out = {"threads": threads}
    with tempfile.TemporaryDirectory(prefix="layerkit-numba-cache-") as cache:
        for label in ("cold", "warm"):
            env = child_env(threads, NUMBA_CACHE_DIR=cache)
            t0 = time.perf_counter()
            res = run_child(["--jit-probe", ",".join(str(JIT_FAMILIES.index(f)) for f in families)],
                            env, capture=True)
            wall = time.perf_counter() - t0
            times = json.loads(res.stdout.strip().splitlines()[-1])
            times["total (process wall time)"] = wall
            out[label] = times
    if not quick:                    # `layerkit gradcheck`, every built-in case: a first run
        import cold_start
        for where, venv in (("", False), (" (fresh venv)", True)):
            res = cold_start.measure(venv=venv)
            for label in ("cold", "warm"):
                out[label][f"gradcheck{where}: first output line"] = res[label]["first_line_s"]
                out[label][f"gradcheck{where}: total"] = res[label]["total_s"]
    return out


def measure_memory(threads: int, quick: bool) -> list[dict]:
    lenet, _ = e2e_sizes(quick)
    jobs = [("layerkit", f"lenet{b}") for b in lenet] + [("layerkit", "charlstm")]
    if not quick:
        jobs += [("torch", f"lenet{b}") for b in lenet] + [("torch", "charlstm")]
    rows = []
    for lib, model in jobs:
        argv = ["--memory-probe", f"{lib}:{model}"] + (["--quick"] if quick else [])
        res = run_child(argv, child_env(threads), capture=True)
        r = json.loads(res.stdout.strip().splitlines()[-1])
        r.update(library=lib, model=model, threads=threads)
        rows.append(r)
    return rows


def format_row(r: dict) -> str:
    g = "" if r["layerkit_gflops"] is None else \
        f"{r['layerkit_gflops']:8.1f} {100 * r['layerkit_peak_fraction']:5.1f}%"
    if r["throughput_unit"]:
        g = (f"{r['layerkit_throughput']:9.0f} vs {r['torch_throughput']:9.0f} "
             f"{r['throughput_unit']}")
    return (f"{r['name'] + ' ' + r['op']:36.36} {r['shape']:30.30} {r['threads']:2d} "
            f"{r.get('order', ''):14.14} "
            f"{r['layerkit_ms']:10.3f} {r['torch_ms']:10.3f} {r['ratio']:6.2f}  {g}")


HEADER = (f"{'case':36} {'shape':30} {'th':>2} {'imports':14} {'layerkit ms':>10} {'torch ms':>10} "
          f"{'ratio':>6}  layerkit GFLOP/s, % of GEMM peak (or throughput)")


def _ms(v: float) -> str:
    """Three significant digits without exponent notation (1510, 95.1, 0.146)."""
    return f"{v:.0f}" if v >= 100 else f"{v:.3g}"


def markdown(results: list[dict], threads: list[int]) -> str:
    """One row per case and import order, the threads side by side."""
    keys, table = [], {}
    for r in results:
        k = (r["name"], r["op"], r["shape"], r.get("order", ""))
        if k not in table:
            keys.append(k)
            table[k] = {}
        table[k][r["threads"]] = r
    head = "| case | shape | imports | " + " | ".join(
        f"{t} thr: layerkit ms | PyTorch ms | ratio | GFLOP/s (% peak)" for t in threads) + " |"
    lines = [head, "|" + " --- |" * (3 + 4 * len(threads))]
    for k in keys:
        cells = [f"{k[0]} {k[1]}", k[2], k[3]]
        for t in threads:
            r = table[k].get(t)
            if r is None:
                cells += ["–"] * 4
                continue
            if r["throughput_unit"]:
                extra = f"{r['layerkit_throughput']:,.0f} vs {r['torch_throughput']:,.0f} " \
                        f"{r['throughput_unit']}"
            elif r["layerkit_gflops"] is not None:
                extra = f"{r['layerkit_gflops']:.1f} ({100 * r['layerkit_peak_fraction']:.0f} %)"
            else:
                extra = "–"
            cells += [_ms(r["layerkit_ms"]), _ms(r["torch_ms"]), f"**{r['ratio']:.2f}**",
                      extra]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions() -> dict:
    out = {"python": platform.python_version()}
    for mod in ("numpy", "numba", "torch", "layerkit"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:          # noqa: BLE001 - just a report
            out[mod] = None
    return out


def parent(args) -> int:
    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    if any(t < 1 for t in threads):
        raise SystemExit("--threads: expected positive integers such as 1,2")
    orders = [o.strip() for o in args.orders.split(",") if o.strip()]
    if not orders or any(o not in IMPORT_ORDERS for o in orders):
        raise SystemExit(f"--orders: expected a comma-separated list of "
                         f"{', '.join(IMPORT_ORDERS)}, got {args.orders!r}")
    meta = dict(date=datetime.date.today().isoformat(), cpu=cpu_model(), cores=os.cpu_count(),
                platform=platform.platform(), dtype="float32", repeat=args.repeat,
                quick=args.quick, threads=threads, orders=orders, hygiene=args.hygiene,
                only=args.only, versions=None,
                ratio="layerkit time / PyTorch time (< 1: layerkit faster)")
    results, peaks = [], {}
    print(f"# layerkit vs PyTorch, float32, median of {args.repeat} alternating samples; "
          f"{meta['cpu']}, {meta['cores']} cores")
    print(HEADER)
    with tempfile.TemporaryDirectory(prefix="layerkit-bench-") as tmp:
        for t in threads:
            for order in orders:
                out = Path(tmp) / f"threads{t}-{order}.json"
                argv = ["--worker", str(t), "--out", str(out), "--repeat", str(args.repeat),
                        "--order", order]
                argv += ["--quick"] if args.quick else []
                argv += ["--only", args.only] if args.only else []
                run_child(argv, child_env(t, args.hygiene), capture=False)
                data = json.loads(out.read_text())
                peaks[str(t)] = max(peaks.get(str(t), 0.0), data["peak_gflops"])
                meta["versions"] = data["versions"]
                results += data["results"]

    only = (args.only or "").lower()
    jit = memory = None
    if not only or only == "jit":
        jit = measure_jit(max(threads), args.quick)
        print(f"\n# JIT: seconds, fresh NUMBA_CACHE_DIR (cold) vs the cache it left (warm), "
              f"{jit['threads']} thread(s)")
        for k in jit["cold"]:
            print(f"{k:44} cold {jit['cold'][k]:7.3f}   warm {jit['warm'][k]:7.3f}")
    if not only or only == "memory":
        memory = measure_memory(max(threads), args.quick)
        print("\n# memory of a training step, MiB: process peak RSS; the step's peak above the "
              "RSS before it; layerkit's tracemalloc peak (numpy arrays)")
        for m in memory:
            tm = "" if m["tracemalloc_peak_mb"] is None else \
                f"  tracemalloc {m['tracemalloc_peak_mb']:7.1f}"
            print(f"{m['library']:9} {m['model']:10} peak rss {m['peak_rss_mb']:8.1f}  "
                  f"step {m['step_peak_mb']:7.1f}{tm}")

    if args.markdown:
        print("\n" + markdown(results, threads))
    payload = dict(meta=meta, peak_gflops=peaks, results=results, jit=jit, memory=memory)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"\n# wrote {path}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny shapes, 2 repetitions (smoke test)")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    p.add_argument("--only", default=None, help="run only cases whose name contains SUBSTRING "
                   "(case-insensitive); 'jit' or 'memory' selects just that part")
    p.add_argument("--repeat", type=int, default=None, help="samples per case (default 10, "
                   "quick 2)")
    p.add_argument("--json", default=str(DEFAULT_JSON), help=f"output file (default "
                   f"{DEFAULT_JSON.relative_to(HERE.parent)})")
    p.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    p.add_argument("--orders", default="natural,layerkit-first", help="import orders to run, "
                   f"comma-separated among {', '.join(IMPORT_ORDERS)} (default: both)")
    p.add_argument("--hygiene", action="store_true", help="set OMP_WAIT_POLICY=PASSIVE and "
                   "OPENBLAS_THREAD_TIMEOUT=4 for the workers (a user's environment has neither)")
    # internal: the subprocesses
    p.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help=argparse.SUPPRESS)
    p.add_argument("--order", default="natural", choices=sorted(IMPORT_ORDERS),
                   help=argparse.SUPPRESS)
    p.add_argument("--jit-probe", default=None, help=argparse.SUPPRESS)
    p.add_argument("--memory-probe", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeat is None:
        args.repeat = 2 if args.quick else 10
    if args.repeat < 1:
        p.error("--repeat must be >= 1")

    if args.jit_probe is not None:
        print(json.dumps(jit_probe([JIT_FAMILIES[int(i)] for i in args.jit_probe.split(",")])))
        return 0
    if args.memory_probe is not None:
        lib, model = args.memory_probe.split(":")
        print(json.dumps(memory_probe(lib, model, args.quick)))
        return 0
    if args.worker is not None:
        worker(args)
        return 0
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
