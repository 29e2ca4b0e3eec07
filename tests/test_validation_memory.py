"""validation.allocation: the memory check refuses what does not fit, reading the available
memory at most once per MEMORY_READING_S."""

import pytest

from layerkit import validation


@pytest.fixture
def memory(monkeypatch):
    """A fake memory reader (bytes settable, reads counted) and a settable monotonic clock."""
    state = {"bytes": 1e6, "reads": 0, "now": 100.0}

    def read():
        state["reads"] += 1
        return state["bytes"]

    monkeypatch.setattr(validation, "_physical_memory", read)
    monkeypatch.setattr(validation.time, "monotonic", lambda: state["now"])
    monkeypatch.setattr(validation, "_reading", {"at": float("-inf"), "bytes": float("inf")})
    return state


def test_allocation_beyond_the_available_memory_names_the_layer(memory):
    assert validation.allocation("Conv2D(1, 2, 3)", "the columns", (10, 10), "float64") == (10, 10)
    with pytest.raises(MemoryError, match=r"Conv2D\(1, 2, 3\): the columns of shape \(1000, "
                                          r"1000\) \(float64\) would need"):
        validation.allocation("Conv2D(1, 2, 3)", "the columns", (1000, 1000), "float64")


def test_reading_reused_within_its_window_and_refreshed_after(memory):
    for _ in range(50):
        validation.allocation("Linear(4, 5)", "y", (10, 10), "float64")
    assert memory["reads"] == 1
    memory["bytes"] = 100.0                       # memory got scarce ...
    memory["now"] += validation.MEMORY_READING_S  # ... and the reading is old: read again
    with pytest.raises(MemoryError, match=r"Linear\(4, 5\): y of shape \(10, 10\)"):
        validation.allocation("Linear(4, 5)", "y", (10, 10), "float64")
    assert memory["reads"] == 2
