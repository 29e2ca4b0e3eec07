"""SegNet: shapes, gradient checks of both decoders, the unpooling path against a plain loop,
checkpoints with the BatchNorm statistics."""

import numpy as np
import pytest

from layerkit.checkpoint import load, save
from layerkit.losses import CrossEntropy
from layerkit.models import SegNet, build
from layerkit.testing import assert_gradients_match

F64 = np.float64


def images(n, h=4, w=8, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 1, h, w)).astype(dtype)


@pytest.mark.parametrize("decoder", ["unpool", "transpose"])
def test_shapes_and_spec(decoder):
    m = SegNet(decoder=decoder, seed=1)
    x = images(2, 12, 20)                                  # padded to 16 × 24 inside
    y = m.forward(x)
    assert y.shape == (2, 11, 12, 20) and y.dtype == np.float32
    assert m.backward(np.ones_like(y)) is None            # images are data by default
    m.needs_input_grad = True
    m.forward(x)
    assert m.backward(np.ones_like(y)).shape == x.shape
    again = build(m.spec)
    assert {k: v.shape for k, v in again.params.items()} == {k: v.shape
                                                              for k, v in m.params.items()}
    has_up = any(k.startswith("up") for k in m.params)
    assert has_up == (decoder == "transpose")              # unpooling learns nothing


@pytest.mark.parametrize("decoder, size", [("unpool", (4, 8)), ("unpool", (3, 6)),
                                           ("transpose", (3, 6))])   # (3, 6): padded inside
def test_gradcheck(decoder, size):
    m = SegNet(num_classes=3, channels=(2, 3), bottleneck=1, decoder=decoder, dtype=F64)
    report = assert_gradients_match(m, images(2, *size, dtype=F64))
    names = {t.name for t in report.tensors}
    assert {"x", "enc0.0.weight", "mid.0.1.weight", "dec1.0.weight", "classifier.weight"} <= names


def test_gradcheck_through_the_per_pixel_loss():
    """SegNet + CrossEntropy(axis=1) on a label map: the gradient of the loss itself."""
    m = SegNet(num_classes=3, channels=(2,), bottleneck=0, dtype=F64)
    x = images(2, 2, 4, dtype=F64, seed=3)
    labels = np.random.default_rng(4).integers(0, 3, (2, 2, 4))
    loss = CrossEntropy(axis=1)
    m.zero_grad()
    loss.forward(m.forward(x), labels)
    m.backward(loss.backward())
    w = m.params["classifier.weight"]
    analytic = m.grads["classifier.weight"].copy()
    numeric = np.zeros_like(w)
    for i in np.ndindex(w.shape):
        old = w[i]
        w[i] = old + 1e-6
        up = loss.forward(m.forward(x), labels)
        w[i] = old - 1e-6
        down = loss.forward(m.forward(x), labels)
        w[i] = old
        numeric[i] = (up - down) / 2e-6
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


def plain_pool_unpool(z):
    """2 × 2 max pooling followed by unpooling, as a loop: each window's max stays where it
    was, every other value becomes 0."""
    out = np.zeros_like(z)
    for n, c in np.ndindex(z.shape[:2]):
        for i in range(0, z.shape[2], 2):
            for j in range(0, z.shape[3], 2):
                block = z[n, c, i:i + 2, j:j + 2]
                a, b = np.unravel_index(np.argmax(block), (2, 2))
                out[n, c, i + a, j + b] = block[a, b]
    return out


def test_unpool_decoder_wiring_against_a_plain_loop():
    """One level, no bottleneck: logits = classifier(dec0(unpool(pool(enc0(x))))) with the
    pooling's own indices, the unpooled map computed by a plain loop."""
    m = SegNet(num_classes=3, channels=(2,), bottleneck=0, dtype=F64, seed=4)
    m.eval()                                           # BN with fixed statistics: layer-wise
    x = images(2, 4, 6, dtype=F64, seed=5)
    want = m.classifier.forward(m.dec[0].forward(plain_pool_unpool(m.enc[0].forward(x))))
    np.testing.assert_allclose(m.forward(x), want, rtol=1e-13, atol=1e-13)


def test_bad_input_is_named():
    m = SegNet()
    with pytest.raises(ValueError, match=r"SegNet\(.*: expected dy of shape \(1, 11, 6, 10\)"):
        m.forward(images(1, 6, 10))
        m.backward(np.zeros((1, 11, 8, 16), np.float32))
    with pytest.raises(ValueError, match=r"SegNet: decoder must be one of 'unpool', 'transpose'"):
        SegNet(decoder="bilinear")
    with pytest.raises(ValueError, match=r"expected x of shape \(N, 1, H, W\)"):
        SegNet().forward(np.zeros((1, 2, 8, 8), np.float32))


def test_checkpoint_with_batchnorm_statistics_is_bit_for_bit(tmp_path):
    m = SegNet(num_classes=4, channels=(3, 4), bottleneck=1, decoder="transpose", seed=2)
    for s in range(3):                                   # running statistics move in training
        m.train()
        m.forward(images(4, 8, 8, seed=s) * (s + 1) + s)
    for p in m.params.values():
        p += 0.05 * np.random.default_rng(1).standard_normal(p.shape).astype(p.dtype)
    assert len([k for k in m.buffers if k.endswith("running_var")]) == 1 * 2 + 1 + 2 + 2
    save(m, tmp_path / "s.npz")
    loaded = load(tmp_path / "s.npz")
    x = images(3, 8, 8, seed=9)
    m.eval(), loaded.eval()
    assert np.array_equal(loaded.forward(x), m.forward(x))
    fresh = SegNet(num_classes=4, channels=(3, 4), bottleneck=1, decoder="transpose", seed=2)
    fresh.eval()                         # default statistics: the check above can fail
    for k, v in m.params.items():
        fresh.params[k][...] = v
    assert not np.array_equal(fresh.forward(x), m.forward(x))
