import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import layerkit as lk
from helpers import torch_or_skip
from layerkit.testing import assert_gradients_match

KINDS = {"RNN": lk.RNN, "LSTM": lk.LSTM, "GRU": lk.GRU}


def _bi(kind, seq=True, d=3, h=4):
    layer = KINDS[kind](d, h, return_sequences=seq, dtype=np.float64, seed=0)
    back = KINDS[kind](d, h, return_sequences=seq, dtype=np.float64, seed=1)
    for p in list(layer.params.values()) + list(back.params.values()):
        p[...] += 0.1                                  # nonzero biases, distinct directions
    return lk.Bidirectional(layer, back)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("seq", [True, False])
def test_matches_torch_bidirectional(kind, seq):
    torch = torch_or_skip()
    bi = _bi(kind, seq)
    ref = getattr(torch.nn, kind)(3, 4, batch_first=True, bidirectional=True).double()
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(ref, f"{name}_l0").copy_(torch.from_numpy(bi.forward_layer.params[name]))
            getattr(ref, f"{name}_l0_reverse").copy_(torch.from_numpy(bi.backward_layer.params[name]))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 3))
    xt = torch.tensor(x, requires_grad=True)
    out, hn = ref(xt)
    if kind == "LSTM":
        hn = hn[0]
    yt = out if seq else torch.cat([hn[0], hn[1]], dim=-1)
    y = bi(x)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-11, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(bi.backward(dy), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bi.grads["backward_layer.weight_hh"],
                               ref.weight_hh_l0_reverse.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", list(KINDS))
@settings(max_examples=10)
@given(n=st.integers(1, 3), t=st.integers(2, 4), seq=st.booleans(), padded=st.booleans(),
       seed=st.integers(0, 2**16))
def test_gradcheck(kind, n, t, seq, padded, seed):
    # T >= 2 with one full-length sequence: with zero initial states and a single step the
    # recurrent weights get no gradient at all (a vacuous check)
    rng = np.random.default_rng(seed)
    kwargs = {"lengths": np.r_[t, rng.integers(1, t + 1, size=n - 1)]} if padded else {}
    assert_gradients_match(_bi(kind, seq), rng.standard_normal((n, t, 3)), forward_kwargs=kwargs)


def test_lengths_match_each_sequence_alone():
    bi = _bi("GRU")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 6, 3))
    lengths = np.array([6, 2, 4])
    y = bi(x, lengths=lengths)
    for i, n in enumerate(lengths):
        alone = bi(x[i:i + 1, :n])
        np.testing.assert_allclose(y[i, :n], alone[0], rtol=1e-12, atol=1e-14)
        assert not y[i, n:].any()


def test_default_backward_layer_is_an_independent_copy_and_errors():
    layer = lk.LSTM(3, 4, seed=0)
    bi = lk.Bidirectional(layer)
    assert bi.backward_layer is not layer
    np.testing.assert_array_equal(bi.backward_layer.params["weight_ih"], layer.params["weight_ih"])
    assert bi.backward_layer.params["weight_ih"] is not layer.params["weight_ih"]
    assert repr(bi) == "Bidirectional(LSTM(3, 4))"
    assert bi(np.ones((2, 5, 3), np.float32)).shape == (2, 5, 8)
    with pytest.raises(TypeError, match="Bidirectional: expected an RNN, LSTM or GRU, got Linear"):
        lk.Bidirectional(lk.Linear(3, 4))
    with pytest.raises(ValueError, match="must be of the same kind, sizes and return_sequences"):
        lk.Bidirectional(lk.GRU(3, 4), lk.GRU(3, 5))
    with pytest.raises(ValueError, match=r"expected x of shape \(N, T, 3\), got \(2, 5\)"):
        bi(np.ones((2, 5), np.float32))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        lk.Bidirectional(lk.GRU(3, 4)).backward(np.ones((1, 1, 8)))


@pytest.mark.parametrize("lengths, match", [
    (np.array([6, 2]), r"lengths must lie in \[1, T\] = \[1, 5\], got values in \[2, 6\]"),
    (np.array([0, 2]), r"lengths must lie in \[1, T\]"),
    (np.array([2.5, 2]), "expected lengths of an integer dtype, got float64"),
    (np.array([2, 2, 2]), r"expected lengths of shape \(2,\), got \(3,\)"),
    ([2, 2], "expected lengths to be a numpy array, got list")])
def test_bidirectional_validates_lengths_before_using_them(lengths, match):
    with pytest.raises((ValueError, TypeError), match=r"Bidirectional\(LSTM\(3, 4\)\): " + match):
        lk.Bidirectional(lk.LSTM(3, 4)).forward(np.zeros((2, 5, 3)), lengths=lengths)
