"""The DCGAN model: shapes, gradients of both networks and of the generator's loss path through
the discriminator (finite differences, float64), sampling, and a checkpoint that restores the
samples bit for bit."""

import numpy as np
import pytest

from layerkit.checkpoint import load, save
from layerkit.layers import BatchNorm2D, ConvTranspose2D, Sequential
from layerkit.models import DCGAN, build
from layerkit.testing import assert_gradients_match
from helpers import compiled

F64 = np.float64
# The finite-difference checks below run about 50 forwards of 28x28 convolutions each: a second
# compiled, about a minute each in CI's pass with interpreted kernels (skipped there; that pass
# covers the kernels' loop code in tests/test_conv.py on small inputs).


def test_shapes_and_parameter_names():
    m = DCGAN(latent_dim=8, features=4)
    z = m.noise(5, seed=0)
    assert z.shape == (5, 8) and z.dtype == np.float32
    x = m.forward(z)
    assert x.shape == (5, 1, 28, 28) and x.dtype == np.float32
    assert np.all(np.abs(x) < 1)                                      # tanh
    assert m.discriminate(x).shape == (5, 1)
    assert m.backward(np.ones_like(x)).shape == (5, 8)                # ∂L/∂z
    assert {"generator.1.weight", "discriminator.6.weight"} <= set(m.params)
    assert m.params["generator.1.weight"].shape == (8, 8, 7, 7)      # ConvT(Z, 2F, 7)
    assert m.params["discriminator.6.weight"].shape == (1, 8 * 49)   # Linear(2F·7·7, 1)
    w = m.params["generator.4.weight"]
    assert abs(float(w.std()) - 0.02) < 0.004 and abs(float(w.mean())) < 0.004   # N(0, 0.02²)
    assert build(m.spec).spec == m.spec


def test_bad_inputs_name_the_model():
    m = DCGAN(latent_dim=8, features=4)
    with pytest.raises(ValueError, match=r"DCGAN\(latent_dim=8.*expected z of shape \(N, 8\), "
                                         r"got \(2, 7\)"):
        m.forward(np.zeros((2, 7), np.float32))
    with pytest.raises(ValueError, match=r"expected x of shape \(N, 1, 28, 28\), got"):
        m.discriminate(np.zeros((2, 1, 14, 14), np.float32))
    with pytest.raises(ValueError, match="features"):
        DCGAN(features=0)


@compiled
def test_generator_gradients():
    m = DCGAN(latent_dim=3, features=2, dtype=F64, seed=1)
    z = np.random.default_rng(0).standard_normal((3, 3))
    assert_gradients_match(m.generator, z, max_coords=16)


@compiled
def test_discriminator_gradients():
    m = DCGAN(latent_dim=3, features=2, dtype=F64, seed=2)
    x = np.random.default_rng(1).uniform(-1, 1, (3, 1, 28, 28))
    assert_gradients_match(m.discriminator, x, max_coords=16)


@compiled
def test_generator_loss_path_through_the_discriminator():
    """What the recipe backpropagates for G: D's input gradient into G's backward."""
    m = DCGAN(latent_dim=3, features=2, dtype=F64, seed=3)
    z = np.random.default_rng(2).standard_normal((3, 3))
    assert_gradients_match(Sequential(m.generator, m.discriminator), z, max_coords=16)


def test_generate_is_deterministic_and_leaves_the_model_as_it_was():
    m = DCGAN(latent_dim=8, features=4)
    m.eval()
    bns = [l for l in m.generator if isinstance(l, BatchNorm2D)]
    before = [bn.running_mean.copy() for bn in bns]
    a = m.generate(30, seed=5, batch_size=10)
    assert a.shape == (30, 1, 28, 28) and a.min() >= 0 and a.max() <= 1
    assert np.array_equal(a, m.generate(30, seed=5, batch_size=10))
    assert not np.array_equal(a, m.generate(30, seed=6, batch_size=10))
    assert not m.training and all(not l.training for l in m.generator)
    assert all(np.array_equal(b, bn.running_mean) for b, bn in zip(before, bns))


def test_checkpoint_restores_the_samples_bit_for_bit(tmp_path):
    m = DCGAN(latent_dim=8, features=4, seed=7)
    for p in m.params.values():                      # move off the initial values
        p += np.random.default_rng(0).standard_normal(p.shape).astype(p.dtype) * 0.01
    save(m, tmp_path / "gan.npz")
    back = load(tmp_path / "gan.npz")
    assert isinstance(back, DCGAN)
    assert np.array_equal(m.generate(20, seed=1), back.generate(20, seed=1))
    x = np.random.default_rng(3).uniform(-1, 1, (4, 1, 28, 28)).astype(np.float32)
    assert np.array_equal(m.discriminate(x), back.discriminate(x))


def test_transposed_convolutions_grow_1_to_28():
    m = DCGAN(latent_dim=8, features=4)
    convs = [l for l in m.generator if isinstance(l, ConvTranspose2D)]
    sizes, side = [], 1
    for c in convs:
        side = c.output_shape((side, side))[0]
        sizes.append(side)
    assert sizes == [7, 14, 28]


def test_minibatch_std_option_adds_the_batch_spread_channel(tmp_path):
    m = DCGAN(latent_dim=8, features=4, minibatch_std=True, seed=4)
    assert [type(l).__name__ for l in m.discriminator][5:] == ["MinibatchStd", "Flatten",
                                                               "Linear"]
    assert m.params["discriminator.7.weight"].shape == (1, 9 * 49)    # Linear((2F + 1)·7·7, 1)
    x = np.random.default_rng(5).uniform(-1, 1, (4, 1, 28, 28)).astype(np.float32)
    # one logit per image, which depends on the other images of the batch through σ
    assert not np.array_equal(m.discriminate(x)[:2], m.discriminate(x[:2]))
    save(m, tmp_path / "gan.npz")
    back = load(tmp_path / "gan.npz")
    assert back.minibatch_std and np.array_equal(m.discriminate(x), back.discriminate(x))
    assert build(m.spec).spec == m.spec
    with pytest.raises(ValueError, match=r"^DCGAN: minibatch_std must be True or False"):
        DCGAN(minibatch_std=1)


@compiled
def test_discriminator_gradients_with_minibatch_std():
    m = DCGAN(latent_dim=3, features=2, minibatch_std=True, dtype=F64, seed=6)
    x = np.random.default_rng(7).uniform(-1, 1, (3, 1, 28, 28))
    assert_gradients_match(m.discriminator, x, max_coords=16)
