"""RNN, LSTM and GRU: gradient checks, an unrolled BPTT reference, PyTorch, lengths, errors."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import layerkit as lk
from helpers import off_zero, torch_or_skip
from layerkit.testing import assert_gradients_match
from layerkit.layers.activations import Tanh
from layerkit.layers.linear import Linear
from layerkit.layers.recurrent import GRU, LSTM, RNN

F64 = np.float64
CELLS = {"rnn_tanh": (RNN, {}), "rnn_relu": (RNN, {"nonlinearity": "relu"}),
         "lstm": (LSTM, {}), "gru": (GRU, {})}


def _layer(kind, d, h, *, scale=0.5, seed=0, dtype=F64, **kwargs):
    """A layer of the given kind with every parameter (biases too) drawn N(0, scale²)."""
    cls, extra = CELLS[kind]
    layer = cls(d, h, dtype=dtype, seed=seed, **extra, **kwargs)
    rng = np.random.default_rng(seed + 100)
    for k, p in layer.params.items():
        p[...] = scale * rng.standard_normal(p.shape)
    return layer


def _states(kind, rng, n, h):
    s = {"h0": rng.standard_normal((n, h))}
    if kind == "lstm":
        s["c0"] = rng.standard_normal((n, h))
    return s


def _run(layer, x, **kwargs):
    """forward returning (y, h_T, c_T or None) for any of the three layers."""
    out = layer.forward(x, **kwargs)
    return out if len(out) == 3 else (*out, None)


# -- gradient checks -------------------------------------------------------------------------------

@settings(max_examples=20)
@given(kind=st.sampled_from(["rnn_tanh", "lstm", "gru"]), n=st.integers(1, 3),
       t=st.integers(1, 4), d=st.integers(1, 3), h=st.integers(1, 3), seq=st.booleans(),
       with_lengths=st.booleans(), with_h0=st.booleans(), seed=st.integers(0, 2**16))
def test_gradcheck_smooth_cells(kind, n, t, d, h, seq, with_lengths, with_h0, seed):
    rng = np.random.default_rng(seed)
    layer = _layer(kind, d, h, seed=seed % 97, return_sequences=seq)
    # Without h0 a sequence of one step never uses W_hh (a vacuous check): give h0 then.
    with_h0 = with_h0 or t == 1 or with_lengths
    kwargs = _states(kind, rng, n, h) if with_h0 else {}
    if with_lengths:
        kwargs["lengths"] = rng.integers(1, t + 1, size=n)
    report = assert_gradients_match(layer, rng.standard_normal((n, t, d)), forward_kwargs=kwargs,
                              seed=seed)
    names = {r.name for r in report.tensors}
    assert {"x", "weight_ih", "weight_hh", "bias_ih", "bias_hh"} <= names
    assert set(kwargs) - {"lengths"} <= names          # h0 (and c0) checked by name


@settings(max_examples=20)
@given(n=st.integers(1, 3), t=st.integers(1, 4), d=st.integers(1, 3), h=st.integers(1, 3),
       seq=st.booleans(), with_lengths=st.booleans(), seed=st.integers(0, 2**16))
def test_gradcheck_relu_rnn(n, t, d, h, seq, with_lengths, seed):
    """ReLU: inputs far from kinks are not guaranteed for pre-activations, so kinks found by the
    checker are accepted only as reported kinks (never as a hidden pass), everything else must
    pass at the full tolerance."""
    rng = np.random.default_rng(seed)
    layer = _layer("rnn_relu", d, h, seed=seed % 97, return_sequences=seq)
    kwargs = {"h0": off_zero(rng, (n, h))}
    if with_lengths:
        kwargs["lengths"] = rng.integers(1, t + 1, size=n)
    from layerkit import gradcheck
    report = gradcheck(layer, off_zero(rng, (n, t, d)), forward_kwargs=kwargs, seed=seed, tol=1e-7)
    assert not report.problems
    for tc in report.tensors:
        assert tc.status in ("pass", "kink", "vacuous"), report.table()
        if tc.status == "vacuous":          # every unit dead: genuinely zero gradient
            assert tc.max_rel_error == 0.0


def test_gradcheck_relu_rnn_away_from_kinks():
    """A fixed ReLU configuration whose pre-activations all stay ≥ 0.05 away from 0 (half of
    them active): a plain pass with no kinks."""
    rng = np.random.default_rng(0)
    layer = _layer("rnn_relu", 3, 4, scale=0.3, seed=0)
    x, h0 = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 4))
    y, _ = layer(x, h0=h0)
    p = layer.params
    hs = np.concatenate([h0[:, None], y], axis=1)
    pre = x @ p["weight_ih"].T + p["bias_ih"] + hs[:, :-1] @ p["weight_hh"].T + p["bias_hh"]
    assert np.min(np.abs(pre)) > 0.05
    report = assert_gradients_match(layer, x, forward_kwargs={"h0": h0})
    assert all(tc.n_kinks == 0 for tc in report.tensors)


def test_gradcheck_no_bias():
    rng = np.random.default_rng(1)
    for kind in ("rnn_tanh", "lstm", "gru"):
        layer = _layer(kind, 2, 3, bias=False)
        assert "bias_ih" not in layer.params
        assert_gradients_match(layer, rng.standard_normal((2, 3, 2)),
                         forward_kwargs=_states(kind, rng, 2, 3))


# -- independent references ------------------------------------------------------------------------

def test_one_step_rnn_by_hand():
    rng = np.random.default_rng(0)
    layer = _layer("rnn_tanh", 3, 4)
    x, h0 = rng.standard_normal((2, 1, 3)), rng.standard_normal((2, 4))
    y, h_T = layer(x, h0=h0)
    p = layer.params
    expected = np.tanh(x[:, 0] @ p["weight_ih"].T + p["bias_ih"] + h0 @ p["weight_hh"].T
                       + p["bias_hh"])
    np.testing.assert_allclose(y[:, 0], expected, rtol=1e-14, atol=1e-15)
    np.testing.assert_array_equal(h_T, y[:, 0])


def test_bptt_matches_unrolled_linear_tanh_copies():
    """The RNN unrolled as T copies of Linear (input), Linear (recurrent) and Tanh sharing the
    weights; the copies' gradients summed over time must equal the RNN's."""
    rng = np.random.default_rng(1)
    n, t, d, h = 3, 5, 2, 4
    rnn = _layer("rnn_tanh", d, h)
    x, h0 = rng.standard_normal((n, t, d)), rng.standard_normal((n, h))
    dy, dh_T = rng.standard_normal((n, t, h)), rng.standard_normal((n, h))
    y, h_T = rnn(x, h0=h0)
    dx = rnn.backward(dy, dh_T)

    def copy():
        lin_x, lin_h = Linear(d, h, dtype=F64), Linear(h, h, dtype=F64)
        lin_x.params["weight"][...] = rnn.params["weight_ih"]
        lin_x.params["bias"][...] = rnn.params["bias_ih"]
        lin_h.params["weight"][...] = rnn.params["weight_hh"]
        lin_h.params["bias"][...] = rnn.params["bias_hh"]
        return lin_x, lin_h, Tanh()

    copies = [copy() for _ in range(t)]
    state, outs = h0, []
    for step, (lin_x, lin_h, act) in enumerate(copies):
        state = act(lin_x(x[:, step]) + lin_h(state))
        outs.append(state)
    np.testing.assert_allclose(np.stack(outs, 1), y, rtol=1e-13, atol=1e-14)
    dstate, dxs = dh_T, [None] * t
    for step in range(t - 1, -1, -1):
        lin_x, lin_h, act = copies[step]
        da = act.backward(dstate + dy[:, step])
        dxs[step] = lin_x.backward(da)
        dstate = lin_h.backward(da)
    summed = {
        "weight_ih": sum(c[0].grads["weight"] for c in copies),
        "bias_ih": sum(c[0].grads["bias"] for c in copies),
        "weight_hh": sum(c[1].grads["weight"] for c in copies),
        "bias_hh": sum(c[1].grads["bias"] for c in copies),
    }
    for k, g in summed.items():
        np.testing.assert_allclose(rnn.grads[k], g, rtol=1e-12, atol=1e-13, err_msg=k)
    np.testing.assert_allclose(dx, np.stack(dxs, 1), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(rnn.dh0, dstate, rtol=1e-12, atol=1e-13)


# -- PyTorch ---------------------------------------------------------------------------------------

def _torch_layer(torch, layer, kind):
    cls = {"rnn_tanh": torch.nn.RNN, "rnn_relu": torch.nn.RNN, "lstm": torch.nn.LSTM,
           "gru": torch.nn.GRU}[kind]
    kwargs = {"nonlinearity": "relu"} if kind == "rnn_relu" else {}
    tl = cls(layer.input_size, layer.hidden_size, batch_first=True, bias=layer.bias, **kwargs)
    tl = tl.double() if layer.params["weight_ih"].dtype == F64 else tl
    with torch.no_grad():
        for k, p in layer.params.items():
            getattr(tl, k + "_l0").copy_(torch.from_numpy(p))
    return tl


@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
@pytest.mark.parametrize("dtype,rtol,atol", [(np.float64, 1e-11, 1e-12), (np.float32, 2e-4, 2e-5)])
def test_against_torch(kind, dtype, rtol, atol):
    torch = torch_or_skip()
    rng = np.random.default_rng(4)
    n, t, d, h = 3, 6, 4, 5
    layer = _layer(kind, d, h, dtype=dtype)
    tl = _torch_layer(torch, layer, kind)
    x = rng.standard_normal((n, t, d)).astype(dtype)
    st_np = {k: v.astype(dtype) for k, v in _states(kind, rng, n, h).items()}
    y, h_T, c_T = _run(layer, x, **st_np)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dh_T = rng.standard_normal(h_T.shape).astype(dtype)
    finals = [dh_T]
    if kind == "lstm":
        finals.append(rng.standard_normal(c_T.shape).astype(dtype))
    dx = layer.backward(dy, *finals)

    xt = torch.from_numpy(x).requires_grad_(True)
    s_t = {k: torch.from_numpy(v)[None].requires_grad_(True) for k, v in st_np.items()}
    if kind == "lstm":
        yt, (hTt, cTt) = tl(xt, (s_t["h0"], s_t["c0"]))
        loss = (yt * torch.from_numpy(dy)).sum() + (hTt[0] * torch.from_numpy(finals[0])).sum() \
            + (cTt[0] * torch.from_numpy(finals[1])).sum()
        np.testing.assert_allclose(c_T, cTt[0].detach().numpy(), rtol=rtol, atol=atol)
    else:
        yt, hTt = tl(xt, s_t["h0"])
        loss = (yt * torch.from_numpy(dy)).sum() + (hTt[0] * torch.from_numpy(dh_T)).sum()
    loss.backward()
    assert y.dtype == dtype and dx.dtype == dtype
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(h_T, hTt[0].detach().numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(layer.dh0, s_t["h0"].grad[0].numpy(), rtol=rtol, atol=atol)
    if kind == "lstm":
        np.testing.assert_allclose(layer.dc0, s_t["c0"].grad[0].numpy(), rtol=rtol, atol=atol)
    for k, g in layer.grads.items():
        np.testing.assert_allclose(g, getattr(tl, k + "_l0").grad.numpy(), rtol=rtol,
                                   atol=atol * 10, err_msg=k)


@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_float32_matches_float64(kind):
    """float32 runs its own code path (the rational tanh of kernels/tanh.py, vectorised loops:
    H = 37 exercises both the vector body and the remainder); the float64 layer with the same
    weights is the reference, to float32 precision."""
    rng = np.random.default_rng(12)
    n, t, d, h = 5, 7, 6, 37
    ref = _layer(kind, d, h, scale=0.3)
    low = _layer(kind, d, h, scale=0.3, dtype=np.float32)
    for k, p in ref.params.items():
        low.params[k][...] = p                # the float64 layer's weights, rounded
        p[...] = low.params[k]                # and the reference uses exactly those
    x = rng.standard_normal((n, t, d))
    lens = np.array([7, 3, 1, 7, 5])
    states = _states(kind, rng, n, h)
    outs64 = _run(ref, x, lengths=lens, **states)
    outs32 = _run(low, x.astype(np.float32), lengths=lens,
                  **{k: v.astype(np.float32) for k, v in states.items()})
    dy = rng.standard_normal(outs64[0].shape)
    dx64, dx32 = ref.backward(dy), low.backward(dy.astype(np.float32))
    for a32, a64 in [*zip(outs32, outs64), (dx32, dx64), (low.dh0, ref.dh0)]:
        if a64 is not None:
            assert a32.dtype == np.float32
            np.testing.assert_allclose(a32, a64, rtol=1e-4, atol=1e-5)
    for k, g in ref.grads.items():
        np.testing.assert_allclose(low.grads[k], g, rtol=1e-4, atol=1e-4, err_msg=k)


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_torch_last_step_and_default_state(kind):
    """return_sequences=False gives PyTorch's last output; h0=None is a zero state."""
    torch = torch_or_skip()
    rng = np.random.default_rng(5)
    layer = _layer(kind, 3, 4, return_sequences=False)
    tl = _torch_layer(torch, layer, kind)
    x = rng.standard_normal((2, 5, 3))
    y, h_T, _ = _run(layer, x)
    yt = tl(torch.from_numpy(x))[0].detach().numpy()
    np.testing.assert_allclose(y, yt[:, -1], rtol=1e-12, atol=1e-13)
    np.testing.assert_array_equal(y, h_T)
    layer.backward(np.ones_like(y))
    np.testing.assert_array_equal(layer.dh0.shape, (2, 4))


# -- lengths ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
@pytest.mark.parametrize("seq", [True, False])
def test_lengths_equal_separate_runs(kind, seq):
    rng = np.random.default_rng(6)
    n, t, d, h = 4, 5, 3, 4
    layer = _layer(kind, d, h, return_sequences=seq)
    x = rng.standard_normal((n, t, d))
    states = _states(kind, rng, n, h)
    lengths = np.array([5, 1, 3, 2])
    y, h_T, c_T = _run(layer, x, lengths=lengths, **states)
    dy = rng.standard_normal(y.shape)
    dh_T = rng.standard_normal(h_T.shape)
    finals = [dh_T] + ([rng.standard_normal(h_T.shape)] if kind == "lstm" else [])
    layer.zero_grad()
    dx = layer.backward(dy, *finals)
    grads = {k: g.copy() for k, g in layer.grads.items()}
    dh0 = layer.dh0.copy()

    summed = {k: np.zeros_like(g) for k, g in grads.items()}
    for i, L in enumerate(lengths):
        s_i = {k: v[i:i + 1] for k, v in states.items()}
        y_i, h_i, c_i = _run(layer, x[i:i + 1, :L], **s_i)
        np.testing.assert_allclose(h_T[i], h_i[0], rtol=1e-13, atol=1e-14)
        if kind == "lstm":
            np.testing.assert_allclose(c_T[i], c_i[0], rtol=1e-13, atol=1e-14)
        if seq:
            np.testing.assert_allclose(y[i, :L], y_i[0], rtol=1e-13, atol=1e-14)
            assert np.all(y[i, L:] == 0)
            dy_i = dy[i:i + 1, :L]
        else:
            np.testing.assert_allclose(y[i], y_i[0], rtol=1e-13, atol=1e-14)
            dy_i = dy[i:i + 1]
        layer.zero_grad()
        dx_i = layer.backward(dy_i, *[f[i:i + 1] for f in finals])
        np.testing.assert_allclose(dx[i, :L], dx_i[0], rtol=1e-12, atol=1e-13)
        assert np.all(dx[i, L:] == 0)                       # padded steps get no gradient
        np.testing.assert_allclose(dh0[i], layer.dh0[0], rtol=1e-12, atol=1e-13)
        for k in summed:
            summed[k] += layer.grads[k]
    for k in grads:
        np.testing.assert_allclose(grads[k], summed[k], rtol=1e-11, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_padded_steps_do_not_matter(kind):
    """Whatever sits in the padding changes neither outputs, final state nor gradients."""
    rng = np.random.default_rng(7)
    layer = _layer(kind, 2, 3)
    x = rng.standard_normal((3, 4, 2))
    lengths = np.array([2, 4, 1])
    x2 = x.copy()
    for i, L in enumerate(lengths):
        x2[i, L:] = 100 * rng.standard_normal(x2[i, L:].shape)
    out1 = _run(layer, x, lengths=lengths)
    dy = rng.standard_normal(out1[0].shape)
    dx1 = layer.backward(dy)
    g1 = {k: g.copy() for k, g in layer.grads.items()}
    layer.zero_grad()
    out2 = _run(layer, x2, lengths=lengths)
    dx2 = layer.backward(dy)
    for a, b in zip(out1, out2):
        if a is not None:
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(dx1, dx2)
    for k in g1:
        np.testing.assert_allclose(layer.grads[k], g1[k], rtol=1e-13, atol=1e-14)


# -- truncated BPTT --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_truncated_bptt_two_chunks(kind):
    rng = np.random.default_rng(8)
    layer = _layer(kind, 3, 4)
    x = rng.standard_normal((2, 6, 3))
    full = _run(layer, x)
    y1, h1, c1 = _run(layer, x[:, :3])
    carry = {"h0": h1} | ({"c0": c1} if kind == "lstm" else {})
    y2, h2, c2 = _run(layer, x[:, 3:], **carry)
    np.testing.assert_allclose(np.concatenate([y1, y2], 1), full[0], rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(h2, full[1], rtol=1e-13, atol=1e-14)
    # chunk 2's gradients depend only on chunk 2 (chunk 1's backward is never involved)
    dy2 = rng.standard_normal(y2.shape)
    layer.zero_grad()
    dx2 = layer.backward(dy2)
    g2 = {k: g.copy() for k, g in layer.grads.items()}
    fresh = _layer(kind, 3, 4)
    _run(fresh, x[:, 3:], **carry)
    np.testing.assert_array_equal(fresh.backward(dy2), dx2)
    for k in g2:
        np.testing.assert_array_equal(fresh.grads[k], g2[k])
    # ... and chunk 1's backward afterwards uses chunk 1's own cache, not chunk 2's
    _run(layer, x[:, :3])
    layer.zero_grad()
    dx1 = layer.backward(rng.standard_normal(y1.shape))
    assert dx1.shape == (2, 3, 3)


# -- shapes, dtypes, init --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_shapes_dtypes_and_init(kind):
    cls, extra = CELLS[kind]
    layer = cls(3, 4, seed=0, **extra)
    G = {"rnn_tanh": 1, "lstm": 4, "gru": 3}[kind]
    assert layer.params["weight_ih"].shape == (G * 4, 3)
    assert layer.params["weight_hh"].shape == (G * 4, 4)
    assert layer.params["bias_ih"].shape == layer.params["bias_hh"].shape == (G * 4,)
    assert all(p.dtype == np.float32 for p in layer.params.values())
    assert np.all(np.abs(layer.params["weight_ih"]) <= 0.5)          # U(±1/√H)
    for g in range(G):
        block = layer.params["weight_hh"][g * 4:(g + 1) * 4].astype(F64)
        np.testing.assert_allclose(block @ block.T, np.eye(4), atol=1e-5)
    if kind == "lstm":
        np.testing.assert_array_equal(layer.params["bias_ih"][4:8], 1.0)
        np.testing.assert_array_equal(layer.params["bias_ih"][:4], 0.0)
        np.testing.assert_array_equal(layer.params["bias_hh"], 0.0)
        assert LSTM(3, 4, forget_bias=0.0).params["bias_ih"].sum() == 0
    x = np.zeros((2, 5, 3), dtype=np.float64)
    out = layer(x)
    assert out[0].shape == (2, 5, 4) and out[0].dtype == np.float64
    assert all(o.shape == (2, 4) for o in out[1:])
    assert layer(x.astype(np.float32))[0].dtype == np.float32
    assert cls(3, 4, return_sequences=False, **extra)(x)[0].shape == (2, 4)
    np.testing.assert_array_equal(cls(3, 4, seed=1, **extra).params["weight_hh"],
                                  cls(3, 4, seed=1, **extra).params["weight_hh"])


def test_repr():
    assert repr(RNN(3, 4)) == "RNN(3, 4)"
    assert repr(RNN(3, 4, nonlinearity="relu", return_sequences=False)) == \
        "RNN(3, 4, nonlinearity='relu', return_sequences=False)"
    assert repr(LSTM(3, 4, forget_bias=0.0, bias=False)) == "LSTM(3, 4, forget_bias=0, bias=False)"
    assert repr(GRU(2, 5)) == "GRU(2, 5)"


def test_docstrings_state_equations_and_bptt():
    for cls, needle in [(RNN, "h_t = f("), (LSTM, "c_t = f_t ⊙ c_{t−1}"), (GRU, "r_t ⊙ (W_hn")]:
        assert needle in cls.__doc__
        assert "Notes" in cls.__doc__
        assert "δ_allᵀ H_prev_all" in cls.__doc__ or "δ^h_allᵀ H_prev_all" in cls.__doc__
        assert "Truncated backpropagation" in cls.__doc__


# -- errors ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_errors(kind):
    layer = _layer(kind, 3, 4)
    name = type(layer).__name__
    x = np.zeros((2, 5, 3))
    with pytest.raises(ValueError, match=rf"{name}\(3, 4\): expected x of shape \(N, T, 3\), got \(2, 5, 2\)"):
        layer(np.zeros((2, 5, 2)))
    with pytest.raises(ValueError, match=r"expected x of shape \(N, T, 3\), got \(5, 3\)"):
        layer(np.zeros((5, 3)))
    with pytest.raises(TypeError, match="dtype float32 or float64"):
        layer(np.zeros((2, 5, 3), dtype=np.int64))
    with pytest.raises(ValueError, match=r"expected h0 of shape \(2, 4\), got \(1, 4\)"):
        layer(x, h0=np.zeros((1, 4)))
    if kind == "lstm":
        with pytest.raises(ValueError, match=r"expected c0 of shape \(2, 4\), got \(2, 3\)"):
            layer(x, c0=np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, T\] = \[1, 5\]"):
        layer(x, lengths=np.array([0, 5]))
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, T\] = \[1, 5\]"):
        layer(x, lengths=np.array([6, 5]))
    with pytest.raises(ValueError, match=r"expected lengths of shape \(2,\), got \(3,\)"):
        layer(x, lengths=np.array([1, 2, 3]))
    with pytest.raises(TypeError, match="expected lengths of an integer dtype, got float64"):
        layer(x, lengths=np.array([1.0, 2.0]))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        _layer(kind, 3, 4).backward(np.zeros((2, 5, 4)))
    layer(x)
    with pytest.raises(ValueError, match=r"expected dy of shape \(2, 5, 4\)"):
        layer.backward(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"expected dh_T of shape \(2, 4\), got \(4,\)"):
        layer.backward(np.zeros((2, 5, 4)), np.zeros(4))


def test_constructor_errors():
    with pytest.raises(ValueError, match="nonlinearity must be one of 'tanh', 'relu', got 'sigmoid'"):
        RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="hidden_size must be a positive integer, got 0"):
        LSTM(3, 0)
    with pytest.raises(ValueError, match="input_size must be a positive integer"):
        GRU(2.5, 3)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        GRU(2, 3, dtype=np.int32)
    with pytest.raises(ValueError, match="forget_bias must be a number"):
        LSTM(2, 3, forget_bias="one")


def test_gradcheck_reports_missing_state_gradient():
    """The generic checker names a float keyword whose gradient the layer does not provide."""
    from layerkit import gradcheck

    class NoDh0(RNN):
        def backward(self, dy, dh_T=None):
            dx = super().backward(dy, dh_T)
            self.dh0 = None
            return dx

    layer = NoDh0(2, 3, dtype=F64, seed=0)
    report = gradcheck(layer, np.ones((1, 2, 2)), forward_kwargs={"h0": np.ones((1, 3))})
    assert not report.passed
    assert any("layer.dh0" in p for p in report.problems)


def test_stacked_recurrent_layers_in_sequential():
    rng = np.random.default_rng(7)
    net = lk.Sequential(
        lk.Embedding(6, 3, dtype=np.float64, seed=0),
        lk.LSTM(3, 5, dtype=np.float64, seed=1),
        lk.GRU(5, 4, return_sequences=False, dtype=np.float64, seed=2),
        lk.Linear(4, 2, dtype=np.float64, seed=3),
    )
    ids = rng.integers(0, 6, size=(2, 4))
    y = net(ids)
    assert y.shape == (2, 2)
    h = net[1](net[0](ids))[0]
    np.testing.assert_allclose(y, net[3](net[2](h)[0]), rtol=1e-12)
    assert_gradients_match(net, ids)
    assert {"1.weight_hh", "2.bias_ih", "0.weight"} <= set(net.params)


def test_summary_of_a_recurrent_stack(capsys):
    net = lk.Sequential(lk.Embedding(65, 16), lk.LSTM(16, 32), lk.Linear(32, 65))
    net.summary((2, 10), dtype=np.int64)
    out = capsys.readouterr().out
    assert "(2, 10, 32)" in out and "(2, 10, 65)" in out
    # 65·16 + 4·32·(16 + 32) + 2·4·32 + 32·65 + 65
    assert f"total params: {65 * 16 + 4 * 32 * 48 + 256 + 32 * 65 + 65:,}" in out


@pytest.mark.parametrize("cls", [RNN, LSTM, GRU])
def test_huge_hidden_size_names_the_layer_and_size(cls):
    with pytest.raises(MemoryError, match=cls.__name__ + r"\(4, 1000000000\): weight_ih of shape "
                                          r"\(\d+, 4\) \(float64\) would need [\d.]+ GiB"):
        cls(4, 10**9)
