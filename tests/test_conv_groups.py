"""Grouped convolutions (``groups=``): Conv1D/2D/3D and ConvTranspose2D, depthwise included."""

import numpy as np
import pytest

import reference as ref
from helpers import torch_or_skip
from layerkit import models
from layerkit.layers.conv import Conv1D, Conv2D, Conv3D, ConvTranspose2D
from layerkit.testing import assert_gradients_match

CLASSES = {1: Conv1D, 2: Conv2D, 3: Conv3D}

# (ndim, C, O, groups, kernel, stride, padding, dilation, spatial)
SETUPS = [
    (2, 4, 6, 2, 3, 1, 1, 1, (5, 6)),
    (2, 3, 3, 3, 3, 2, 1, 1, (7, 6)),            # depthwise
    (2, 2, 6, 2, (2, 3), 1, "same", (2, 1), (6, 5)),   # depthwise, multiplier 3
    (2, 6, 4, 2, 1, 1, 0, 1, (3, 4)),            # 1×1, shrinking the channels
    (1, 4, 4, 4, 3, 2, 2, 1, (9,)),
    (3, 4, 2, 2, 2, (1, 2, 1), 1, 1, (3, 4, 3)),
]


def _build(setup, dtype=np.float64, seed=0):
    ndim, c, o, g, k, s, p, d, sp = setup
    layer = CLASSES[ndim](c, o, k, stride=s, padding=p, dilation=d, groups=g, dtype=dtype,
                          seed=seed)
    rng = np.random.default_rng(seed + 1)
    layer.params["bias"][...] = rng.standard_normal(o)
    return layer, rng.standard_normal((2, c) + sp).astype(dtype)


def test_hand_worked_two_groups():
    # C = O = 2, groups 2, 1×1 kernels: each output channel scales its own input channel only
    layer = Conv2D(2, 2, 1, groups=2, dtype=np.float64)
    layer.params["weight"][...] = np.array([2.0, -3.0]).reshape(2, 1, 1, 1)
    layer.params["bias"][...] = [0.5, 1.0]
    x = np.array([[[[1.0, 2.0]], [[10.0, 20.0]]]])            # (1, 2, 1, 2)
    np.testing.assert_array_equal(layer(x), [[[[2.5, 4.5]], [[-29.0, -59.0]]]])
    dx = layer.backward(np.ones((1, 2, 1, 2)))
    np.testing.assert_array_equal(dx, [[[[2.0, 2.0]], [[-3.0, -3.0]]]])
    np.testing.assert_array_equal(layer.grads["weight"].ravel(), [3.0, 30.0])


@pytest.mark.parametrize("setup", SETUPS, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_matches_loop_reference(setup, dtype):
    layer, x = _build(setup, dtype)
    assert layer.params["weight"].shape == (setup[2], setup[1] // setup[3]) + layer.kernel_size
    want = ref.conv_nd(x, layer.params["weight"], layer.params["bias"], layer.stride,
                       layer.geometry.padding, layer.dilation, groups=setup[3])
    tol = 1e-5 if dtype == np.float32 else 1e-12
    y = layer(x)
    assert y.dtype == dtype
    np.testing.assert_allclose(y, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("setup", SETUPS, ids=str)
def test_gradcheck(setup):
    layer, x = _build(setup)
    report = assert_gradients_match(layer, x, seed=0)
    assert {t.name for t in report.tensors} >= {"weight", "bias"}


@pytest.mark.parametrize("setup", SETUPS, ids=str)
def test_matches_torch(setup):
    torch = torch_or_skip()
    layer, x = _build(setup)
    fn = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d,
          3: torch.nn.functional.conv3d}[setup[0]]
    y = layer(x)
    dy = np.random.default_rng(5).standard_normal(y.shape)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(layer.params["weight"], requires_grad=True)
    bt = torch.tensor(layer.params["bias"], requires_grad=True)
    yt = fn(xt, wt, bt, stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
            groups=layer.groups)
    yt.backward(torch.from_numpy(dy))
    dx = layer.backward(dy)
    for got, want in ((y, yt.detach()), (dx, xt.grad), (layer.grads["weight"], wt.grad),
                      (layer.grads["bias"], bt.grad)):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("c, o, g", [(4, 2, 2), (3, 6, 3), (4, 4, 4)])
def test_transpose_matches_torch_and_gradcheck(c, o, g):
    torch = torch_or_skip()
    layer = ConvTranspose2D(c, o, 3, stride=2, padding=1, output_padding=1, groups=g,
                            dtype=np.float64, seed=0)
    rng = np.random.default_rng(2)
    layer.params["bias"][...] = rng.standard_normal(o)
    assert layer.params["weight"].shape == (c, o // g, 3, 3)
    x = rng.standard_normal((2, c, 3, 4))
    y = layer(x)
    dy = rng.standard_normal(y.shape)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(layer.params["weight"], requires_grad=True)
    bt = torch.tensor(layer.params["bias"], requires_grad=True)
    yt = torch.nn.functional.conv_transpose2d(xt, wt, bt, stride=2, padding=1,
                                              output_padding=1, groups=g)
    yt.backward(torch.from_numpy(dy))
    layer.zero_grad()
    dx = layer.backward(dy)
    for got, want in ((y, yt.detach()), (dx, xt.grad), (layer.grads["weight"], wt.grad),
                      (layer.grads["bias"], bt.grad)):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-10, atol=1e-10)
    assert_gradients_match(layer, x, seed=0)


def test_transpose_is_the_adjoint_of_the_grouped_convolution():
    rng = np.random.default_rng(3)
    conv = Conv2D(6, 4, 3, stride=2, groups=2, bias=False, dtype=np.float64, seed=0)
    convt = ConvTranspose2D(4, 6, 3, stride=2, groups=2, bias=False, dtype=np.float64)
    convt.params["weight"][...] = conv.params["weight"]          # (O, C/G, k) both ways
    x, z = rng.standard_normal((2, 6, 7, 7)), rng.standard_normal((2, 4, 3, 3))
    np.testing.assert_allclose(np.vdot(conv(x), z), np.vdot(x, convt(z)), rtol=1e-12)


def test_auto_takes_im2col_and_winograd_refuses_groups():
    layer = Conv2D(64, 64, 3, padding=1, groups=2)
    assert layer.algorithm_for((8, 64, 32, 32)) == "im2col"
    assert Conv2D(64, 64, 3, padding=1).algorithm_for((8, 64, 32, 32)) == "winograd"
    with pytest.raises(ValueError, match=r"Conv2D\(4, 4, kernel_size=3\): algorithm='winograd' "
                                         r"needs groups=1, got groups=2"):
        Conv2D(4, 4, 3, groups=2, algorithm="winograd")


@pytest.mark.parametrize("cls", [Conv2D, ConvTranspose2D])
def test_bad_groups(cls):
    name = cls.__name__
    with pytest.raises(ValueError, match=rf"{name}\(4, 6, kernel_size=3\): in_channels and "
                                         r"out_channels must both be divisible by groups, got "
                                         r"in_channels=4, out_channels=6, groups=4"):
        cls(4, 6, 3, groups=4)
    with pytest.raises(ValueError, match=r"groups.*positive.*0|groups.*0"):
        cls(4, 6, 3, groups=0)
    with pytest.raises((ValueError, TypeError), match="groups"):
        cls(4, 6, 3, groups=1.5)
    layer = cls(4, 6, 3, groups=2)
    with pytest.raises(ValueError, match=rf"{name}\(4, 6, kernel_size=3, groups=2\): expected x "
                                         r"of shape \(N, 4, H, W\), got \(1, 2, 5, 5\)"):
        layer(np.zeros((1, 2, 5, 5), np.float32))


def test_default_init_uses_the_group_fan_in():
    w = Conv2D(8, 8, 3, groups=8, seed=0).params["weight"]         # fan_in = 1·3·3
    bound = 1 / np.sqrt(9)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound


def test_empty_batch_no_input_grad_and_repr():
    layer = Conv2D(4, 4, 3, padding=1, groups=4, seed=0)
    assert repr(layer) == "Conv2D(4, 4, kernel_size=3, padding=1, groups=4)"
    y = layer(np.zeros((0, 4, 5, 5), np.float32))
    assert y.shape == (0, 4, 5, 5)
    dx = layer.backward(np.zeros_like(y))
    assert dx.shape == (0, 4, 5, 5)
    np.testing.assert_array_equal(layer.grads["weight"], 0)
    x = np.random.default_rng(0).standard_normal((2, 4, 5, 5)).astype(np.float32)
    dy = np.random.default_rng(1).standard_normal((2, 4, 5, 5)).astype(np.float32)
    layer.zero_grad()
    layer(x)
    layer.backward(dy)
    want = layer.grads["weight"].copy()
    layer.needs_input_grad = False
    layer.zero_grad()
    layer(x)
    assert layer.backward(dy) is None
    np.testing.assert_array_equal(layer.grads["weight"], want)


def test_interop_round_trip():
    torch = torch_or_skip()
    from layerkit import interop

    rng = np.random.default_rng(0)
    for layer in (Conv2D(4, 8, 3, padding=2, dilation=2, groups=4, seed=0),
                  Conv2D(4, 6, 2, padding="same", groups=2, seed=0),     # uneven 'same' padding
                  ConvTranspose2D(4, 6, 3, stride=2, groups=2, seed=0)):
        module = interop.to_torch(layer)
        assert module.groups == layer.groups
        x = rng.standard_normal((2, 4, 5, 5)).astype(np.float32)
        np.testing.assert_allclose(module(torch.from_numpy(x)).detach().numpy(), layer(x),
                                   rtol=1e-5, atol=1e-5)
        back = interop.from_torch(module)
        assert repr(back) == repr(layer)
        np.testing.assert_array_equal(back.params["weight"], layer.params["weight"])


def test_two_tower_alexnet_parameters():
    # torchvision's 61,100,840 minus half of the weights of conv2 (192·64·5·5), conv4 (256·384·9)
    # and conv5 (256·256·9)
    net = models.alexnet(groups=2)
    halved = (192 * 64 * 25 + 256 * 384 * 9 + 256 * 256 * 9) // 2
    assert sum(p.size for p in net.params.values()) == 61_100_840 - halved
    grouped = [layer for layer in net.layers if getattr(layer, "groups", 1) == 2]
    assert [(c.in_channels, c.out_channels) for c in grouped] == [(64, 192), (384, 256),
                                                                   (256, 256)]
    assert net.spec["kwargs"]["groups"] == 2
    with pytest.raises(ValueError, match=r"alexnet: groups must be 1 or 2, got 3"):
        models.alexnet(groups=3)


def test_checkpoint_restores_grouped_weights(tmp_path):
    from layerkit import checkpoint

    net = models.alexnet(groups=2, num_classes=10, seed=3)
    path = tmp_path / "alex.npz"
    checkpoint.save(net, path)
    back = checkpoint.load(path)
    for k, v in net.params.items():
        assert back.params[k].shape == v.shape
        np.testing.assert_array_equal(back.params[k], v)
