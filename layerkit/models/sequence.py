"""Sequence models: an LSTM encoder-decoder (teacher forcing, greedy decoding) and a many-to-one
classifier (the last state of an RNN, LSTM or GRU to class logits)."""

from __future__ import annotations

import numbers

import numpy as np

from ..grad_mode import no_grad
from ..layers.embedding import Embedding
from ..layers.linear import Linear
from ..layers.recurrent import GRU, LSTM, RNN
from ..layers.softmax import softmax
from ..validation import check_ids, one_of, positive_int
from .base import Model, check_batch_of_sequences, check_seed, dtype_name, sizes, sub_seed


class Seq2Seq(Model):
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

    Recipe (``layerkit train seq2seq``, reversing digit strings of length 1-8):
    ``Seq2Seq(13, 13, embedding_dim=32, hidden_size=128)``, Adam lr 3e-3 decayed linearly to
    3e-4 over the second half, batch 128 fresh examples per step (``seq2seq_digits(128,
    seed=step)``), ``clip_grad_norm(model, 1.0)``, cross-entropy over the non-PAD positions of
    ``target[:, 1:]`` (digits and EOS). Greedy decoding gets >= 99 % of 2,000 held-out strings
    exactly right (whole sequence including EOS) after 2,000 steps. The decay matters: at a
    constant lr the loss jumps from step to step and the accuracy at a given step depends on
    where it happens to be.
    """

    builder_name = "seq2seq"

    def __init__(self, src_vocab: int, tgt_vocab: int, *, embedding_dim: int = 32,
                 hidden_size: int = 128, dtype=np.float32, seed=0):
        who = "Seq2Seq"
        self.training, self._cache = True, None
        self.src_vocab, self.tgt_vocab, self.embedding_dim, self.hidden_size = sizes(
            who, src_vocab=src_vocab, tgt_vocab=tgt_vocab, embedding_dim=embedding_dim,
            hidden_size=hidden_size)
        dt = dtype_name(who, dtype)
        seed = check_seed(who, seed)
        E, H = self.embedding_dim, self.hidden_size
        s = lambda i: sub_seed(seed, i)
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
        check_batch_of_sequences(who, src, "src", "S", self.src_vocab, src_lengths, "src_lengths")
        _, h, c = self.encoder.forward(self.src_embedding.forward(src), lengths=src_lengths)
        return h, c

    def _encode_steps(self, src, src_lengths):
        """(h_S, c_S) as :meth:`_encode` gives them, by the encoder's cell (no caches)."""
        check_batch_of_sequences(repr(self), src, "src", "S", self.src_vocab, src_lengths,
                                 "src_lengths")
        table = self.src_embedding.params["weight"]
        return self.encoder.cell().run(table[src], lengths=src_lengths)

    def forward(self, src: np.ndarray, tgt_in: np.ndarray, src_lengths=None) -> np.ndarray:
        who = repr(self)
        check_ids(who, tgt_in, ("N", "T"), "tgt_in", self.tgt_vocab)
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
        """Decode by feeding back the arg-max token, starting from ``bos``: the encoder's cell
        over the source (:meth:`layerkit.layers.RecurrentCell.run`), then one decoder step per
        token (:meth:`layerkit.layers.LSTM.cell`, the same math as forward) and the head's
        product.

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
        h, c = self._encode_steps(src, src_lengths)
        n = src.shape[0]
        out = np.full((n, max_len), pad, dtype=np.int64)
        cell = self.decoder.cell()
        table = self.tgt_embedding.params["weight"]
        w_head = self.head.params["weight"]
        b_head = self.head.params["bias"] if self.head.bias else None
        tok = np.full(n, bos, dtype=np.int64)
        done = np.zeros(n, dtype=bool)
        for t in range(max_len):
            h, c = cell.step(table[tok], h, c)
            logits = h @ w_head.T
            if b_head is not None:
                logits += b_head
            nxt = np.argmax(logits, axis=-1)
            out[~done, t] = nxt[~done]
            done |= nxt == eos
            if done.all():
                break
            tok = nxt
        return out


# ---------------------------------------------------------------------------------------------
# Many-to-one classifier
# ---------------------------------------------------------------------------------------------

CELLS = {"lstm": LSTM, "rnn": RNN, "gru": GRU}


class SequenceClassifier(Model):
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
        self.vocab_size, self.num_classes, self.embedding_dim, self.hidden_size = sizes(
            who, vocab_size=vocab_size, num_classes=num_classes, embedding_dim=embedding_dim,
            hidden_size=hidden_size)
        self.cell = one_of(who, "cell", cell, tuple(CELLS))
        dt = dtype_name(who, dtype)
        seed = check_seed(who, seed)
        E, H = self.embedding_dim, self.hidden_size
        self.embedding = Embedding(self.vocab_size, E, dtype=dt, seed=sub_seed(seed, 0))
        self.rnn = CELLS[self.cell](E, H, return_sequences=False, dtype=dt,
                                     seed=sub_seed(seed, 1))
        self.head = Linear(H, self.num_classes, dtype=dt, seed=sub_seed(seed, 2))
        self._children = [("embedding", self.embedding), ("rnn", self.rnn), ("head", self.head)]
        self._record(vocab_size=self.vocab_size, num_classes=self.num_classes, embedding_dim=E,
                     hidden_size=H, cell=self.cell, dtype=dt, seed=seed)

    def forward(self, ids: np.ndarray, lengths=None) -> np.ndarray:
        who = repr(self)
        check_batch_of_sequences(who, ids, "ids", "T", self.vocab_size, lengths, "lengths")
        h = self.rnn.forward(self.embedding.forward(ids), lengths=lengths)[0]
        self._cache = True
        return self.head.forward(h)

    def backward(self, dlogits: np.ndarray) -> None:
        self.saved()
        self.embedding.backward(self.rnn.backward(self.head.backward(dlogits)))
        return None

    def predict_proba(self, ids: np.ndarray, lengths=None) -> np.ndarray:
        """Class probabilities softmax(forward(ids, lengths)), shape (N, K), under
        :func:`layerkit.no_grad`."""
        with no_grad():
            return softmax(self.forward(ids, lengths), axis=-1)
