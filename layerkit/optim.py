"""Optimizers and gradient clipping.

An optimizer works on any object with ``params`` and ``grads`` dicts of ndarrays with the same
keys (a layer, a :class:`~layerkit.layers.containers.Sequential`, a user's own object). Both dicts
are re-read on every step, because a container builds them afresh on each access, and parameters
are updated *in place* (``p -= ...``), never rebound, so the arrays the layers hold are the ones
that change. Optimizer state (momentum buffers, Adam moments) is kept per parameter name, created
lazily with the parameter's shape and dtype. Update rules follow PyTorch's ``torch.optim``
exactly, so hyperparameters and results carry over.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from .validation import number_in

__all__ = ["Optimizer", "SGD", "Adam", "WeightAverage", "clip_grad_norm", "clip_grad_value"]


def _check_model(who: str, model) -> None:
    missing = [a for a in ("params", "grads") if not hasattr(model, a)]
    if missing:
        raise TypeError(f"{who}: expected an object with params and grads dicts, got "
                        f"{type(model).__name__} without {' and '.join(missing)}")


def _pairs(who: str, model) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, param, grad)`` for every parameter, all checked before anything is touched."""
    params, grads = model.params, model.grads
    out = []
    for name, p in params.items():
        if name not in grads:
            raise ValueError(f"{who}: parameter {name!r} has no gradient "
                             f"(grads has keys {sorted(grads)})")
        g = grads[name]
        if not isinstance(p, np.ndarray) or not p.flags.writeable:
            what = "read-only" if isinstance(p, np.ndarray) else f"a {type(p).__name__}"
            raise ValueError(f"{who}: parameter {name!r} is {what}; it is updated in place, so "
                             f"it must be a writeable numpy array")
        if np.shape(g) != np.shape(p):
            raise ValueError(f"{who}: expected the gradient of {name!r} to have the parameter's "
                             f"shape {np.shape(p)}, got {np.shape(g)}")
        out.append((name, p, g))
    return out


class Optimizer:
    """Base class: re-reads ``model.params`` / ``model.grads`` each step and updates in place.

    Subclasses set their hyperparameters, list them in ``_hyper`` (for ``repr``) and implement
    ``_update(name, p, g, state)``, which must change ``p`` in place; ``state`` is the dict kept
    for that parameter name (empty at the first step).

    Parameters
    ----------
    model : object
        Anything with ``params`` and ``grads`` dicts of ndarrays with the same keys and shapes.
    """

    _hyper: tuple[str, ...] = ()

    def __init__(self, model):
        _check_model(type(self).__name__, model)
        self.model = model
        self.state: dict[str, dict] = {}

    def step(self) -> None:
        """Apply one update to every parameter, using the gradients currently in ``grads``."""
        for name, p, g in _pairs(repr(self), self.model):
            self._update(name, p, g, self.state.setdefault(name, {}))

    def _update(self, name: str, p: np.ndarray, g: np.ndarray, state: dict) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement _update")

    def zero_grad(self) -> None:
        """Reset the gradients: ``model.zero_grad()`` if it has one, else zero each array in place."""
        if callable(getattr(self.model, "zero_grad", None)):
            self.model.zero_grad()
        else:
            for g in self.model.grads.values():
                g[...] = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(" + ", ".join(
            f"{k}={getattr(self, k)!r}" for k in self._hyper) + ")"


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay.

    Parameters
    ----------
    model : object
        Anything with ``params`` and ``grads`` dicts.
    lr : float
        Learning rate η > 0.
    momentum : float, default 0
        μ in [0, 1).
    nesterov : bool, default False
        Nesterov momentum (needs μ > 0).
    weight_decay : float, default 0
        λ ≥ 0, added to the gradient as λ·θ (L2 penalty ½λ‖θ‖²).

    Notes
    -----
    PyTorch's convention (no dampening), for each parameter θ with gradient ∇ at step t:

    .. math::

        g = ∇ + λθ, \qquad
        v_t = μ v_{t-1} + g \quad (v_1 = g), \qquad
        θ ← θ − η v_t \quad\text{or, Nesterov,}\quad θ ← θ − η (g + μ v_t).

    With μ = 0 this is plain θ ← θ − η g and no buffer is kept.
    """

    _hyper = ("lr", "momentum", "nesterov", "weight_decay")

    def __init__(self, model, lr: float, *, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0):
        who = "SGD"
        self.lr = number_in(who, "lr", lr, 0.0, math.inf, low_open=True)
        self.momentum = number_in(who, "momentum", momentum, 0.0, 1.0, high_open=True)
        self.weight_decay = number_in(who, "weight_decay", weight_decay, 0.0, math.inf)
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0.0:
            raise ValueError(f"{who}: nesterov=True requires momentum > 0, got momentum={momentum!r}")
        super().__init__(model)

    def _update(self, name, p, g, state):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            v = state.get("momentum_buffer")
            if v is None:
                v = state["momentum_buffer"] = np.array(g, dtype=p.dtype, copy=True)
            else:
                v *= self.momentum
                v += g
            g = g + self.momentum * v if self.nesterov else v
        p -= self.lr * g


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015) with bias correction and optional L2 weight decay (PyTorch's Adam).

    Parameters
    ----------
    model : object
        Anything with ``params`` and ``grads`` dicts.
    lr : float, default 1e-3
        Learning rate η > 0.
    betas : (float, float), default (0.9, 0.999)
        β₁, β₂ in [0, 1): decay rates of the first and second moment estimates.
    eps : float, default 1e-8
        ε ≥ 0 added to the denominator.
    weight_decay : float, default 0
        λ ≥ 0, added to the gradient as λ·θ (L2 penalty, not AdamW's decoupled decay).

    Notes
    -----
    For each parameter θ with gradient ∇, at its step t = 1, 2, … (m₀ = v₀ = 0):

    .. math::

        g = ∇ + λθ, \quad m_t = β_1 m_{t-1} + (1−β_1) g, \quad v_t = β_2 v_{t-1} + (1−β_2) g^2,

        \hat m = m_t / (1 − β_1^t), \quad \hat v = v_t / (1 − β_2^t), \quad
        θ ← θ − η\, \hat m / (\sqrt{\hat v} + ε).

    At t = 1, m̂ = g and v̂ = g², so every coordinate moves by ≈ η·sign(g).
    """

    _hyper = ("lr", "betas", "eps", "weight_decay")

    def __init__(self, model, lr: float = 1e-3, *, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        who = "Adam"
        self.lr = number_in(who, "lr", lr, 0.0, math.inf, low_open=True)
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise ValueError(f"{who}: betas must be a pair (beta1, beta2), got {betas!r}") from None
        self.betas = (number_in(who, "betas[0]", b1, 0.0, 1.0, high_open=True),
                      number_in(who, "betas[1]", b2, 0.0, 1.0, high_open=True))
        self.eps = number_in(who, "eps", eps, 0.0, math.inf)
        self.weight_decay = number_in(who, "weight_decay", weight_decay, 0.0, math.inf)
        super().__init__(model)

    def _update(self, name, p, g, state):
        b1, b2 = self.betas
        if self.weight_decay:
            g = g + self.weight_decay * p
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(p), exp_avg_sq=np.zeros_like(p))
        state["step"] += 1
        t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
        m += (1.0 - b1) * (g - m)
        v *= b2
        v += (1.0 - b2) * (g * g)
        denom = np.sqrt(v) / math.sqrt(1.0 - b2 ** t) + self.eps
        p -= (self.lr / (1.0 - b1 ** t)) * (m / denom)


class WeightAverage:
    r"""An exponential moving average of a model's parameters, kept beside them:

        θ̄ ← d_t·θ̄ + (1 − d_t)·θ   at each ``update()``,   d_t = min(decay, (1 + t) / (10 + t)),

    with θ̄ starting at the parameters given and t the number of updates before this one (the
    smaller early decay keeps θ̄ from staying near the initial weights). Parameters that
    oscillate around a good point, as a GAN generator's do, are often better averaged than
    taken at the last step.

    Parameters
    ----------
    model : object
        Anything with a ``params`` dict of ndarrays (read on each call, updated in place only by
        ``swapped`` and ``copy_to_model``).
    decay : float in [0, 1)
        The forgetting factor; about 1 / (1 − decay) recent steps count.
    """

    def __init__(self, model, decay: float = 0.999):
        _check_model("WeightAverage", model)
        self.model = model
        self.decay = number_in("WeightAverage", "decay", decay, 0.0, 1.0, high_open=True)
        self.updates = 0
        self.average = {k: np.array(p, copy=True) for k, p in model.params.items()}

    def _pairs(self):
        params = self.model.params
        if params.keys() != self.average.keys():
            raise ValueError(f"{self!r}: the model's parameters changed since the average was "
                             f"started (now {sorted(params)}, averaged {sorted(self.average)})")
        return [(self.average[k], p) for k, p in params.items()]

    def update(self) -> None:
        """Fold the model's current parameters into the average."""
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for avg, p in self._pairs():
            avg *= d
            avg += (1 - d) * p
        self.updates += 1

    @contextlib.contextmanager
    def swapped(self):
        """Within the block the model holds the averaged parameters (in place); its own are put
        back afterwards, also when the block raises."""
        pairs = self._pairs()
        saved = [p.copy() for _, p in pairs]
        try:
            for avg, p in pairs:
                p[...] = avg
            yield self.model
        finally:
            for (_, p), own in zip(pairs, saved):
                p[...] = own

    def copy_to_model(self) -> None:
        """Replace the model's parameters by the average, for good (in place)."""
        for avg, p in self._pairs():
            p[...] = avg

    def __repr__(self) -> str:
        return f"WeightAverage(decay={self.decay!r}, updates={self.updates})"


def clip_grad_norm(model, max_norm: float) -> float:
    """Scale all gradients together so that their global L2 norm is at most ``max_norm``.

    With ‖g‖ = √(Σ_k ‖grads[k]‖²), every gradient is multiplied in place by
    c = max_norm / (‖g‖ + 1e-6) when c < 1 (PyTorch's ``clip_grad_norm_``), and left alone
    otherwise. The norm is accumulated in float64, with each array first divided by its largest
    |value| (‖g_k‖ = m_k ‖g_k / m_k‖), so float32 gradients up to float32's largest value give
    a finite norm (PyTorch overflows to inf there and zeroes every gradient); c is applied in
    float64 and the result cast back. A NaN or inf gradient gives a NaN or inf norm and leaves
    the gradients alone.

    Returns
    -------
    float
        The global norm ‖g‖ before clipping.
    """
    _check_model("clip_grad_norm", model)
    max_norm = number_in("clip_grad_norm", "max_norm", max_norm, 0.0, math.inf, low_open=True)
    grads = list(model.grads.values())
    norm = _global_norm(grads)
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        for g in grads:
            np.multiply(g, coef, out=g, casting="unsafe")
    return norm


def _global_norm(grads: list) -> float:
    """√(Σ_k ‖g_k‖²) in float64 without overflow or underflow: each ‖g_k‖ = m_k ‖g_k / m_k‖ with
    m_k = max |g_k|, and the same scaling over the per-array norms."""
    norms = []
    for g in grads:
        g = np.asarray(g, dtype=np.float64).ravel()
        m = float(np.max(np.abs(g))) if g.size else 0.0
        norms.append(m * float(np.linalg.norm(g / m)) if 0.0 < m < math.inf else m)
    if not norms:
        return 0.0
    norms = np.array(norms)
    m = float(np.max(norms))
    if not 0.0 < m < math.inf:
        return float(np.sum(norms)) if m == m else m    # 0, inf, or NaN (NaN propagates)
    return m * float(np.linalg.norm(norms / m))


def clip_grad_value(model, clip_value: float) -> None:
    """Clamp every gradient coordinate in place to [−clip_value, clip_value]."""
    _check_model("clip_grad_value", model)
    c = number_in("clip_grad_value", "clip_value", clip_value, 0.0, math.inf, low_open=True)
    for g in model.grads.values():
        np.clip(g, -c, c, out=g)
