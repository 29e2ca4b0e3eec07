"""Language models: a character-level LSTM (stateful, truncated BPTT, sampling) and an add-k
smoothed n-gram model (counts, no gradients)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import numpy as np

from ..layers.embedding import Embedding
from ..layers.linear import Linear
from ..layers.recurrent import LSTM
from ..validation import check_array, check_ids, number_in, positive_int
from .base import (Model, check_length, check_seed, check_temperature, die_weights,
                   dtype_name, sizes, sub_seed, weighted_die)


class CharLSTM(Model):
    r"""Character-level language model: Embedding -> LSTM (× num_layers) -> Linear over V.

        e_t = E[x_t],   h_t^(l) = LSTM_l(h_t^(l−1), h_{t−1}^(l)),   z_t = W h_t^(L) + b

    and P(x_{t+1} = v | x_≤t) = softmax(z_t)_v: train with ``CrossEntropy(logits, targets)``
    on windows from :func:`layerkit.data.sequence_batches` (targets = inputs shifted by one).

    Parameters
    ----------
    vocab_size : int
        V (e.g. ``len(CharVocab)``).
    embedding_dim, hidden_size, num_layers : int
        E, H and the number of stacked LSTM layers L.
    stateful : bool, default True
        Carry the final (h, c) of one forward over as the initial state of the next (below).
    state_resets : float in [0, 1], default 0
        In training, the probability that a row's carried state is set to zero before a window
        (each of the N rows drawn independently, from a generator seeded by ``seed``). Sampling
        starts from a zero state; a model trained only on carried states sees a zero state once
        per stream and epoch and predicts poorly from it. Evaluation never resets.
    dtype, seed
        Parameter dtype; seed of the initializers (layer i gets seed + i).

    Attributes
    ----------
    params : ``embedding.weight`` (V, E); ``lstm.<l>.weight_ih``, ``lstm.<l>.weight_hh``,
        ``lstm.<l>.bias_ih``, ``lstm.<l>.bias_hh`` for l = 0 … L−1; ``head.weight`` (V, H),
        ``head.bias`` (V,).
    state : (h, c), each (L, N, H), or None
        The carried state of the current mode (training and evaluation keep separate states,
        so measuring validation loss in ``eval()`` does not disturb the training stream).
    dh0, dc0 : ndarray (L, N, H)
        After ``backward``: ∂L/∂h0, ∂L/∂c0 of the window's initial state (not used by truncated
        BPTT; there for gradient checks).

    Shape
    -----
    ``forward(ids, h0=None, c0=None) -> logits``: ids (N, T) integers in [0, V) -> (N, T, V).
    h0, c0 : (L, N, H), optional; given, they override the carried state.

    Truncated BPTT
    --------------
    With ``stateful=True`` and no h0/c0, a forward starts from the state the previous forward
    (in the same mode) ended with, and keeps its own final state for the next. The state is a
    plain array — it is *detached*: ``backward(dlogits)`` stops at the window's start (the LSTMs
    get dh_T = None and their dh0 is not sent anywhere). ``reset_state()`` starts again from
    zeros (at the start of each epoch and before validation). The batch size must stay the same
    while a state is carried. For a gradient check, use ``stateful=False`` or pass h0 and c0
    (otherwise two forwards on the same input differ, as they should).

    Notes
    -----
    backward(δ) with δ = ∂L/∂z (N, T, V): δ_h = head.backward(δ) (N, T, H), then each LSTM from
    the top with dh_T = dc_T = None, then the Embedding's scatter-add. Returns None (ids have no
    gradient).

    Recipe (``layerkit train char-lstm``): a ``CharVocab`` of the three Shakespeare splits
    (V = 76); ``char_lstm(76, embedding_dim=64, hidden_size=256)``; windows
    ``sequence_batches(train, 64, 100, drop_last=True)`` with the state carried and
    ``reset_state()`` at each epoch; Adam lr 3e-3, ``clip_grad_norm(model, 5.0)``. It reaches a
    validation perplexity below the best add-k n-gram's (n = 5, k = 0.03) within one epoch;
    ``benchmarks/train_vs_torch.py`` measures it against PyTorch.
    """

    builder_name = "char_lstm"

    def __init__(self, vocab_size: int, *, embedding_dim: int = 64, hidden_size: int = 256,
                 num_layers: int = 1, stateful: bool = True, state_resets: float = 0.0,
                 dtype=np.float32, seed=0):
        who = "char_lstm"
        self.training, self._cache = True, None
        self.vocab_size, self.embedding_dim, self.hidden_size, self.num_layers = sizes(
            who, vocab_size=vocab_size, embedding_dim=embedding_dim, hidden_size=hidden_size,
            num_layers=num_layers)
        self.stateful = bool(stateful)
        self.state_resets = number_in(who, "state_resets", state_resets, 0.0, 1.0)
        dt = dtype_name(who, dtype)
        seed = check_seed(who, seed)
        self._reset_rng = np.random.default_rng(seed)
        V, E, H, L = self.vocab_size, self.embedding_dim, self.hidden_size, self.num_layers
        self.embedding = Embedding(V, E, dtype=dt, seed=sub_seed(seed, 0))
        self.lstms = [LSTM(E if i == 0 else H, H, dtype=dt, seed=sub_seed(seed, 1 + i))
                      for i in range(L)]
        self.head = Linear(H, V, dtype=dt, seed=sub_seed(seed, 1 + L))
        self._children = ([("embedding", self.embedding)]
                          + [(f"lstm.{i}", l) for i, l in enumerate(self.lstms)]
                          + [("head", self.head)])
        self._states = {True: None, False: None}
        self.dh0 = self.dc0 = None
        self._record(vocab_size=V, embedding_dim=E, hidden_size=H, num_layers=L,
                     stateful=self.stateful, state_resets=self.state_resets, dtype=dt, seed=seed)

    # -- state ----------------------------------------------------------------------------------
    @property
    def state(self):
        """The carried (h, c) of the current mode, each (L, N, H), or None."""
        return self._states[self.training]

    def reset_state(self) -> None:
        """Forget the carried states (both modes): the next forward starts from zeros."""
        self._states = {True: None, False: None}

    def astype(self, dtype):
        self.reset_state()
        return super().astype(dtype)

    # -- computation ----------------------------------------------------------------------------
    def _run(self, ids, h0, c0):
        """Embedding -> LSTMs -> head from states h0, c0 ((L, N, H) or None); returns
        (logits, h_T, c_T) with the final states stacked (L, N, H)."""
        x = self.embedding.forward(ids)
        hs, cs = [], []
        for i, lstm in enumerate(self.lstms):
            x, h, c = lstm.forward(x, None if h0 is None else h0[i],
                                   None if c0 is None else c0[i])
            hs.append(h)
            cs.append(c)
        return self.head.forward(x), np.stack(hs), np.stack(cs)

    def _check_state(self, name, s, n, dtype):
        who = repr(self)
        check_array(who, s, (self.num_layers, n, self.hidden_size), name=name)
        return np.ascontiguousarray(s, dtype=dtype)

    def forward(self, ids: np.ndarray, h0=None, c0=None) -> np.ndarray:
        who = repr(self)
        check_ids(who, ids, ("N", "T"), "ids", self.vocab_size)
        if ids.shape[1] < 1:
            raise ValueError(f"{who}: expected ids of shape (N, T) with T >= 1, got {ids.shape}")
        n = ids.shape[0]
        dt = self.head.params["weight"].dtype
        if h0 is None and c0 is None and self.stateful and self.state is not None:
            h0, c0 = self.state
            if h0.shape[1] != n:
                raise ValueError(
                    f"{who}: the carried state is for a batch of {h0.shape[1]} rows, got ids of "
                    f"shape {ids.shape}; keep the batch size while carrying the state, or call "
                    f"reset_state() first")
            if self.training and self.state_resets > 0:
                cold = self._reset_rng.random(n) < self.state_resets
                if cold.any():
                    h0, c0 = h0.copy(), c0.copy()
                    h0[:, cold] = 0
                    c0[:, cold] = 0
        else:
            h0 = None if h0 is None else self._check_state("h0", h0, n, dt)
            c0 = None if c0 is None else self._check_state("c0", c0, n, dt)
        logits, h, c = self._run(ids, h0, c0)
        if self.stateful:
            self._states[self.training] = (h, c)
        self._cache = True
        return logits

    def backward(self, dlogits: np.ndarray) -> None:
        """Backpropagate ∂L/∂logits through the head, the LSTMs (no gradient into the carried
        state) and the embedding; parameter gradients accumulate; returns None."""
        self.saved()
        dy = self.head.backward(dlogits)
        for lstm in reversed(self.lstms):
            dy = lstm.backward(dy)
        self.embedding.backward(dy)
        self.dh0 = np.stack([l.dh0 for l in self.lstms])
        self.dc0 = np.stack([l.dc0 for l in self.lstms])
        return None

    # -- generation -----------------------------------------------------------------------------
    def sample(self, length: int, *, prompt_ids=None, temperature: float = 1.0, top_k=None,
               seed=None, start_id: int = 0, return_probs: bool = False):
        """Generate ``length`` ids, one at a time, by rolling "the weighted die".

        The LSTM runs from a zero state over the prompt (or over ``start_id`` alone when there
        is no prompt — id 0 is ``"\\n"`` in a ``CharVocab`` of text with line breaks, a natural
        start), then repeatedly: p = softmax(z / temperature) over the last logits z (only the
        ``top_k`` largest kept when given), draw the next id from p with
        ``np.random.default_rng(seed)``, feed it back carrying (h, c). Each id (of the prompt,
        then each generated one) takes one step of every LSTM (:meth:`layerkit.layers.LSTM.cell`,
        the same math as forward) and the head as one matrix-vector product.

        Returns
        -------
        ndarray of int64, shape (length,)
            The generated ids only (not the prompt). The same seed gives the same ids.
        probs : float64 (length, V), with ``return_probs=True``
            Row i: the distribution id i was drawn from (after temperature and top_k).

        Sampling neither uses nor changes the carried training state, nor the caches of a
        pending ``backward``; temperature → 0 approaches greedy decoding, temperature > 1
        flattens the distribution.
        """
        who = f"{self!r}.sample"
        length = check_length(who, length)
        temperature = check_temperature(who, temperature)
        if top_k is not None:
            if (isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral)
                    or not 1 <= top_k <= self.vocab_size):
                raise ValueError(f"{who}: top_k must be None or an integer in [1, "
                                 f"{self.vocab_size}], got {top_k!r}")
            top_k = int(top_k)
        if prompt_ids is None:
            if (isinstance(start_id, bool) or not isinstance(start_id, numbers.Integral)
                    or not 0 <= start_id < self.vocab_size):
                raise ValueError(f"{who}: start_id must be an id in [0, {self.vocab_size}), "
                                 f"got {start_id!r}")
            prompt = np.array([[start_id]], dtype=np.int64)
        else:
            check_ids(who, prompt_ids, ("T",), "prompt_ids", self.vocab_size)
            if prompt_ids.size == 0:
                raise ValueError(f"{who}: prompt_ids must hold at least one id (or be None)")
            prompt = np.asarray(prompt_ids, dtype=np.int64)[None, :]
        rng = np.random.default_rng(seed)
        out = np.empty(length, dtype=np.int64)
        probs = np.empty((length, self.vocab_size)) if return_probs else None
        cells = [lstm.cell() for lstm in self.lstms]
        table = self.embedding.params["weight"]
        w_head = self.head.params["weight"]
        b_head = self.head.params["bias"] if self.head.bias else None
        hs, cs = [None] * self.num_layers, [None] * self.num_layers     # None: zero states

        def logits_after(token):
            """Feed one id through every LSTM (one step, carrying hs, cs); the head's logits."""
            x = table[token:token + 1]
            for layer, cell in enumerate(cells):
                hs[layer], cs[layer] = cell.step(x, hs[layer], cs[layer])
                x = hs[layer]
            z = w_head @ x[0]
            if b_head is not None:
                z += b_head
            return z

        for token in prompt[0]:
            z = logits_after(int(token))
        for i in range(length):
            p = die_weights(z, temperature, top_k)
            out[i] = weighted_die(z, temperature, top_k, rng, weights=p)
            if probs is not None:
                probs[i] = p / p.sum()
            if i + 1 < length:
                z = logits_after(int(out[i]))
        return (out, probs) if return_probs else out


def char_lstm(vocab_size: int, *, embedding_dim: int = 64, hidden_size: int = 256,
              num_layers: int = 1, stateful: bool = True, state_resets: float = 0.0,
              dtype=np.float32, seed=0) -> CharLSTM:
    """A :class:`CharLSTM` language model (see there)."""
    return CharLSTM(vocab_size, embedding_dim=embedding_dim, hidden_size=hidden_size,
                    num_layers=num_layers, stateful=stateful, state_resets=state_resets,
                    dtype=dtype, seed=seed)


# ---------------------------------------------------------------------------------------------
# n-gram baseline
# ---------------------------------------------------------------------------------------------

class NGram:
    r"""Character (or word) n-gram model with add-k smoothing — the count-based baseline.

        P(v | u) = (count(u, v) + k) / (count(u) + k·V)

    for a context u of the previous n − 1 ids (n = 1: no context, the unigram), count(u) =
    Σ_v count(u, v). Every probability is positive for k > 0, so held-out text never gets
    log 0.

    Start padding rule: a text is read as if preceded by n − 1 copies of a start symbol ``<s>``
    that is not in the vocabulary (internally id V). So the first id is predicted from
    ``(<s>, …, <s>)``, the second from ``(<s>, …, <s>, x_0)``, and so on, both when counting
    (:meth:`fit`) and when scoring (:meth:`token_log_probs`); every id of the text is scored,
    ``<s>`` itself never is.

    On Shakespeare (V = 76, 3.86 M training characters), validation perplexity: 27.3 (n = 1),
    12.1 (2), 7.70 (3), 5.75 (4, k = 0.1), 5.25 (5, k = 0.03; the best), 5.86 (6, k = 0.03).

    Storage is sparse: the distinct n-grams seen, encoded as integers
    code = (context in base V + 1) · V + id, sorted, with their counts (two int64 arrays, plus
    the distinct contexts and their totals). Counting is one ``np.unique`` over the codes of all
    positions: n = 5 on Shakespeare's 3.9 M training characters counts in 0.15 s (258k distinct
    5-grams) and scores the 435k validation characters in 0.16 s.

    Parameters
    ----------
    n : int >= 1
        Order: the context is the previous n − 1 ids.
    k : float > 0, default 1.0
        Added to every count (k = 1: Laplace).
    vocab_size : int
        V; ids are in [0, V). (V + 1)^(n−1) · V must fit in int64.

    Not a Layer (no gradients). For checkpoints: ``spec`` as for the neural models,
    ``to_arrays()`` -> ``{"codes", "counts"}`` (int64 arrays) and ``from_arrays(arrays)`` on a
    model built from the same spec: ``build(spec).from_arrays(arrays)`` restores it.
    """

    builder_name = "ngram"

    def __init__(self, n: int, *, k: float = 1.0, vocab_size: int):
        who = "NGram"
        self.n = positive_int(who, "n", n)
        if (isinstance(k, bool) or not isinstance(k, numbers.Real) or not math.isfinite(k)
                or k <= 0):
            raise ValueError(f"{who}: k must be a finite number > 0 (add-k smoothing; k = 0 "
                             f"would give unseen text probability 0), got {k!r}")
        self.k = float(k)
        self.vocab_size = positive_int(who, "vocab_size", vocab_size)
        if (self.vocab_size + 1) ** (self.n - 1) * self.vocab_size >= 2 ** 63:
            raise ValueError(f"{who}: (V + 1)^(n − 1) · V must fit in int64 to encode the "
                             f"n-grams as integers; got V = {self.vocab_size}, n = {self.n}")
        self.spec = {"builder": self.builder_name,
                     "kwargs": {"n": self.n, "k": self.k, "vocab_size": self.vocab_size}}
        self.codes = self.counts = self.ctx_codes = self.ctx_counts = None

    def __repr__(self) -> str:
        return f"NGram({self.n}, k={self.k:g}, vocab_size={self.vocab_size})"

    # -- encoding -------------------------------------------------------------------------------
    def _codes(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(context codes, n-gram codes) of every position of ids, with the start padding."""
        V, m = self.vocab_size, self.n - 1
        ids = ids.astype(np.int64, copy=False)
        padded = np.concatenate([np.full(m, V, dtype=np.int64), ids])
        ctx = np.zeros(ids.size, dtype=np.int64)
        for j in range(m):
            ctx *= V + 1
            ctx += padded[j:j + ids.size]
        return ctx, ctx * V + ids

    def _check(self, who, ids):
        return check_ids(f"{self!r}.{who}", ids, ("L",), "ids", self.vocab_size)

    def _fitted(self, who):
        if self.codes is None:
            raise RuntimeError(f"{self!r}.{who}: the model has no counts yet; call fit(ids) "
                               f"(or from_arrays) first")

    # -- counting -------------------------------------------------------------------------------
    def fit(self, ids: np.ndarray) -> "NGram":
        """Count every n-gram of ``ids`` (1-D integer array in [0, V)), replacing earlier
        counts; returns self."""
        self._check("fit", ids)
        _, codes = self._codes(ids)
        codes, counts = np.unique(codes, return_counts=True)
        self._set(codes, counts.astype(np.int64))
        return self

    def _set(self, codes, counts):
        self.codes, self.counts = codes, counts
        ctx = codes // self.vocab_size                    # sorted, since codes are
        self.ctx_codes, starts = np.unique(ctx, return_index=True)
        self.ctx_counts = (np.add.reduceat(counts, starts) if counts.size
                           else np.zeros(0, dtype=np.int64))

    @staticmethod
    def _lookup(keys, values, query):
        """values[keys == q] for each q (0 where q is absent); keys sorted."""
        if keys.size == 0:
            return np.zeros(query.shape, dtype=np.int64)
        pos = np.minimum(np.searchsorted(keys, query), keys.size - 1)
        return np.where(keys[pos] == query, values[pos], 0)

    # -- scoring --------------------------------------------------------------------------------
    def token_log_probs(self, ids: np.ndarray) -> np.ndarray:
        """log P(x_i | previous n − 1 ids) for every i (natural log), shape (L,), float64."""
        self._check("token_log_probs", ids)
        self._fitted("token_log_probs")
        ctx, codes = self._codes(ids)
        c = self._lookup(self.codes, self.counts, codes)
        total = self._lookup(self.ctx_codes, self.ctx_counts, ctx)
        return np.log(c + self.k) - np.log(total + self.k * self.vocab_size)

    def log_prob(self, ids: np.ndarray) -> float:
        """log P(ids) = Σ_i log P(x_i | context_i), natural log (a float)."""
        return float(np.sum(self.token_log_probs(ids)))

    def perplexity(self, ids: np.ndarray) -> float:
        """exp(−(1/L) Σ_i log P(x_i | context_i)): per-token perplexity of held-out ids."""
        logp = self.token_log_probs(ids)
        if logp.size == 0:
            raise ValueError(f"{self!r}.perplexity: expected at least one id, got none")
        return float(np.exp(-np.mean(logp)))

    def next_distribution(self, context_ids=None) -> np.ndarray:
        """P(· | context) over the V ids (float64, sums to 1); the context is the last n − 1 of
        ``context_ids`` after the start padding (None: the start of a text)."""
        self._fitted("next_distribution")
        if context_ids is not None:
            check_ids(f"{self!r}.next_distribution", context_ids, ("T",), "context_ids",
                       self.vocab_size)
        return np.exp(self._next_log_weights(self._context_code(context_ids)))

    def _context_code(self, context_ids) -> int:
        V, m = self.vocab_size, self.n - 1
        hist = [] if context_ids is None else [int(i) for i in context_ids]
        hist = ([V] * m + hist)[len(hist):] if m else []
        code = 0
        for i in hist:
            code = code * (V + 1) + i
        return code

    def _next_log_weights(self, ctx: int) -> np.ndarray:
        V = self.vocab_size
        lo, hi = np.searchsorted(self.codes, [ctx * V, ctx * V + V])
        counts = np.zeros(V, dtype=np.float64)
        counts[self.codes[lo:hi] - ctx * V] = self.counts[lo:hi]
        return np.log(counts + self.k) - np.log(counts.sum() + self.k * V)

    def sample(self, length: int, *, prompt_ids=None, temperature: float = 1.0,
               seed=None) -> np.ndarray:
        """Generate ``length`` ids: each drawn from P(· | previous n − 1 ids)^(1/temperature)
        (renormalised), the context starting from the prompt, or from the start padding when
        there is none. Returns the new ids only, int64 (length,); the same seed, the same ids.
        """
        who = f"{self!r}.sample"
        length = check_length(who, length)
        temperature = check_temperature(who, temperature)
        self._fitted("sample")
        hist = []
        if prompt_ids is not None:
            check_ids(who, prompt_ids, ("T",), "prompt_ids", self.vocab_size)
            hist = [int(i) for i in prompt_ids]
        rng = np.random.default_rng(seed)
        out = np.empty(length, dtype=np.int64)
        for i in range(length):
            ctx = self._context_code(hist[len(hist) - (self.n - 1):] if self.n > 1 else [])
            out[i] = weighted_die(self._next_log_weights(ctx), temperature, None, rng)
            hist.append(int(out[i]))
        return out

    # -- checkpoints ----------------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        """The counts as arrays: ``codes`` (sorted distinct n-gram codes) and ``counts``."""
        self._fitted("to_arrays")
        return {"codes": self.codes.copy(), "counts": self.counts.copy()}

    def from_arrays(self, arrays: Mapping) -> "NGram":
        """Restore counts saved by :meth:`to_arrays` (from a model of the same spec)."""
        who = f"{self!r}.from_arrays"
        try:
            codes, counts = np.asarray(arrays["codes"]), np.asarray(arrays["counts"])
        except (KeyError, TypeError):
            raise ValueError(f"{who}: expected a mapping with arrays 'codes' and 'counts'") \
                from None
        if (codes.ndim != 1 or codes.shape != counts.shape
                or not np.issubdtype(codes.dtype, np.integer)
                or not np.issubdtype(counts.dtype, np.integer)):
            raise ValueError(f"{who}: expected 1-D integer arrays of equal length, got codes "
                             f"{codes.dtype}{codes.shape} and counts {counts.dtype}{counts.shape}")
        limit = (self.vocab_size + 1) ** (self.n - 1) * self.vocab_size
        if codes.size and (np.any(np.diff(codes) <= 0) or codes[0] < 0 or codes[-1] >= limit
                           or counts.min() < 1):
            raise ValueError(f"{who}: codes must be strictly increasing in [0, {limit}) and "
                             f"counts positive (arrays saved by to_arrays of the same spec)")
        self._set(codes.astype(np.int64), counts.astype(np.int64))
        return self
