"""Beam search over a step function that gives next-token log-probabilities."""

from __future__ import annotations

import numbers

import numpy as np

from ..validation import positive_int


def check_token(who: str, name: str, value, vocab_size: int) -> int:
    """``value`` as an int id in [0, vocab_size), else ValueError."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or not 0 <= value < vocab_size):
        raise ValueError(f"{who}: {name} must be an id in [0, {vocab_size}), got {value!r}")
    return int(value)


def beam_search(step, state: tuple, n: int, max_len: int, bos: int, eos: int, *,
                beam_size: int, vocab_size: int, pad: int = 0):
    """Keep the ``beam_size`` highest-scoring partial sequences per example, step by step.

    The score of a sequence w_1 … w_L is Σ_t log p(w_t | w_<t) (no length normalisation). At
    each step every live beam b is extended by every token v (score_b + log p(v)), a finished
    beam (one that produced ``eos``) only by ``pad`` at log-probability 0, and the best
    ``beam_size`` of the B · V candidates survive (ties: the lower beam, then the lower id).

    Parameters
    ----------
    step : callable
        ``step(tokens, state) -> (log_probs, state)``: tokens (M,) int64, every array of the
        tuple ``state`` with leading axis M; log_probs (M, V). Called with M = n · beam_size
        rows, example i's beams at rows i·B … i·B + B − 1.
    state : tuple of ndarrays
        The initial state of the n examples (leading axis n); repeated for each beam.
    n, max_len, bos, eos, pad : int
    beam_size, vocab_size : int
        B (1 <= B <= V) and V.

    Returns
    -------
    ids : int64 (n, max_len)
        The best sequence of each example (BOS not included) up to and including its first
        ``eos``, then ``pad``.
    scores : float64 (n,)
        Their total log-probabilities.

    With B = 1 this is greedy decoding: the candidate of highest score is the arg max token.
    """
    who = "beam_search"
    B = positive_int(who, "beam_size", beam_size)
    V = positive_int(who, "vocab_size", vocab_size)
    if B > V:
        raise ValueError(f"{who}: beam_size must be at most the vocabulary size {V}, got {B}")
    max_len = positive_int(who, "max_len", max_len)
    state = tuple(np.repeat(s, B, axis=0) for s in state)
    out = np.full((n, B, max_len), pad, dtype=np.int64)
    scores = np.full((n, B), -np.inf)
    scores[:, 0] = 0.0                     # one live beam at the start: no duplicates
    done = np.zeros((n, B), dtype=bool)
    tokens = np.full(n * B, bos, dtype=np.int64)
    finished_row = np.full(V, -np.inf)
    finished_row[pad] = 0.0
    rows = np.arange(n)[:, None]
    for t in range(max_len):
        logp, state = step(tokens, state)
        logp = np.asarray(logp, dtype=np.float64).reshape(n, B, V)
        logp = np.where(done[:, :, None], finished_row, logp)
        cand = (scores[:, :, None] + logp).reshape(n, B * V)
        best = np.argsort(-cand, axis=1, kind="stable")[:, :B]     # (n, B)
        parent, token = best // V, best % V
        scores = np.take_along_axis(cand, best, axis=1)
        out = out[rows, parent]
        out[:, :, t] = token
        done = done[rows, parent] | (token == eos)
        flat_parent = (np.arange(n)[:, None] * B + parent).ravel()
        state = tuple(s[flat_parent] for s in state)
        tokens = token.ravel().astype(np.int64)
        if done.all():
            break
    winner = np.argmax(scores, axis=1)             # first of equal scores
    return out[np.arange(n), winner], scores[np.arange(n), winner]
