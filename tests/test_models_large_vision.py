"""VGG-16, AlexNet, ResNet-20 and DenseNet-BC: parameter counts and shapes against the published
architectures, one forward on the right input size, and the small ones against PyTorch models
written here from the papers, with the same weights."""

import os

import numpy as np
import pytest

from helpers import torch_or_skip
from layerkit import models

JIT_OFF = os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")


def conv(c_out, c_in, k, bias=True):
    return [(c_out, c_in, k, k)] + ([(c_out,)] if bias else [])


def linear(n_out, n_in):
    return [(n_out, n_in), (n_out,)]


# torchvision's vgg16() and alexnet(), shape by shape in parameter order (from their definitions)
VGG16_SHAPES = (conv(64, 3, 3) + conv(64, 64, 3) + conv(128, 64, 3) + conv(128, 128, 3)
                + conv(256, 128, 3) + conv(256, 256, 3) * 2 + conv(512, 256, 3)
                + conv(512, 512, 3) * 5 + linear(4096, 25088) + linear(4096, 4096)
                + linear(1000, 4096))
ALEXNET_SHAPES = (conv(64, 3, 11) + conv(192, 64, 5) + conv(384, 192, 3) + conv(256, 384, 3)
                  + conv(256, 256, 3) + linear(4096, 9216) + linear(4096, 4096)
                  + linear(1000, 4096))


@pytest.fixture(scope="module")
def big():
    """Built once: 138 M and 61 M float32 parameters take a few seconds to draw."""
    return {"vgg16": models.vgg16(), "alexnet": models.alexnet()}


@pytest.mark.parametrize("name, count, shapes", [("vgg16", 138_357_544, VGG16_SHAPES),
                                                 ("alexnet", 61_100_840, ALEXNET_SHAPES)])
def test_torchvision_counts_and_shapes(big, name, count, shapes):
    model = big[name]
    assert sum(int(np.prod(s)) for s in shapes) == count        # the list is torchvision's
    assert [p.shape for p in model.params.values()] == shapes
    assert model.num_params() == count
    assert all(p.dtype == np.float32 for p in model.params.values())
    assert model.spec["builder"] == name and models.BUILDERS[name] is getattr(models, name)


@pytest.mark.parametrize("name", [
    pytest.param("vgg16", marks=pytest.mark.skipif(
        JIT_OFF, reason="VGG-16's 224x224 forward with the kernels as plain Python takes ~40 s; "
                        "its shapes are checked above")),
    "alexnet"])
def test_one_forward_at_224(big, name):
    model = big[name].eval()
    x = np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32)
    y = model(x)
    assert y.shape == (1, 1000) and y.dtype == np.float32 and np.all(np.isfinite(y))
    with pytest.raises(ValueError, match=r"expected x of shape \(\.\.\., N, "):
        model(x[:, :, :200, :200])          # the classifier is made for 224 × 224


def test_alexnet_with_the_papers_lrn_has_the_same_parameters(big):
    lrn = models.alexnet(lrn=True)
    assert [p.shape for p in lrn.params.values()] == ALEXNET_SHAPES
    assert sum(type(l).__name__ == "LocalResponseNorm" for l in lrn) == 2
    assert lrn.spec["kwargs"]["lrn"] is True


RESNET20 = {"A": 269_722, "B": 272_474}


@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_resnet20_count_by_hand(shortcut):
    """3·16·9 + 32 (stem), 6·(16·16·9 + 32) (stage 1), 16·32·9 + 5·32·32·9 + 6·64 (stage 2),
    32·64·9 + 5·64·64·9 + 6·128 (stage 3), 64·10 + 10 (head); option B adds the two 1×1
    projections with their batch norms."""
    stem = 3 * 16 * 9 + 32
    stage1 = 6 * (16 * 16 * 9 + 32)
    stage2 = 16 * 32 * 9 + 5 * 32 * 32 * 9 + 6 * 64
    stage3 = 32 * 64 * 9 + 5 * 64 * 64 * 9 + 6 * 128
    projections = (16 * 32 + 64) + (32 * 64 + 128) if shortcut == "B" else 0
    expected = stem + stage1 + stage2 + stage3 + 650 + projections
    assert expected == RESNET20[shortcut]
    model = models.resnet20(shortcut=shortcut)
    assert model.num_params() == expected
    assert sum(p.ndim == 4 for p in model.params.values()) == 19 + (2 if shortcut == "B" else 0)
    y = model(np.zeros((2, 3, 32, 32), dtype=np.float32))
    assert y.shape == (2, 10)


def densenet_count(c_in, k, blocks, theta, classes):
    """DenseNet-BC's parameters by hand: stem conv; per layer BN(c) + 1×1 (c -> 4k) + BN(4k) +
    3×3 (4k -> k); per transition BN(c) + 1×1 (c -> ⌊θc⌋); head BN(c) + Linear(c, K)."""
    c, total = 2 * k, c_in * 2 * k * 9
    for b, n in enumerate(blocks):
        for _ in range(n):
            total += 2 * c + c * 4 * k + 8 * k + 4 * k * k * 9
            c += k
        if b < len(blocks) - 1:
            total += 2 * c + c * int(theta * c)
            c = int(theta * c)
    return total + 2 * c + c * classes + classes


@pytest.mark.parametrize("kwargs", [{}, dict(growth_rate=4, block_layers=(2, 3), compression=0.5,
                                            in_channels=1, num_classes=11),
                                    dict(block_layers=(16, 16, 16))])
def test_densenet_bc_count_by_hand(kwargs):
    model = models.densenet_bc(**kwargs)
    full = dict(in_channels=3, growth_rate=12, block_layers=(6, 6, 6), compression=0.5,
                num_classes=10) | kwargs
    assert model.num_params() == densenet_count(full["in_channels"], full["growth_rate"],
                                                full["block_layers"], full["compression"],
                                                full["num_classes"])
    if full["block_layers"] == (16, 16, 16):            # DenseNet-BC (L = 100, k = 12): "0.8M"
        assert round(model.num_params() / 1e6, 1) == 0.8


def test_densenet_bc_forward_shape():
    model = models.densenet_bc(growth_rate=4, block_layers=(2, 2), in_channels=1, num_classes=11)
    assert model(np.zeros((2, 1, 8, 8), dtype=np.float32)).shape == (2, 11)


@pytest.mark.parametrize("build, kwargs", [
    (models.vgg16, dict(dropout=1.0)), (models.alexnet, dict(lrn="yes")),
    (models.resnet20, dict(shortcut="C")), (models.densenet_bc, dict(compression=0.0)),
    (models.densenet_bc, dict(block_layers=[])), (models.densenet_bc, dict(block_layers=3)),
    (models.resnet20, dict(num_classes=0)), (models.alexnet, dict(dtype=np.int32)),
])
def test_bad_arguments_name_the_builder(build, kwargs):
    with pytest.raises((ValueError, TypeError), match=rf"^{build.__name__}: "):
        build(**kwargs)


@pytest.mark.parametrize("name, kwargs", [("resnet20", dict(shortcut="B", seed=3)),
                                          ("densenet_bc", dict(block_layers=[2, 2], seed=1))])
def test_spec_rebuilds_the_same_model(name, kwargs):
    model = getattr(models, name)(**kwargs)
    again = models.build(model.spec)
    assert list(again.params) == list(model.params)
    assert all(np.array_equal(again.params[k], v) for k, v in model.params.items())


# -- the same networks in PyTorch, written from the papers, with layerkit's weights -----------

def torch_resnet20(torch, shortcut):
    nn, F = torch.nn, torch.nn.functional

    class Block(nn.Module):
        def __init__(self, c_in, c_out, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(c_out)
            self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)
            self.project = None
            self.pad = (c_out - c_in) // 2, c_out - c_in - (c_out - c_in) // 2
            if (stride, c_in) != (1, c_out) and shortcut == "B":
                self.project = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                             nn.BatchNorm2d(c_out))
            self.stride = stride

        def forward(self, x):
            out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
            if self.project is not None:
                short = self.project(x)
            else:
                short = F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0) + self.pad)
            return F.relu(out + short)

    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    c_in = 16
    for stage, c in enumerate((16, 32, 64)):
        for i in range(3):
            layers.append(Block(c_in, c, 2 if stage and i == 0 else 1))
            c_in = c
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


def torch_densenet_bc(torch, c_in, k, blocks, theta, classes):
    nn = torch.nn

    class DenseLayer(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.h = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, 4 * k, 1, bias=False),
                                   nn.BatchNorm2d(4 * k), nn.ReLU(),
                                   nn.Conv2d(4 * k, k, 3, padding=1, bias=False))

        def forward(self, x):
            return torch.cat([x, self.h(x)], dim=1)

    c = 2 * k
    layers = [nn.Conv2d(c_in, c, 3, padding=1, bias=False)]
    for b, n in enumerate(blocks):
        for _ in range(n):
            layers.append(DenseLayer(c))
            c += k
        if b < len(blocks) - 1:
            layers += [nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, int(theta * c), 1, bias=False),
                       nn.AvgPool2d(2)]
            c = int(theta * c)
    layers += [nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Linear(c, classes)]
    return nn.Sequential(*layers)


def copy_and_compare(torch, model, reference, x):
    """Copy layerkit's parameters into ``reference`` in order (shapes must agree), move the
    batch-norm scales and shifts off 1 and 0, and compare one training-mode forward (batch
    statistics), then the input and parameter gradients of a random projection of the logits."""
    rng = np.random.default_rng(5)
    ours = list(model.params.values())
    theirs = list(reference.parameters())
    assert [tuple(p.shape) for p in theirs] == [p.shape for p in ours]
    for p in ours:
        if p.ndim == 1:
            p[...] = rng.uniform(0.5, 1.5, p.shape)
    with torch.no_grad():
        for a, b in zip(ours, theirs):
            b.copy_(torch.from_numpy(a))
    model.train()
    model.needs_input_grad = True
    reference.train()
    y = model(x)
    t = torch.tensor(x, requires_grad=True)
    yt = reference(t)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-9, atol=1e-11)
    dy = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(dy))
    model.zero_grad()
    np.testing.assert_allclose(model.backward(dy), t.grad.numpy(), rtol=1e-8, atol=1e-11)
    for (name, g), p in zip(model.grads.items(), theirs):
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-8, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_resnet20_matches_pytorch(shortcut):
    torch = torch_or_skip()
    model = models.resnet20(shortcut=shortcut, dtype=np.float64, seed=2)
    reference = torch_resnet20(torch, shortcut).double()
    x = np.random.default_rng(6).standard_normal((2, 3, 32, 32))
    copy_and_compare(torch, model, reference, x)


def test_densenet_bc_matches_pytorch():
    torch = torch_or_skip()
    model = models.densenet_bc(growth_rate=4, block_layers=(2, 3), in_channels=3,
                               num_classes=5, dtype=np.float64, seed=2)
    reference = torch_densenet_bc(torch, 3, 4, (2, 3), 0.5, 5).double()
    x = np.random.default_rng(7).standard_normal((3, 3, 8, 8))
    copy_and_compare(torch, model, reference, x)
