"""Does the order of the imports change layerkit's speed? The same cases, one fresh process per
import order, side by side.

Run from the repository root::

    python benchmarks/import_order.py                 # 3 rounds of every order, 2 threads
    python benchmarks/import_order.py --rounds 5 --repeat 20 --threads 1
    python benchmarks/import_order.py --orders numpy,layerkit --json /tmp/orders.json

How it measures
    A user's script imports numpy (and often torch) before layerkit; the libraries' thread
    pools are then created before ``import layerkit`` can configure them. Each order runs in a
    fresh subprocess whose environment has none of OMP_WAIT_POLICY, OPENBLAS_THREAD_TIMEOUT or
    GOMP_SPINCOUNT (the environment a user has); the thread counts come from
    ``torch.set_num_threads`` and ``numba.set_num_threads`` only. Orders:

    ``layerkit``  ``import layerkit`` first, then numpy and torch
    ``numpy``     ``import numpy``, then layerkit, then torch
    ``torch``     ``import numpy``, ``import torch``, then layerkit (the natural order)

    Inside a process, layerkit and PyTorch take turns as in run.py (timing.paired_medians), and
    besides the wall time each sample records the CPU time of the whole process per call: idle
    workers that spin show up there as CPU time beyond the wall time, even when other processes
    on a shared machine make the wall time noisy. "idle CPU" is the direct measure: the CPU ms
    the process burns while its only running thread sleeps 30 ms right after one layerkit call
    (median of 5); ~0 when every idle worker sleeps. The orders are run round-robin, ``--rounds``
    times, each round starting with another order; the table gives the medians over rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDERS = {"layerkit": ("layerkit", "numpy", "torch"),
          "numpy": ("numpy", "layerkit", "torch"),
          "torch": ("numpy", "torch", "layerkit")}
USER_ENV_DROPPED = ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT", "GOMP_SPINCOUNT",
                    "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMBA_NUM_THREADS", "NUMBA_DISABLE_JIT")


def cases():
    """(name, layerkit call, PyTorch call) for each case; built after the imports."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    import layerkit as lk

    rng = np.random.default_rng(0)
    out = []

    conv = lk.Conv2D(6, 16, 5, seed=0)
    x = rng.standard_normal((64, 6, 14, 14)).astype(np.float32)
    dy = rng.standard_normal(conv(x).shape).astype(np.float32)
    xt = torch.from_numpy(x).requires_grad_(True)
    wt = torch.from_numpy(conv.params["weight"].copy()).requires_grad_(True)
    bt = torch.from_numpy(conv.params["bias"].copy()).requires_grad_(True)
    dyt = torch.from_numpy(dy)

    def conv_fb():
        conv.train()
        conv(x)
        conv.backward(dy)

    def conv_fb_t():
        xt.grad = wt.grad = bt.grad = None
        F.conv2d(xt, wt, bt).backward(dyt)

    def conv_f():
        conv.eval()
        conv(x)

    def conv_f_t():
        with torch.no_grad():
            F.conv2d(xt, wt, bt)

    out += [("LeNet conv2 fwd+bwd N=64 6->16 14x14 k=5", conv_fb, conv_fb_t),
            ("LeNet conv2 fwd (eval)", conv_f, conv_f_t)]

    T, N, D, H = 50, 32, 64, 128
    lstm = lk.LSTM(D, H, seed=0)
    tl = torch.nn.LSTM(D, H, batch_first=True)
    with torch.no_grad():
        for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(tl, k + "_l0").copy_(torch.from_numpy(lstm.params[k]))
    xs = rng.standard_normal((N, T, D)).astype(np.float32)
    dys = rng.standard_normal(lstm(xs)[0].shape).astype(np.float32)
    xg = torch.from_numpy(xs).requires_grad_(True)
    dyst = torch.from_numpy(dys)

    def lstm_fb():
        lstm(xs)
        lstm.backward(dys)

    def lstm_fb_t():
        xg.grad = None
        tl.zero_grad(set_to_none=True)
        tl(xg)[0].backward(dyst)

    out.append((f"LSTM fwd+bwd T={T} N={N} D={D} H={H}", lstm_fb, lstm_fb_t))
    return out


def idle_cpu_ms(fn, sleep_s=0.03, samples=5) -> float:
    """CPU milliseconds the process burns while the calling thread sleeps ``sleep_s`` right
    after ``fn()`` (median of ``samples``): the work of idle workers that keep spinning."""
    import time
    burnt = []
    for _ in range(samples):
        fn()
        c0 = time.process_time()
        time.sleep(sleep_s)
        burnt.append(time.process_time() - c0)
    return 1e3 * statistics.median(burnt)


def child(order: str, threads: int, repeat: int) -> None:
    import importlib
    for name in ORDERS[order]:
        importlib.import_module(name)
    import numba
    import torch
    sys.path.insert(0, str(HERE))
    from timing import paired_medians

    torch.set_num_threads(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    rows = []
    for name, fa, fb in cases():
        (lk_ms, t_ms), (lk_cpu, t_cpu) = paired_medians(fa, fb, repeat=repeat, warmup=3)
        rows.append(dict(case=name, layerkit_ms=lk_ms, torch_ms=t_ms, layerkit_cpu_ms=lk_cpu,
                         torch_cpu_ms=t_cpu, layerkit_idle_cpu_ms=idle_cpu_ms(fa)))
    print(json.dumps(dict(order=order, threads=threads, rows=rows)))


def user_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in USER_ENV_DROPPED}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE.parent), env.get("PYTHONPATH")) if p)
    return env


def run_order(order: str, threads: int, repeat: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", order,
           "--threads", str(threads), "--repeat", str(repeat)]
    res = subprocess.run(cmd, env=user_env(), text=True, stdout=subprocess.PIPE)
    if res.returncode != 0:
        raise SystemExit(f"import-order subprocess failed ({res.returncode}): {order}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def summarize(runs: list[dict], orders: list[str]) -> list[dict]:
    """Median over rounds of each (case, order): ms of both libraries, ratio, CPU / wall."""
    table = []
    for case in [r["case"] for r in runs[0]["rows"]]:
        row = {"case": case}
        for order in orders:
            got = [r for run in runs if run["order"] == order for r in run["rows"]
                   if r["case"] == case]
            med = {k: statistics.median(g[k] for g in got)
                   for k in ("layerkit_ms", "torch_ms", "layerkit_cpu_ms", "torch_cpu_ms",
                             "layerkit_idle_cpu_ms")}
            med["ratio"] = statistics.median(g["layerkit_ms"] / g["torch_ms"] for g in got)
            med["layerkit_cpu_per_wall"] = med["layerkit_cpu_ms"] / med["layerkit_ms"]
            row[order] = med
        table.append(row)
    return table


def print_table(table: list[dict], orders: list[str]) -> None:
    """Per order: layerkit's wall ms, its ratio to PyTorch's wall time, the CPU ms per call of
    layerkit and of PyTorch (all threads of the process), and layerkit's idle CPU ms."""
    width = 38
    print(f"{'case':40s}  " + "  ".join(f"{o + ' first':>{width}s}" for o in orders))
    print(f"{'':40s}  " + "  ".join(f"{'lk ms   ratio   cpu ms lk / torch  idle':>{width}s}"
                                   for _ in orders))
    for row in table:
        cells = "  ".join(f"{row[o]['layerkit_ms']:7.2f} {row[o]['ratio']:6.2f}x "
                          f"{row[o]['layerkit_cpu_ms']:8.2f} / {row[o]['torch_cpu_ms']:6.2f} "
                          f"{row[o]['layerkit_idle_cpu_ms']:5.1f}" for o in orders)
        print(f"{row['case'][:40]:40s}  {cells}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--orders", default=",".join(ORDERS), help="comma-separated, of "
                   f"{', '.join(ORDERS)} (default all)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3, help="processes per order (default 3)")
    p.add_argument("--repeat", type=int, default=15, help="samples per case in a process")
    p.add_argument("--json", default=None, help="also write the runs and the table here")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child, args.threads, args.repeat)
        return 0
    orders = [o for o in args.orders.split(",") if o]
    unknown = [o for o in orders if o not in ORDERS]
    if unknown:
        p.error(f"unknown order(s) {unknown}; choose from {list(ORDERS)}")
    load = os.getloadavg()
    print(f"# {args.threads} thread(s), {args.rounds} round(s); load average before: "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    runs = []
    for r in range(args.rounds):
        for order in orders[r % len(orders):] + orders[:r % len(orders)]:
            runs.append(run_order(order, args.threads, args.repeat))
            first = runs[-1]["rows"][0]
            print(f"# round {r + 1} {order:8s} first: {first['case']}: layerkit "
                  f"{first['layerkit_ms']:.2f} ms, torch {first['torch_ms']:.2f} ms", flush=True)
    table = summarize(runs, orders)
    print_table(table, orders)
    load = os.getloadavg()
    print(f"# load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(runs=runs, table=table), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
