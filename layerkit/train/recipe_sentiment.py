"""``layerkit train sentiment``: many-to-one classification of synthetic reviews whose label
depends on word order (negation flips a sentiment word), with a bag-of-words baseline."""

from __future__ import annotations

import numpy as np

from .. import data as D
from ..losses import CrossEntropy
from ..optim import Adam, clip_grad_norm
from ..threads import blas_threads
from .checkpoints import save
from .steps import train_steps

__all__ = ["sentiment", "naive_bayes_accuracy", "sentiment_accuracy"]


def naive_bayes_accuracy(train, test) -> float:
    """Test accuracy of a multinomial naive Bayes bag of words (add-1 smoothing, PAD ignored)
    fitted on ``train``: word order is invisible to it."""
    V = train.VOCAB_SIZE
    counts = np.ones((2, V))
    for c in (0, 1):
        rows = train.ids[train.labels == c]
        counts[c] += np.bincount(rows[rows != train.PAD], minlength=V)
    log_p = np.log(counts / counts.sum(axis=1, keepdims=True))
    prior = np.log(np.bincount(train.labels, minlength=2) / len(train.labels))
    bags = np.stack([np.bincount(r[r != test.PAD], minlength=V) for r in test.ids])
    return float(np.mean(np.argmax(bags @ log_p.T + prior, axis=1) == test.labels))


def sentiment_accuracy(model, task) -> float:
    """Fraction of ``task``'s reviews whose arg-max class is the label (eval mode)."""
    model.eval()
    return float(np.mean(np.argmax(model.forward(task.ids, task.lengths), axis=1)
                         == task.labels))


def sentiment(*, steps: int = 600, batch_size: int = 64, lr: float = 3e-3,
              hidden_size: int = 64, embedding_dim: int = 32, seed: int = 0,
              out: str = "sentiment.npz", progress: bool = True, threads: int | None = 1,
              eval_every: int = 200) -> Result:
    """SequenceClassifier (Embedding 32 -> LSTM 64 -> Linear on the last state, 2 classes) on
    :func:`layerkit.data.sentiment_sequences` reviews (6-16 words, 1-3 sentiment words, each
    negated with probability 0.4), a fresh batch of 64 every step, Adam 3e-3, gradient norm
    clipped at 1, 600 steps; tested on 2,000 held-out reviews.

    Target: >= 97 % test accuracy, where a naive Bayes bag of words (fitted on 20,000 reviews,
    reported next to it) cannot follow the negations.
    """
    from ..models import SequenceClassifier
    from .recipes import Result, check_options   # recipes.py registers this module

    check_options("sentiment", dict(locals()))
    Task = D.SentimentTask
    test = D.sentiment_sequences(2000, seed=10**6 + seed)
    baseline = naive_bayes_accuracy(D.sentiment_sequences(20000, seed=2 * 10**6 + seed), test)
    model = SequenceClassifier(Task.VOCAB_SIZE, 2, embedding_dim=embedding_dim,
                               hidden_size=hidden_size, seed=seed)
    loss, opt = CrossEntropy(), Adam(model, lr=lr)

    def step_loss(step):
        batch = D.sentiment_sequences(batch_size, seed=seed * 10**7 + step)
        value = loss.forward(model.forward(batch.ids, batch.lengths), batch.labels)
        model.backward(loss.backward())
        return value

    shown = lambda s: [f"test accuracy {s['accuracy']:.2%}", f"bag of words {baseline:.2%}"]
    with blas_threads(threads):
        history, seconds = train_steps(
            "sentiment", model, opt, steps, eval_every, step_loss,
            lambda: {"accuracy": sentiment_accuracy(model, test)}, shown, lr=lr,
            clip=lambda m: clip_grad_norm(m, 1.0), progress=progress)
    accuracy = history[-1]["accuracy"]
    metrics = {"test_accuracy": accuracy, "bag_of_words_accuracy": baseline,
               "train_loss": history[-1]["loss"]}
    save(model, out, meta={"recipe": "sentiment", "tokens": list(Task.TOKENS),
                           "metrics": metrics, "history": history})
    return Result("sentiment (LSTM)", metrics, seconds,
                  f"{steps * batch_size / seconds:,.0f} training reviews/s", out, history)
