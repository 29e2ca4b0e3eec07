"""`layerkit gradcheck FILE.py:NAME` on homework as students write it: function pairs, loss
functions, attribute-style classes and named inputs, on the files in tests/homework and on small
files written here."""

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from layerkit.cli import main

HOMEWORK = Path(__file__).parent / "homework"
ROOT = Path(__file__).resolve().parents[1]
CONV = ["--shape", "x=2,3,7,7", "--shape", "w=4,3,3,3", "--shape", "b=4",
        "--arg", 'conv_param={"stride": 2, "pad": 1}']


@pytest.fixture
def homework(monkeypatch):
    monkeypatch.chdir(HOMEWORK)


def gradcheck_json(capsys, *args):
    code = main(["gradcheck", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_function_pair_named_by_its_arguments(homework, capsys):
    code, data = gradcheck_json(capsys, "cs231n_layers.py:conv_forward_naive", *CONV)
    assert code == 0, data
    assert [(c["format"], c["draw"]) for c in data["checks"]] == [("function pair", 1),
                                                                  ("function pair", 2)]
    for check in data["checks"]:
        assert [t["name"] for t in check["tensors"]] == ["x", "w", "b"]
        assert check["layer"] == ("conv_forward_naive(x, w, b, conv_param={'stride': 2, "
                                  "'pad': 1}) / conv_backward_naive")


def test_text_report_of_a_function_pair(homework, capsys):
    assert main(["gradcheck", "cs231n_layers.py:rnn_step_forward", "--shape", "x=3,4",
                 "--shape", "prev_h=3,5", "--shape", "Wx=4,5", "--shape", "Wh=5,5",
                 "--shape", "b=5"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if "draw 1" in line]
    assert [r[r.index("1") + 1] for r in rows] == ["x", "prev_h", "Wx", "Wh", "b"]
    assert "all passed" in out and "object at 0x" not in out


def test_loss_function_checked_against_the_scalar_loss(homework, capsys):
    code, data = gradcheck_json(capsys, "cs231n_layers.py:softmax_loss", "--shape", "x=5,4",
                                "--int", "y=5:4")
    assert code == 0 and data["checks"][0]["format"] == "loss function"
    assert [t["name"] for t in data["checks"][0]["tensors"]] == ["x"]
    code, data = gradcheck_json(capsys, "cs231n_broken.py:softmax_loss_true_class_missing",
                                "--shape", "x=5,4", "--int", "y=5:4")
    assert code == 1 and data["checks"][0]["tensors"][0]["status"] == "fail"


def test_loss_of_the_weights_with_the_data_not_differentiated(homework, capsys):
    args = ["cs231n_layers.py:softmax_loss_naive", "--shape", "W=4,3", "--shape", "X=5,4",
            "--int", "y=5:3", "--arg", "reg=0.1"]
    assert main(["gradcheck", *args]) == 2
    assert "a loss function returns the loss and then one gradient per floating array " \
           "argument: (loss, dW, dX); an array it returns no gradient for" in capsys.readouterr().err
    code, data = gradcheck_json(capsys, *args, "--no-grad", "X")
    assert code == 0, data
    assert [t["name"] for t in data["checks"][0]["tensors"]] == ["W"]
    assert main(["gradcheck", *args, "--no-grad", "Q"]) == 2
    assert "--no-grad Q: give the array with --shape" in capsys.readouterr().err


def test_backward_named_explicitly(homework, capsys):
    args = ["cs231n_broken.py:relu_forward", "--shape", "x=3,4"]
    assert main(["gradcheck", *args]) == 2
    assert "no function relu_backward next to it; name it with --backward NAME" in \
        capsys.readouterr().err
    assert main(["gradcheck", *args, "--backward", "relu_backward_mask_inverted"]) == 1
    assert main(["gradcheck", *args, "--backward", "nowhere"]) == 2
    assert "--backward nowhere: no function of that name" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (CONV[:6], "conv_forward_naive(x, w, b, conv_param) needs conv_param: give it with --shape "
               "NAME=d1,d2 (float array), --int NAME=d1,...:HIGH (integer array), --input "
               "NAME=file.npy or --arg NAME=JSON"),
    (CONV + ["--shape", "q=3"], "conv_forward_naive(x, w, b, conv_param) has no argument q"),
    (CONV + ["--batch-mean"], "--batch-mean is for attribute-style classes"),
    (CONV + ["--init", "{}"], "conv_forward_naive is a function: --init is for classes"),
    (["--shape", "x=2,0"], "--shape takes positive sizes"),
    (["--shape", "2,3"], "--shape takes NAME=VALUE"),
    (["--int", "y=5:0"], "HIGH must be a positive integer"),
    (["--arg", "conv_param={stride: 2}"], "--arg: not valid JSON"),
    (["--shape", "x=2", "--int", "x=2:3"], "x given twice"),
    (["--scale", "q=2", "--shape", "x=2"], "--scale/--offset q=...: q is not a --shape input"),
    (["--input", "x=missing.npy"], "cannot load 'missing.npy' as a .npy array"),
])
def test_usage_errors_name_the_signature_or_the_option(homework, capsys, args, message):
    assert main(["gradcheck", "cs231n_layers.py:conv_forward_naive", *args]) == 2
    assert message in capsys.readouterr().err


def test_attribute_layer_with_weights_on_a_sub_object(homework, capsys):
    code, data = gradcheck_json(capsys, "mytorch_layers.py:Conv1d", "--init",
                                '{"in_channels": 2, "out_channels": 3, "kernel_size": 3, '
                                '"stride": 2}', "--shape", "A=2,2,9")
    assert code == 0, data
    check = data["checks"][0]
    assert check["format"] == "attribute layer" and check["layer"] == "Conv1d"
    assert [t["name"] for t in check["tensors"]] == ["A", "conv1d_stride1.W",
                                                     "conv1d_stride1.b"]


def test_attribute_layer_notes_and_reshaped_gradient(homework, capsys):
    assert main(["gradcheck", "mytorch_layers.py:LinearFlatBias", "--init",
                 '{"in_features": 4, "out_features": 3}', "--shape", "A=5,4"]) == 0
    out = capsys.readouterr().out
    assert "note: mytorch_layers.py:LinearFlatBias: dLdb has shape (3,), b has (3, 1): checked " \
           "after reshaping" in out
    assert out.count("checked after reshaping") == 1


def test_batch_mean_hint_and_option(homework, capsys):
    args = ["gradcheck", "mytorch_layers.py:LinearBatchMean", "--init",
            '{"in_features": 4, "out_features": 3}', "--shape", "A=5,4"]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "FAIL: scaled by 1/5" in out
    assert "dLdW is the numeric gradient times a constant k = 1/5" in out
    assert "The factor is 1/N for the batch of N = 5: if your course averages parameter " \
           "gradients over the batch, this is that convention; --batch-mean" in out
    assert main(args + ["--batch-mean"]) == 0


def test_transposed_weight_gradient_is_reported_not_a_crash(homework, capsys):
    code, data = gradcheck_json(capsys, "mytorch_layers.py:LinearWeightTransposed", "--init",
                                '{"in_features": 4, "out_features": 3}', "--shape", "A=5,4")
    assert code == 1
    check = data["checks"][0]
    assert [p["pattern"] for p in check["problems"]] == ["wrong shape"]
    w = next(t for t in check["tensors"] if t["name"] == "W")
    assert w["pattern"] == "wrong shape" and "dLdW has shape (4, 3)" in w["diagnosis"]


def test_layer_contract_class_with_named_inputs(homework, capsys):
    code, data = gradcheck_json(capsys, "layer_contract.py:Bilinear", "--init",
                                '{"D": 3, "H": 4}', "--shape", "x=5,3", "--shape", "h_prev=5,4")
    assert code == 0, data
    check = data["checks"][0]
    assert check["format"] == "layer contract" and check["layer"] == "Bilinear"
    assert [t["name"] for t in check["tensors"]] == ["x", "h_prev", "W"]


def test_forward_kwargs_reach_forward(homework, capsys):
    args = ["layer_contract.py:MaskedScale", "--init", '{"size": 3}', "--shape", "x=2,4,3"]
    code, data = gradcheck_json(capsys, *args, "--forward-kwargs", '{"lengths": [4, 2]}')
    assert code == 0, data
    code, data = gradcheck_json(capsys, *args, "--forward-kwargs", '{"lengths": [0, 0]}')
    assert code == 1 and data["checks"][0]["tensors"][0]["status"] == "vacuous"


def test_input_loaded_from_a_file_is_checked_once(homework, capsys, tmp_path):
    x = np.array([[1.0, -2.0, 0.5], [-0.25, 3.0, -1.0]])
    np.save(tmp_path / "x.npy", x)
    code, data = gradcheck_json(capsys, "cs231n_layers.py:relu_forward", "--input",
                                f"x={tmp_path / 'x.npy'}")
    assert code == 0 and len(data["checks"]) == 1
    (t,) = data["checks"][0]["tensors"]
    assert t["shape"] == [2, 3]
    code, data = gradcheck_json(capsys, "cs231n_layers.py:relu_forward", "--input",
                                f"x={tmp_path / 'x.npy'}", "--draws", "1")
    assert code == 0 and len(data["checks"]) == 1


def test_offset_and_scale_move_the_drawn_inputs(homework, capsys):
    """All inputs below 0: ReLU's gradient is all zeros, which is vacuous, not a pass."""
    code, data = gradcheck_json(capsys, "cs231n_layers.py:relu_forward", "--shape", "x=3,4",
                                "--offset", "-100", "--scale", "x=2")
    assert code == 1
    assert [c["tensors"][0]["status"] for c in data["checks"]] == ["vacuous", "vacuous"]


SMALL_X_BRANCH = textwrap.dedent('''
    import numpy as np

    def huber_forward(x):
        """y = 10 x^2 for |x| < 0.05, |x| - 0.025 elsewhere (continuous slope at 0.05)."""
        return np.where(np.abs(x) < 0.05, 10 * x ** 2, np.abs(x) - 0.025), x

    def huber_backward(dout, x):
        return dout * np.where(np.abs(x) < 0.05, 10 * x, np.sign(x))   # 20 x is right
''')


def test_second_draw_runs_the_branch_near_zero(tmp_path, monkeypatch, capsys):
    (tmp_path / "huber.py").write_text(SMALL_X_BRANCH)
    monkeypatch.chdir(tmp_path)
    code, data = gradcheck_json(capsys, "huber.py:huber_forward", "--shape", "x=10,10")
    assert code == 1
    assert [(c["draw"], c["passed"]) for c in data["checks"]] == [(1, True), (2, False)]
    assert main(["gradcheck", "huber.py:huber_forward", "--shape", "x=10,10",
                 "--draws", "1"]) == 0


RAISES_IN_NUMPY = textwrap.dedent('''
    import numpy as np

    def pad_forward(x):
        return x * 2, x

    def pad_backward(dout, x):
        return np.pad(dout, (1, 2, 3))
''')


def test_student_exception_shows_their_own_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "student.py").write_text(RAISES_IN_NUMPY)
    monkeypatch.chdir(tmp_path)
    assert main(["gradcheck", "student.py:pad_forward", "--shape", "x=2,2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("layerkit gradcheck: pad_backward raised ValueError")
    assert "(student.py, line 8, in pad_backward: return np.pad(dout, (1, 2, 3)))" in err


def test_backward_returning_too_few_gradients_says_which(tmp_path, monkeypatch, capsys):
    (tmp_path / "few.py").write_text("def mul_forward(a, b):\n    return a * b, (a, b)\n\n"
                                     "def mul_backward(dout, cache):\n    return dout * cache[1]\n")
    monkeypatch.chdir(tmp_path)
    assert main(["gradcheck", "few.py:mul_forward", "--shape", "a=3", "--shape", "b=3"]) == 2
    assert capsys.readouterr().err == (
        "layerkit gradcheck: mul_backward returned 1 gradient(s), but mul_forward has 2 floating "
        "array argument(s) (a, b): return one gradient per argument, in their order: da, db; "
        "an array it returns no gradient for (the data X of a loss in W) is not an input: pass "
        "it as fixed (--no-grad NAME on the command line) (run again with --traceback for the "
        "full traceback)\n")


def test_function_style_template_not_written_yet(tmp_path, monkeypatch, capsys):
    (tmp_path / "todo.py").write_text("def sq_forward(x):\n    out = None\n    return out, x\n\n"
                                      "def sq_backward(dout, cache):\n    return None\n")
    monkeypatch.chdir(tmp_path)
    assert main(["gradcheck", "todo.py:sq_forward", "--shape", "x=2"]) == 2
    assert "sq_forward is not implemented yet (sq_forward returned None as its output" in \
        capsys.readouterr().err


def _run(args, cwd):
    env = dict(os.environ, NO_COLOR="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "layerkit", "gradcheck", *args], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=120)


def test_file_that_trains_on_import_is_stopped_with_the_main_guard_explained(tmp_path):
    (tmp_path / "script.py").write_text("def f_forward(x):\n    return x, x\n\n"
                                        "while True:      # training at the top level\n"
                                        "    pass\n")
    start = time.monotonic()
    r = _run(["script.py:f_forward", "--shape", "x=2", "--import-timeout", "1"], tmp_path)
    assert time.monotonic() - start < 60
    assert r.returncode == 2
    assert "importing script.py did not finish within 1 s (--import-timeout)" in r.stderr
    assert 'if __name__ == "__main__":' in r.stderr and r.stderr.count("\n") == 1


def test_file_reading_its_data_on_import_says_so(tmp_path, monkeypatch, capsys):
    (tmp_path / "reader.py").write_text("text = open('input.txt').read()\n")
    monkeypatch.chdir(tmp_path)
    assert main(["gradcheck", "reader.py:f", "--shape", "x=2"]) == 2
    err = capsys.readouterr().err
    assert "running reader.py raised FileNotFoundError" in err
    assert "(reader.py, line 1, in <module>" in err and 'if __name__ == "__main__":' in err


def test_help_documents_the_options():
    r = _run(["--help"], ROOT)
    for option in ("--shape NAME=D1,D2", "--int NAME=D1,...:HIGH", "--input NAME=FILE.npy",
                   "--arg NAME=JSON", "--forward-kwargs JSON", "--scale [NAME=]S",
                   "--offset [NAME=]C", "--draws", "--backward NAME", "--batch-mean", "--no-grad NAME",
                   "--import-timeout SECONDS", "attribute-style class", "foo_backward"):
        assert option in r.stdout, option
