"""layerkit.models: shapes, specs, gradient checks, a PyTorch cross-check and short training runs.

Every model is checked the same three ways as a layer — shapes, forward against an independent
reference (PyTorch for LeNet-5, a plain-Python count for the n-gram, the unrolled sequence for
the stateful LM), backward by the float64 gradient check — and then trained for a few seconds on
a task whose answer is known, asserting it learns (far above chance), not merely that it runs.

The training loops are plain (zero_grad, forward, loss, backward, clip, step): they do not depend
on layerkit.train. Every test here runs with one BLAS thread (threadpoolctl, when installed):
the matrices are small, and on the busy 2-core machine OpenBLAS's two spinning threads made a
Seq2Seq training step 30x slower (1.8 s instead of 0.05 s, measured 2026-11-23).

Full-size recipes for the issue 7 targets are in the docstrings of lenet5, CharLSTM and Seq2Seq
in layerkit/models.py, with the numbers measured on the 2-core machine (LeNet-5: 97.1 % on
MNIST-5k after 20 epochs; Seq2Seq: >= 99 % from 1,000 steps; char-LSTM: validation perplexity
below the best add-k n-gram after one epoch).
"""

import contextlib
import json
import math
import os
from collections import Counter

import numpy as np
import pytest

import layerkit as lk
from layerkit import models
from layerkit.models import (NGram, Seq2Seq, SequenceClassifier, build, char_lstm, lenet5,
                             vgg_small)

from helpers import torch_or_skip, train_adam as train
from layerkit.testing import assert_gradients_match

try:                                   # optional: one BLAS thread for the training loops
    from threadpoolctl import threadpool_limits
except ImportError:                    # pragma: no cover
    threadpool_limits = None

F64 = np.float64

# The second CI pass (NUMBA_DISABLE_JIT=1) runs the kernels as plain Python: the gradient checks
# here still cover them, but a few seconds of convolutional or seq2seq training become minutes
# (82 s and 93 s measured), and a time bound means nothing there.
interpreted = pytest.mark.skipif(
    os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"),
    reason="training runs take minutes with interpreted kernels (NUMBA_DISABLE_JIT set)")


def one_blas_thread():
    return threadpool_limits(1) if threadpool_limits else contextlib.nullcontext()


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with one_blas_thread():
        yield


# ---------------------------------------------------------------------------------------------
# Shapes and the Layer contract
# ---------------------------------------------------------------------------------------------

def test_lenet5_shapes_parameter_names_and_probabilities():
    net = lenet5()
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    logits = net(x)
    assert logits.shape == (3, 10) and logits.dtype == np.float32
    assert net.num_params() == 61_706
    assert sorted(net.params) == sorted(f"{i}.{p}" for i in (0, 3, 7, 9, 11)
                                        for p in ("weight", "bias"))
    p = net.predict_proba(x)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(np.argmax(p, axis=1), net.predict(x))
    assert lenet5(num_classes=3, in_channels=2)(np.zeros((1, 2, 28, 28), np.float32)).shape \
        == (1, 3)


def test_vgg_small_shapes():
    net = vgg_small()
    assert net(np.zeros((2, 1, 28, 28), np.float32)).shape == (2, 10)
    # blocks 1->16->16, 16->32->32 (3x3 + bias), head 32*7*7 -> 128 -> 10
    expected = (9 * 16 + 16) + (9 * 16 * 16 + 16) + (9 * 16 * 32 + 32) + (9 * 32 * 32 + 32) \
        + (1568 * 128 + 128) + (128 * 10 + 10)
    assert net.num_params() == expected
    with pytest.raises(ValueError, match="too small"):
        vgg_small(input_size=3)


def test_recurrent_model_shapes():
    lm = char_lstm(11, embedding_dim=5, hidden_size=7, num_layers=2)
    ids = np.random.default_rng(0).integers(0, 11, (3, 4))
    assert lm(ids).shape == (3, 4, 11)
    assert [s.shape for s in lm.state] == [(2, 3, 7), (2, 3, 7)]
    s2s = Seq2Seq(13, 9, embedding_dim=4, hidden_size=6)
    assert s2s(ids, ids[:, :3] % 9, np.array([4, 1, 2])).shape == (3, 3, 9)
    for cell in ("lstm", "rnn", "gru"):
        clf = SequenceClassifier(11, 4, embedding_dim=3, hidden_size=5, cell=cell)
        assert clf(ids, np.array([4, 2, 1])).shape == (3, 4)
        np.testing.assert_allclose(clf.predict_proba(ids).sum(axis=1), 1, rtol=1e-6)


ALL_SPECS = [
    lambda: lenet5(num_classes=7),
    lambda: vgg_small(channels=(4, 6), hidden=16),
    lambda: char_lstm(11, embedding_dim=5, hidden_size=7, num_layers=2),
    lambda: Seq2Seq(13, 9, embedding_dim=4, hidden_size=6),
    lambda: SequenceClassifier(11, 4, embedding_dim=3, hidden_size=5, cell="gru"),
]


@pytest.mark.parametrize("make", ALL_SPECS)
def test_build_round_trip_through_json(make):
    model = make()
    spec = json.loads(json.dumps(model.spec))        # what a checkpoint stores
    assert spec == model.spec and spec["builder"] in models.BUILDERS
    again = build(spec)
    assert type(again) is type(model)
    assert list(again.params) == list(model.params)
    for k, p in model.params.items():
        assert again.params[k].shape == p.shape and again.params[k].dtype == p.dtype
        np.testing.assert_array_equal(again.params[k], p)         # same int seed, same weights
    model.astype(F64)
    assert model.spec["kwargs"]["dtype"] == "float64"
    assert all(p.dtype == F64 for p in build(model.spec).params.values())


def test_ngram_round_trip_through_spec_and_arrays():
    ids = np.random.default_rng(0).integers(0, 5, 300)
    m = NGram(3, k=0.5, vocab_size=5).fit(ids)
    spec = json.loads(json.dumps(m.spec))
    arrays = {k: v.copy() for k, v in m.to_arrays().items()}
    again = build(spec).from_arrays(arrays)
    held_out = np.random.default_rng(1).integers(0, 5, 50)
    assert again.perplexity(held_out) == m.perplexity(held_out)
    with pytest.raises(ValueError, match="strictly increasing"):
        NGram(3, k=0.5, vocab_size=5).from_arrays({"codes": arrays["codes"][::-1],
                                                   "counts": arrays["counts"]})


def test_build_errors_are_clear():
    with pytest.raises(ValueError, match="unknown builder 'resnet'.*expected one of.*lenet5"):
        build({"builder": "resnet", "kwargs": {}})
    with pytest.raises(TypeError, match="bad kwargs for 'lenet5'.*num_classes"):
        build({"builder": "lenet5", "kwargs": {"classes": 10}})
    with pytest.raises(TypeError, match="bad kwargs for 'char_lstm'.*vocab_size"):
        build({"builder": "char_lstm", "kwargs": {}})
    with pytest.raises(ValueError, match="expected a spec"):
        build("lenet5")
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        build({"builder": "lenet5", "kwargs": {"num_classes": 0}})
    with pytest.raises(ValueError, match="seed must be None or a non-negative integer"):
        lenet5(seed=np.random.default_rng(0))
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        char_lstm(5, dtype=np.int32)
    with pytest.raises(ValueError, match="cell must be one of"):
        SequenceClassifier(5, 2, cell="transformer")


def test_input_validation_names_the_model():
    lm = char_lstm(5, embedding_dim=3, hidden_size=4)
    with pytest.raises(ValueError, match=r"CharLSTM\(vocab_size=5.*ids in \[0, 5\)"):
        lm(np.array([[1, 5]]))
    with pytest.raises(ValueError, match=r"CharLSTM.*expected ids of shape \(N, T\)"):
        lm(np.array([1, 2]))
    with pytest.raises(TypeError, match="integer dtype"):
        lm(np.zeros((1, 2)))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        char_lstm(5).backward(np.zeros((1, 1, 5), np.float32))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        Seq2Seq(5, 5).backward(np.zeros((1, 1, 5), np.float32))
    s2s = Seq2Seq(5, 6, embedding_dim=2, hidden_size=3)
    with pytest.raises(ValueError, match="tgt_in"):
        s2s(np.ones((2, 3), np.int64), np.ones((3, 3), np.int64))


# ---------------------------------------------------------------------------------------------
# Gradient checks (float64, tiny sizes)
# ---------------------------------------------------------------------------------------------

def kink_margin(net, x):
    """Distance of the network's evaluation point from its kinks: the smallest |pre-activation|
    of any ReLU, and the smallest gap between the two largest values of a max-pooling window
    whose maximum is positive (windows of ReLU zeros tie harmlessly while no ReLU input crosses 0).
    """
    margin = np.inf
    for layer in net.layers:
        if isinstance(layer, lk.ReLU):
            margin = min(margin, np.abs(x).min())
        if isinstance(layer, lk.MaxPool2D):
            n, c, h, w = x.shape
            win = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5)
            top = np.sort(win.reshape(n, c, h // 2, w // 2, 4), axis=-1)
            gap = (top[..., -1] - top[..., -2])[top[..., -1] > 0]
            margin = min(margin, gap.min() if gap.size else np.inf)
        x = layer.forward(x)
    return margin


# ReLU and max pooling make the networks piecewise linear. A kink crossed within the finite
# difference's step changes one of ~10^4 terms, which the checker's kink test (1 % of the slope)
# cannot see but the 1e-7 tolerance can. So the kinks are avoided, not tolerated: the input
# seed is one where every ReLU input and every max-pool gap is at least 2e-4 away (checked
# below; the seed was found by scanning 300), and the step is 1e-6, so the largest change of a
# pre-activation within a check (~2h times an input of size <= 5) is 100x smaller.
KINK_EPS = 1e-6


def test_gradcheck_lenet5():
    net = lenet5(num_classes=4, dtype=F64, seed=3)
    x = np.random.default_rng(86).standard_normal((1, 1, 28, 28))
    assert kink_margin(net, x) > 2e-4
    assert_gradients_match(net, x, max_coords=16, eps=KINK_EPS)


def test_gradcheck_vgg_small_after_astype():
    net = vgg_small(channels=(2, 3), hidden=5, input_size=8, num_classes=3).astype(F64)
    x = np.random.default_rng(11).standard_normal((2, 1, 8, 8))
    assert kink_margin(net, x) > 2e-4
    assert_gradients_match(net, x, max_coords=32, eps=KINK_EPS)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_gradcheck_char_lstm_without_carried_state(num_layers):
    lm = char_lstm(7, embedding_dim=3, hidden_size=4, num_layers=num_layers, stateful=False,
                   dtype=F64, seed=1)
    ids = np.random.default_rng(0).integers(0, 7, (2, 5))
    assert_gradients_match(lm, ids)


def test_gradcheck_char_lstm_with_initial_states():
    """The stateful model from a reset state, given (h0, c0) explicitly: also checks dh0, dc0."""
    lm = char_lstm(6, embedding_dim=3, hidden_size=4, num_layers=2, dtype=F64, seed=2)
    lm.reset_state()
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 6, (3, 4))
    h0, c0 = rng.standard_normal((2, 2, 3, 4)) * 0.5
    report = assert_gradients_match(lm, ids, forward_kwargs={"h0": h0, "c0": c0})
    assert {"h0", "c0"} <= {t.name for t in report.tensors}


def test_gradcheck_seq2seq():
    s2s = Seq2Seq(6, 5, embedding_dim=3, hidden_size=4, dtype=F64, seed=0)
    rng = np.random.default_rng(0)
    src, tgt_in = rng.integers(0, 6, (3, 4)), rng.integers(0, 5, (3, 3))
    report = assert_gradients_match(s2s, (src, tgt_in),
                              forward_kwargs={"src_lengths": np.array([4, 2, 3])})
    names = {t.name for t in report.tensors}
    assert {"encoder.weight_ih", "src_embedding.weight", "decoder.weight_hh"} <= names


@pytest.mark.parametrize("cell", ["lstm", "rnn", "gru"])
def test_gradcheck_sequence_classifier(cell):
    clf = SequenceClassifier(6, 3, embedding_dim=3, hidden_size=4, cell=cell, dtype=F64)
    ids = np.random.default_rng(0).integers(0, 6, (3, 5))
    assert_gradients_match(clf, ids, forward_kwargs={"lengths": np.array([5, 2, 3])})


def test_seq2seq_encoder_learns_only_through_the_decoder_initial_state():
    """The encoder's gradient is exactly what enters through the decoder's (dh0, dc0): zero
    them and the encoder gets nothing; the source affects the logits only through them."""
    s2s = Seq2Seq(6, 5, embedding_dim=3, hidden_size=4, dtype=F64)
    rng = np.random.default_rng(0)
    src, tgt_in = rng.integers(0, 6, (2, 4)), rng.integers(0, 5, (2, 3))
    y = s2s(src, tgt_in)
    s2s.zero_grad()
    s2s.backward(np.ones_like(y))
    assert np.abs(s2s.grads["encoder.weight_ih"]).sum() > 0
    dh0, dc0 = s2s.decoder.dh0.copy(), s2s.decoder.dc0.copy()
    # Encoder backward by hand from the decoder's initial-state gradients gives the same.
    enc = s2s.encoder
    expected = {k: v.copy() for k, v in enc.grads.items()}
    enc.zero_grad()
    enc.forward(s2s.src_embedding(src))
    enc.backward(np.zeros_like(dh0), dh_T=dh0, dc_T=dc0)
    for k in expected:
        np.testing.assert_allclose(enc.grads[k], expected[k], rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------------------------
# LeNet-5 against PyTorch with the same weights
# ---------------------------------------------------------------------------------------------

def test_lenet5_matches_torch_forward_and_gradients():
    torch = torch_or_skip()
    nn = torch.nn
    net = lenet5(seed=5)
    ref = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                        nn.Linear(84, 10))
    ref.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in net.params.items()})
    x = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
    t = np.array([3, 1, 4, 1])
    logits = net(x)
    loss = lk.CrossEntropy()
    value = loss.forward(logits, t)
    net.zero_grad()
    net.backward(loss.backward())
    ref_logits = ref(torch.from_numpy(x))
    ref_loss = nn.functional.cross_entropy(ref_logits, torch.from_numpy(t))
    ref_loss.backward()
    np.testing.assert_allclose(logits, ref_logits.detach().numpy(), rtol=1e-4, atol=1e-5)
    assert value == pytest.approx(ref_loss.item(), rel=1e-5)
    for name, p in ref.named_parameters():
        np.testing.assert_allclose(net.grads[name], p.grad.numpy(), rtol=1e-3, atol=1e-6,
                                   err_msg=name)


# ---------------------------------------------------------------------------------------------
# Character LSTM: carried state, sampling
# ---------------------------------------------------------------------------------------------

def test_carried_state_equals_the_unrolled_sequence():
    """Windows fed one after another with the carried state give exactly the logits of the
    whole sequence in one forward (the reference: the same model, stateful=False)."""
    ids = np.random.default_rng(0).integers(0, 9, (2, 12))
    lm = char_lstm(9, embedding_dim=4, hidden_size=6, num_layers=2, dtype=F64)
    whole = char_lstm(9, embedding_dim=4, hidden_size=6, num_layers=2, stateful=False,
                      dtype=F64)(ids)
    parts = [lm(ids[:, a:a + 5]) for a in (0, 5, 10)]
    np.testing.assert_allclose(np.concatenate(parts, axis=1), whole, rtol=1e-12, atol=1e-13)
    lm.reset_state()
    np.testing.assert_allclose(lm(ids[:, :5]), whole[:, :5], rtol=1e-12)
    with pytest.raises(ValueError, match="reset_state"):
        lm(ids[:1, :5])                                  # batch size changed while carrying


def test_carried_state_is_detached_and_separate_per_mode():
    """backward after a carried window = backward of a fresh model given that state as h0/c0
    (no gradient flows into the previous window); eval() keeps its own state."""
    rng = np.random.default_rng(1)
    w1, w2 = rng.integers(0, 7, (2, 2, 4))
    lm = char_lstm(7, embedding_dim=3, hidden_size=5, dtype=F64, seed=3)
    lm(w1)
    h, c = (s.copy() for s in lm.state)
    lm.eval()
    assert lm.state is None
    lm(w2)                                               # evaluation stream: training untouched
    lm.train()
    np.testing.assert_array_equal(lm.state[0], h)
    dy = rng.standard_normal((2, 4, 7))
    lm.zero_grad()
    lm(w2)
    lm.backward(dy)
    fresh = char_lstm(7, embedding_dim=3, hidden_size=5, stateful=False, dtype=F64, seed=3)
    fresh(w2, h0=h, c0=c)
    fresh.backward(dy)
    for k in lm.grads:
        np.testing.assert_allclose(lm.grads[k], fresh.grads[k], rtol=1e-12, atol=1e-14)


def test_state_resets_zero_the_carried_state_of_drawn_rows_in_training_only():
    """state_resets = 1: every training window starts from zeros (each window's logits equal a
    fresh stateless model's); = 0: the state is carried; eval never resets. In between, a row is
    either exactly carried or exactly reset, and both happen."""
    rng = np.random.default_rng(4)
    windows = rng.integers(0, 9, (6, 40, 5))
    make = lambda **kw: char_lstm(9, embedding_dim=3, hidden_size=4, dtype=F64, seed=2, **kw)
    fresh = make(stateful=False)
    always = make(state_resets=1.0)
    for w in windows:
        np.testing.assert_allclose(always(w), fresh(w), rtol=1e-12, atol=1e-14)
    always.eval()                                         # evaluation carries the state
    always(windows[0])
    assert not np.allclose(always(windows[1]), fresh(windows[1]))
    half = make(state_resets=0.5)
    half(windows[0])
    counts = Counter()
    for w in windows[1:]:
        h, c = (s.copy() for s in half.state)
        got = half(w)
        warm, cold = fresh(w, h0=h, c0=c), fresh(w)
        for r in range(len(w)):
            counts["carried" if np.allclose(got[r], warm[r], rtol=1e-12, atol=1e-14) else
                   "reset" if np.allclose(got[r], cold[r], rtol=1e-12, atol=1e-14) else
                   "neither"] += 1
    assert counts["neither"] == 0 and counts["carried"] > 20 and counts["reset"] > 20, counts
    with pytest.raises(ValueError, match="state_resets"):
        make(state_resets=1.5)
    assert make(state_resets=0.25).spec["kwargs"]["state_resets"] == 0.25


def test_sampling_is_deterministic_and_leaves_training_state_alone():
    lm = char_lstm(8, embedding_dim=4, hidden_size=6, dtype=F64)
    ids = np.random.default_rng(0).integers(0, 8, (2, 5))
    y = lm(ids)
    state = [s.copy() for s in lm.state]
    a = lm.sample(30, seed=7, temperature=0.8)
    b = lm.sample(30, seed=7, temperature=0.8)
    assert a.dtype == np.int64 and a.shape == (30,)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, lm.sample(30, seed=8, temperature=0.8))
    assert lm.sample(0, seed=1).shape == (0,)
    for s, s0 in zip(lm.state, state):
        np.testing.assert_array_equal(s, s0)
    # a pending backward still belongs to the forward before the sampling
    lm.zero_grad()
    lm.backward(np.ones_like(y))
    g = {k: v.copy() for k, v in lm.grads.items()}
    lm.reset_state()
    lm.zero_grad()
    lm(ids)
    lm.backward(np.ones_like(y))
    for k in g:
        np.testing.assert_allclose(lm.grads[k], g[k], rtol=1e-12)


def test_sampling_draws_from_softmax_of_logits_over_temperature():
    """The weighted die: first draws over many seeds follow softmax(z / T) of the logits after
    the prompt; top_k = 1 is the greedy chain, the same for every seed."""
    lm = char_lstm(5, embedding_dim=3, hidden_size=4, stateful=False, dtype=F64, seed=4)
    lm.head.params["weight"] *= 8                        # a peaked, non-uniform distribution
    prompt = np.array([1, 2])
    z = lm(prompt[None, :])[0, -1]
    for temperature in (0.7, 2.0):
        p = np.exp(z / temperature - np.max(z / temperature))
        p /= p.sum()
        draws = [lm.sample(1, prompt_ids=prompt, temperature=temperature, seed=s)[0]
                 for s in range(2000)]
        freq = np.bincount(draws, minlength=5) / 2000
        np.testing.assert_allclose(freq, p, atol=0.04)         # ~3.6 standard errors
    greedy, ctx = [], list(prompt)
    for _ in range(6):
        greedy.append(int(np.argmax(lm(np.array([ctx]))[0, -1])))
        ctx.append(greedy[-1])
    for s in (0, 1):
        np.testing.assert_array_equal(lm.sample(6, prompt_ids=prompt, top_k=1, seed=s), greedy)


def test_sampling_errors():
    lm = char_lstm(5, embedding_dim=3, hidden_size=4)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        lm.sample(3, temperature=0)
    with pytest.raises(ValueError, match="temperature"):
        lm.sample(3, temperature=-1.0)
    with pytest.raises(ValueError, match=r"top_k must be None or an integer in \[1, 5\]"):
        lm.sample(3, top_k=6)
    with pytest.raises(ValueError, match="prompt_ids in"):
        lm.sample(3, prompt_ids=np.array([9]))
    with pytest.raises(ValueError, match="length must be a non-negative integer"):
        lm.sample(-1)


# ---------------------------------------------------------------------------------------------
# n-gram
# ---------------------------------------------------------------------------------------------

def test_ngram_bigram_worked_example():
    """V = 2, n = 2, k = 1, training ids 0 1 0 1 1 (contexts: <s>, 0, 1, 0, 1).
    Counts: (<s>,0)=1, (0,1)=2, (1,0)=1, (1,1)=1. Held-out 1 1 0:
    P(1|<s>) = (0+1)/(1+2) = 1/3, P(1|1) = (1+1)/(2+2) = 1/2, P(0|1) = (1+1)/(2+2) = 1/2."""
    m = NGram(2, k=1.0, vocab_size=2).fit(np.array([0, 1, 0, 1, 1]))
    expected = np.log([1 / 3, 1 / 2, 1 / 2])
    np.testing.assert_allclose(m.token_log_probs(np.array([1, 1, 0])), expected, rtol=1e-14)
    assert m.log_prob(np.array([1, 1, 0])) == pytest.approx(np.log(1 / 12), rel=1e-14)
    assert m.perplexity(np.array([1, 1, 0])) == pytest.approx(12 ** (1 / 3), rel=1e-14)
    np.testing.assert_allclose(m.next_distribution(np.array([0])), [1 / 4, 3 / 4])


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_ngram_perplexity_against_plain_python_counts(n):
    """An independent reference: tuples counted with collections.Counter, start padding '<s>'."""
    text_train, text_test = "abracadabra cabbage barracuda", "a bad cab abra"
    chars = sorted(set(text_train + text_test))
    V, k = len(chars), 0.3
    enc = lambda s: np.array([chars.index(ch) for ch in s])

    def contexts(s):
        padded = ["<s>"] * (n - 1) + list(s)
        return [(tuple(padded[i:i + n - 1]), padded[i + n - 1]) for i in range(len(s))]

    grams = Counter(contexts(text_train))
    ctx = Counter(c for c, _ in contexts(text_train))
    logp = [math.log((grams[(c, ch)] + k) / (ctx[c] + k * V)) for c, ch in contexts(text_test)]
    m = NGram(n, k=k, vocab_size=V).fit(enc(text_train))
    np.testing.assert_allclose(m.token_log_probs(enc(text_test)), logp, rtol=1e-12)
    assert m.perplexity(enc(text_test)) == pytest.approx(math.exp(-np.mean(logp)), rel=1e-12)
    assert sum(m.to_arrays()["counts"]) == len(text_train)


def test_ngram_sampling_is_deterministic_and_follows_the_counts():
    ids = np.tile(np.arange(4), 50)                           # 0 1 2 3 0 1 2 3 ...
    m = NGram(3, k=1e-9, vocab_size=4).fit(ids)
    np.testing.assert_array_equal(m.sample(8, prompt_ids=np.array([1, 2]), seed=0),
                                  [3, 0, 1, 2, 3, 0, 1, 2])
    loose = NGram(2, k=1.0, vocab_size=4).fit(ids)
    a = loose.sample(40, seed=3, temperature=1.5)
    np.testing.assert_array_equal(a, loose.sample(40, seed=3, temperature=1.5))
    assert not np.array_equal(a, loose.sample(40, seed=4, temperature=1.5))
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        loose.sample(3, temperature=0.0)


def test_ngram_errors():
    with pytest.raises(ValueError, match="k must be a finite number > 0"):
        NGram(2, k=0, vocab_size=3)
    with pytest.raises(ValueError, match="must fit in int64"):
        NGram(12, vocab_size=100)
    with pytest.raises(RuntimeError, match="call fit"):
        NGram(2, vocab_size=3).perplexity(np.array([1]))
    with pytest.raises(ValueError, match=r"ids in \[0, 3\)"):
        NGram(2, vocab_size=3).fit(np.array([0, 3]))


def test_ngram_counts_a_large_text_sparsely():
    """n = 5 on 1 M ids of a 76-symbol vocabulary: sparse storage (distinct n-grams only)."""
    ids = np.random.default_rng(0).integers(0, 76, 1_000_000)
    m = NGram(5, k=0.03, vocab_size=76).fit(ids)
    assert m.codes.size <= ids.size and m.counts.sum() == ids.size


# ---------------------------------------------------------------------------------------------
# Training: the models learn
# ---------------------------------------------------------------------------------------------

def _digits_28():
    """scikit-learn's 8x8 digits (the data extra) upsampled 3x and padded to 28x28."""
    data = pytest.importorskip("layerkit.data")
    try:
        split = data.load_digits()
    except data.MissingExtraError as e:
        pytest.skip(str(e))
    up = lambda x: np.pad(np.kron(x, np.ones((1, 1, 3, 3), np.float32)),
                          ((0, 0), (0, 0), (2, 2), (2, 2)))
    return up(split.x_train), split.y_train, up(split.x_test), split.y_test


@interpreted
def test_lenet5_learns_digits():
    x, y, x_test, y_test = _digits_28()
    net, loss = lenet5(seed=0), lk.CrossEntropy()
    from layerkit.data import batches as lk_batches
    order = [(xb, yb) for epoch in range(2) for xb, yb in lk_batches(x, y, 64, seed=epoch)]
    it = iter(order)

    def step():
        xb, yb = next(it)
        value = loss.forward(net.forward(xb), yb)
        net.backward(loss.backward())
        return value

    losses = train(net, step, steps=len(order), lr=2e-3, max_norm=5.0)
    accuracy = np.mean(net.predict(x_test) == y_test)
    assert np.mean(losses[-5:]) < 0.5, losses[-5:]          # from log 10 = 2.3
    assert accuracy > 0.85, accuracy                         # chance: 0.10


TEXT = ("to be, or not to be, that is the question: whether 'tis nobler in the mind to suffer "
        "the slings and arrows of outrageous fortune, or to take arms against a sea of troubles "
        "and by opposing end them. to die, to sleep; no more; and by a sleep to say we end the "
        "heart-ache and the thousand natural shocks that flesh is heir to. ") * 4


def test_char_lstm_learns_text_with_truncated_bptt():
    from layerkit.data import CharVocab, sequence_batches
    vocab = CharVocab.build(TEXT)
    ids = vocab.encode(TEXT)
    V = len(vocab)
    lm, loss = char_lstm(V, embedding_dim=16, hidden_size=64, seed=0), lk.CrossEntropy()
    windows = list(sequence_batches(ids, 8, 25, drop_last=True))
    it = iter(windows * 20)
    count = [0]

    def step():
        if count[0] % len(windows) == 0:
            lm.reset_state()                                  # a new pass over the text
        count[0] += 1
        inputs, targets = next(it)
        value = loss.forward(lm.forward(inputs), targets)
        lm.backward(loss.backward())
        return value

    losses = train(lm, step, steps=len(windows) * 20, lr=1e-2, max_norm=1.0)
    unigram = NGram(1, vocab_size=V).fit(ids).perplexity(ids)
    first, last = np.mean(losses[:len(windows)]), np.mean(losses[-len(windows):])
    assert losses[0] == pytest.approx(math.log(V), abs=0.3)  # starts near uniform
    assert last < 0.5 * first and last < math.log(unigram) - 1.0, (first, last)
    sample = vocab.decode(lm.sample(60, prompt_ids=vocab.encode("to be"), seed=0,
                                    temperature=0.5))
    assert len(sample) == 60


@interpreted
def test_seq2seq_learns_to_reverse_short_digit_strings():
    from layerkit.data import DigitTask, seq2seq_digits
    s2s = Seq2Seq(13, 13, embedding_dim=16, hidden_size=64, seed=0)
    loss = lk.CrossEntropy(ignore_index=DigitTask.PAD)   # mean over the non-PAD positions
    step_no = [0]

    def step():
        step_no[0] += 1
        b = seq2seq_digits(64, max_len=4, seed=step_no[0])
        tgt_in, tgt_out = b.target[:, :-1], b.target[:, 1:]
        logits = s2s.forward(b.source, tgt_in, b.source_lengths)
        value = loss.forward(logits, tgt_out)
        s2s.backward(loss.backward())
        return value

    losses = train(s2s, step, steps=400, lr=5e-3)
    test = seq2seq_digits(500, max_len=4, seed=10 ** 6)
    out = s2s.greedy_decode(test.source, 6, DigitTask.BOS, DigitTask.EOS, test.source_lengths)
    got = [DigitTask.decode(row) for row in out]
    want = [DigitTask.decode(row) for row in test.target]
    ended = [DigitTask.EOS in row for row in out]
    accuracy = np.mean([g == w and e for g, w, e in zip(got, want, ended)])
    assert accuracy >= 0.9, (accuracy, losses[-5:])


def test_sequence_classifier_learns_contains_token_3_with_padding():
    """Label: does the sequence contain token 3 within its length? The padding after the end is
    filled with 3s, so a model that ignored ``lengths`` would see a 3 in every sequence."""
    rng = np.random.default_rng(0)

    def make(n):
        lengths = rng.integers(2, 9, n)
        ids = rng.integers(0, 6, (n, 8))
        # half the sequences avoid 3 altogether within their length
        no3 = rng.random(n) < 0.5
        ids[no3] = rng.choice([0, 1, 2, 4, 5], size=(no3.sum(), 8))
        ids[np.arange(8)[None, :] >= lengths[:, None]] = 3
        label = np.array([3 in row[:m] for row, m in zip(ids, lengths)], dtype=np.int64)
        return ids, lengths, label

    x, lengths, y = make(256)
    x_test, len_test, y_test = make(512)
    for cell in ("lstm", "gru"):
        clf, loss = SequenceClassifier(6, 2, embedding_dim=8, hidden_size=24, cell=cell,
                                       seed=1), lk.CrossEntropy()

        def step():
            value = loss.forward(clf.forward(x, lengths), y)
            clf.backward(loss.backward())
            return value

        losses = train(clf, step, steps=150, lr=1e-2)
        accuracy = np.mean(np.argmax(clf(x_test, len_test), axis=1) == y_test)
        assert losses[-1] < 0.2, (cell, losses[-1])
        assert accuracy > 0.95, (cell, accuracy)
