"""The training runs behind ``layerkit train``: data, model, optimizer and defaults in one place.

Each recipe loads its data set from :mod:`layerkit.data`, trains a model from
:mod:`layerkit.models`, prints progress, evaluates on held-out data, saves a checkpoint
(:mod:`layerkit.train.checkpoints`, with the vocabulary and the final metrics in its
``meta``) and returns a :class:`Result`. The defaults reach the targets stated in each docstring in minutes on
a 2-core CPU.

BLAS threads: the matrices here are small, and two OpenBLAS threads that spin while the other
core is busy made training steps many times slower on a 2-core machine, so the recipes run
numpy's BLAS on ``blas_threads`` threads (1 by default) when threadpoolctl is installed (it comes
with the ``train`` extra's scikit-learn). numba's parallel kernels keep their own threads.
"""

from __future__ import annotations

import inspect
import math
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from .. import data as D
from ..layers.softmax import log_softmax
from ..losses import CrossEntropy
from ..optim import Adam, clip_grad_norm
from ..threads import blas_threads
from ..validation import flag, integer, number_in, one_of, positive_int
from .checkpoints import save
from .history import format_value
from .loop import fit
from .progress import Progress, wrap_items

__all__ = ["RECIPES", "Result", "lenet", "ngram", "char_lstm", "seq2seq", "sample",
           "linear_decay", "seq2seq_accuracy", "check_options", "LENET_DATA",
           "train_language_model"]


@dataclass
class Result:
    """What a recipe reports: final metrics, wall time, throughput and the checkpoint."""

    name: str
    metrics: dict
    seconds: float
    throughput: str
    checkpoint: str
    history: list = field(default_factory=list)

    def summary(self) -> str:
        shown = ", ".join(f"{k} {format_value(v)}" for k, v in self.metrics.items())
        return (f"{self.name}: {shown}; {self.seconds:.0f} s, {self.throughput}; "
                f"checkpoint {self.checkpoint}")


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)


_POSITIVE_INTS = ("epochs", "steps", "batch_size", "seq_len", "hidden_size", "embedding_dim",
                  "max_len", "eval_every", "n", "features")
_POSITIVE_INTS_OR_NONE = ("threads", "limit", "max_chars", "max_words")
_POSITIVE_NUMBERS = ("lr", "k", "clip")
TASKS = ("reverse", "sort", "copy")
#: The image sets the lenet recipe trains on (``data=``).
LENET_DATA = ("mnist5k", "fashion-mnist")


def check_options(who: str, options: dict) -> None:
    """Check a recipe's options before any data is loaded or step is taken: counts are positive
    integers (``threads``, ``limit``, ``max_chars`` may be None), ``lr``, ``k``, ``clip`` and
    ``d_lr`` (or None) finite and > 0, ``state_resets`` and ``lr_decay`` in [0, 1],
    ``real_label`` in (0.5, 1], ``average`` in [0, 1), ``instance_noise`` finite and >= 0,
    ``seed`` and ``shift`` non-negative integers, ``progress`` and ``minibatch_std`` True or
    False, ``task`` one of :data:`TASKS`, and ``out`` a file whose folder exists. Raises
    ValueError naming the recipe and the option."""
    for name, value in options.items():
        if name in _POSITIVE_INTS or (name in _POSITIVE_INTS_OR_NONE and value is not None):
            positive_int(who, name, value)
        elif name in _POSITIVE_NUMBERS:
            number_in(who, name, value, 0.0, math.inf, low_open=True, high_open=True)
        elif name == "state_resets":
            number_in(who, name, value, 0.0, 1.0)
        elif name == "average":
            number_in(who, name, value, 0.0, 1.0, high_open=True)
        elif name == "instance_noise":
            number_in(who, name, value, 0.0, math.inf, high_open=True)
        elif name == "lr_decay":
            number_in(who, name, value, 0.0, 1.0)
        elif name == "d_lr" and value is not None:
            number_in(who, name, value, 0.0, math.inf, low_open=True, high_open=True)
        elif name == "real_label":
            number_in(who, name, value, 0.5, 1.0, low_open=True)
        elif name in ("seed", "shift") and integer(who, name, value) < 0:
            raise ValueError(f"{who}: {name} must be a non-negative integer, got {value!r}")
        elif name == "task":
            one_of(who, name, value, TASKS)
        elif name == "data":
            one_of(who, name, value, LENET_DATA)
        elif name == "classifier" and value is not None and not os.path.isfile(value):
            raise ValueError(f"{who}: classifier must be a checkpoint written by `layerkit "
                             f"train lenet`, got {value!r}, which is not a file")
        elif name in ("progress", "minibatch_std"):
            flag(who, name, value)
        elif name == "out":
            folder = os.path.dirname(os.path.abspath(os.fspath(value)))
            if os.path.isdir(value) or not os.path.isdir(folder):
                raise ValueError(f"{who}: out must be a file in an existing folder (the "
                                 f"checkpoint is written there after training), got {value!r}")


# -- LeNet-5 on MNIST --------------------------------------------------------------------------

def lenet(*, epochs: int = 20, batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
          out: str = "lenet5.npz", progress: bool = True, threads: int | None = 1,
          limit: int | None = None, data: str = "mnist5k") -> Result:
    """LeNet-5 on the fixed MNIST-5k split (4,000 training, 1,000 test images), Adam, batch 64.

    Target: >= 96.5 % test accuracy after 20 epochs (PyTorch reaches the same with the same
    recipe). ``limit`` uses only the first ``limit`` training and test images (quick runs).
    ``data="fashion-mnist"`` trains on Fashion-MNIST's 60,000 and tests on its 10,000 images
    (:func:`layerkit.data.load_fashion_mnist`; from Debian's package or the cache, else
    downloaded).
    """
    from ..models import lenet5

    check_options("lenet", dict(locals()))
    split = D.load_mnist5k() if data == "mnist5k" else D.load_fashion_mnist(progress=progress)
    x, y, x_test, y_test = split
    if limit is not None:
        x, y, x_test, y_test = x[:limit], y[:limit], x_test[:limit], y_test[:limit]
    model = lenet5(seed=seed)
    with blas_threads(threads):
        t0 = time.perf_counter()
        history = fit(model, CrossEntropy(), Adam(model, lr=lr), (x, y), epochs=epochs,
                      batch_size=batch_size, val_data=(x_test, y_test),
                      metrics=("accuracy",), seed=seed, progress=progress)
        seconds = time.perf_counter() - t0
    last = history[-1]
    metrics = {"test_accuracy": last["val_accuracy"], "test_loss": last["val_loss"],
               "train_loss": last["train_loss"]}
    rate = np.median([r["samples_per_s"] for r in history])
    save(model, out, meta={"recipe": "lenet", "dataset": data, "epochs": epochs,
                           "metrics": metrics, "history": list(history)})
    return Result("lenet5", metrics, seconds, f"{rate:,.0f} training images/s", out,
                  list(history))


# -- n-gram and character LSTM on Shakespeare ---------------------------------------------------

def _shakespeare():
    text = D.load_shakespeare()
    vocab = D.CharVocab.build(text.train)
    return text, vocab, vocab.encode(text.train), vocab.encode(text.valid)


def ngram(*, n: int = 5, k: float = 0.03, out: str = "ngram.npz",
          progress: bool = True) -> Result:
    """Character n-gram with add-k smoothing on the Shakespeare training plays; validation
    perplexity on the held-out plays. n = 5, k = 0.03 is the best add-k setting measured on the
    validation plays (n = 3..7, k = 0.01..0.2): perplexity 5.249."""
    from ..models import NGram

    check_options("ngram", dict(locals()))
    _say(progress, "loading the Shakespeare plays ...")
    text, vocab, train_ids, valid_ids = _shakespeare()
    _say(progress, f"counting the {n}-grams of {len(train_ids):,} characters ...")
    t0 = time.perf_counter()
    model = NGram(n, k=k, vocab_size=len(vocab)).fit(train_ids)
    ppl = model.perplexity(valid_ids)
    seconds = time.perf_counter() - t0
    metrics = {"valid_perplexity": ppl}
    _say(progress, f"{n}-gram, k={k:g}: validation perplexity {ppl:.3f}")
    save(model, out, meta={"recipe": "ngram", "vocab": vocab.decode(np.arange(len(vocab))),
                           "metrics": metrics})
    return Result(f"{n}-gram", metrics, seconds,
                  f"{len(train_ids) / seconds:,.0f} characters/s counted", out)


def train_language_model(model, train_ids, valid_ids, *, epochs, batch_size, seq_len, lr, clip,
                         seed, progress, threads):
    """Truncated BPTT of a stateful language model on ``batch_size`` streams of ``train_ids``
    (windows of ``seq_len``), Adam, gradient norm clipped at ``clip``; validation perplexity on
    ``valid_ids`` after each epoch. Returns (history, seconds)."""
    train_windows = lambda epoch: D.sequence_batches(train_ids, batch_size, seq_len)
    valid_windows = lambda epoch: D.sequence_batches(valid_ids, batch_size, seq_len)
    with blas_threads(threads):
        t0 = time.perf_counter()
        history = fit(model, CrossEntropy(), Adam(model, lr=lr), train_windows, epochs=epochs,
                      val_data=valid_windows, metrics=("perplexity",), clip_norm=clip,
                      seed=seed, progress=progress)
    return history, time.perf_counter() - t0


def cold_start_perplexity(model, ids: np.ndarray, *, window: int = 100, first: int = 10,
                          batch_size: int = 64) -> tuple[float, float]:
    """Perplexity of a char-LSTM that starts every ``window``-character window of ``ids`` from a
    zero state, as sampling from a prompt does: (over each window's first ``first`` predicted
    characters, over whole windows). Validation during training carries the state through the
    text and so measures a warmed-up model only. The model is left in eval mode with its
    carried states reset."""
    window = positive_int("cold_start_perplexity", "window", window)
    first = min(positive_int("cold_start_perplexity", "first", first), window)
    n = (len(ids) - 1) // window
    if n < 1:
        raise ValueError(f"cold_start_perplexity: need more than {window} ids, got {len(ids)}")
    starts = np.arange(n) * window
    inputs = ids[starts[:, None] + np.arange(window)]
    targets = ids[starts[:, None] + np.arange(window) + 1]
    model.eval()
    nll = np.zeros(window)
    for lo in range(0, n, batch_size):
        model.reset_state()
        logp = log_softmax(model.forward(inputs[lo:lo + batch_size]).astype(np.float64), axis=-1)
        picked = np.take_along_axis(logp, targets[lo:lo + batch_size, :, None], axis=-1)[..., 0]
        nll -= picked.sum(axis=0)
    model.reset_state()
    return math.exp(nll[:first].sum() / (n * first)), math.exp(nll.sum() / (n * window))


def char_lstm(*, epochs: int = 2, batch_size: int = 64, seq_len: int = 100,
              hidden_size: int = 256, embedding_dim: int = 64, lr: float = 3e-3,
              clip: float = 5.0, seed: int = 0, out: str = "char_lstm.npz",
              progress: bool = True, threads: int | None = 1,
              max_chars: int | None = None, state_resets: float = 0.1) -> Result:
    """Character-level LSTM language model (Embedding 64 -> LSTM 256 -> Linear) on the
    Shakespeare training plays with truncated BPTT (windows of 100 characters, 64 streams:
    about 600 steps per epoch), Adam 3e-3, gradient norm clipped at 5, 2 epochs; each window
    starts a stream from a zero state with probability ``state_resets`` (see
    :class:`~layerkit.models.CharLSTM`), because sampling starts from one.

    Target: validation perplexity below the n-gram baseline (5-gram, k = 0.03), which is
    computed in the same run and reported next to it. Also reported: the perplexity from a
    zero state (:func:`cold_start_perplexity`), over the first 10 characters of each
    100-character validation window and over whole windows. ``max_chars`` uses only the first
    ``max_chars`` training and validation characters (quick runs).
    """
    from ..models import NGram, char_lstm as build_char_lstm

    check_options("char-lstm", dict(locals()))
    _say(progress, "loading the Shakespeare plays ...")
    text, vocab, train_ids, valid_ids = _shakespeare()
    if max_chars is not None:
        train_ids, valid_ids = train_ids[:max_chars], valid_ids[:max_chars]
    baseline = NGram(5, k=0.03, vocab_size=len(vocab)).fit(train_ids).perplexity(valid_ids)
    _say(progress, f"baseline 5-gram (k=0.03) validation perplexity {baseline:.3f}")
    model = build_char_lstm(len(vocab), embedding_dim=embedding_dim, hidden_size=hidden_size,
                            state_resets=state_resets, seed=seed)
    history, seconds = train_language_model(model, train_ids, valid_ids, epochs=epochs,
                                            batch_size=batch_size, seq_len=seq_len, lr=lr,
                                            clip=clip, seed=seed, progress=progress,
                                            threads=threads)
    last = history[-1]
    cold10, cold = cold_start_perplexity(model, valid_ids, window=seq_len, first=10)
    _say(progress, f"from a zero state: perplexity {cold10:.3f} over the first 10 characters "
                   f"of each window, {cold:.3f} over whole windows")
    metrics = {"valid_perplexity": last["val_perplexity"], "ngram_valid_perplexity": baseline,
               "cold_start_perplexity_10": cold10, "cold_start_perplexity": cold,
               "train_loss": last["train_loss"]}
    rate = np.median([r["tokens_per_s"] for r in history])
    save(model, out, meta={"recipe": "char-lstm", "vocab": vocab.decode(np.arange(len(vocab))),
                           "metrics": metrics, "history": list(history)})
    return Result("char-LSTM", metrics, seconds, f"{rate:,.0f} training characters/s", out,
                  list(history))


# -- sequence to sequence -----------------------------------------------------------------------

def linear_decay(step: int, steps: int, final: float = 0.1) -> float:
    """Learning-rate factor: 1 for the first half of the steps, then linearly down to ``final``
    at the last step."""
    half = steps / 2
    return 1.0 if step <= half else 1.0 - (1.0 - final) * (step - half) / (steps - half)


def seq2seq_accuracy(model, task) -> float:
    """Exact-sequence accuracy of greedy decoding on a DigitTask (every digit and the EOS)."""
    want = task.target[:, 1:]
    got = model.greedy_decode(task.source, want.shape[1], task.BOS, task.EOS,
                              task.source_lengths, pad=task.PAD)
    return float(np.mean(np.all(got == want, axis=1)))


def seq2seq(*, task: str = "reverse", steps: int = 2000, batch_size: int = 128,
            lr: float = 3e-3, hidden_size: int = 128, embedding_dim: int = 32,
            max_len: int = 8, seed: int = 0, out: str = "seq2seq.npz", progress: bool = True,
            threads: int | None = 1, eval_every: int = 500) -> Result:
    """LSTM encoder-decoder on digit strings of length 1..``max_len`` (reverse or sort),
    teacher forcing, fresh examples every step, Adam (``lr`` for the first half of the steps,
    then decayed linearly to lr/10), gradient norm clipped at 1; greedy decoding of 2,000
    held-out strings.

    Target: >= 99 % exact-sequence accuracy. At a constant lr the loss jumps from step to step,
    so the accuracy after 2,000 steps depends on float32 rounding; the decay makes the end of
    training settle.
    """
    from ..models import Seq2Seq

    check_options("seq2seq", dict(locals()))
    model = Seq2Seq(D.DigitTask.VOCAB_SIZE, D.DigitTask.VOCAB_SIZE, hidden_size=hidden_size,
                    embedding_dim=embedding_dim, seed=seed)
    held_out = D.seq2seq_digits(2000, task=task, max_len=max_len, seed=10**6 + seed)
    loss, opt = CrossEntropy(ignore_index=D.DigitTask.PAD), Adam(model, lr=lr)
    history, accuracy, tokens = [], float("nan"), 0
    bar = Progress(progress)
    with blas_threads(threads):
        t0 = time.perf_counter()
        for step in range(1, steps + 1):
            bar.start_range(step, steps, eval_every)     # one bar per range of steps
            batch = D.seq2seq_digits(batch_size, task=task, max_len=max_len,
                                     seed=seed * 10**7 + step)
            tgt_in, tgt_out = batch.target[:, :-1], batch.target[:, 1:]
            opt.lr = lr * linear_decay(step, steps)
            model.train()
            opt.zero_grad()
            logits = model.forward(batch.source, tgt_in, batch.source_lengths)
            value = loss.forward(logits, tgt_out)      # mean over the non-PAD positions
            if not math.isfinite(value):
                raise FloatingPointError(f"seq2seq: the loss is {value} at step {step}")
            model.backward(loss.backward())            # 0 at the PAD positions
            clip_grad_norm(model, 1.0)
            opt.step()
            tokens += int(np.count_nonzero(tgt_out != batch.PAD))
            bar.step(value)
            if step % eval_every == 0 or step == steps:
                model.eval()
                accuracy = seq2seq_accuracy(model, held_out)
                elapsed = time.perf_counter() - t0
                history.append({"step": step, "loss": value, "accuracy": accuracy,
                                "seconds": elapsed})
                bar.end(wrap_items(f"step {step}/{steps}", [
                    f"loss {value:.4f}", f"held-out exact-sequence accuracy {accuracy:.2%}",
                    f"{elapsed:.0f} s"]))
        bar.close()
        seconds = time.perf_counter() - t0
    metrics = {"exact_sequence_accuracy": accuracy, "train_loss": history[-1]["loss"]}
    save(model, out, meta={"recipe": "seq2seq", "task": task, "max_len": max_len,
                           "metrics": metrics, "history": history})
    return Result(f"seq2seq ({task})", metrics, seconds,
                  f"{steps * batch_size / seconds:,.0f} training sequences/s", out, history)


RECIPES = {"lenet": lenet, "char-lstm": char_lstm, "ngram": ngram, "seq2seq": seq2seq}

# Recipes in modules of their own; they import Result and check_options from here.
from .recipe_dcgan import dcgan  # noqa: E402
from .recipe_word_lstm import word_lstm  # noqa: E402
from .recipe_sentiment import sentiment  # noqa: E402
RECIPES["dcgan"] = dcgan
RECIPES["word-lstm"] = word_lstm
RECIPES["sentiment"] = sentiment


# -- sampling from a checkpoint -------------------------------------------------------------------

def sample(model, *, prompt: str = "", length: int = 300, temperature: float = 1.0,
           top_k: int | None = None, seed: int | None = None) -> str:
    """Text from a loaded char-LSTM or n-gram checkpoint: the prompt, continued by ``length``
    characters drawn one at a time from the model's next-character distribution."""
    vocab_chars = (getattr(model, "meta", None) or {}).get("vocab")
    if vocab_chars is None or not hasattr(model, "sample"):
        raise ValueError("sample: the checkpoint is not a language model (it has no vocabulary "
                         "in its meta); train one with `layerkit train char-lstm` or "
                         "`layerkit train ngram`")
    vocab = D.CharVocab(vocab_chars)
    prompt_ids = vocab.encode(prompt) if prompt else None
    kwargs = {}
    if top_k is not None:
        if "top_k" not in inspect.signature(model.sample).parameters:
            raise ValueError(f"sample: top_k applies to a char-LSTM, not to {model!r}")
        kwargs["top_k"] = top_k
    ids = model.sample(length, prompt_ids=prompt_ids, temperature=temperature, seed=seed,
                       **kwargs)
    return prompt + vocab.decode(ids)


from .recipe_caption import caption  # noqa: E402  (they import Result from here lazily)
from .recipe_segnet import segnet  # noqa: E402

RECIPES["caption"] = caption
RECIPES["segnet"] = segnet
