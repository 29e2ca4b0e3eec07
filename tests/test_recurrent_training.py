"""End to end: tiny recurrent models trained with Adam and gradient-norm clipping.

Three shapes of sequence task, each checked against its own definition (not against the code):

- many-to-one: the parity of a bit string, read from the last hidden state;
- many-to-many: the input echoed back k steps later, a label at every step t ≥ k;
- one-to-many: counting start, start + 1, ... mod K from a start digit that only enters through
  the initial state h0, so its encoder learns solely from the layer's ``dh0``.
"""

import itertools

import numpy as np

import layerkit as lk
from helpers import train_adam as _train

DT = np.float64


class Model:
    """A few layers seen as one model: merged params/grads dicts with ``name.`` prefixes.

    The dicts hold the layers' own arrays (not copies), so the optimizer and the clipping update
    the layers in place.
    """

    def __init__(self, **layers):
        self.layers = layers

    @property
    def params(self):
        return {f"{n}.{k}": v for n, layer in self.layers.items() for k, v in layer.params.items()}

    @property
    def grads(self):
        return {f"{n}.{k}": v for n, layer in self.layers.items() for k, v in layer.grads.items()}

    def zero_grad(self):
        for layer in self.layers.values():
            layer.zero_grad()


def test_lstm_learns_parity_many_to_one():
    T = 6
    bits = np.array(list(itertools.product((0, 1), repeat=T)))            # all 2^T strings
    x = (2.0 * bits - 1.0)[..., None].astype(DT)                          # (64, T, 1), ±1
    target = bits.sum(axis=1) % 2                                         # the parity
    rnn = lk.LSTM(1, 16, return_sequences=False, dtype=DT, seed=0)
    head = lk.Linear(16, 2, dtype=DT, seed=1)
    model, loss = Model(rnn=rnn, head=head), lk.CrossEntropy()

    def predict():
        return head(rnn(x)[0])

    def step():
        value = loss.forward(predict(), target)
        rnn.backward(head.backward(loss.backward()))
        return value

    # Parity sits on a plateau at chance (loss log 2) before it is learned all at once; a large
    # step size gets off it reliably (8 of 8 seeds at T = 6).
    losses = _train(model, step, steps=300, lr=0.1)
    accuracy = np.mean(np.argmax(predict(), axis=1) == target)
    assert losses[-1] < 0.1 * losses[0], (losses[0], losses[-1])
    assert accuracy > 0.95, accuracy


def test_gru_learns_delayed_echo_many_to_many():
    V, T, k, N = 4, 10, 2, 64
    rng = np.random.default_rng(0)
    ids = rng.integers(0, V, (N, T))
    held_out = rng.integers(0, V, (256, T))
    emb = lk.Embedding(V, 8, dtype=DT, seed=0)
    rnn = lk.GRU(8, 24, dtype=DT, seed=1)
    head = lk.Linear(24, V, dtype=DT, seed=2)
    model, loss = Model(emb=emb, rnn=rnn, head=head), lk.CrossEntropy()

    def logits(ids):
        return head(rnn(emb(ids))[0])                                     # (N, T, V)

    def step():
        out = logits(ids)
        value = loss.forward(np.ascontiguousarray(out[:, k:]), ids[:, :-k])   # y_t = x_{t-k}
        d_out = np.zeros_like(out)
        d_out[:, k:] = loss.backward()
        emb.backward(rnn.backward(head.backward(d_out)))
        return value

    losses = _train(model, step, steps=250, lr=0.02)
    accuracy = np.mean(np.argmax(logits(held_out)[:, k:], axis=-1) == held_out[:, :-k])
    assert losses[-1] < 0.1 * losses[0], (losses[0], losses[-1])
    assert accuracy > 0.95, accuracy


def test_rnn_counts_from_encoded_start_one_to_many():
    K, T, H = 5, 8, 16
    start = np.arange(K)
    target = (start[:, None] + np.arange(T)[None, :]) % K                 # start, start + 1, ...
    onehot = np.eye(K, dtype=DT)[start]
    x = np.zeros((K, T, 1), dtype=DT)                                     # no input: h0 only
    enc = lk.Linear(K, H, dtype=DT, seed=0)
    rnn = lk.RNN(1, H, nonlinearity="tanh", dtype=DT, seed=1)
    head = lk.Linear(H, K, dtype=DT, seed=2)
    model, loss = Model(enc=enc, rnn=rnn, head=head), lk.CrossEntropy()

    def predict():
        return head(rnn(x, h0=np.tanh(enc(onehot)))[0])

    def step():
        h0 = np.tanh(enc(onehot))
        value = loss.forward(head(rnn(x, h0=h0)[0]), target)
        rnn.backward(head.backward(loss.backward()))
        enc.backward(rnn.dh0 * (1 - h0 ** 2))
        return value

    model.zero_grad()
    step()
    assert np.abs(enc.grads["weight"]).sum() > 0        # the only way in is through dh0
    assert np.abs(enc.grads["bias"]).sum() > 0

    losses = _train(model, step, steps=300, lr=0.02)
    accuracy = np.mean(np.argmax(predict(), axis=-1) == target)
    assert losses[-1] < 0.1 * losses[0], (losses[0], losses[-1])
    assert accuracy > 0.95, accuracy
