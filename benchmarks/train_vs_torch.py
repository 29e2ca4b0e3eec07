"""Training runs, layerkit against PyTorch (CPU): final metric, training time and throughput.

Issue 7's "done when": each model's final metric, training time and throughput next to the same
model trained in PyTorch in the same run. Run from the repository root::

    python benchmarks/train_vs_torch.py                    # all three, 1 thread (10-20 minutes)
    python benchmarks/train_vs_torch.py --quick            # a few steps each (a smoke test)
    python benchmarks/train_vs_torch.py --only seq2seq --seq2seq-steps 1000 --threads 2

Models (the recipes of ``layerkit.models``' docstrings)
    lenet      LeNet-5 on the MNIST-5k split (4,000 training / 1,000 test images), Adam 1e-3,
               batch 64 (``batches(x, y, 64, seed=0)``, a new order each epoch), 20 epochs.
               Metric: test accuracy after the last epoch (also recorded after every epoch).
    char-lstm  Embedding 64 -> LSTM 256 -> Linear on the Shakespeare training plays; windows
               ``sequence_batches(train, 64, 100, drop_last=True)`` with the state carried
               (reset at each epoch), Adam 3e-3, gradient norm clipped at 5, ``--lm-steps``
               steps (600 ~ one epoch). Metric: validation perplexity over all validation
               characters (windows of 32 x 200, state carried, from a reset state), next to
               the 5-gram add-k baseline (k = 0.03 and 0.05, the better one).
    seq2seq    LSTM encoder-decoder (embedding 32, hidden 128) reversing digit strings of length
               1-8; 128 fresh strings per step (``seq2seq_digits(128, seed=step)``), teacher
               forcing, cross-entropy over the non-PAD target positions, Adam 3e-3 (decayed linearly to
               3e-4 over the second half of the steps, as the recipe), gradient
               norm clipped at 1, ``--seq2seq-steps`` steps. Metric: exact-sequence accuracy of
               greedy decoding on 2,000 held-out strings (``seed=10**6``).

How it is made fair
    Both libraries run in this one process with the same threads: OPENBLAS_NUM_THREADS,
    OMP_NUM_THREADS, MKL_NUM_THREADS and NUMBA_NUM_THREADS set to ``--threads`` before numpy is
    imported (and OMP_WAIT_POLICY=PASSIVE, OPENBLAS_THREAD_TIMEOUT=4 unless set, as in
    ``benchmarks/run.py``), numpy's BLAS limited once more with threadpoolctl, and
    ``torch.set_num_threads``. The PyTorch model is the same architecture with the same initial
    weights, copied from the layerkit model by parameter name; the same numpy batches feed both;
    Adam with the same lr, betas and eps; the same loss and clipping. The two trainings
    alternate step by step (one layerkit step, then one PyTorch step on the same batch), so a
    busy phase of a shared machine slows both alike. Training time is the sum of the timed
    steps (forward, loss, backward, clipping, optimizer step; batch preparation and evaluation
    excluded); throughput = training items / training time. Before the timed run each library
    does one untimed forward + backward + clip + Adam step on a throw-away model (numba
    compilation or cache loading; PyTorch's first-call costs, among them the import of
    torch._dynamo by the first ``optimizer.step()``, seconds). Ratios are layerkit time /
    PyTorch time (> 1: layerkit slower). The load average at the start and end is recorded:
    on a shared machine the times are only comparable within one run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "train_results.json"
sys.path.insert(0, str(HERE))
from run import THREAD_VARS, cpu_model, versions  # noqa: E402  (stdlib-only imports)

MODELS = ("lenet", "char-lstm", "seq2seq")
TARGETS = {
    "lenet": "test accuracy >= 96.5 % and within 0.5 points of PyTorch",
    "char-lstm": "validation perplexity below the 5-gram baseline",
    "seq2seq": "exact-sequence accuracy >= 99 %",
}


def set_thread_env(threads: int, hygiene: bool = True) -> None:
    """Thread counts for every pool, before numpy, numba and torch are imported; with
    ``hygiene`` also idle workers that sleep (OMP_WAIT_POLICY=PASSIVE,
    OPENBLAS_THREAD_TIMEOUT=4, unless set), which a user's environment does not have."""
    for k in THREAD_VARS:
        os.environ[k] = str(threads)
    if hygiene:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    os.environ.pop("NUMBA_DISABLE_JIT", None)    # timing the interpreted kernels is moot


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Clock:
    """Accumulated seconds of the timed training steps of one library."""

    def __init__(self):
        self.seconds = 0.0
        self.steps = 0

    def run(self, fn):
        t0 = time.perf_counter()
        out = fn()
        self.seconds += time.perf_counter() - t0
        self.steps += 1
        return out


def timed_pair(f_lk, f_t):
    """Call the layerkit then the PyTorch evaluation; ((result_lk, result_t), (s_lk, s_t))."""
    t0 = time.perf_counter()
    a = f_lk()
    t1 = time.perf_counter()
    b = f_t()
    return (a, b), (t1 - t0, time.perf_counter() - t1)


def copy_weights(lk_params: dict, module, rename=lambda k: k) -> None:
    """Copy layerkit's parameters into a torch module by (renamed) name; every one must match."""
    import torch

    state = {rename(k): torch.from_numpy(v.copy()) for k, v in lk_params.items()}
    module.load_state_dict(state, strict=True)      # raises on a missing or extra name


def lstm_name(prefix_lk: str, prefix_t: str):
    """``lstm.0.weight_ih`` -> ``lstm.weight_ih_l0`` style renaming for one LSTM."""
    def rename(k: str) -> str:
        if k.startswith(prefix_lk + "."):
            return f"{prefix_t}.{k[len(prefix_lk) + 1:]}_l0"
        return k
    return rename


def torch_adam(module, lr: float, lk_opt):
    import torch
    return torch.optim.Adam(module.parameters(), lr=lr, betas=tuple(lk_opt.betas),
                            eps=lk_opt.eps)


def warm_optimizers(lk_model, torch_module) -> None:
    """One untimed clip + Adam step of each library on throw-away models, after their backward:
    PyTorch's first ``optimizer.step()`` imports torch._dynamo (seconds), which must not land in
    the first timed step."""
    import torch

    import layerkit as lk

    lk.clip_grad_norm(lk_model, 1.0)
    lk.Adam(lk_model).step()
    torch.nn.utils.clip_grad_norm_(list(torch_module.parameters()), 1.0)
    torch.optim.Adam(torch_module.parameters()).step()


def classifier_steps(model, loss, opt, tmodel, topt):
    """(lk_step, torch_step): one training step of an image classifier in each library on a
    batch (xb, yb) of numpy arrays, cross-entropy from logits; each returns the loss."""
    import torch
    import torch.nn.functional as F

    def lk_step(xb, yb):
        model.train()
        opt.zero_grad()
        value = loss.forward(model.forward(xb), yb)
        model.backward(loss.backward())
        opt.step()
        return float(value)

    def torch_step(xb, yb):
        topt.zero_grad(set_to_none=True)
        value = F.cross_entropy(tmodel(torch.from_numpy(xb)), torch.from_numpy(yb))
        value.backward()
        topt.step()
        return float(value.detach())

    return lk_step, torch_step


def library_result(metric: float, clock: Clock, items: int, total_seconds: float,
                   **extra) -> dict:
    return dict(metric=metric, train_seconds=clock.seconds, total_seconds=total_seconds,
                steps=clock.steps, items=items,
                throughput=items / clock.seconds if clock.seconds > 0 else float("nan"),
                **extra)


# --------------------------------------------------------------------------------------------
# LeNet-5 on MNIST-5k
# --------------------------------------------------------------------------------------------

def run_lenet(args) -> dict:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn

    import layerkit as lk
    from layerkit import data as D
    from layerkit.models import lenet5

    epochs, batch, lr, seed = args.lenet_epochs, 64, 1e-3, 0
    x, y, x_test, y_test = D.load_mnist5k()
    if args.quick:
        x, y, x_test, y_test = x[:256], y[:256], x_test[:200], y_test[:200]

    def torch_lenet():
        return nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))

    # warm-up on throw-away models (JIT compilation / cache loading, first-call costs)
    xb0, yb0 = x[:batch], y[:batch]
    w_lk, w_ce = lenet5(seed=99), lk.CrossEntropy()
    w_ce.forward(w_lk.forward(xb0), yb0)
    w_lk.backward(w_ce.backward())
    w_lk.eval()
    w_lk.forward(x_test[:256])
    w_t = torch_lenet()
    F.cross_entropy(w_t(torch.from_numpy(xb0)), torch.from_numpy(yb0)).backward()
    warm_optimizers(w_lk, w_t)

    model, loss = lenet5(seed=seed), lk.CrossEntropy()
    opt = lk.Adam(model, lr=lr)
    tmodel = torch_lenet()
    copy_weights(model.params, tmodel)
    topt = torch_adam(tmodel, lr, opt)
    with torch.no_grad():
        d0 = float(np.max(np.abs(model.forward(x[:8]) - tmodel(torch.from_numpy(x[:8])).numpy())))

    def lk_accuracy():
        model.eval()
        pred = np.concatenate([np.argmax(model.forward(x_test[i:i + 256]), axis=-1)
                               for i in range(0, len(x_test), 256)])
        model.train()
        return float(np.mean(pred == y_test))

    def torch_accuracy():
        tmodel.eval()
        with torch.no_grad():
            pred = torch.cat([tmodel(torch.from_numpy(x_test[i:i + 256])).argmax(-1)
                              for i in range(0, len(x_test), 256)]).numpy()
        tmodel.train()
        return float(np.mean(pred == y_test))

    lk_step, torch_step = classifier_steps(model, loss, opt, tmodel, topt)
    data = D.batches(x, y, batch, seed=seed)
    c_lk, c_t = Clock(), Clock()
    t_lk_total = t_t_total = 0.0
    history = []
    first_losses = None
    for epoch in range(1, epochs + 1):
        l_lk = l_t = 0.0
        n = 0
        for xb, yb in data:
            a = c_lk.run(lambda: lk_step(xb, yb))
            b = c_t.run(lambda: torch_step(xb, yb))
            if first_losses is None:
                first_losses = (float(a), b)
            l_lk += a * len(xb)
            l_t += b * len(xb)
            n += len(xb)
        (acc_lk, acc_t), (s_lk, s_t) = timed_pair(lk_accuracy, torch_accuracy)
        t_lk_total += s_lk
        t_t_total += s_t
        history.append(dict(epoch=epoch, layerkit_train_loss=l_lk / n, torch_train_loss=l_t / n,
                            layerkit_test_accuracy=acc_lk, torch_test_accuracy=acc_t))
        say(f"lenet epoch {epoch}/{epochs}: train loss {l_lk / n:.4f} vs {l_t / n:.4f}, "
            f"test accuracy {acc_lk:.2%} vs {acc_t:.2%} (layerkit vs PyTorch); step time "
            f"{c_lk.seconds:.0f} s vs {c_t.seconds:.0f} s")
    items = epochs * len(x)
    last = history[-1]
    lk_res = library_result(last["layerkit_test_accuracy"], c_lk, items,
                            c_lk.seconds + t_lk_total)
    t_res = library_result(last["torch_test_accuracy"], c_t, items, c_t.seconds + t_t_total)
    ok = (lk_res["metric"] >= 0.965 and lk_res["metric"] >= t_res["metric"] - 0.005)
    return dict(model="lenet", name="LeNet-5 (MNIST-5k)", metric="test accuracy",
                throughput_unit="images/s", layerkit=lk_res, torch=t_res,
                settings=dict(epochs=epochs, batch_size=batch, lr=lr, seed=seed,
                              train_images=len(x), test_images=len(x_test)),
                check=dict(initial_logits_max_abs_diff=d0, first_step_losses=first_losses),
                history=history, target=TARGETS["lenet"], target_met=bool(ok))


# --------------------------------------------------------------------------------------------
# Character-level LSTM on Shakespeare
# --------------------------------------------------------------------------------------------

def run_char_lstm(args) -> dict:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn

    import layerkit as lk
    from layerkit import data as D
    from layerkit.models import NGram, char_lstm

    B, T, E, H, lr, clip, seed = 64, 100, 64, 256, 3e-3, 5.0, 0
    steps = args.lm_steps
    text = D.load_shakespeare()
    vocab = D.CharVocab.build(text.train + text.valid + text.test)
    V = len(vocab)
    train_ids, valid_ids = vocab.encode(text.train), vocab.encode(text.valid)
    if args.quick:
        train_ids, valid_ids = train_ids[:200_000], valid_ids[:20_000]
        B, T = 16, 50
    baselines = {k: NGram(5, k=k, vocab_size=V).fit(train_ids).perplexity(valid_ids)
                 for k in (0.03, 0.05)}
    best_k = min(baselines, key=baselines.get)
    baseline = baselines[best_k]
    say(f"char-lstm: 5-gram baseline validation perplexity {baseline:.3f} (k = {best_k})")

    class TorchCharLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(V, E)
            self.lstm = nn.LSTM(E, H, batch_first=True)
            self.head = nn.Linear(H, V)

        def forward(self, ids, state=None):
            y, state = self.lstm(self.embedding(ids), state)
            return self.head(y), state

    rename = lstm_name("lstm.0", "lstm")

    # warm-up
    ids0 = train_ids[:B * T].reshape(B, T)
    w_lk, w_ce = char_lstm(V, embedding_dim=E, hidden_size=H, seed=99), lk.CrossEntropy()
    w_ce.forward(w_lk.forward(ids0), ids0)
    w_lk.backward(w_ce.backward())
    w_t = TorchCharLSTM()
    F.cross_entropy(w_t(torch.from_numpy(ids0))[0].reshape(-1, V),
                    torch.from_numpy(ids0).reshape(-1)).backward()
    warm_optimizers(w_lk, w_t)

    model = char_lstm(V, embedding_dim=E, hidden_size=H, seed=seed)
    loss, opt = lk.CrossEntropy(), lk.Adam(model, lr=lr)
    tmodel = TorchCharLSTM()
    copy_weights(model.params, tmodel, rename)
    topt = torch_adam(tmodel, lr, opt)
    with torch.no_grad():
        d0 = float(np.max(np.abs(model.forward(ids0[:4], np.zeros((1, 4, H), np.float32),
                                               np.zeros((1, 4, H), np.float32))
                                 - tmodel(torch.from_numpy(ids0[:4]))[0].numpy())))
    model.reset_state()
    tparams = list(tmodel.parameters())
    tstate = None

    def lk_step(xb, yb):
        model.train()
        opt.zero_grad()
        value = loss.forward(model.forward(xb), yb)
        model.backward(loss.backward())
        lk.clip_grad_norm(model, clip)
        opt.step()
        return value

    def torch_step(xb, yb):
        nonlocal tstate
        topt.zero_grad(set_to_none=True)
        logits, state = tmodel(torch.from_numpy(xb), tstate)
        tstate = tuple(s.detach() for s in state)
        value = F.cross_entropy(logits.reshape(-1, V), torch.from_numpy(yb).reshape(-1))
        value.backward()
        nn.utils.clip_grad_norm_(tparams, clip)
        topt.step()
        return float(value.detach())

    windows = D.sequence_batches(train_ids, B, T, drop_last=True)
    c_lk, c_t = Clock(), Clock()
    history, first_losses = [], None
    step, epoch = 0, 0
    l_lk = l_t = 0.0
    every = max(1, min(100, steps // 6))
    while step < steps:
        epoch += 1
        model.reset_state()
        tstate = None
        for xb, yb in windows:
            step += 1
            a = c_lk.run(lambda: lk_step(xb, yb))
            b = c_t.run(lambda: torch_step(xb, yb))
            if first_losses is None:
                first_losses = (float(a), b)
            l_lk += a
            l_t += b
            if step % every == 0 or step == steps:
                k = every if step % every == 0 else step % every
                history.append(dict(step=step, epoch=epoch, layerkit_train_loss=l_lk / k,
                                    torch_train_loss=l_t / k))
                say(f"char-lstm step {step}/{steps}: train loss {l_lk / k:.4f} vs {l_t / k:.4f}"
                    f" (layerkit vs PyTorch); step time {c_lk.seconds:.0f} s vs "
                    f"{c_t.seconds:.0f} s")
                l_lk = l_t = 0.0
            if step == steps:
                break

    valid_windows = D.sequence_batches(valid_ids, 32, 200)

    def lk_perplexity():
        model.eval()
        model.reset_state()
        nll, n = 0.0, 0
        for xb, yb in valid_windows:
            z = model.forward(xb).astype(np.float64)
            z -= z.max(axis=-1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
            nll -= float(np.take_along_axis(logp, yb[..., None], axis=-1).sum())
            n += yb.size
        model.reset_state()
        return math.exp(nll / n)

    def torch_perplexity():
        tmodel.eval()
        nll, n, state = 0.0, 0, None
        with torch.no_grad():
            for xb, yb in valid_windows:
                logits, state = tmodel(torch.from_numpy(xb), state)
                nll += float(F.cross_entropy(logits.reshape(-1, V).double(),
                                             torch.from_numpy(yb).reshape(-1), reduction="sum"))
                n += yb.size
        return math.exp(nll / n)

    (ppl_lk, ppl_t), (s_lk, s_t) = timed_pair(lk_perplexity, torch_perplexity)
    say(f"char-lstm: validation perplexity {ppl_lk:.3f} vs {ppl_t:.3f} (layerkit vs PyTorch), "
        f"5-gram {baseline:.3f}")
    items = steps * B * T
    lk_res = library_result(ppl_lk, c_lk, items, c_lk.seconds + s_lk, eval_seconds=s_lk)
    t_res = library_result(ppl_t, c_t, items, c_t.seconds + s_t, eval_seconds=s_t)
    return dict(model="char-lstm", name="char-LSTM (Shakespeare)", metric="valid perplexity",
                throughput_unit="characters/s", layerkit=lk_res, torch=t_res,
                baseline=dict(name="5-gram add-k", k=best_k, valid_perplexity=baseline,
                              all=baselines),
                settings=dict(steps=steps, epochs_started=epoch, windows_per_epoch=len(windows),
                              batch_size=B, seq_len=T, embedding_dim=E, hidden_size=H,
                              vocab_size=V, lr=lr, clip_norm=clip, seed=seed,
                              valid_characters=int(len(valid_ids))),
                check=dict(initial_logits_max_abs_diff=d0, first_step_losses=first_losses),
                history=history, target=TARGETS["char-lstm"],
                target_met=bool(ppl_lk < baseline))


# --------------------------------------------------------------------------------------------
# seq2seq: reversing digit strings
# --------------------------------------------------------------------------------------------

def run_seq2seq(args) -> dict:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.nn.utils.rnn import pack_padded_sequence

    import layerkit as lk
    from layerkit import data as D
    from layerkit.models import Seq2Seq
    from layerkit.train.recipes import linear_decay, seq2seq_accuracy

    task, batch, lr, clip, E, H, max_len, seed = "reverse", 128, 3e-3, 1.0, 32, 128, 8, 0
    steps = args.seq2seq_steps
    Vs, PAD = D.DigitTask.VOCAB_SIZE, D.DigitTask.PAD
    held_out = D.seq2seq_digits(200 if args.quick else 2000, task=task, max_len=max_len,
                                seed=10**6 + seed)

    class TorchSeq2Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.src_embedding = nn.Embedding(Vs, E)
            self.encoder = nn.LSTM(E, H, batch_first=True)
            self.tgt_embedding = nn.Embedding(Vs, E)
            self.decoder = nn.LSTM(E, H, batch_first=True)
            self.head = nn.Linear(H, Vs)

        def encode(self, src, lengths):
            packed = pack_padded_sequence(self.src_embedding(src), lengths,
                                          batch_first=True, enforce_sorted=False)
            _, state = self.encoder(packed)
            return state

        def forward(self, src, tgt_in, lengths):
            y, _ = self.decoder(self.tgt_embedding(tgt_in), self.encode(src, lengths))
            return self.head(y)

        @torch.no_grad()
        def greedy_decode(self, src, steps_, bos, eos, lengths, pad):
            state = self.encode(src, lengths)
            n = src.shape[0]
            out = torch.full((n, steps_), pad, dtype=torch.int64)
            tok = torch.full((n, 1), bos, dtype=torch.int64)
            done = torch.zeros(n, dtype=torch.bool)
            for t in range(steps_):
                y, state = self.decoder(self.tgt_embedding(tok), state)
                nxt = self.head(y)[:, 0].argmax(-1)
                out[~done, t] = nxt[~done]
                done |= nxt == eos
                if bool(done.all()):
                    break
                tok = nxt[:, None]
            return out.numpy()

    def rename(k):
        for p in ("encoder", "decoder"):
            if k.startswith(p + "."):
                return f"{k}_l0"
        return k

    def batch_at(step):
        b = D.seq2seq_digits(batch, task=task, max_len=max_len, seed=seed * 10**7 + step)
        tgt_in, tgt_out = b.target[:, :-1], b.target[:, 1:]
        return b, tgt_in, tgt_out

    # the loss in both libraries: the mean over the non-PAD target positions
    def torch_ce(logits, tgt_out):
        return F.cross_entropy(logits.reshape(-1, Vs), torch.from_numpy(tgt_out).reshape(-1),
                               ignore_index=PAD)

    # warm-up
    b0, ti0, to0 = batch_at(0)
    w_lk = Seq2Seq(Vs, Vs, hidden_size=H, embedding_dim=E, seed=99)
    w_ce = lk.CrossEntropy(ignore_index=PAD)
    w_ce.forward(w_lk.forward(b0.source, ti0, b0.source_lengths), to0)
    w_lk.backward(w_ce.backward())
    seq2seq_accuracy(w_lk, held_out)
    w_t = TorchSeq2Seq()
    torch_ce(w_t(torch.from_numpy(b0.source), torch.from_numpy(ti0),
                 torch.from_numpy(b0.source_lengths)), to0).backward()
    warm_optimizers(w_lk, w_t)

    model = Seq2Seq(Vs, Vs, hidden_size=H, embedding_dim=E, seed=seed)
    loss, opt = lk.CrossEntropy(ignore_index=PAD), lk.Adam(model, lr=lr)
    tmodel = TorchSeq2Seq()
    copy_weights(model.params, tmodel, rename)
    topt = torch_adam(tmodel, lr, opt)
    tparams = list(tmodel.parameters())
    with torch.no_grad():
        d0 = float(np.max(np.abs(
            model.forward(b0.source, ti0, b0.source_lengths)
            - tmodel(torch.from_numpy(b0.source), torch.from_numpy(ti0),
                     torch.from_numpy(b0.source_lengths)).numpy())))

    def lk_step(b, tgt_in, tgt_out):
        model.train()
        opt.zero_grad()
        logits = model.forward(b.source, tgt_in, b.source_lengths)
        value = loss.forward(logits, tgt_out)
        model.backward(loss.backward())
        lk.clip_grad_norm(model, clip)
        opt.step()
        return value

    def torch_step(b, tgt_in, tgt_out):
        topt.zero_grad(set_to_none=True)
        logits = tmodel(torch.from_numpy(b.source), torch.from_numpy(tgt_in),
                        torch.from_numpy(b.source_lengths))
        value = torch_ce(logits, tgt_out)
        value.backward()
        nn.utils.clip_grad_norm_(tparams, clip)
        topt.step()
        return float(value.detach())

    want = held_out.target[:, 1:]

    def torch_accuracy():
        tmodel.eval()
        got = tmodel.greedy_decode(torch.from_numpy(held_out.source), want.shape[1],
                                   held_out.BOS, held_out.EOS,
                                   torch.from_numpy(held_out.source_lengths), held_out.PAD)
        tmodel.train()
        return float(np.mean(np.all(got == want, axis=1)))

    def lk_accuracy():
        model.eval()
        acc = seq2seq_accuracy(model, held_out)
        model.train()
        return acc

    c_lk, c_t = Clock(), Clock()
    history, first_losses = [], None
    eval_lk = eval_t = 0.0
    every = 500 if steps >= 1000 else max(1, steps)
    acc_lk = acc_t = float("nan")
    for step in range(1, steps + 1):
        args_ = batch_at(step)
        opt.lr = lr * linear_decay(step, steps)           # the recipe's schedule, in both
        for group in topt.param_groups:
            group["lr"] = opt.lr
        a = c_lk.run(lambda: lk_step(*args_))
        b = c_t.run(lambda: torch_step(*args_))
        if first_losses is None:
            first_losses = (float(a), b)
        if step % every == 0 or step == steps:
            (acc_lk, acc_t), (s_lk, s_t) = timed_pair(lk_accuracy, torch_accuracy)
            eval_lk += s_lk
            eval_t += s_t
            history.append(dict(step=step, layerkit_loss=float(a), torch_loss=b,
                                layerkit_accuracy=acc_lk, torch_accuracy=acc_t))
            say(f"seq2seq step {step}/{steps}: loss {a:.4f} vs {b:.4f}, held-out exact-sequence "
                f"accuracy {acc_lk:.2%} vs {acc_t:.2%} (layerkit vs PyTorch); step time "
                f"{c_lk.seconds:.0f} s vs {c_t.seconds:.0f} s")
    items = steps * batch
    lk_res = library_result(acc_lk, c_lk, items, c_lk.seconds + eval_lk)
    t_res = library_result(acc_t, c_t, items, c_t.seconds + eval_t)
    return dict(model="seq2seq", name=f"seq2seq ({task} digits)", metric="exact-seq accuracy",
                throughput_unit="sequences/s", layerkit=lk_res, torch=t_res,
                settings=dict(task=task, steps=steps, batch_size=batch, lr=lr, clip_norm=clip,
                              embedding_dim=E, hidden_size=H, max_len=max_len, seed=seed,
                              held_out=len(want)),
                check=dict(initial_logits_max_abs_diff=d0, first_step_losses=first_losses),
                history=history, target=TARGETS["seq2seq"], target_met=bool(acc_lk >= 0.99))


RUNNERS = {"lenet": run_lenet, "char-lstm": run_char_lstm, "seq2seq": run_seq2seq}


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

def fmt_metric(model: str, v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "nan"
    return f"{v:.3f}" if model == "char-lstm" else f"{100 * v:.2f} %"


def verdict(r: dict) -> str:
    if r.get("quick"):
        return "n/a (quick)"
    return "met" if r["target_met"] else "MISSED"


def table(results: list[dict]) -> str:
    head = (f"{'model':26} {'metric':20} {'layerkit':>10} {'PyTorch':>10}  "
            f"{'train s':>15}  {'throughput':>22} {'unit':14} {'time ratio':>10}  target")
    lines = [head, "-" * len(head)]
    for r in results:
        a, b = r["layerkit"], r["torch"]
        lines.append(
            f"{r['name']:26} {r['metric']:20} {fmt_metric(r['model'], a['metric']):>10} "
            f"{fmt_metric(r['model'], b['metric']):>10}  "
            f"{a['train_seconds']:7.1f} /{b['train_seconds']:6.1f}  "
            f"{a['throughput']:10,.0f} /{b['throughput']:10,.0f} {r['throughput_unit']:14} "
            f"{r['time_ratio']:10.2f}  {verdict(r)}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=MODELS, default=None, help="run one model")
    p.add_argument("--quick", action="store_true",
                   help="a few steps each on a little data (a smoke test; metrics meaningless)")
    p.add_argument("--threads", type=int, default=1, help="threads for both libraries "
                   "(default 1)")
    p.add_argument("--lenet-epochs", type=int, default=None, help="default 20 (quick: 1)")
    p.add_argument("--lm-steps", type=int, default=None,
                   help="char-LSTM training steps (default 600, about one epoch; quick: 3)")
    p.add_argument("--seq2seq-steps", type=int, default=None, help="default 2000 (quick: 3)")
    p.add_argument("--json", default=str(DEFAULT_JSON),
                   help=f"output file (default {DEFAULT_JSON.relative_to(HERE.parent)})")
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error("--threads must be >= 1")
    for name, full, quick in (("lenet_epochs", 20, 1), ("lm_steps", 600, 3),
                              ("seq2seq_steps", 2000, 3)):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")

    set_thread_env(args.threads)
    import numpy as np  # noqa: F401  (after the thread variables)
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models = [args.only] if args.only else list(MODELS)
    meta = dict(date=datetime.datetime.now().isoformat(timespec="seconds"), cpu=cpu_model(),
                cores=os.cpu_count(), platform=platform.platform(), threads=args.threads,
                quick=args.quick, versions=versions(), load_average_start=os.getloadavg(),
                thread_env={k: os.environ.get(k) for k in THREAD_VARS + ("OMP_WAIT_POLICY",)},
                torch_threads=torch.get_num_threads(),
                time_ratio="layerkit training time / PyTorch training time (> 1: layerkit "
                           "slower)",
                throughput_ratio="layerkit throughput / PyTorch throughput")
    say(f"# layerkit vs PyTorch training runs, {args.threads} thread(s), {meta['cpu']}, "
        f"{meta['cores']} cores, load average {meta['load_average_start'][0]:.2f}")
    results = []
    t_start = time.perf_counter()
    with threadpool_limits(limits=args.threads, user_api="blas"):
        for m in models:
            t0 = time.perf_counter()
            r = RUNNERS[m](args)
            r["wall_seconds"] = time.perf_counter() - t0
            r["quick"] = args.quick
            a, b = r["layerkit"], r["torch"]
            r["time_ratio"] = a["train_seconds"] / b["train_seconds"]
            r["throughput_ratio"] = a["throughput"] / b["throughput"]
            r["load_average_after"] = os.getloadavg()
            results.append(r)
    meta["load_average_end"] = os.getloadavg()
    meta["wall_seconds"] = time.perf_counter() - t_start

    print(f"# layerkit vs PyTorch, the same models, data order, initial weights and optimizer, "
          f"trained alternately step by step in one process; {args.threads} thread(s); "
          f"{meta['cpu']}, {meta['cores']} cores; load average "
          f"{meta['load_average_start'][0]:.2f} at the start, {meta['load_average_end'][0]:.2f} "
          f"at the end{' (QUICK: metrics meaningless)' if args.quick else ''}")
    print("# train s: timed training steps (layerkit / PyTorch); time ratio: layerkit / PyTorch "
          "(> 1: layerkit slower)")
    print(table(results))
    for r in results:
        extra = ""
        if r["model"] == "char-lstm":
            extra = f"; 5-gram baseline {r['baseline']['valid_perplexity']:.3f}"
        print(f"# {r['name']}: target {r['target']}: "
              f"{verdict(r)}{extra}")
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(meta=meta, results=results), indent=1) + "\n")
    print(f"# wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
