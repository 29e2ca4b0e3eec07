"""End to end: small sigmoid MLPs trained by backpropagation with SGD (the delta rule)."""

import numpy as np

import layerkit as lk


def _train(net, loss, x, t, *, lr, epochs, batch=None, momentum=0.0, seed=0):
    opt = lk.SGD(net, lr=lr, momentum=momentum)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(x)) if batch else np.arange(len(x))
        for start in range(0, len(x), batch or len(x)):
            idx = order[start:start + (batch or len(x))]
            opt.zero_grad()
            loss.forward(net.forward(x[idx]), t[idx])
            net.backward(loss.backward())
            opt.step()


def test_mlp_learns_xor():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    t = np.array([[0], [1], [1], [0]], dtype=np.float64)
    net = lk.Sequential(lk.Linear(2, 4, dtype=np.float64, seed=1), lk.Sigmoid(),
                        lk.Linear(4, 1, dtype=np.float64, seed=2), lk.Sigmoid())
    before = lk.MSE().forward(net(x), t)
    _train(net, lk.MSE(), x, t, lr=2.0, epochs=3000)
    y = net(x)
    assert np.array_equal(y > 0.5, t > 0.5), y.ravel()
    assert lk.MSE().forward(y, t) < 0.1 * before


def _spiral(n_per_class, rng):
    """Two interleaved spiral arms, one full turn each, scaled to roughly unit variance."""
    r = np.linspace(0.1, 1.0, n_per_class)
    x, t = [], []
    for c in (0, 1):
        theta = np.linspace(0, 2 * np.pi, n_per_class) + c * np.pi + rng.normal(0, 0.05, n_per_class)
        x.append(3 * np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1))
        t.append(np.full(n_per_class, c))
    return np.concatenate(x), np.concatenate(t)


def test_mlp_learns_two_class_spiral():
    rng = np.random.default_rng(0)
    x, t = _spiral(200, rng)
    net = lk.Sequential(lk.Linear(2, 64, dtype=np.float64, seed=1), lk.Sigmoid(),
                        lk.Linear(64, 64, dtype=np.float64, seed=2), lk.Sigmoid(),
                        lk.Linear(64, 2, dtype=np.float64, seed=3))
    before = np.mean(np.argmax(net(x), axis=1) == t)
    # Sigmoid nets sit on a plateau near 85% for a few hundred epochs before they separate the
    # arms; where that plateau ends depends on rounding in the BLAS, so train well past it.
    _train(net, lk.CrossEntropy(), x, t, lr=0.5, momentum=0.9, epochs=800, batch=32)
    accuracy = np.mean(np.argmax(net(x), axis=1) == t)
    assert before < 0.75 and accuracy > 0.95, (before, accuracy)
