"""layerkit's gradient checker against ``torch.autograd.gradcheck`` on the same layers.

Every layer of tests/checker_corpus.py (broken ones a checker must catch, correct but awkward
ones it must pass) goes through both checkers in one run:

- ``layerkit.gradcheck(layer, inputs)`` with its defaults;
- ``torch.autograd.gradcheck`` (float64, its defaults) on the layer wrapped as a
  ``torch.autograd.Function``: forward copies the inputs and parameters into the layer, runs
  its forward and keeps a deep copy of the layer (so each backward sees the cache of its own
  forward); backward zeroes that copy's gradients, runs its backward and returns dx and the
  parameter gradients. Any exception from torch's check counts as a catch.

Then both check a 512×512 Linear (layerkit's own; torch's fast mode as well), timed.

    python benchmarks/checker_vs_torch.py            # needs the crosscheck extra (torch)
    python benchmarks/checker_vs_torch.py --quick    # the corpus only, no Linear timing
"""

from __future__ import annotations

import argparse
import copy
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))

import layerkit as lk  # noqa: E402
from checker_corpus import BROKEN, CORRECT  # noqa: E402


def _as_tuple(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,)


def torch_gradcheck(layer, inputs, *, fast_mode: bool = False) -> bool:
    """True when torch.autograd.gradcheck passes the layer (wrapped as a Function)."""
    import torch

    inputs = _as_tuple(inputs)
    float_pos = [i for i, x in enumerate(inputs) if np.issubdtype(np.asarray(x).dtype, np.floating)]
    keys = list(layer.params)

    class Wrapped(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *tensors):
            xs = list(inputs)
            for j, i in enumerate(float_pos):
                xs[i] = tensors[j].detach().numpy().copy()
            for k, t in zip(keys, tensors[len(float_pos):]):
                layer.params[k][...] = t.detach().numpy()
            out = layer.forward(*xs)
            ctx.layer = copy.deepcopy(layer)
            return torch.from_numpy(np.array(out, dtype=np.float64))

        @staticmethod
        def backward(ctx, dy):
            own = ctx.layer
            for g in own.grads.values():
                g[...] = 0
            dx = _as_tuple(own.backward(dy.detach().numpy().copy()))
            grads = [torch.from_numpy(np.array(d, dtype=np.float64))
                     for d in dx[:len(float_pos)]]
            grads += [torch.from_numpy(np.array(own.grads[k], dtype=np.float64)) for k in keys]
            return tuple(grads)

    tensors = [torch.tensor(np.asarray(inputs[i], dtype=np.float64), requires_grad=True)
               for i in float_pos]
    tensors += [torch.tensor(np.array(layer.params[k], dtype=np.float64), requires_grad=True)
                for k in keys]
    try:
        return bool(torch.autograd.gradcheck(Wrapped.apply, tuple(tensors), fast_mode=fast_mode))
    except Exception:        # noqa: BLE001 - a raised check is a caught layer
        return False


def corpus() -> dict:
    """Counts of both checkers on the corpus, with the names each one got wrong."""
    out = {}
    for checker in ("layerkit", "torch"):
        missed, alarms = [], []
        for cases, wrong in ((BROKEN, missed), (CORRECT, alarms)):
            for name, make in cases:
                layer, inputs = make()
                if checker == "layerkit":
                    passed = lk.gradcheck(layer, inputs).passed
                else:
                    passed = torch_gradcheck(layer, inputs)
                if passed == (cases is BROKEN):
                    wrong.append(name)
        out[checker] = (missed, alarms)
    return out


def linear_timing() -> list:
    """(checker, seconds) for a 512×512 Linear (float64, batch 8), each run once warm."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 512))
    layer = lk.Linear(512, 512, dtype=np.float64, seed=0)
    lk.gradcheck(lk.Linear(8, 8, dtype=np.float64, seed=0), x[:, :8])       # warm
    rows = []
    t = time.perf_counter()
    lk.gradcheck(layer, x)
    rows.append(("layerkit.gradcheck", time.perf_counter() - t))

    class Plain:      # the same layer in plain numpy, for torch's wrapper
        def __init__(self):
            self.params = {"W": layer.params["weight"].copy(), "b": layer.params["bias"].copy()}
            self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

        def forward(self, v):
            self.v = v
            return v @ self.params["W"].T + self.params["b"]

        def backward(self, dy):
            self.grads["W"] += dy.T @ self.v
            self.grads["b"] += dy.sum(axis=0)
            return dy @ self.params["W"]

    t = time.perf_counter()
    torch_gradcheck(Plain(), x, fast_mode=True)
    rows.append(("torch.autograd.gradcheck, fast mode", time.perf_counter() - t))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the corpus only")
    args = parser.parse_args(argv)
    results = corpus()
    print(f"corpus: {len(BROKEN)} broken layers, {len(CORRECT)} correct ones\n")
    print(f"{'checker':<28} {'caught':>8} {'false alarms':>13}")
    for checker, (missed, alarms) in results.items():
        print(f"{checker:<28} {len(BROKEN) - len(missed):>4} / {len(BROKEN):<3}"
              f" {len(alarms):>6} / {len(CORRECT)}")
    for checker, (missed, alarms) in results.items():
        if missed:
            print(f"\n{checker} missed: " + "; ".join(missed))
        if alarms:
            print(f"{checker} false alarms: " + "; ".join(alarms))
    if not args.quick:
        print("\n512×512 Linear, batch 8, float64 (warm):")
        for name, seconds in linear_timing():
            print(f"  {name:<38} {seconds:7.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
