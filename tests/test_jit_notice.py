"""The first run says on stderr that numba compiles layerkit's kernels, once, and only when the
cache is cold."""

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from layerkit import jit_notice

ROOT = Path(__file__).resolve().parents[1]


def _dispatcher(module, cache_dir):
    return types.SimpleNamespace(py_func=types.SimpleNamespace(__module__=module),
                                 _cache=types.SimpleNamespace(_cache_path=str(cache_dir)))


@pytest.fixture
def fresh_state(monkeypatch):
    monkeypatch.setitem(jit_notice._state, "checked", False)


def test_cold_cache_is_announced_once_with_the_estimate(tmp_path, capsys, fresh_state):
    d = _dispatcher("layerkit.kernels.conv", tmp_path)
    assert jit_notice.on_first_compile(d) is True
    assert jit_notice.on_first_compile(d) is False              # once per process
    err = capsys.readouterr().err
    total = sum(jit_notice.COMPILE_S.values())
    assert err == f"compiling layerkit's kernels (first run only, up to ~{total:.0f} s) ...\n"
    assert len(err) <= 80             # one line of an 80-column terminal


def test_warm_cache_says_nothing(tmp_path, capsys, fresh_state):
    for module in jit_notice.COMPILE_S:
        (tmp_path / f"{module}.some_kernel-12.py311.nbi").write_bytes(b"")
    assert jit_notice.on_first_compile(_dispatcher("layerkit.kernels.pooling", tmp_path)) is False
    assert capsys.readouterr().err == ""


def test_only_the_cold_modules_count_and_a_short_compile_is_not_announced(tmp_path, capsys,
                                                                          fresh_state):
    for module in jit_notice.COMPILE_S:
        if module != "sigmoid_tanh":                       # 0.3 s: below the 1 s threshold
            (tmp_path / f"{module}.kernel-3.py311.nbi").write_bytes(b"")
    assert jit_notice.estimate_s(["sigmoid_tanh"]) < jit_notice.THRESHOLD_S
    assert jit_notice.cold_modules(tmp_path) == ["sigmoid_tanh"]
    assert jit_notice.on_first_compile(_dispatcher("layerkit.kernels.sigmoid_tanh",
                                                   tmp_path)) is False
    assert capsys.readouterr().err == ""


def test_other_packages_compiling_do_not_count(tmp_path, capsys, fresh_state):
    assert jit_notice.on_first_compile(_dispatcher("mypackage.kernels", tmp_path)) is False
    assert jit_notice.on_first_compile(_dispatcher("layerkit.kernels.conv", tmp_path)) is True
    capsys.readouterr()


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"),
                    reason="nothing compiles with NUMBA_DISABLE_JIT set")
def test_a_real_first_run_and_the_second(tmp_path):
    """A fresh numba cache: the first process says it compiles, the second says nothing."""
    code = ("import numpy as np, layerkit as lk; "
            "lk.ReLU().forward(np.ones((2, 3), np.float32))")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    runs = [subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                           text=True, check=True) for _ in range(2)]
    assert runs[0].stderr.count("compiling layerkit's kernels (first run only") == 1
    assert runs[1].stderr == ""


def test_the_notice_gets_its_own_line_above_a_progress_bar(tmp_path, fresh_state):
    tqdm = pytest.importorskip("tqdm")
    import io
    from test_progress import screen
    out = io.StringIO()
    bar = tqdm.tqdm(total=3, desc="epoch 1/1", file=out, bar_format="{desc} {n_fmt}/{total_fmt}")
    assert jit_notice.on_first_compile(_dispatcher("layerkit.kernels.conv", tmp_path), file=out)
    bar.update(3)
    bar.close()
    lines = screen(out.getvalue())
    assert lines == [jit_notice.message(sum(jit_notice.COMPILE_S.values())), "epoch 1/1 3/3"]
