"""Vanishing gradients: ‖∂h_T/∂h_1‖ for a tanh RNN vs an LSTM at their default initialisation.

Run: python benchmarks/vanishing_gradients.py. For one random input sequence x_1 … x_T (D = 16,
x ~ N(0, 1)) and H = 64, the layer first runs step 1 from a zero state to get h_1 (and c_1 for the
LSTM); then it runs steps 2 … T from h0 = h_1 (c0 = c_1), and layerkit's own backward, with dy = 0
and dh_T = e_i, gives row i of the Jacobian J = ∂h_T/∂h_1 in ``layer.dh0``. The sequence is
replicated H times in the batch so that dh_T = I (row n = e_n) yields all of J in one backward.
For the LSTM the cell state is part of the state but held fixed: dc_T = 0 and only ∂h_T/∂h_1
(``dh0``) is reported, not the path through ∂c_1. The table gives the Frobenius norm ‖J‖_F, the
median over a few seeds (each seed: new weights and new inputs), and the ratio LSTM / RNN.

A finite-difference check of one Jacobian per layer type runs first.
"""

import numpy as np

from layerkit.layers.recurrent import LSTM, RNN

H, D = 64, 16
LENGTHS = (10, 25, 50, 100)
SEEDS = range(5)


def make(kind, seed):
    if kind == "RNN":
        return RNN(D, H, nonlinearity="tanh", dtype=np.float64, seed=seed)
    return LSTM(D, H, dtype=np.float64, seed=seed)


def first_state(layer, x):
    """(h_1, c_1) after step 1 from a zero state (c_1 None for the RNN); x is (1, T, D)."""
    out = layer.forward(x[:, :1])
    return out[1], (out[2] if len(out) == 3 else None)


def run_rest(layer, x, h1, c1):
    """h_T from steps 2 … T started at h1 (and c1); x is (N, T, D) with N = len(h1)."""
    out = layer.forward(x[:, 1:], h0=h1) if c1 is None else layer.forward(x[:, 1:], h0=h1, c0=c1)
    return out[1]


def jacobian(layer, x):
    """J[i, j] = ∂h_T[i] / ∂h_1[j] by layerkit's backward, x of shape (1, T, D)."""
    h1, c1 = first_state(layer, x)
    xs = np.repeat(x, H, axis=0)
    h1s = np.repeat(h1, H, axis=0)
    c1s = None if c1 is None else np.repeat(c1, H, axis=0)
    y_shape = (H, x.shape[1] - 1, H)
    run_rest(layer, xs, h1s, c1s)
    eye = np.eye(H)
    if c1 is None:
        layer.backward(np.zeros(y_shape), dh_T=eye)
    else:
        layer.backward(np.zeros(y_shape), dh_T=eye, dc_T=np.zeros((H, H)))
    return layer.dh0.copy()                  # row i = e_iᵀ J


def jacobian_fd(layer, x, eps=1e-6):
    """The same Jacobian by central differences in h_1 (c_1 held fixed)."""
    h1, c1 = first_state(layer, x)
    J = np.empty((H, H))
    for j in range(H):
        hp, hm = h1.copy(), h1.copy()
        hp[0, j] += eps
        hm[0, j] -= eps
        J[:, j] = (run_rest(layer, x, hp, c1) - run_rest(layer, x, hm, c1))[0] / (2 * eps)
    return J


def inputs(seed, steps):
    return np.random.default_rng(1000 + seed).standard_normal((1, steps, D))


def main():
    for kind in ("RNN", "LSTM"):
        layer, x = make(kind, 0), inputs(0, 10)
        err = np.abs(jacobian(layer, x) - jacobian_fd(layer, x)).max()
        print(f"check {kind:4s} T=10: max |J_backward − J_finite-diff| = {err:.1e}")
        assert err < 1e-6, err
    print()
    print(f"‖∂h_T/∂h_1‖_F, H={H}, D={D}, default init, median of {len(SEEDS)} seeds")
    print(f"{'T':>5} {'RNN (tanh)':>12} {'LSTM':>12} {'LSTM/RNN':>10}")
    for steps in LENGTHS:
        norms = {kind: np.median([np.linalg.norm(jacobian(make(kind, s), inputs(s, steps)))
                                  for s in SEEDS]) for kind in ("RNN", "LSTM")}
        print(f"{steps:>5} {norms['RNN']:>12.3e} {norms['LSTM']:>12.3e} "
              f"{norms['LSTM'] / norms['RNN']:>10.3g}")


if __name__ == "__main__":
    main()
