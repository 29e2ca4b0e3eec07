"""ResNet-20 (or LeNet-5) on Fashion-MNIST, layerkit against PyTorch: test accuracy, images/s,
time ratio.

Needs Debian's ``dataset-fashion-mnist`` (``load_fashion_mnist()`` reads it; nothing is
downloaded here) and PyTorch. Run from the repository root::

    python benchmarks/resnet_fashion.py                 # 6,000 training images, 1 epoch
    python benchmarks/resnet_fashion.py --full          # 60,000 images x 3 epochs, 10,000 test
    python benchmarks/resnet_fashion.py --quick         # a few steps (a smoke test)
    python benchmarks/resnet_fashion.py --train-images 12000 --epochs 2 --threads 1
    python benchmarks/resnet_fashion.py --model lenet5 --full --order natural

``--model lenet5``: ``layerkit.models.lenet5()`` on the 28x28 images as they are, batch 64,
the rest as below (``--full``: 60,000 images x 3 epochs). ``--order`` is the import order:
"natural" (default) imports numpy, then torch, then layerkit, as a user's script does;
"layerkit-first" imports layerkit before torch. The environment is the user's (no
``OMP_WAIT_POLICY`` set before torch loads) unless ``--hygiene`` sets OMP_WAIT_POLICY=PASSIVE and
OPENBLAS_THREAD_TIMEOUT=4 first, which makes PyTorch's idle workers sleep too.

The model is ``layerkit.models.resnet20(in_channels=1)`` (option-A shortcuts, 269,434
parameters) on the 28x28 images zero-padded to 32x32 (2 pixels on every side), values in
[0, 1]. Its PyTorch twin is ``layerkit.interop.to_torch(model)``: the same architecture with the
same initial weights (and batch-norm state). Both train with Adam (lr 1e-3, PyTorch's betas
and eps) on the same batches (``batches(x, y, 128, seed=0)``), alternating step by step in this
one process with the same thread counts, as ``benchmarks/train_vs_torch.py`` does (see its
docstring for how the threads are set and why the steps alternate). Training time is the sum
of the timed steps (forward, loss, backward, Adam); images/s = training images / that time;
time ratio = layerkit / PyTorch (> 1: layerkit slower), also as the median of the per-step
ratios, which a busy phase of a shared machine (hitting one library's step more than the
other's) moves less. Test accuracy is measured in eval mode
(batch norm's running statistics) on the first ``--test-images`` test images after the last
epoch. The results go to ``benchmarks/resnet_fashion_results.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import cpu_model, versions  # noqa: E402  (stdlib-only imports)
from train_vs_torch import (Clock, classifier_steps, library_result, say,  # noqa: E402
                            set_thread_env)

DEFAULT_JSON = HERE / "resnet_fashion_results.json"


def padded_fashion_mnist(train_images: int, test_images: int, border: int = 2):
    """The first ``train_images`` / ``test_images`` of each split, padded by ``border`` pixels
    on every side (28x28 -> 32x32 by default)."""
    import numpy as np

    from layerkit import data as D

    x, y, x_test, y_test = D.load_fashion_mnist(download=False, progress=False)
    pad = ((0, 0), (0, 0), (border, border), (border, border))
    return (np.pad(x[:train_images], pad), y[:train_images],
            np.pad(x_test[:test_images], pad), y_test[:test_images])


def run(args) -> dict:
    import numpy as np
    import torch
    import torch.nn.functional as F

    import layerkit as lk
    from layerkit import data as D
    from layerkit import interop
    from layerkit.models import lenet5, resnet20

    def build(seed):
        return resnet20(in_channels=1, seed=seed) if args.model == "resnet20" else \
            lenet5(in_channels=1, seed=seed)

    x, y, x_test, y_test = padded_fashion_mnist(args.train_images, args.test_images,
                                                2 if args.model == "resnet20" else 0)
    batch, lr, seed = args.batch_size, 1e-3, 0

    # untimed warm-up on throw-away models: numba compilation or cache loading, PyTorch's
    # first-call costs (its first optimizer.step() imports torch._dynamo)
    w_lk, w_ce = build(99), lk.CrossEntropy()
    w_t = interop.to_torch(w_lk)
    w_ce.forward(w_lk.forward(x[:batch]), y[:batch])
    w_lk.backward(w_ce.backward())
    lk.Adam(w_lk).step()
    F.cross_entropy(w_t(torch.from_numpy(x[:batch])), torch.from_numpy(y[:batch])).backward()
    torch.optim.Adam(w_t.parameters()).step()

    model, loss = build(seed), lk.CrossEntropy()
    tmodel = interop.to_torch(model)            # same architecture, same initial weights
    opt = lk.Adam(model, lr=lr)
    topt = torch.optim.Adam(tmodel.parameters(), lr=lr, betas=tuple(opt.betas), eps=opt.eps)
    model.eval(), tmodel.eval()
    with torch.no_grad():
        d0 = float(np.max(np.abs(model.forward(x[:8]) - tmodel(torch.from_numpy(x[:8])).numpy())))
    model.train(), tmodel.train()

    lk_step, torch_step = classifier_steps(model, loss, opt, tmodel, topt)
    def accuracies():
        model.eval(), tmodel.eval()
        p_lk, p_t = [], []
        with torch.no_grad():
            for i in range(0, len(x_test), 500):
                xb = x_test[i:i + 500]
                p_lk.append(np.argmax(model.forward(xb), axis=-1))
                p_t.append(tmodel(torch.from_numpy(xb)).argmax(-1).numpy())
        model.train(), tmodel.train()
        return (float(np.mean(np.concatenate(p_lk) == y_test)),
                float(np.mean(np.concatenate(p_t) == y_test)))

    c_lk, c_t = Clock(), Clock()
    history, first_losses, step_ratios = [], None, []
    for epoch in range(1, args.epochs + 1):
        s_lk = s_t = 0.0
        n = 0
        for step, (xb, yb) in enumerate(D.batches(x, y, batch, seed=seed + epoch), 1):
            s0, t0 = c_lk.seconds, c_t.seconds
            a = c_lk.run(lambda: lk_step(xb, yb))
            b = c_t.run(lambda: torch_step(xb, yb))
            step_ratios.append((c_lk.seconds - s0) / (c_t.seconds - t0))
            first_losses = first_losses or (a, b)
            s_lk, s_t, n = s_lk + a * len(xb), s_t + b * len(xb), n + len(xb)
            if step % 10 == 0:
                say(f"epoch {epoch} step {step}: loss {a:.4f} vs {b:.4f}; step time "
                    f"{c_lk.seconds:.0f} s vs {c_t.seconds:.0f} s (layerkit vs PyTorch)")
        acc_lk, acc_t = accuracies()
        history.append(dict(epoch=epoch, layerkit_train_loss=s_lk / n, torch_train_loss=s_t / n,
                            layerkit_test_accuracy=acc_lk, torch_test_accuracy=acc_t))
        say(f"epoch {epoch}/{args.epochs}: train loss {s_lk / n:.4f} vs {s_t / n:.4f}, test "
            f"accuracy {acc_lk:.2%} vs {acc_t:.2%} (layerkit vs PyTorch)")
    items = args.epochs * len(x)
    last = history[-1]
    lk_res = library_result(last["layerkit_test_accuracy"], c_lk, items, c_lk.seconds)
    t_res = library_result(last["torch_test_accuracy"], c_t, items, c_t.seconds)
    name = "ResNet-20 (Fashion-MNIST, 32x32)" if args.model == "resnet20" else \
        "LeNet-5 (Fashion-MNIST, 28x28)"
    return dict(model=args.model, name=name, order=args.order,
                metric="test accuracy", throughput_unit="images/s", layerkit=lk_res,
                torch=t_res, time_ratio=lk_res["train_seconds"] / t_res["train_seconds"],
                median_step_ratio=float(np.median(step_ratios)),
                settings=dict(epochs=args.epochs, batch_size=batch, lr=lr, seed=seed,
                              train_images=len(x), test_images=len(x_test)),
                check=dict(initial_logits_max_abs_diff=d0, first_step_losses=first_losses),
                history=history)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--full", action="store_true",
                   help="all 60,000 training images, 3 epochs, all 10,000 test images")
    p.add_argument("--quick", action="store_true", help="3 steps on a little data (smoke test)")
    p.add_argument("--train-images", type=int, default=None, help="default 6000")
    p.add_argument("--test-images", type=int, default=None, help="default 2000")
    p.add_argument("--epochs", type=int, default=None, help="default 1")
    p.add_argument("--model", choices=("resnet20", "lenet5"), default="resnet20")
    p.add_argument("--order", choices=("natural", "layerkit-first"), default="natural",
                   help="import order (default natural: numpy, torch, then layerkit)")
    p.add_argument("--batch-size", type=int, default=None, help="default 128 (lenet5: 64)")
    p.add_argument("--hygiene", action="store_true", help="OMP_WAIT_POLICY=PASSIVE and "
                   "OPENBLAS_THREAD_TIMEOUT=4 before the imports (a user's environment has neither)")
    p.add_argument("--threads", type=int, default=2, help="threads for both (default 2)")
    p.add_argument("--json", default=str(DEFAULT_JSON))
    args = p.parse_args(argv)
    defaults = ((60000, 10000, 3) if args.full else (96, 100, 1) if args.quick
                else (6000, 2000, 1))
    for name, value in zip(("train_images", "test_images", "epochs"), defaults):
        if getattr(args, name) is None:
            setattr(args, name, value)
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.batch_size is None:
        args.batch_size = 128 if args.model == "resnet20" else 64
    if args.threads < 1 or args.batch_size < 1:
        p.error("--threads and --batch-size must be >= 1")

    set_thread_env(args.threads, hygiene=args.hygiene)
    import numpy  # noqa: F401  (first, as a user's script)
    if args.order == "layerkit-first":
        import layerkit  # noqa: F401
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    with threadpool_limits(limits=args.threads, user_api="blas"):
        r = run(args)
    r["meta"] = dict(date=datetime.datetime.now().isoformat(timespec="seconds"),
                     hygiene=args.hygiene,
                     cpu=cpu_model(), cores=os.cpu_count(), threads=args.threads,
                     quick=args.quick, versions=versions(), load_average_start=load_start,
                     load_average_end=os.getloadavg(), wall_seconds=time.perf_counter() - t0)
    a, b = r["layerkit"], r["torch"]
    print(f"# {r['name']}, imports {args.order}, {r['settings']['train_images']} training "
          f"images x {r['settings']['epochs']} epoch(s), batch {r['settings']['batch_size']}, "
          f"Adam 1e-3, {args.threads} thread(s), load average {load_start[0]:.2f} -> "
          f"{r['meta']['load_average_end'][0]:.2f}"
          f"{' (QUICK: metrics meaningless)' if args.quick else ''}")
    print(f"{'':10} {'test acc':>9} {'train s':>9} {'images/s':>9}")
    for label, res in (("layerkit", a), ("PyTorch", b)):
        print(f"{label:10} {res['metric']:9.2%} {res['train_seconds']:9.1f} "
              f"{res['throughput']:9.1f}")
    print(f"time ratio layerkit / PyTorch: {r['time_ratio']:.2f}, median of the per-step ratios "
          f"{r['median_step_ratio']:.2f} (robust to a busy phase of a shared machine; test images: "
          f"{r['settings']['test_images']}; initial logits differ by at most "
          f"{r['check']['initial_logits_max_abs_diff']:.1e})")
    Path(args.json).write_text(json.dumps(r, indent=1) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
