"""Gradient checks as one-line assertions in a project's own tests (pytest or plain asserts).

    from layerkit.testing import assert_gradients_match

    def test_my_layer():
        assert_gradients_match(MyLayer(4, 3), np.random.default_rng(0).standard_normal((5, 4)))
"""

from __future__ import annotations

from .finite_differences import gradcheck
from .report import GradcheckReport

__all__ = ["assert_gradients_match"]


def assert_gradients_match(layer, inputs, **kwargs) -> GradcheckReport:
    """Check ``layer``'s backward against finite differences; raise AssertionError with the
    report's table and its plain-words diagnosis if any gradient is wrong.

    ``inputs`` and the keyword arguments are those of :func:`layerkit.gradcheck` (``eps``,
    ``tol``, ``seed``, ``max_coords``, ``forward_kwargs``, ``dtype``). Returns the report.
    """
    __tracebackhide__ = True          # pytest shows the assertion, not this frame
    report = gradcheck(layer, inputs, **kwargs)
    if not report.passed:
        raise AssertionError(f"gradients of {report.layer} do not match finite differences:\n"
                             f"{report}")
    return report
