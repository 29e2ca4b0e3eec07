"""``layerkit gradcheck`` over built-in layers prints a line on stderr at once and one per case
as it is checked (stdout keeps the table or the JSON), and with a cold numba cache compiles the
kernels in worker processes that fill the cache."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import layerkit.check.builtin as builtin
from layerkit import cli
from layerkit.check import precompile
from layerkit.cli import main

ROOT = Path(__file__).resolve().parents[1]
JIT_OFF = os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")


def _cases(*names):
    return [c for c in builtin.CASES if c.name in names]


def test_one_line_per_case_in_order_after_the_opening_line(capsys):
    assert main(["gradcheck", "Linear", "Softmax"]) == 0
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if not ln.startswith("compiling layerkit's kernels")]
    cases = _cases("Linear", "Softmax")
    assert lines[0] == f"layerkit gradcheck: checking {len(cases)} built-in configuration(s) " \
                       "(float64) ..."
    assert len(lines) == 1 + len(cases)
    for k, (line, case) in enumerate(zip(lines[1:], cases), 1):
        assert line.startswith(f"[{k}/{len(cases)}] {case.name} [{case.config}]: pass, worst "
                               "relative error "), line
    assert "all passed" in out and "[1/" not in out          # the table and summary: unchanged


def test_a_failing_case_says_fail_in_its_line(capsys):
    assert main(["gradcheck", "Tanh", "--tol", "1e-30"]) == 1
    assert "[1/1] Tanh [x (4, 6)]: FAIL, worst relative error" in capsys.readouterr().err


def test_json_stays_alone_on_stdout(capsys):
    assert main(["gradcheck", "Identity", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["passed"] is True
    assert "[1/1] Identity [x (2, 3)]: pass" in err


def test_user_layers_print_no_progress(tmp_path, monkeypatch, capsys):
    (tmp_path / "mine.py").write_text("def sq_forward(x):\n    return x * x, x\n\n"
                                      "def sq_backward(dout, x):\n    return 2 * x * dout\n")
    monkeypatch.chdir(tmp_path)
    assert main(["gradcheck", "mine.py:sq_forward", "--shape", "x=3"]) == 0
    assert capsys.readouterr().err == ""


def test_the_opening_line_comes_before_any_result_in_a_real_process():
    r = subprocess.run([sys.executable, "-m", "layerkit", "gradcheck", "Flatten", "Identity"],
                       cwd=ROOT, capture_output=True, text=True, check=True)
    lines = [ln for ln in r.stderr.splitlines() if not ln.startswith("compiling")]
    assert lines[0].startswith("layerkit gradcheck: checking 2 built-in configuration(s)")
    assert lines[1].startswith("[1/2] Flatten") and lines[2].startswith("[2/2] Identity")


def test_no_compiler_no_cache_folder_no_workers():
    """With NUMBA_DISABLE_JIT nothing compiles: no cache folder, so no worker pool starts."""
    if JIT_OFF:
        assert precompile.kernel_cache_dir() is None and precompile.cold_kernel_modules() == []
    else:
        assert isinstance(precompile.kernel_cache_dir(), str)


def test_workers_of_a_family_share_one_job():
    """Cases compiling the same kernels go to one worker (else two compile them twice)."""
    fam = {c.config: builtin.kernel_family(c) for c in builtin.CASES}
    convs = {builtin.kernel_family(c) for c in _cases("Conv1D", "Conv3D", "ConvTranspose2D")}
    assert len(convs) == 1
    assert "winograd" in fam.values() and fam["LSTM 3->4, x (2, 4, 3), lengths (4, 3)"] == "LSTM"


@pytest.mark.skipif(JIT_OFF, reason="nothing compiles with NUMBA_DISABLE_JIT set")
def test_a_worker_fills_an_empty_cache(tmp_path, monkeypatch):
    """The worker process, not this one, writes the cache entries of the case it warmed."""
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))    # read by the spawned worker only
    relu = builtin.CASES.index(_cases("ReLU")[0])
    options = dict(dtype="float64", eps=None, tol=None, seed=0, max_coords=64)
    with precompile.Background(cli.warm_builtin, [([relu], options)], processes=1) as pool:
        pool.wait(0)
    written = {p.name.split(".")[0] for p in tmp_path.rglob("*.nbi")}
    assert "activations" in written, sorted(p.name for p in tmp_path.rglob("*"))
