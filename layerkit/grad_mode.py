"""Whether a backward will follow: :func:`no_grad` tells layers that it will not.

Inside ``with layerkit.no_grad():`` every forward keeps no cache (nothing for backward is
computed or stored), and layers whose cache forced a slower layout take a forward-only path
(convolution builds its columns a few samples at a time, in cache, instead of for the whole
batch). A ``backward`` after such a forward raises ``RuntimeError``. The outputs are the same
as outside the block.

The setting belongs to the thread that entered the block (as PyTorch's): other threads keep
caching. Blocks nest; :func:`enable_grad` turns caching back on inside one.
"""

from __future__ import annotations

import contextlib
import threading

__all__ = ["no_grad", "enable_grad", "grad_enabled"]


class _Mode(threading.local):
    """This thread's setting (threading.local runs __init__ again in each new thread)."""

    def __init__(self):
        self.enabled = True


_MODE = _Mode()


def grad_enabled() -> bool:
    """False inside :func:`no_grad` (in this thread), True otherwise."""
    return _MODE.enabled


@contextlib.contextmanager
def _set(enabled: bool):
    before = _MODE.enabled
    _MODE.enabled = enabled
    try:
        yield
    finally:
        _MODE.enabled = before


def no_grad():
    """A context manager (``with layerkit.no_grad(): y = net.forward(x)``) under which forwards
    keep no cache for backward; see the module doc. Also a decorator (``@layerkit.no_grad()``)."""
    return _set(False)


def enable_grad():
    """The opposite of :func:`no_grad`: forwards cache again inside it."""
    return _set(True)
