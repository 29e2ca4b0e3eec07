"""Loading a user's file: the bounded import (timer on the main thread, a daemon thread
elsewhere), closed standard input, and the student's own names in messages."""

import threading
import time

import pytest

from layerkit.check.user_files import UsageError, raised_in_check, readable_name, run_bounded


def test_bounded_call_returns_its_value():
    assert run_bounded(lambda: 42, 5, "quick.py") == 42
    assert run_bounded(lambda: 43, None, "quick.py") == 43


def test_bounded_call_is_stopped_on_the_main_thread():
    start = time.monotonic()
    with pytest.raises(UsageError, match=r"importing slow.py did not finish within 0.2 s .* "
                                         r"`if __name__ == \"__main__\":`"):
        run_bounded(lambda: time.sleep(30), 0.2, "slow.py")
    assert time.monotonic() - start < 10


def test_bounded_call_on_another_thread_gives_up_waiting():
    caught = []

    def worker():
        try:
            run_bounded(lambda: time.sleep(1.5), 0.2, "slow.py")
        except UsageError as e:
            caught.append(e)
    t = threading.Thread(target=worker)
    start = time.monotonic()
    t.start()
    t.join(10)
    assert caught and "did not finish within 0.2 s" in str(caught[0])
    assert time.monotonic() - start < 1.4          # did not wait for the sleep to end


def test_exceptions_and_stdin_inside_the_bounded_call():
    with pytest.raises(ZeroDivisionError):
        run_bounded(lambda: 1 / 0, 5, "bad.py")
    with pytest.raises(EOFError):
        run_bounded(input, 5, "asks.py")


def test_readable_name_is_never_an_object_repr():
    class Plain:
        pass

    class Named:
        def __repr__(self):
            return "Named(3)"
    assert readable_name(Plain()) == "Plain" and readable_name(Named()) == "Named(3)"


def test_error_in_a_layer_names_its_class_and_method():
    class Broken:
        def forward(self, x):
            return x.reshape(7, 7)
    try:
        Broken().forward(__import__("numpy").zeros(3))
    except ValueError as e:
        message = str(raised_in_check(e, Broken()))
    assert message.startswith("Broken.forward raised ValueError: cannot reshape")
    assert "test_user_files.py, line" in message and "in forward: return x.reshape(7, 7)" in message
