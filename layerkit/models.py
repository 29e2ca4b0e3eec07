"""Model builders: ready-made networks assembled from layerkit layers.

Every neural model here follows the Layer contract — ``params`` / ``grads`` under dotted names
(``"0.weight"``, ``"lstm.0.weight_ih"``), ``forward``, ``backward``, ``zero_grad``,
``train`` / ``eval``, ``astype`` — so the optimizers, gradient clipping and
:func:`layerkit.gradcheck` work on a whole model as on one layer. Each one also carries

    model.spec = {"builder": name, "kwargs": {...}}      # JSON-serialisable

and ``build(model.spec)`` rebuilds the same architecture (same parameter names, shapes and
dtypes; the same initial weights when ``seed`` is an int). A checkpoint is therefore the spec
plus the parameter arrays by name.

==========================  =================================================================
builder (``BUILDERS`` key)  model
==========================  =================================================================
``lenet5``                  LeNet-5 for (N, 1, 28, 28) images -> class logits (N, K)
``vgg_small``               conv3-conv3-pool blocks + a linear head, (N, C, 28, 28) -> (N, K)
``char_lstm``               :class:`CharLSTM`: Embedding -> LSTM -> Linear, ids (N, T) ->
                            logits (N, T, V); stateful for truncated BPTT; ``sample``
``ngram``                   :class:`NGram`: add-k smoothed counts (not a Layer: no gradients)
``seq2seq``                 :class:`Seq2Seq`: LSTM encoder -> LSTM decoder, teacher forcing,
                            ``greedy_decode``
``sequence_classifier``     :class:`SequenceClassifier`: Embedding -> RNN/LSTM/GRU -> Linear
                            on the last state, ids (N, T) -> logits (N, K)
==========================  =================================================================

The classifiers return *logits*. "A softmax output layer trained with cross-entropy" is
``CrossEntropy`` applied to the logits (it applies the softmax itself, in a numerically stable
way); the probabilities are ``model.predict_proba(x)``.

Recipes that reach the issue's targets (measured on the 2-core development machine) are in the
docstrings of :func:`lenet5`, :class:`CharLSTM` and :class:`Seq2Seq`.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import numbers
from collections.abc import Mapping

import numpy as np

from .layers.containers import Sequential, _Container
from .layers.conv import Conv2D
from .layers.activations import ReLU
from .layers.embedding import Embedding
from .layers.linear import Flatten, Linear
from .layers.pooling import MaxPool2D
from .layers.recurrent import GRU, LSTM, RNN
from .validation import check_array, float_dtype, one_of, positive_int

__all__ = ["lenet5", "vgg_small", "char_lstm", "CharLSTM", "NGram", "Seq2Seq",
           "SequenceClassifier", "ImageClassifier", "build", "BUILDERS", "softmax"]


# ---------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------

def _check_seed(who: str, seed):
    """``seed`` must be None or an int: the spec is JSON, a Generator cannot be written down."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"{who}: seed must be None or a non-negative integer (it is stored in "
                         f"the JSON spec), got {seed!r}")
    return int(seed)


def _sub_seed(seed, i: int):
    """The seed of the i-th layer of a model: seed + i (None stays None)."""
    return None if seed is None else seed + i


def _dtype_name(who: str, dtype) -> str:
    return float_dtype(dtype, who).name


def _check_ids(who: str, ids, pattern, name: str, vocab_size: int) -> np.ndarray:
    check_array(who, ids, pattern, name=name, kind="int")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"{who}: expected {name} in [0, {vocab_size}), got values from "
                         f"{ids.min()} to {ids.max()}")
    return ids


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along ``axis`` (max subtracted first), in logits' dtype."""
    z = logits.astype(np.float64) - np.max(logits, axis=axis, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=axis, keepdims=True)).astype(logits.dtype, copy=False)


def _check_temperature(who: str, temperature) -> float:
    if (isinstance(temperature, bool) or not isinstance(temperature, numbers.Real)
            or not math.isfinite(temperature) or temperature <= 0):
        raise ValueError(f"{who}: temperature must be a finite number > 0 (it divides the "
                         f"logits; a small value such as 0.05 is nearly greedy), got "
                         f"{temperature!r}")
    return float(temperature)


def _check_length(who: str, length) -> int:
    if isinstance(length, bool) or not isinstance(length, numbers.Integral) or length < 0:
        raise ValueError(f"{who}: length must be a non-negative integer, got {length!r}")
    return int(length)


def _weighted_die(log_weights: np.ndarray, temperature: float, top_k, rng) -> int:
    """Draw one index with probability ∝ exp(log_weights / temperature), among the top_k largest
    (all when top_k is None). One uniform draw u ~ U[0, 1) from ``rng``, inverted through the
    cumulative distribution: the same generator state gives the same index."""
    z = np.asarray(log_weights, dtype=np.float64) / temperature
    if top_k is not None and top_k < z.size:
        keep = np.argpartition(-z, top_k - 1)[:top_k]
        masked = np.full_like(z, -np.inf)
        masked[keep] = z[keep]
        z = masked
    p = np.exp(z - np.max(z))
    cdf = np.cumsum(p)
    u = rng.random() * cdf[-1]
    return int(min(np.searchsorted(cdf, u, side="right"), z.size - 1))


class _HasSpec:
    """Mixin: the JSON spec, ``astype`` keeping the spec's dtype in step, and a one-line repr."""

    builder_name = ""

    def _record(self, **kwargs) -> None:
        self.spec = {"builder": self.builder_name, "kwargs": kwargs}

    def astype(self, dtype):
        dt = float_dtype(dtype, type(self).__name__)
        super().astype(dt)
        self.spec["kwargs"]["dtype"] = dt.name
        return self


class _Model(_HasSpec, _Container):
    """A model of named children (not a plain chain): ``_children`` is a list of (label, layer)."""

    def _named_children(self) -> list:
        return self._children

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.spec["kwargs"].items())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    @contextlib.contextmanager
    def _caches_kept(self):
        """Run inference (sampling, decoding) without disturbing a pending backward: every
        child's cache and the model's own are restored afterwards."""
        saved = [(child, child._cache) for _, child in self._children]
        own = self._cache
        try:
            yield
        finally:
            for child, cache in saved:
                child._cache = cache
            self._cache = own


# ---------------------------------------------------------------------------------------------
# Image classifiers
# ---------------------------------------------------------------------------------------------

class ImageClassifier(_HasSpec, Sequential):
    """A :class:`Sequential` that maps images (N, C, H, W) to class logits (N, K), with a spec.

    ``forward`` returns logits; train them with ``CrossEntropy`` (softmax + negative
    log-likelihood in one stable step). ``predict_proba(x)`` is the softmax of the logits,
    ``predict(x)`` the arg max.
    """

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities softmax(forward(x)), shape (N, K), rows summing to 1."""
        return softmax(self.forward(x), axis=-1)

    def predict(self, x: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
        """Predicted class ids (N,), int64, computed ``batch_size`` images at a time."""
        batch_size = positive_int("predict", "batch_size", batch_size)
        out = [np.argmax(self.forward(x[i:i + batch_size]), axis=-1)
               for i in range(0, len(x), batch_size)]
        return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)


def lenet5(*, num_classes: int = 10, in_channels: int = 1, dtype=np.float32, seed=0):
    """LeNet-5 (LeCun et al. 1998, with ReLU and max pooling) for 28×28 images.

    Conv2D(C, 6, 5, padding=2) - ReLU - MaxPool2D(2) - Conv2D(6, 16, 5) - ReLU - MaxPool2D(2) -
    Flatten - Linear(400, 120) - ReLU - Linear(120, 84) - ReLU - Linear(84, K)

    Shape
    -----
    x : (N, C, 28, 28) -> logits (N, K). 61,706 parameters for C = 1, K = 10.

    Parameters are named as in a PyTorch ``nn.Sequential`` of the same layers: ``"0.weight"``,
    ``"0.bias"``, ``"3.weight"``, ``"7.weight"``, ``"9.weight"``, ``"11.weight"`` (+ biases),
    so a PyTorch ``state_dict`` copies over by name.

    The first Conv2D has ``needs_input_grad = False``: the input is data, so ``backward``
    accumulates every parameter gradient but skips ∂L/∂x and returns None. Set
    ``net.needs_input_grad = True`` for ``backward`` to return ∂L/∂x of shape x.shape (saliency
    maps, adversarial examples).

    Recipe (issue 7: >= 96.5 % on the MNIST-5k test split), as ``layerkit train lenet`` runs it:
    ``load_mnist5k()``, :func:`layerkit.train.fit` with Adam lr 1e-3, batch 64, 20 epochs,
    seed 0, no augmentation, no clipping. benchmarks/train_vs_torch.py (1 thread, 2026-11-23):
    97.30 % test accuracy, the same model and batches in PyTorch 97.00 %; 22.5 s of training
    steps, ~3,500 training images/s, 0.94x PyTorch's time.
    """
    who = "lenet5"
    num_classes = positive_int(who, "num_classes", num_classes)
    in_channels = positive_int(who, "in_channels", in_channels)
    dt = _dtype_name(who, dtype)
    seed = _check_seed(who, seed)
    s = lambda i: _sub_seed(seed, i)
    net = ImageClassifier(
        Conv2D(in_channels, 6, 5, padding=2, dtype=dt, seed=s(0)), ReLU(), MaxPool2D(2),
        Conv2D(6, 16, 5, dtype=dt, seed=s(1)), ReLU(), MaxPool2D(2),
        Flatten(),
        Linear(16 * 5 * 5, 120, dtype=dt, seed=s(2)), ReLU(),
        Linear(120, 84, dtype=dt, seed=s(3)), ReLU(),
        Linear(84, num_classes, dtype=dt, seed=s(4)),
    )
    net.needs_input_grad = False            # the first Conv2D's: ∂L/∂x of the data is not needed
    net.builder_name = "lenet5"
    net._record(num_classes=num_classes, in_channels=in_channels, dtype=dt, seed=seed)
    return net


def vgg_small(*, num_classes: int = 10, in_channels: int = 1, channels=(16, 32),
              hidden: int = 128, input_size: int = 28, dtype=np.float32, seed=0):
    """A small VGG-style network: per entry c of ``channels`` a block
    Conv2D(·, c, 3, padding=1) - ReLU - Conv2D(c, c, 3, padding=1) - ReLU - MaxPool2D(2),
    then Flatten - Linear(c_last · s², hidden) - ReLU - Linear(hidden, K), s = input_size // 2^B.

    Shape
    -----
    x : (N, C, input_size, input_size) -> logits (N, K). Default: 28 -> 14 -> 7,
    Linear(32·7·7 = 1568, 128).

    As in :func:`lenet5`, the first Conv2D has ``needs_input_grad = False``: ``backward``
    returns None; after ``net.needs_input_grad = True`` it returns ∂L/∂x.
    """
    who = "vgg_small"
    num_classes = positive_int(who, "num_classes", num_classes)
    in_channels = positive_int(who, "in_channels", in_channels)
    hidden = positive_int(who, "hidden", hidden)
    input_size = positive_int(who, "input_size", input_size)
    if isinstance(channels, (str, bytes)) or not hasattr(channels, "__iter__"):
        raise ValueError(f"{who}: channels must be a list of positive integers, got {channels!r}")
    channels = [positive_int(who, "channels[i]", c) for c in channels]
    if not channels:
        raise ValueError(f"{who}: channels must list at least one block, got []")
    side = input_size
    for _ in channels:
        side //= 2
    if side < 1:
        raise ValueError(f"{who}: input_size {input_size} is too small for {len(channels)} "
                         f"pooling blocks (each halves it)")
    dt = _dtype_name(who, dtype)
    seed = _check_seed(who, seed)
    layers, c_in, k = [], in_channels, 0
    for c in channels:
        layers += [Conv2D(c_in, c, 3, padding=1, dtype=dt, seed=_sub_seed(seed, k)), ReLU(),
                   Conv2D(c, c, 3, padding=1, dtype=dt, seed=_sub_seed(seed, k + 1)), ReLU(),
                   MaxPool2D(2)]
        c_in, k = c, k + 2
    layers += [Flatten(), Linear(c_in * side * side, hidden, dtype=dt, seed=_sub_seed(seed, k)),
               ReLU(), Linear(hidden, num_classes, dtype=dt, seed=_sub_seed(seed, k + 1))]
    net = ImageClassifier(*layers)
    net.needs_input_grad = False            # the first Conv2D's: ∂L/∂x of the data is not needed
    net.builder_name = "vgg_small"
    net._record(num_classes=num_classes, in_channels=in_channels, channels=channels,
                hidden=hidden, input_size=input_size, dtype=dt, seed=seed)
    return net


# ---------------------------------------------------------------------------------------------
# Character-level LSTM language model
# ---------------------------------------------------------------------------------------------

class CharLSTM(_Model):
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

    Recipe (issue 7: validation perplexity below the n-gram baseline on Shakespeare): a
    ``CharVocab`` of the three splits (V = 76); ``char_lstm(76, embedding_dim=64,
    hidden_size=256)``; windows ``sequence_batches(train, 64, 100, drop_last=True)`` with the
    state carried and ``reset_state()`` at each epoch; Adam lr 3e-3, ``clip_grad_norm(model,
    5.0)``. Validation perplexity (all 435k validation characters, windows of 32 × 200 in
    ``eval()`` from a reset state): 5.88 after 300 steps, 5.235 after 600 (one epoch, 340 s),
    4.98 after 900 (450 s), against 5.249 for the best add-k n-gram (n = 5, k = 0.03; n = 3..7,
    k = 0.003..1 tried). Measured with one BLAS thread on the busy 2-core machine,
    ~13,000 training characters/s.
    """

    builder_name = "char_lstm"

    def __init__(self, vocab_size: int, *, embedding_dim: int = 64, hidden_size: int = 256,
                 num_layers: int = 1, stateful: bool = True, dtype=np.float32, seed=0):
        who = "char_lstm"
        self.training, self._cache = True, None
        self.vocab_size = positive_int(who, "vocab_size", vocab_size)
        self.embedding_dim = positive_int(who, "embedding_dim", embedding_dim)
        self.hidden_size = positive_int(who, "hidden_size", hidden_size)
        self.num_layers = positive_int(who, "num_layers", num_layers)
        self.stateful = bool(stateful)
        dt = _dtype_name(who, dtype)
        seed = _check_seed(who, seed)
        V, E, H, L = self.vocab_size, self.embedding_dim, self.hidden_size, self.num_layers
        self.embedding = Embedding(V, E, dtype=dt, seed=_sub_seed(seed, 0))
        self.lstms = [LSTM(E if i == 0 else H, H, dtype=dt, seed=_sub_seed(seed, 1 + i))
                      for i in range(L)]
        self.head = Linear(H, V, dtype=dt, seed=_sub_seed(seed, 1 + L))
        self._children = ([("embedding", self.embedding)]
                          + [(f"lstm.{i}", l) for i, l in enumerate(self.lstms)]
                          + [("head", self.head)])
        self._states = {True: None, False: None}
        self.dh0 = self.dc0 = None
        self._record(vocab_size=V, embedding_dim=E, hidden_size=H, num_layers=L,
                     stateful=self.stateful, dtype=dt, seed=seed)

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
        _check_ids(who, ids, ("N", "T"), "ids", self.vocab_size)
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
               seed=None, start_id: int = 0) -> np.ndarray:
        """Generate ``length`` ids, one at a time, by rolling "the weighted die".

        The LSTM runs from a zero state over the prompt (or over ``start_id`` alone when there
        is no prompt — id 0 is ``"\\n"`` in a ``CharVocab`` of text with line breaks, a natural
        start), then repeatedly: p = softmax(z / temperature) over the last logits z (only the
        ``top_k`` largest kept when given), draw the next id from p with
        ``np.random.default_rng(seed)``, feed it back as a (1, 1) input carrying (h, c).

        Returns
        -------
        ndarray of int64, shape (length,)
            The generated ids only (not the prompt). The same seed gives the same ids.

        Sampling neither uses nor changes the carried training state, nor the caches of a
        pending ``backward``; temperature → 0 approaches greedy decoding, temperature > 1
        flattens the distribution.
        """
        who = f"{self!r}.sample"
        length = _check_length(who, length)
        temperature = _check_temperature(who, temperature)
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
            _check_ids(who, prompt_ids, ("T",), "prompt_ids", self.vocab_size)
            if prompt_ids.size == 0:
                raise ValueError(f"{who}: prompt_ids must hold at least one id (or be None)")
            prompt = np.asarray(prompt_ids, dtype=np.int64)[None, :]
        rng = np.random.default_rng(seed)
        out = np.empty(length, dtype=np.int64)
        with self._caches_kept():
            logits, h, c = self._run(prompt, None, None)
            for i in range(length):
                out[i] = _weighted_die(logits[0, -1], temperature, top_k, rng)
                if i + 1 < length:
                    logits, h, c = self._run(out[i:i + 1][None, :], h, c)
        return out


def char_lstm(vocab_size: int, *, embedding_dim: int = 64, hidden_size: int = 256,
              num_layers: int = 1, stateful: bool = True, dtype=np.float32, seed=0) -> CharLSTM:
    """A :class:`CharLSTM` language model (see there)."""
    return CharLSTM(vocab_size, embedding_dim=embedding_dim, hidden_size=hidden_size,
                    num_layers=num_layers, stateful=stateful, dtype=dtype, seed=seed)


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
        return _check_ids(f"{self!r}.{who}", ids, ("L",), "ids", self.vocab_size)

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
            _check_ids(f"{self!r}.next_distribution", context_ids, ("T",), "context_ids",
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
        length = _check_length(who, length)
        temperature = _check_temperature(who, temperature)
        self._fitted("sample")
        hist = []
        if prompt_ids is not None:
            _check_ids(who, prompt_ids, ("T",), "prompt_ids", self.vocab_size)
            hist = [int(i) for i in prompt_ids]
        rng = np.random.default_rng(seed)
        out = np.empty(length, dtype=np.int64)
        for i in range(length):
            ctx = self._context_code(hist[len(hist) - (self.n - 1):] if self.n > 1 else [])
            out[i] = _weighted_die(self._next_log_weights(ctx), temperature, None, rng)
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


# ---------------------------------------------------------------------------------------------
# Sequence to sequence
# ---------------------------------------------------------------------------------------------

class Seq2Seq(_Model):
    r"""Encoder-decoder (Sutskever et al. 2014): an LSTM reads the source; its final (h, c)
    is the initial state of an LSTM decoder that predicts the target one token at a time.

        (h_S, c_S) = Encoder(E_src[src]),   y = Decoder(E_tgt[tgt_in], h0 = h_S, c0 = c_S),
        logits = W y + b

    Parameters
    ----------
    src_vocab, tgt_vocab : int
        Source and target vocabulary sizes (13 for :func:`layerkit.data.seq2seq_digits`).
    embedding_dim, hidden_size : int
    dtype, seed

    Attributes
    ----------
    params : ``src_embedding.weight``, ``encoder.*``, ``tgt_embedding.weight``, ``decoder.*``,
        ``head.weight``, ``head.bias``.

    Shape
    -----
    ``forward(src, tgt_in, src_lengths=None) -> logits``: src (N, S) ids, tgt_in (N, T) ids
    (teacher forcing: the target shifted right, starting with BOS), src_lengths (N,) in [1, S]
    (the encoder's state is taken at each source's own last step) -> logits (N, T, V_tgt).
    Positions of tgt_in after the end of a target do not influence earlier logits (the decoder is
    causal); leave them out of the loss.

    Notes
    -----
    backward(δ): the head and the decoder backpropagate through time; the decoder's gradient of
    its initial state, (dh0, dc0), is exactly ∂L/∂(h_S, c_S), and enters the encoder as its
    final-state gradients dh_T, dc_T; both embeddings scatter-add. Returns None.

    Recipe (issue 7: >= 99 % exact-sequence accuracy reversing digit strings of length 1-8):
    ``Seq2Seq(13, 13, embedding_dim=32, hidden_size=128)``, Adam lr 3e-3, batch 128 fresh
    examples per step (``seq2seq_digits(128, seed=step)``), ``clip_grad_norm(model, 1.0)``,
    cross-entropy over the non-PAD positions of ``target[:, 1:]`` (digits and EOS). Greedy
    decoding of 2,000 held-out strings (``seq2seq_digits(2000, seed=10**6)``, whole sequence
    including EOS): 94.1 % after 500 steps, 99.2 % after 1,000 (54 s), then between 99.15 %
    and 100 % at every check every 500 steps up to 5,000 (100 % at 3,500-4,500, 99.65 % at
    5,000; ~335 s); measured with one BLAS thread on the busy 2-core machine. At a constant lr
    the final accuracy at 2,000 steps depends on where the jumpy loss happens to be (97.7 % to
    99.85 % after float32 rounding-level kernel changes), so ``layerkit train seq2seq`` decays
    the lr linearly to 3e-4 over the second half: 100.0 % at 2,000 steps for seeds 0-3
    (2026-11-23).
    """

    builder_name = "seq2seq"

    def __init__(self, src_vocab: int, tgt_vocab: int, *, embedding_dim: int = 32,
                 hidden_size: int = 128, dtype=np.float32, seed=0):
        who = "Seq2Seq"
        self.training, self._cache = True, None
        self.src_vocab = positive_int(who, "src_vocab", src_vocab)
        self.tgt_vocab = positive_int(who, "tgt_vocab", tgt_vocab)
        self.embedding_dim = positive_int(who, "embedding_dim", embedding_dim)
        self.hidden_size = positive_int(who, "hidden_size", hidden_size)
        dt = _dtype_name(who, dtype)
        seed = _check_seed(who, seed)
        E, H = self.embedding_dim, self.hidden_size
        s = lambda i: _sub_seed(seed, i)
        self.src_embedding = Embedding(self.src_vocab, E, dtype=dt, seed=s(0))
        self.encoder = LSTM(E, H, return_sequences=False, dtype=dt, seed=s(1))
        self.tgt_embedding = Embedding(self.tgt_vocab, E, dtype=dt, seed=s(2))
        self.decoder = LSTM(E, H, dtype=dt, seed=s(3))
        self.head = Linear(H, self.tgt_vocab, dtype=dt, seed=s(4))
        self._children = [("src_embedding", self.src_embedding), ("encoder", self.encoder),
                          ("tgt_embedding", self.tgt_embedding), ("decoder", self.decoder),
                          ("head", self.head)]
        self._record(src_vocab=self.src_vocab, tgt_vocab=self.tgt_vocab, embedding_dim=E,
                     hidden_size=H, dtype=dt, seed=seed)

    def _encode(self, src, src_lengths):
        who = repr(self)
        _check_ids(who, src, ("N", "S"), "src", self.src_vocab)
        if src.shape[1] < 1:
            raise ValueError(f"{who}: expected src of shape (N, S) with S >= 1, got {src.shape}")
        if src_lengths is not None:
            check_array(who, src_lengths, (src.shape[0],), name="src_lengths", kind="int")
        _, h, c = self.encoder.forward(self.src_embedding.forward(src), lengths=src_lengths)
        return h, c

    def forward(self, src: np.ndarray, tgt_in: np.ndarray, src_lengths=None) -> np.ndarray:
        who = repr(self)
        _check_ids(who, tgt_in, ("N", "T"), "tgt_in", self.tgt_vocab)
        if tgt_in.shape[0] != np.shape(src)[0] or tgt_in.shape[1] < 1:
            raise ValueError(f"{who}: expected tgt_in of shape (N, T) with T >= 1 and the N of "
                             f"src {np.shape(src)}, got {tgt_in.shape}")
        h, c = self._encode(src, src_lengths)
        y, _, _ = self.decoder.forward(self.tgt_embedding.forward(tgt_in), h, c)
        self._cache = h.shape
        return self.head.forward(y)

    def backward(self, dlogits: np.ndarray) -> None:
        """Decoder first, then the encoder from the decoder's (dh0, dc0); returns None."""
        shape = self.saved()
        dy = self.head.backward(dlogits)
        self.tgt_embedding.backward(self.decoder.backward(dy))
        d_out = np.zeros(shape, dtype=dy.dtype)        # the encoder's y (= h_S) feeds nothing else
        dx = self.encoder.backward(d_out, dh_T=self.decoder.dh0, dc_T=self.decoder.dc0)
        self.src_embedding.backward(dx)
        return None

    def greedy_decode(self, src: np.ndarray, max_len: int, bos: int, eos: int,
                      src_lengths=None, *, pad: int = 0) -> np.ndarray:
        """Decode by feeding back the arg-max token, starting from ``bos``.

        Returns
        -------
        ndarray of int64, shape (N, max_len)
            Row n: the generated ids up to and including the first ``eos`` (BOS not included),
            then ``pad``. Stops early once every row has produced ``eos``.

        Does not disturb the caches of a pending ``backward``.
        """
        who = f"{self!r}.greedy_decode"
        max_len = positive_int(who, "max_len", max_len)
        for name, v in (("bos", bos), ("eos", eos)):
            if (isinstance(v, bool) or not isinstance(v, numbers.Integral)
                    or not 0 <= v < self.tgt_vocab):
                raise ValueError(f"{who}: {name} must be an id in [0, {self.tgt_vocab}), "
                                 f"got {v!r}")
        with self._caches_kept():
            h, c = self._encode(src, src_lengths)
            n = src.shape[0]
            out = np.full((n, max_len), pad, dtype=np.int64)
            tok = np.full((n, 1), bos, dtype=np.int64)
            done = np.zeros(n, dtype=bool)
            for t in range(max_len):
                y, h, c = self.decoder.forward(self.tgt_embedding.forward(tok), h, c)
                nxt = np.argmax(self.head.forward(y)[:, 0], axis=-1)
                out[~done, t] = nxt[~done]
                done |= nxt == eos
                if done.all():
                    break
                tok = nxt[:, None].astype(np.int64)
        return out


# ---------------------------------------------------------------------------------------------
# Many-to-one classifier
# ---------------------------------------------------------------------------------------------

_CELLS = {"lstm": LSTM, "rnn": RNN, "gru": GRU}


class SequenceClassifier(_Model):
    r"""Many-to-one sequence classifier (sentiment style): Embedding -> RNN / LSTM / GRU ->
    Linear on the last hidden state.

        h_T = Cell(E[ids]) at each sequence's own last step,   logits = W h_T + b

    Parameters
    ----------
    vocab_size, num_classes : int
    embedding_dim, hidden_size : int
    cell : {"lstm", "rnn", "gru"}
        The recurrent layer ("rnn": tanh Elman).
    dtype, seed

    Shape
    -----
    ``forward(ids, lengths=None) -> logits``: ids (N, T), lengths (N,) in [1, T] for padded
    batches (padding after the end is ignored: the state is read at step lengths[n]) ->
    (N, num_classes). ``predict_proba(ids, lengths=None)``: softmax of the logits.

    Notes
    -----
    backward(δ): δ_h = head.backward(δ) (N, H) is the gradient of the last state (the layer runs
    with ``return_sequences=False``), BPTT through the cell, then the embedding. Returns None.
    """

    builder_name = "sequence_classifier"

    def __init__(self, vocab_size: int, num_classes: int, *, embedding_dim: int = 32,
                 hidden_size: int = 64, cell: str = "lstm", dtype=np.float32, seed=0):
        who = "SequenceClassifier"
        self.training, self._cache = True, None
        self.vocab_size = positive_int(who, "vocab_size", vocab_size)
        self.num_classes = positive_int(who, "num_classes", num_classes)
        self.embedding_dim = positive_int(who, "embedding_dim", embedding_dim)
        self.hidden_size = positive_int(who, "hidden_size", hidden_size)
        self.cell = one_of(who, "cell", cell, tuple(_CELLS))
        dt = _dtype_name(who, dtype)
        seed = _check_seed(who, seed)
        E, H = self.embedding_dim, self.hidden_size
        self.embedding = Embedding(self.vocab_size, E, dtype=dt, seed=_sub_seed(seed, 0))
        self.rnn = _CELLS[self.cell](E, H, return_sequences=False, dtype=dt,
                                     seed=_sub_seed(seed, 1))
        self.head = Linear(H, self.num_classes, dtype=dt, seed=_sub_seed(seed, 2))
        self._children = [("embedding", self.embedding), ("rnn", self.rnn), ("head", self.head)]
        self._record(vocab_size=self.vocab_size, num_classes=self.num_classes, embedding_dim=E,
                     hidden_size=H, cell=self.cell, dtype=dt, seed=seed)

    def forward(self, ids: np.ndarray, lengths=None) -> np.ndarray:
        who = repr(self)
        _check_ids(who, ids, ("N", "T"), "ids", self.vocab_size)
        if ids.shape[1] < 1:
            raise ValueError(f"{who}: expected ids of shape (N, T) with T >= 1, got {ids.shape}")
        if lengths is not None:
            check_array(who, lengths, (ids.shape[0],), name="lengths", kind="int")
        h = self.rnn.forward(self.embedding.forward(ids), lengths=lengths)[0]
        self._cache = True
        return self.head.forward(h)

    def backward(self, dlogits: np.ndarray) -> None:
        self.saved()
        self.embedding.backward(self.rnn.backward(self.head.backward(dlogits)))
        return None

    def predict_proba(self, ids: np.ndarray, lengths=None) -> np.ndarray:
        """Class probabilities softmax(forward(ids, lengths)), shape (N, K)."""
        return softmax(self.forward(ids, lengths), axis=-1)


# ---------------------------------------------------------------------------------------------
# Rebuilding from a spec
# ---------------------------------------------------------------------------------------------

BUILDERS = {
    "lenet5": lenet5,
    "vgg_small": vgg_small,
    "char_lstm": char_lstm,
    "ngram": NGram,
    "seq2seq": Seq2Seq,
    "sequence_classifier": SequenceClassifier,
}


def build(spec: Mapping):
    """Rebuild a model from its ``spec`` ``{"builder": name, "kwargs": {...}}``.

    The result has the same architecture, parameter names, shapes and dtypes as the model the
    spec came from (and the same initial weights when the spec's ``seed`` is an int); load
    trained parameters into ``model.params[name][...]`` by name (``NGram``: ``from_arrays``).

    Raises
    ------
    ValueError
        ``spec`` is not a mapping with a string ``"builder"`` and a mapping ``"kwargs"``, or the
        builder is not one of ``BUILDERS`` (the message lists them), or a kwarg has a bad value.
    TypeError
        ``kwargs`` has an argument the builder does not take, or lacks a required one (the
        message gives the builder's signature).
    """
    if not isinstance(spec, Mapping) or not isinstance(spec.get("builder"), str):
        raise ValueError(f"build: expected a spec {{'builder': name, 'kwargs': {{...}}}}, got "
                         f"{spec!r}")
    name = spec["builder"]
    kwargs = spec.get("kwargs", {})
    if not isinstance(kwargs, Mapping):
        raise ValueError(f"build: spec['kwargs'] must be a mapping of keyword arguments, got "
                         f"{kwargs!r}")
    extra = set(spec) - {"builder", "kwargs"}
    if extra:
        raise ValueError(f"build: unexpected spec keys {sorted(extra)}; a spec has 'builder' "
                         f"and 'kwargs'")
    if name not in BUILDERS:
        raise ValueError(f"build: unknown builder {name!r}; expected one of "
                         f"{', '.join(sorted(BUILDERS))}")
    fn = BUILDERS[name]
    sig = inspect.signature(fn)
    try:
        sig.bind(**kwargs)
    except TypeError as e:
        raise TypeError(f"build: bad kwargs for {name!r}: {e}; {name} takes {sig}") from None
    return fn(**kwargs)
