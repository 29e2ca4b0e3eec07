"""Image captioning: a small CNN encoder whose features start (and optionally feed) an LSTM
decoder of word tokens; teacher forcing for training, greedy and beam-search decoding."""

from __future__ import annotations

import numpy as np

from ..layers.activations import ReLU
from ..layers.containers import Sequential
from ..layers.conv import Conv2D
from ..layers.embedding import Embedding
from ..layers.linear import Flatten, Linear
from ..layers.pooling import MaxPool2D
from ..layers.recurrent import LSTM
from ..layers.softmax import log_softmax
from ..validation import check_array, check_ids, flag, positive_int
from .base import Model, check_seed, dtype_name, sizes, sub_seed
from .decoding import beam_search, check_token


class CaptionNet(Model):
    r"""CNN encoder -> LSTM decoder over word tokens (Show-and-Tell style).

        f = ReLU(W_f · flatten(CNN(x)) + b_f)                       image features (N, F)
        [h_0, c_0] = tanh(W_s f + b_s)                              the decoder's initial state
        u_t = [E[w_t], f] (``feed_features``) or E[w_t]
        h_t, c_t = LSTM(u_t, h_{t−1}, c_{t−1}),   logits_t = W_o h_t + b_o

    The CNN is, per entry c of ``channels``, Conv2D(·, c, 3, padding=1) - ReLU - MaxPool2D(2).

    Parameters
    ----------
    vocab_size : int
        V, the number of token ids (with PAD, BOS, EOS).
    image_shape : (C, H, W)
        Input image size; H and W must be divisible by 2^len(channels).
    channels : list of int
        Convolution widths, one pooling block each.
    feature_size, embedding_dim, hidden_size : int
        F, E, H.
    feed_features : bool
        Also feed f to the decoder at every step (input E + F), not only through (h_0, c_0).
    dtype, seed

    Shape
    -----
    ``forward(images, tokens_in) -> logits``: images (N, C, H, W), tokens_in (N, T) ids (BOS
    first; teacher forcing: the reference caption shifted right) -> (N, T, V).

    Notes
    -----
    backward(δ): δ_h = head.backward(δ), BPTT through the decoder gives ∂L/∂u (N, T, E [+ F])
    and the initial-state gradients (δh_0, δc_0). Then
    ∂L/∂f = W_sᵀ([δh_0, δc_0] ⊙ (1 − s²)) (+ Σ_t ∂L/∂u_t[E:] when features are fed), with
    s = tanh(W_s f + b_s), back through the encoder. Returns ∂L/∂images, or None when
    ``needs_input_grad`` is False (the default: the images are data).
    """

    builder_name = "caption_net"

    def __init__(self, vocab_size: int, *, image_shape=(1, 28, 112), channels=(16, 32),
                 feature_size: int = 128, embedding_dim: int = 32, hidden_size: int = 128,
                 feed_features: bool = True, dtype=np.float32, seed=0):
        who = "CaptionNet"
        self.training, self._cache = True, None
        self.vocab_size, self.feature_size, self.embedding_dim, self.hidden_size = sizes(
            who, vocab_size=vocab_size, feature_size=feature_size, embedding_dim=embedding_dim,
            hidden_size=hidden_size)
        self.image_shape = _int_list(who, "image_shape", image_shape, 3)
        self.channels = _int_list(who, "channels", channels, None)
        self.feed_features = flag(who, "feed_features", feed_features)
        dt = dtype_name(who, dtype)
        seed = check_seed(who, seed)
        c, h, w = self.image_shape
        scale = 2 ** len(self.channels)
        if h % scale or w % scale:
            raise ValueError(f"{who}: image_shape {tuple(self.image_shape)} must have H and W "
                             f"divisible by 2^{len(self.channels)} = {scale} (one 2 × 2 pooling "
                             f"per entry of channels)")
        F, E, H, V = self.feature_size, self.embedding_dim, self.hidden_size, self.vocab_size
        layers, c_in = [], c
        for i, width in enumerate(self.channels):
            layers += [Conv2D(c_in, width, 3, padding=1, dtype=dt, seed=sub_seed(seed, i)),
                       ReLU(), MaxPool2D(2)]
            c_in = width
        k = len(self.channels)
        layers += [Flatten(), Linear(c_in * (h // scale) * (w // scale), F, dtype=dt,
                                     seed=sub_seed(seed, k)), ReLU()]
        self.encoder = Sequential(*layers)
        self.encoder.needs_input_grad = False
        self.init_state = Linear(F, 2 * H, dtype=dt, seed=sub_seed(seed, k + 1))
        self.embedding = Embedding(V, E, dtype=dt, seed=sub_seed(seed, k + 2))
        self.decoder = LSTM(E + F * self.feed_features, H, dtype=dt, seed=sub_seed(seed, k + 3))
        self.head = Linear(H, V, dtype=dt, seed=sub_seed(seed, k + 4))
        self._children = [("encoder", self.encoder), ("init_state", self.init_state),
                          ("embedding", self.embedding), ("decoder", self.decoder),
                          ("head", self.head)]
        self._record(vocab_size=V, image_shape=list(self.image_shape),
                     channels=list(self.channels), feature_size=F, embedding_dim=E,
                     hidden_size=H, feed_features=self.feed_features, dtype=dt, seed=seed)

    @property
    def needs_input_grad(self) -> bool:
        """False (default): backward skips ∂L/∂images and returns None."""
        return self.encoder.needs_input_grad

    @needs_input_grad.setter
    def needs_input_grad(self, value: bool) -> None:
        self.encoder.needs_input_grad = bool(value)

    # -- the pieces ----------------------------------------------------------------------------
    def _check_images(self, who: str, images) -> None:
        check_array(who, images, ("N",) + tuple(self.image_shape), name="images")

    def _start(self, images):
        """Features f (N, F) and s = tanh(W_s f + b_s) = [h_0, c_0] (N, 2H)."""
        f = self.encoder.forward(images)
        s = np.tanh(self.init_state.forward(f))
        return f, s

    def _inputs(self, tokens, f):
        e = self.embedding.forward(tokens)
        if not self.feed_features:
            return e
        return np.concatenate([e, np.broadcast_to(f[:, None, :], e.shape[:2] + f.shape[1:])],
                              axis=-1)

    def forward(self, images: np.ndarray, tokens_in: np.ndarray) -> np.ndarray:
        who = repr(self)
        self._check_images(who, images)
        check_ids(who, tokens_in, (images.shape[0], "T"), "tokens_in", self.vocab_size)
        if tokens_in.shape[1] < 1:
            raise ValueError(f"{who}: expected tokens_in of shape (N, T) with T >= 1, got "
                             f"{tokens_in.shape}")
        f, s = self._start(images)
        H = self.hidden_size
        y, _, _ = self.decoder.forward(self._inputs(tokens_in, f), s[:, :H], s[:, H:])
        self._cache = s
        return self.head.forward(y)

    def backward(self, dlogits: np.ndarray):
        s = self.saved()
        du = self.decoder.backward(self.head.backward(dlogits))
        E = self.embedding_dim
        self.embedding.backward(np.ascontiguousarray(du[..., :E]))
        ds = np.concatenate([self.decoder.dh0, self.decoder.dc0], axis=1) * (1.0 - s * s)
        df = self.init_state.backward(ds.astype(s.dtype, copy=False))
        if self.feed_features:
            df = df + du[..., E:].sum(axis=1)
        return self.encoder.backward(df)

    # -- decoding -------------------------------------------------------------------------------
    def _step(self):
        """The step function of :func:`beam_search`: state (h, c, f) of M rows; one decoder
        step (:meth:`layerkit.layers.LSTM.cell`, forward's math) and the head's product."""
        cell = self.decoder.cell()
        table = self.embedding.params["weight"]
        w_head = self.head.params["weight"]
        b_head = self.head.params["bias"] if self.head.bias else None

        def step(tokens, state):
            h, c, feats = state
            u = table[tokens]
            if self.feed_features:
                u = np.concatenate([u, feats], axis=1)
            h, c = cell.step(u, h, c)
            logits = h @ w_head.T
            if b_head is not None:
                logits += b_head
            return log_softmax(logits, axis=-1), (h, c, feats)

        return step

    def beam_decode(self, images: np.ndarray, max_len: int, bos: int, eos: int, *,
                    beam_size: int = 3, pad: int = 0, return_scores: bool = False):
        """Captions by beam search (:func:`~layerkit.models.decoding.beam_search`): the
        ``beam_size`` best partial captions are kept at each step; ``beam_size=1`` is greedy.

        Returns
        -------
        ids : int64 (N, max_len)
            Generated ids up to and including the first ``eos`` (BOS not included), then
            ``pad``. With ``return_scores``, also their log-probabilities (N,).

        Does not disturb the caches of a pending ``backward``.
        """
        who = f"{self!r}.beam_decode"
        self._check_images(who, images)
        max_len = positive_int(who, "max_len", max_len)
        bos, eos, pad = (check_token(who, k, v, self.vocab_size)
                         for k, v in (("bos", bos), ("eos", eos), ("pad", pad)))
        with self._caches_kept():
            f, s = self._start(images)
            H = self.hidden_size
            ids, scores = beam_search(self._step(), (s[:, :H], s[:, H:], f), len(images),
                                      max_len, bos, eos, beam_size=beam_size,
                                      vocab_size=self.vocab_size, pad=pad)
        return (ids, scores) if return_scores else ids

    def greedy_decode(self, images: np.ndarray, max_len: int, bos: int, eos: int, *,
                      pad: int = 0) -> np.ndarray:
        """Captions by feeding back the arg-max token: ``beam_decode`` with ``beam_size=1``."""
        return self.beam_decode(images, max_len, bos, eos, beam_size=1, pad=pad)

    def log_prob(self, images: np.ndarray, captions: np.ndarray, *, pad: int = 0) -> np.ndarray:
        """Σ_t log p(w_t | w_<t, image) of each caption (N, L) (BOS first; positions after it
        holding ``pad`` are left out): the score beam search maximises. Shape (N,), float64."""
        who = f"{self!r}.log_prob"
        check_ids(who, captions, (len(images), "L"), "captions", self.vocab_size)
        with self._caches_kept():
            logp = log_softmax(self.forward(images, captions[:, :-1]).astype(np.float64), -1)
        target = captions[:, 1:]
        picked = np.take_along_axis(logp, target[..., None], axis=-1)[..., 0]
        return np.where(target == pad, 0.0, picked).sum(axis=1)


def _int_list(who: str, name: str, value, length) -> list:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(f"{who}: {name} must be a list of positive integers, got {value!r}")
    out = [positive_int(who, f"{name}[i]", v) for v in value]
    if (length is not None and len(out) != length) or not out:
        want = f"{length} entries" if length is not None else "at least one entry"
        raise ValueError(f"{who}: {name} must have {want}, got {value!r}")
    return out
