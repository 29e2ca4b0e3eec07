"""One model shared by several threads: eval-mode forward gives each thread its serial result;
a forward/backward pair from two threads at once on one layer raises instead of mixing caches."""

import concurrent.futures
import threading

import numpy as np
import pytest

import layerkit as lk

THREADS = 4
ROUNDS = 6


def _families():
    """name -> (model in eval mode, input maker (rng, batch) -> x)."""
    img = lambda c, hw: (lambda rng, n: rng.standard_normal((n, c, hw, hw)).astype(np.float32))
    seq = lambda rng, n: rng.standard_normal((n, 7, 5)).astype(np.float32)
    return {
        "conv im2col": (lk.Sequential(lk.Conv2D(3, 8, 3, padding=1, seed=0),
                                      lk.Conv2D(8, 4, 3, stride=2, seed=1)), img(3, 12)),
        "conv winograd": (lk.Conv2D(8, 8, 3, padding=1, seed=0, algorithm="winograd"), img(8, 10)),
        "transposed conv": (lk.ConvTranspose2D(4, 3, 3, stride=2, seed=0), img(4, 6)),
        "pooling": (lk.Sequential(lk.MaxPool2D(2), lk.AvgPool2D(3, stride=1, padding=1),
                                  lk.MaxPool2D(3, stride=2), lk.GlobalAvgPool()), img(3, 12)),
        "recurrent": (lk.Sequential(lk.LSTM(5, 6, seed=0), lk.GRU(6, 4, seed=1),
                                    lk.RNN(4, 3, seed=2)), seq),
        "bidirectional": (lk.Bidirectional(lk.LSTM(5, 4, seed=0)), seq),
        "linear": (lk.Sequential(lk.Linear(5, 16, seed=0), lk.ReLU(), lk.Dropout(0.5),
                                 lk.Linear(16, 3, seed=1), lk.Softmax()),
                   lambda rng, n: rng.standard_normal((n, 5)).astype(np.float32)),
        "batchnorm eval": (lk.Sequential(lk.Conv2D(3, 4, 3, seed=0), lk.BatchNorm2D(4)), img(3, 8)),
        "embedding": (lk.Sequential(lk.Embedding(11, 5, seed=0), lk.LSTM(5, 4, seed=1)),
                      lambda rng, n: rng.integers(0, 11, (n, 6))),
    }


FAMILIES = _families()


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_eval_forward_from_four_threads_equals_the_serial_result(family):
    model, make_x = FAMILIES[family]
    if family == "batchnorm eval":                 # running statistics away from 0 and 1
        bn = model[1]
        bn.running_mean[...] = [0.1, -0.2, 0.3, 0.0]
        bn.running_var[...] = [0.5, 2.0, 1.5, 1.0]
    model.eval()
    rng = np.random.default_rng(0)
    # different batch sizes per thread, so scratch arrays of different shapes are in play
    inputs = [[make_x(rng, 1 + (t + r) % 3) for r in range(ROUNDS)] for t in range(THREADS)]
    first = lambda y: y[0] if isinstance(y, tuple) else y
    serial = [[first(model.forward(x)).copy() for x in xs] for xs in inputs]
    got = [[None] * ROUNDS for _ in range(THREADS)]
    errors = []
    start = threading.Barrier(THREADS)

    def work(t):
        try:
            start.wait()
            for r, x in enumerate(inputs[t]):
                got[t][r] = first(model.forward(x))
        except BaseException as err:          # reported below, in the test's thread
            errors.append(err)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    for t in range(THREADS):
        for r in range(ROUNDS):
            np.testing.assert_array_equal(got[t][r], serial[t][r], err_msg=f"thread {t} round {r}")


def _in_thread(fn):
    """Run fn() in a new thread; return its result or re-raise its exception here."""
    out = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as err:
            out["error"] = err
    th = threading.Thread(target=run)
    th.start()
    th.join()
    if "error" in out:
        raise out["error"]
    return out.get("value")


@pytest.mark.parametrize("make", [lambda: lk.Linear(3, 2, seed=0), lambda: lk.ReLU(),
                                  lambda: lk.Conv2D(3, 2, 3, seed=0), lambda: lk.LSTM(3, 2, seed=0),
                                  lambda: lk.Sequential(lk.Linear(3, 3, seed=0), lk.Tanh()),
                                  lambda: lk.Bidirectional(lk.GRU(3, 2, seed=0))],
                         ids=["Linear", "ReLU", "Conv2D", "LSTM", "Sequential", "Bidirectional"])
def test_backward_after_another_threads_forward_raises(make):
    """Thread A: forward; thread B: forward; thread A: backward would use B's cache."""
    layer = make()
    shape = (2, 3, 5, 5) if isinstance(layer, lk.Conv2D) else (2, 4, 3) \
        if isinstance(layer, (lk.LSTM, lk.Bidirectional)) else (2, 3)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    y = layer.forward(x)
    y = y[0] if isinstance(y, tuple) else y
    _in_thread(lambda: layer.forward(x))
    with pytest.raises(RuntimeError, match="backward in a thread other than the one whose "
                                           "forward it would use"):
        layer.backward(np.ones_like(y))
    with pytest.raises(RuntimeError, match="backward in a thread other than"):
        _in_thread(lambda: layer.backward(np.ones_like(y)))
    layer.forward(x)                     # this thread's forward again: its backward works
    assert layer.backward(np.ones_like(y)).shape == x.shape


def _reference_dx(layer, x, dy):
    layer.forward(x)
    return layer.backward(dy).copy()


@pytest.mark.parametrize("make, shape", [(lambda: lk.Tanh(), (4, 6)),
                                         (lambda: lk.MaxPool2D(2), (2, 3, 6, 6)),
                                         (lambda: lk.LSTM(3, 4, seed=0), (2, 5, 3))],
                         ids=["Tanh", "MaxPool2D", "LSTM"])
def test_concurrent_training_steps_never_give_a_wrong_input_gradient(make, shape):
    """Two threads looping forward/backward on one layer whose ∂L/∂x depends on the cache:
    each backward either raises the thread error or returns the gradient of its own thread's
    x, never one computed from the other thread's cache."""
    layer = make()
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal(shape).astype(np.float32) for _ in range(2)]
    y = layer.forward(xs[0])
    y = y[0] if isinstance(y, tuple) else y
    dys = [rng.standard_normal(y.shape).astype(np.float32) for _ in range(2)]
    expected = [_reference_dx(make(), x, dy) for x, dy in zip(xs, dys)]
    assert not np.allclose(expected[0], expected[1])       # the check can tell them apart
    outcome = {"ok": 0, "raised": 0, "wrong": 0}
    lock = threading.Lock()
    start = threading.Barrier(2)

    def work(t):
        start.wait()
        for _ in range(150):
            layer.forward(xs[t])
            try:
                dx = layer.backward(dys[t])
            except RuntimeError:
                key = "raised"
            else:
                key = "ok" if np.allclose(dx, expected[t], rtol=1e-5, atol=1e-6) else "wrong"
            with lock:
                outcome[key] += 1

    threads = [threading.Thread(target=work, args=(t,)) for t in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert outcome["wrong"] == 0 and outcome["ok"] + outcome["raised"] == 300, outcome


class _SlowLinear(lk.Linear):
    """A Linear whose backward, in a worker thread, waits for a signal right after it has read
    its cache, so that a second thread's backward surely starts while this one runs (the
    timing-free way to make the overlap happen)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.entered = threading.Event()
        self.release = threading.Event()

    def saved(self):
        cache = super().saved()
        if threading.current_thread() is not threading.main_thread():
            self.entered.set()
            self.release.wait(10)
        return cache

    def backward(self, dy):
        return super().backward(dy)


def test_a_backward_while_another_threads_backward_runs_raises():
    """Thread A: forward, backward (still running); thread B: forward, backward. Both pass the
    cache check, so without the claim both would add into grads at once."""
    layer = _SlowLinear(3, 2, seed=0)
    rng = np.random.default_rng(2)
    xa, xb = rng.standard_normal((2, 4, 3))
    dy = np.ones((4, 2))

    def thread_a():
        layer.forward(xa)
        layer.backward(dy)

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        a = pool.submit(thread_a)
        assert layer.entered.wait(10)
        layer.forward(xb)
        with pytest.raises(RuntimeError, match="while another thread's backward on this layer"):
            layer.backward(dy)
        layer.release.set()
        a.result(timeout=10)                    # re-raises anything thread A raised
    np.testing.assert_allclose(layer.grads["weight"], dy.T @ xa)   # only A's pair was added
    layer.forward(xb)                       # A is done: B's own pair works and accumulates
    layer.backward(dy)
    np.testing.assert_allclose(layer.grads["weight"], dy.T @ xa + dy.T @ xb)


def test_a_nested_backward_in_one_thread_keeps_the_claim_until_the_outer_call_ends():
    """_SlowLinear's backward calls Linear's (both wrapped): the inner call must neither raise
    nor release the outer call's claim."""
    layer = _SlowLinear(3, 2, seed=0)
    x = np.ones((1, 3))
    layer.forward(x)
    layer.backward(np.ones((1, 2)))
    assert "_backward_claim" not in layer.__dict__
    layer.forward(x)
    with pytest.raises(ValueError):             # a failing backward releases its claim too
        layer.backward(np.ones((1, 3)))
    assert "_backward_claim" not in layer.__dict__
