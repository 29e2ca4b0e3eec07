"""LeNet-5 assembled from layerkit layers trains end to end (random data: it must memorise)."""

import numpy as np

import layerkit as lk


def lenet5(seed=0):
    return lk.Sequential(
        lk.Conv2D(1, 6, 5, padding=2, seed=seed), lk.ReLU(), lk.MaxPool2D(2),
        lk.Conv2D(6, 16, 5, seed=seed + 1), lk.ReLU(), lk.MaxPool2D(2),
        lk.Flatten(),
        lk.Linear(400, 120, seed=seed + 2), lk.ReLU(),
        lk.Linear(120, 84, seed=seed + 3), lk.ReLU(),
        lk.Linear(84, 10, seed=seed + 4),
    )


def test_lenet5_shapes_and_parameter_count(capsys):
    net = lenet5()
    assert net(np.zeros((3, 1, 28, 28), np.float32)).shape == (3, 10)
    net.summary((1, 1, 28, 28))
    out = capsys.readouterr().out
    assert "(1, 6, 28, 28)" in out and "(1, 16, 5, 5)" in out and "(1, 400)" in out
    # 6·25+6, 16·6·25+16, 400·120+120, 120·84+84, 84·10+10
    assert "total params: 61,706" in out


def test_lenet5_loss_falls_on_random_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    t = rng.integers(0, 10, size=64)
    net, loss = lenet5(), lk.CrossEntropy()
    opt = lk.Adam(net, lr=2e-3)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        losses.append(loss.forward(net.forward(x), t))
        net.backward(loss.backward())
        lk.clip_grad_norm(net, 5.0)
        opt.step()
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.25 * losses[0], losses
    assert np.mean(np.argmax(net(x), axis=1) == t) > 0.9          # memorised the 64 labels
    assert all(p.dtype == np.float32 for p in net.params.values())
