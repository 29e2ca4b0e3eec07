"""The recurrent layers' one-step API (``layer.step``, ``layer.cell()``) and the fused step
kernels: step by step they reproduce forward and PyTorch's cells; bad input is refused with the
layer's name; sampling and decoding through steps keep the probabilities of forward."""

import numpy as np
import pytest

import layerkit as lk
from layerkit.kernels.recurrent_step import gru_cell, lstm_cell, rnn_cell
from layerkit.models import CaptionNet, Seq2Seq, char_lstm

from helpers import compiled, needs_data, torch_or_skip

CELLS = [(lk.RNN, {}), (lk.RNN, {"nonlinearity": "relu"}), (lk.LSTM, {}),
         (lk.LSTM, {"forget_bias": 0.7}), (lk.GRU, {})]
IDS = ["rnn-tanh", "rnn-relu", "lstm", "lstm-forget-bias", "gru"]


def _layer(cls, kw, dtype=np.float64, d=5, h=6, seed=0):
    """A layer with every parameter drawn (nonzero biases, so b_hn's place matters)."""
    layer = cls(d, h, dtype=dtype, seed=seed, **kw)
    rng = np.random.default_rng(seed + 100)
    for name, p in layer.params.items():
        p[...] = 0.6 * rng.standard_normal(p.shape)
    return layer


def _run_steps(step, layer, x, h0, c0):
    """Every step's h (N, T, H) and the final state(s), feeding ``step`` one x_t at a time."""
    h, c, out = h0, c0, []
    for t in range(x.shape[1]):
        if layer.has_cell:
            h, c = step(x[:, t], h, c)
        else:
            h = step(x[:, t], h)
        out.append(h)
    return np.stack(out, axis=1), h, c


@pytest.mark.parametrize("n", [0, 1, 3, 12])
@pytest.mark.parametrize("cls, kw", CELLS, ids=IDS)
def test_steps_reproduce_forward_float64(cls, kw, n):
    layer = _layer(cls, kw)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, 6, 5))
    h0 = rng.standard_normal((n, 6))
    c0 = rng.standard_normal((n, 6)) if layer.has_cell else None
    ref = layer.forward(x, h0, c0) if layer.has_cell else layer.forward(x, h0)
    ys, h, c = _run_steps(layer.cell().step, layer, x, h0, c0)
    assert ys.dtype == np.float64 and ys.shape == (n, 6, 6)
    np.testing.assert_allclose(ys, ref[0], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(h, ref[1], rtol=1e-12, atol=1e-13)
    if layer.has_cell:
        np.testing.assert_allclose(c, ref[2], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("n", [0, 1, 3, 12])
@pytest.mark.parametrize("cls, kw", CELLS, ids=IDS)
def test_run_gives_forwards_final_state_with_and_without_lengths(cls, kw, n):
    """Both paths: the fused kernel (few rows) and one input product then numpy steps (12)."""
    layer = _layer(cls, kw)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((n, 5, 5))
    h0 = rng.standard_normal((n, 6))
    c0 = rng.standard_normal((n, 6)) if layer.has_cell else None
    cell = layer.cell()
    for lengths in (None, rng.integers(1, 6, size=n)):
        states = (h0, c0) if layer.has_cell else (h0,)
        ref = layer.forward(x, *states, lengths=lengths)
        got = cell.run(x, *states, lengths=lengths)
        got = got if layer.has_cell else (got,)
        for g, r in zip(got, ref[1:]):
            assert g.shape == (n, 6) and g.dtype == np.float64
            np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-13)
    zero = cell.run(x)                                  # None: zero initial states
    ref = layer.forward(x)
    np.testing.assert_allclose(zero[0] if layer.has_cell else zero, ref[1], rtol=1e-12,
                               atol=1e-13)


def test_run_rejects_bad_inputs_with_the_layers_name():
    cell = _layer(lk.LSTM, {}).cell()
    with pytest.raises(ValueError, match=r"LSTM\(5, 6.*\.run: expected x of shape \(N, T, 5\)"):
        cell.run(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"\.run: expected x of shape \(N, T, 5\) with T ≥ 1"):
        cell.run(np.zeros((2, 0, 5)))
    with pytest.raises(ValueError, match=r"\.run: lengths must lie in \[1, T\] = \[1, 3\]"):
        cell.run(np.zeros((2, 3, 5)), lengths=np.array([1, 4]))
    with pytest.raises(ValueError, match=r"expected h of shape \(2, 6\), got \(2, 5\)"):
        cell.run(np.zeros((2, 3, 5)), np.zeros((2, 5)))
    with pytest.raises(TypeError, match=r"GRU.*\.run: a GRU has no cell state"):
        _layer(lk.GRU, {}).cell().run(np.zeros((2, 3, 5)), None, np.zeros((2, 6)))


@pytest.mark.parametrize("n", [1, 4, 9])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls, kw", CELLS, ids=IDS)
def test_fused_kernel_matches_a_plain_loop(cls, kw, dtype, n):
    """The kernels (called directly, whatever the batch size) against a numpy transcription of
    the layer's equations in float64."""
    layer = _layer(cls, kw, dtype=dtype)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((n, 5)).astype(dtype)
    h = rng.standard_normal((n, 6)).astype(dtype)
    c = rng.standard_normal((n, 6)).astype(dtype)
    p = {k: v.astype(np.float64) for k, v in layer.params.items()}
    a = x.astype(np.float64) @ p["weight_ih"].T + p["bias_ih"]
    r = h.astype(np.float64) @ p["weight_hh"].T + p["bias_hh"]
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))
    cell = layer.cell()
    h_out = np.empty_like(h)
    H = 6
    if cls is lk.LSTM:
        i, f, g, o = np.split(a + r, 4, axis=1)
        c_ref = sig(f) * c + sig(i) * np.tanh(g)
        ref = sig(o) * np.tanh(c_ref)
        c_out = np.empty_like(c)
        lstm_cell(x, h, c, cell.w_ih_t, cell.w_hh_t, cell.bias, h_out, c_out)
    elif cls is lk.GRU:
        rr = sig(a[:, :H] + r[:, :H])
        z = sig(a[:, H:2 * H] + r[:, H:2 * H])
        nn = np.tanh(a[:, 2 * H:] + rr * r[:, 2 * H:])
        ref = (1 - z) * nn + z * h
        gru_cell(x, h, cell.w_ih_t, cell.w_hh_t, cell.bias, cell.b_hn, h_out)
    else:
        pre = a + r
        ref = np.maximum(pre, 0) if cell.relu else np.tanh(pre)
        rnn_cell(x, h, cell.w_ih_t, cell.w_hh_t, cell.bias, cell.relu, h_out)
    tol = 1e-12 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(h_out, ref, rtol=tol, atol=tol)
    if cls is lk.LSTM:
        np.testing.assert_allclose(c_out, c_ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("cls, kw", CELLS, ids=IDS)
def test_step_result_has_the_layers_dtype_and_float32_is_close(cls, kw):
    layer = _layer(cls, kw, dtype=np.float32)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 5))                       # float64 input, float32 layer
    ref = layer.forward(x.astype(np.float32))
    ys, h, _ = _run_steps(layer.step, layer, x, None, None)
    assert ys.dtype == np.float32 and h.dtype == np.float32
    np.testing.assert_allclose(ys, ref[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls, kw", CELLS, ids=IDS)
def test_step_keeps_no_cache_and_leaves_a_pending_backward_alone(cls, kw):
    layer = _layer(cls, kw)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 5, 5))
    y = layer.forward(x)[0]
    dy = rng.standard_normal(y.shape)
    layer.zero_grad()
    dx_ref = layer.backward(dy)
    grads_ref = {k: g.copy() for k, g in layer.grads.items()}
    layer.forward(x)
    layer.step(rng.standard_normal((2, 5)))                 # another batch size in between
    layer.cell().step(rng.standard_normal((9, 5)))
    layer.zero_grad()
    np.testing.assert_array_equal(layer.backward(dy), dx_ref)
    for k, g in layer.grads.items():
        np.testing.assert_array_equal(g, grads_ref[k])


def test_a_cell_is_a_snapshot_of_the_weights():
    layer = _layer(lk.GRU, {})
    x = np.ones((1, 5))
    cell = layer.cell()
    before = cell.step(x)
    layer.params["weight_ih"] += 1.0
    np.testing.assert_array_equal(cell.step(x), before)
    assert not np.allclose(layer.step(x), before)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_against_torch_cells(kind):
    torch = torch_or_skip()
    layer = _layer(getattr(lk, kind), {}, d=7, h=5, seed=5)
    tcell = {"RNN": torch.nn.RNNCell, "LSTM": torch.nn.LSTMCell, "GRU": torch.nn.GRUCell}[kind](
        7, 5).double()
    with torch.no_grad():
        for name, p in layer.params.items():
            getattr(tcell, name).copy_(torch.from_numpy(p))
    rng = np.random.default_rng(6)
    x, h, c = (rng.standard_normal((n, d)) for n, d in ((3, 7), (3, 5), (3, 5)))
    cell = layer.cell()
    with torch.no_grad():
        if kind == "LSTM":
            ht, ct = tcell(torch.from_numpy(x), (torch.from_numpy(h), torch.from_numpy(c)))
            h1, c1 = cell.step(x, h, c)
            np.testing.assert_allclose(c1, ct.numpy(), rtol=1e-12, atol=1e-13)
        else:
            ht = tcell(torch.from_numpy(x), torch.from_numpy(h))
            h1 = cell.step(x, h)
    np.testing.assert_allclose(h1, ht.numpy(), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("cls, kw", CELLS, ids=IDS)
def test_bad_inputs_name_the_layer(cls, kw):
    layer = _layer(cls, kw)
    cell = layer.cell()
    name = type(layer).__name__
    with pytest.raises(ValueError, match=rf"{name}\(5, 6.*\.step: expected x_t of shape \(N, 5\), "
                                         r"got \(2, 4\)"):
        cell.step(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"x_t of shape \(N, 5\), got \(1, 2, 5\)"):
        layer.step(np.zeros((1, 2, 5)))
    with pytest.raises(TypeError, match=rf"{name}.*x_t of dtype float32 or float64, got int64"):
        cell.step(np.zeros((2, 5), dtype=np.int64))
    with pytest.raises(TypeError, match="expected x_t to be a numpy array, got list"):
        cell.step([[0.0] * 5])
    with pytest.raises(ValueError, match=rf"{name}.*expected h of shape \(2, 6\), got \(3, 6\)"):
        cell.step(np.zeros((2, 5)), np.zeros((3, 6)))
    with pytest.raises(TypeError, match=rf"{name}.*expected h of dtype float32 or float64"):
        cell.step(np.zeros((2, 5)), np.zeros((2, 6), dtype=np.float16))
    if layer.has_cell:
        with pytest.raises(ValueError, match=rf"{name}.*expected c of shape \(2, 6\), got \(2,\)"):
            cell.step(np.zeros((2, 5)), None, np.zeros(2))
    else:
        with pytest.raises(TypeError, match=rf"{name}.*has no cell state"):
            cell.step(np.zeros((2, 5)), None, np.zeros((2, 6)))
    with pytest.raises(TypeError, match="RecurrentCell: expected an RNN, LSTM or GRU"):
        lk.RecurrentCell(lk.Linear(2, 3))


@pytest.mark.parametrize("layers", [1, 2])
def test_sampled_ids_have_the_probabilities_of_forward(layers):
    """Each id drawn through steps comes from the distribution that forward over the prompt and
    the ids before it gives (float64)."""
    model = char_lstm(11, embedding_dim=6, hidden_size=9, num_layers=layers, dtype=np.float64,
                      seed=3, stateful=False)
    rng = np.random.default_rng(7)
    for name, p in model.params.items():
        if "bias" in name:
            p[...] = 0.3 * rng.standard_normal(p.shape)
    prompt = np.array([4, 1, 7])
    for kwargs in ({}, {"temperature": 0.7, "top_k": 4}):
        ids, probs = model.sample(25, prompt_ids=prompt, seed=5, return_probs=True, **kwargs)
        np.testing.assert_array_equal(model.sample(25, prompt_ids=prompt, seed=5, **kwargs), ids)
        logits = model.forward(np.concatenate([prompt, ids[:-1]])[None, :])[0, len(prompt) - 1:]
        z = logits / kwargs.get("temperature", 1.0)
        if "top_k" in kwargs:
            kth = np.sort(z, axis=1)[:, -kwargs["top_k"]][:, None]
            z = np.where(z >= kth, z, -np.inf)
        ref = np.exp(z - z.max(axis=1, keepdims=True))
        ref /= ref.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(probs, ref, rtol=1e-10, atol=1e-14)
        assert np.all(ref[np.arange(25), ids] > 0)


def test_greedy_decode_equals_argmax_of_forward_on_its_own_output():
    model = Seq2Seq(9, 8, embedding_dim=5, hidden_size=7, dtype=np.float64, seed=2)
    rng = np.random.default_rng(8)
    src = rng.integers(0, 9, size=(6, 4))
    lengths = np.array([4, 2, 3, 1, 4, 4])
    out = model.greedy_decode(src, 5, bos=1, eos=2, src_lengths=lengths, pad=0)
    tgt_in = np.concatenate([np.ones((6, 1), dtype=np.int64), out[:, :-1]], axis=1)
    ref = np.argmax(model.forward(src, tgt_in, src_lengths=lengths), axis=-1)
    for n in range(6):                               # up to and including each row's first EOS
        stop = np.flatnonzero(ref[n] == 2)
        end = stop[0] + 1 if stop.size else 5
        np.testing.assert_array_equal(out[n, :end], ref[n, :end])
        assert np.all(out[n, end:] == 0)


@pytest.mark.parametrize("feed", [True, False])
def test_caption_beam_scores_are_forward_log_probs(feed):
    model = CaptionNet(7, image_shape=(1, 8, 8), channels=(2,), feature_size=6,
                       embedding_dim=4, hidden_size=5, feed_features=feed, dtype=np.float64,
                       seed=1)
    images = np.random.default_rng(9).standard_normal((3, 1, 8, 8))
    ids, scores = model.beam_decode(images, 4, bos=1, eos=2, beam_size=3, return_scores=True)
    captions = np.concatenate([np.ones((3, 1), dtype=np.int64), ids], axis=1)
    np.testing.assert_allclose(scores, model.log_prob(images, captions), rtol=1e-10)


def test_cli_samples_a_word_lm_checkpoint(tmp_path, capsys):
    from layerkit.checkpoint import save
    from layerkit.cli import main
    words = ["<unk>", "the", "king", ",", "and", "queen", "."]
    out = str(tmp_path / "words.npz")
    save(char_lstm(len(words), embedding_dim=4, hidden_size=8, seed=1), out,
         meta={"recipe": "word-lstm", "words": words})
    texts = []
    for seed in (3, 3, 4):
        assert main(["sample", out, "--prompt", "The KING said", "--length", "12",
                     "--seed", str(seed)]) == 0
        texts.append(capsys.readouterr().out.rstrip("\n"))
    assert texts[0] == texts[1] != texts[2]
    head, new = texts[0][:len("The KING said")], texts[0][len("The KING said") + 1:].split(" ")
    assert head == "The KING said" and len(new) == 12 and set(new) <= set(words)
    assert main(["sample", out, "--prompt", "   ", "--length", "3"]) == 2
    assert "holds no words" in capsys.readouterr().err


@needs_data
@compiled
def test_cli_samples_the_word_lstm_recipes_checkpoint(tmp_path, capsys):
    from layerkit.cli import main
    out = str(tmp_path / "word_lstm.npz")
    assert main(["train", "word-lstm", "--max-words", "3000", "--hidden-size", "16",
                 "--embedding-dim", "8", "--batch-size", "4", "--seq-len", "10", "--out", out,
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["sample", out, "--prompt", "to be or", "--length", "15", "--seed", "1"]) == 0
    text = capsys.readouterr().out.split()
    assert text[:3] == ["to", "be", "or"] and len(text) == 3 + 15
