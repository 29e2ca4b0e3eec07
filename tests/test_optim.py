"""Optimizers and gradient clipping: worked examples, PyTorch cross-checks, convergence, errors."""

import numpy as np
import pytest

import layerkit as lk

from layerkit.optim import SGD, Adam, WeightAverage, clip_grad_norm, clip_grad_value


class Fake:
    """The smallest object an optimizer accepts: params and grads dicts, no zero_grad."""

    def __init__(self, **params):
        self.params = {k: np.array(v, dtype=float) for k, v in params.items()}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}


class Container:
    """Like Sequential: params/grads are new dicts on each access, referencing the children."""

    def __init__(self, *children):
        self.children = children

    @property
    def params(self):
        return {f"{i}.{k}": v for i, c in enumerate(self.children) for k, v in c.params.items()}

    @property
    def grads(self):
        return {f"{i}.{k}": v for i, c in enumerate(self.children) for k, v in c.grads.items()}


# -- worked examples -------------------------------------------------------------------------

def test_sgd_one_step_is_theta_minus_lr_grad():
    m = Fake(w=[1.0, -2.0, 0.5])
    m.grads["w"][:] = [0.5, 1.0, -4.0]
    w = m.params["w"]
    SGD(m, lr=0.25).step()
    assert m.params["w"] is w  # updated in place, not rebound
    np.testing.assert_array_equal(w, [0.875, -2.25, 1.5])


def test_sgd_momentum_three_steps_by_hand():
    # θ0 = 1, η = 0.1, μ = 0.5, gradients 1, 2, 3:
    # v1 = 1            θ1 = 1 - 0.1 = 0.9
    # v2 = 0.5 + 2 = 2.5    θ2 = 0.9 - 0.25 = 0.65
    # v3 = 1.25 + 3 = 4.25  θ3 = 0.65 - 0.425 = 0.225
    # Nesterov uses g + μ v: 1.5, 3.25, 5.125 → θ = 0.85, 0.525, 0.0125
    for nesterov, expected in [(False, [0.9, 0.65, 0.225]), (True, [0.85, 0.525, 0.0125])]:
        m = Fake(w=[1.0])
        opt = SGD(m, lr=0.1, momentum=0.5, nesterov=nesterov)
        for g, want in zip([1.0, 2.0, 3.0], expected):
            m.grads["w"][:] = g
            opt.step()
            np.testing.assert_allclose(m.params["w"], [want], rtol=1e-13, atol=1e-15)


def test_sgd_weight_decay_by_hand():
    m = Fake(w=[2.0])
    m.grads["w"][:] = 1.0
    SGD(m, lr=0.1, weight_decay=0.5).step()  # g = 1 + 0.5·2 = 2 → θ = 2 - 0.2
    np.testing.assert_allclose(m.params["w"], [1.8], rtol=1e-14)
    np.testing.assert_array_equal(m.grads["w"], [1.0])  # the stored gradient is not modified


def test_adam_first_step_moves_by_lr_sign_of_grad():
    m = Fake(w=[1.0, -1.0, 3.0, 0.0], b=[[0.5, 2.0]])
    m.grads["w"][:] = [3.0, -0.2, 1e-3, -50.0]
    m.grads["b"][:] = [[-7.0, 0.01]]
    before = {k: v.copy() for k, v in m.params.items()}
    Adam(m, lr=0.01).step()
    for k in m.params:
        # m̂ = g, v̂ = g² → step = lr·g/(|g| + eps): lr·sign(g) up to eps/|g| ≤ 1e-5 relative.
        np.testing.assert_allclose(m.params[k] - before[k], -0.01 * np.sign(m.grads[k]), rtol=1e-5)


def test_updates_reach_children_through_recomputed_dicts():
    a, b = Fake(w=[1.0, 2.0]), Fake(w=[[3.0]], b=[4.0])
    model = Container(a, b)
    for c in (a, b):
        for g in c.grads.values():
            g[...] = 1.0
    for opt in (SGD(model, lr=0.5, momentum=0.9), Adam(model, lr=0.5)):
        before = [v.copy() for c in (a, b) for v in c.params.values()]
        opt.step()
        opt.step()
        after = [v for c in (a, b) for v in c.params.values()]
        assert all(np.all(x < y) for x, y in zip(after, before))
        assert set(opt.state) == {"0.w", "1.w", "1.b"}


def test_zero_grad_with_and_without_model_zero_grad():
    m = Fake(w=[1.0, 2.0])
    m.grads["w"][:] = 3.0
    g = m.grads["w"]
    SGD(m, lr=1.0).zero_grad()
    assert m.grads["w"] is g and not g.any()

    class WithZeroGrad(Fake):
        called = False

        def zero_grad(self):
            self.called = True

    m = WithZeroGrad(w=[1.0])
    SGD(m, lr=1.0).zero_grad()
    assert m.called


def test_float32_model_stays_float32():
    m = Fake(w=np.ones((2, 3)), b=np.ones(3))
    for k in m.params:
        m.params[k] = m.params[k].astype(np.float32)
        m.grads[k] = np.full_like(m.params[k], 0.3)
    for opt in (SGD(m, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
                Adam(m, lr=0.1, weight_decay=0.1)):
        for _ in range(3):
            opt.step()
        assert all(v.dtype == np.float32 for v in m.params.values())
        assert all(s.dtype == np.float32 for st in opt.state.values()
                   for s in st.values() if isinstance(s, np.ndarray))


def test_repr_shows_hyperparameters():
    m = Fake(w=[1.0])
    assert repr(SGD(m, lr=0.1, momentum=0.9)) == \
        "SGD(lr=0.1, momentum=0.9, nesterov=False, weight_decay=0.0)"
    assert repr(Adam(m)) == "Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0)"


# -- against PyTorch -------------------------------------------------------------------------

SHAPES = {"weight": (3, 4), "bias": (4,)}


def _problem(seed=0, steps=5):
    rng = np.random.default_rng(seed)
    init = {k: rng.standard_normal(s) for k, s in SHAPES.items()}
    grads = [{k: rng.standard_normal(s) for k, s in SHAPES.items()} for _ in range(steps)]
    return init, grads


def _run_against_torch(ours, theirs, **kw):
    torch = pytest.importorskip("torch")
    init, grads = _problem()
    m = Fake(**init)
    tp = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in init.items()}
    opt, topt = ours(m, **kw), theirs(list(tp.values()), **kw)
    for step, g in enumerate(grads):
        for k in SHAPES:
            m.grads[k][...] = g[k]
            tp[k].grad = torch.tensor(g[k], dtype=torch.float64)
        opt.step()
        topt.step()
        for k in SHAPES:
            np.testing.assert_allclose(m.params[k], tp[k].detach().numpy(), rtol=1e-10,
                                       atol=1e-14, err_msg=f"{k} after step {step + 1}")


@pytest.mark.parametrize("kw", [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.05, momentum=0.8, nesterov=True),
    dict(lr=0.1, weight_decay=0.3),
    dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
])
def test_sgd_matches_torch(kw):
    torch = pytest.importorskip("torch")
    _run_against_torch(SGD, torch.optim.SGD, **kw)


@pytest.mark.parametrize("kw", [
    dict(lr=0.01),
    dict(lr=0.1, betas=(0.5, 0.9), eps=1e-6),
    dict(lr=0.01, weight_decay=0.2),
])
def test_adam_matches_torch(kw):
    torch = pytest.importorskip("torch")
    _run_against_torch(Adam, torch.optim.Adam, **kw)


@pytest.mark.parametrize("max_norm", [0.5, 2.0, 100.0])
def test_clip_grad_norm_matches_torch(max_norm):
    torch = pytest.importorskip("torch")
    _, grads = _problem(seed=1, steps=1)
    m = Fake(**grads[0])
    m.grads = {k: v.copy() for k, v in grads[0].items()}
    tp = [torch.zeros(SHAPES[k], dtype=torch.float64, requires_grad=True) for k in SHAPES]
    for t, k in zip(tp, SHAPES):
        t.grad = torch.tensor(grads[0][k])
    norm = clip_grad_norm(m, max_norm)
    tnorm = torch.nn.utils.clip_grad_norm_(tp, max_norm)
    assert norm == pytest.approx(float(tnorm), rel=1e-12)
    for t, k in zip(tp, SHAPES):
        np.testing.assert_allclose(m.grads[k], t.grad.numpy(), rtol=1e-12)


def test_clip_grad_norm_by_hand():
    m = Fake(a=[0.0, 0.0], b=[0.0])
    m.grads["a"][:] = [3.0, 0.0]
    m.grads["b"][:] = [-4.0]
    assert clip_grad_norm(m, 1.0) == 5.0
    np.testing.assert_allclose(m.grads["a"], [3 / (5 + 1e-6), 0.0], rtol=1e-14)
    np.testing.assert_allclose(m.grads["b"], [-4 / (5 + 1e-6)], rtol=1e-14)


def test_clip_grad_value_matches_torch():
    torch = pytest.importorskip("torch")
    _, grads = _problem(seed=2, steps=1)
    m = Fake(**grads[0])
    m.grads = {k: v.copy() for k, v in grads[0].items()}
    tp = [torch.zeros(SHAPES[k], dtype=torch.float64, requires_grad=True) for k in SHAPES]
    for t, k in zip(tp, SHAPES):
        t.grad = torch.tensor(grads[0][k])
    clip_grad_value(m, 0.7)
    torch.nn.utils.clip_grad_value_(tp, 0.7)
    for t, k in zip(tp, SHAPES):
        np.testing.assert_array_equal(m.grads[k], t.grad.numpy())
    assert max(np.abs(g).max() for g in m.grads.values()) == 0.7


# -- convergence -----------------------------------------------------------------------------

class Quadratic(Fake):
    """f(θ) = ½‖Aθ − b‖², gradient Aᵀ(Aθ − b)."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.A = rng.standard_normal((8, 4))
        self.b = rng.standard_normal(8)
        super().__init__(theta=np.zeros(4))

    def compute_grad(self):
        self.grads["theta"][:] = self.A.T @ (self.A @ self.params["theta"] - self.b)


@pytest.mark.parametrize("make", [
    lambda m, lr: SGD(m, lr=lr),
    lambda m, lr: SGD(m, lr=lr / 2, momentum=0.9),
    lambda m, lr: SGD(m, lr=lr / 2, momentum=0.9, nesterov=True),
    lambda m, lr: Adam(m, lr=0.01),
], ids=["sgd", "momentum", "nesterov", "adam"])
def test_converges_to_least_squares(make):
    m = Quadratic()
    lr = 1.0 / np.linalg.norm(m.A, 2) ** 2  # 1/L, L the largest Hessian eigenvalue
    opt = make(m, lr)
    for _ in range(3000):
        opt.zero_grad()
        m.compute_grad()
        opt.step()
    expected = np.linalg.lstsq(m.A, m.b, rcond=None)[0]
    np.testing.assert_allclose(m.params["theta"], expected, atol=1e-8)


# -- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("make, match", [
    (lambda m: SGD(m, lr=0), r"SGD: lr must be in \(0"),
    (lambda m: SGD(m, lr=-1.0), r"SGD: lr must be in"),
    (lambda m: SGD(m, lr=0.1, momentum=1.0), r"SGD: momentum must be in \[0.0, 1.0\), got 1.0"),
    (lambda m: SGD(m, lr=0.1, momentum=-0.1), r"SGD: momentum must be in"),
    (lambda m: SGD(m, lr=0.1, nesterov=True), r"SGD: nesterov=True requires momentum > 0"),
    (lambda m: SGD(m, lr=0.1, weight_decay=-1e-4), r"SGD: weight_decay must be in \[0"),
    (lambda m: Adam(m, lr=0.0), r"Adam: lr must be in \(0"),
    (lambda m: Adam(m, betas=(1.0, 0.999)), r"Adam: betas\[0\] must be in \[0.0, 1.0\)"),
    (lambda m: Adam(m, betas=(0.9, -0.1)), r"Adam: betas\[1\] must be in"),
    (lambda m: Adam(m, betas=0.9), r"Adam: betas must be a pair"),
    (lambda m: Adam(m, eps=-1e-8), r"Adam: eps must be in \[0"),
    (lambda m: Adam(m, weight_decay=-1.0), r"Adam: weight_decay must be in"),
    (lambda m: clip_grad_norm(m, 0.0), r"clip_grad_norm: max_norm must be in \(0"),
    (lambda m: clip_grad_value(m, -1.0), r"clip_grad_value: clip_value must be in \(0"),
])
def test_bad_arguments_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make(Fake(w=[1.0]))


def test_model_without_params_raises():
    with pytest.raises(TypeError, match=r"SGD: expected an object with params and grads.*list"):
        SGD([np.zeros(2)], lr=0.1)


@pytest.mark.parametrize("opt_cls", [SGD, Adam])
def test_missing_or_misshapen_gradient_raises_before_any_update(opt_cls):
    m = Fake(a=[1.0], w=[1.0, 2.0])
    del m.grads["w"]
    with pytest.raises(ValueError, match=r"parameter 'w' has no gradient"):
        opt_cls(m, lr=0.1).step()
    m.grads["w"] = np.zeros(3)
    m.grads["a"][:] = 1.0
    with pytest.raises(ValueError, match=r"gradient of 'w' .*shape \(2,\), got \(3,\)"):
        opt_cls(m, lr=0.1).step()
    np.testing.assert_array_equal(m.params["a"], [1.0])  # nothing was updated


def test_clip_grad_norm_float32_huge_gradients_do_not_overflow():
    """‖g‖ of ten float32 1e20 entries is √10·1e20 (1e40 squared overflows float32): the norm
    is finite, and every entry becomes max_norm/√10 (PyTorch gives inf and zeroes them)."""
    model = Fake()
    model.params, model.grads = {"w": np.zeros(10, np.float32)}, {"w": np.full(10, 1e20, np.float32)}
    norm = clip_grad_norm(model, 1.0)
    assert norm == pytest.approx(np.sqrt(10) * float(np.float32(1e20)), rel=1e-12)
    np.testing.assert_allclose(model.grads["w"], np.full(10, 1 / np.sqrt(10)), rtol=1e-6)
    assert model.grads["w"].dtype == np.float32


def test_clip_grad_norm_tiny_gradients_do_not_underflow():
    model = Fake()          # squared, 1e-30 is 1e-60: below float32's range
    model.params, model.grads = {"w": np.zeros(4, np.float32)}, {"w": np.full(4, 1e-30, np.float32)}
    assert clip_grad_norm(model, 1.0) == pytest.approx(2e-30, rel=1e-6)


def test_clip_grad_norm_nan_gives_nan_and_leaves_gradients_alone():
    model = Fake(w=np.zeros(3))
    model.grads["w"][...] = [1.0, np.nan, 2.0]
    assert np.isnan(clip_grad_norm(model, 1.0))
    np.testing.assert_array_equal(model.grads["w"], [1.0, np.nan, 2.0])


@pytest.mark.parametrize("make", [lambda m: SGD(m, 0.1), lambda m: Adam(m)])
def test_optimizer_names_a_read_only_parameter(make):
    model = Fake(b=np.ones(2), w=np.ones(3))
    model.params["w"].flags.writeable = False
    with pytest.raises(ValueError, match="parameter 'w' is read-only"):
        make(model).step()
    np.testing.assert_array_equal(model.params["b"], 1.0)   # checked before anything moved


def test_weight_average_by_hand():
    """θ0 = 1, then θ = 3, 5, 7 with decay 0.5: d_0 = min(0.5, 1/10) = 0.1, d_1 = 2/11,
    d_2 = 3/12 = 0.25 -> each step θ̄ = d·θ̄ + (1 − d)·θ, worked out here by hand."""
    lin = lk.Linear(1, 1, seed=0, dtype=np.float64)
    lin.params["weight"][...] = 1.0
    avg = WeightAverage(lin, decay=0.5)
    expected = 1.0
    for theta, d in ((3.0, 0.1), (5.0, 2 / 11), (7.0, 0.25)):
        lin.params["weight"][...] = theta
        avg.update()
        expected = d * expected + (1 - d) * theta
    assert expected == pytest.approx(0.25 * (2 / 11 * (0.1 + 0.9 * 3) + 9 / 11 * 5) + 0.75 * 7)
    np.testing.assert_allclose(avg.average["weight"], [[expected]], rtol=1e-15)
    with avg.swapped() as model:
        assert model is lin and lin.params["weight"][0, 0] == pytest.approx(expected)
    assert lin.params["weight"][0, 0] == 7.0                 # its own weights are back
    with pytest.raises(KeyError):
        with avg.swapped():
            raise KeyError("inside")
    assert lin.params["weight"][0, 0] == 7.0                 # also after an exception
    avg.copy_to_model()
    assert lin.params["weight"][0, 0] == pytest.approx(expected)
    with pytest.raises(ValueError, match="WeightAverage: decay must be in"):
        WeightAverage(lin, decay=1.0)
