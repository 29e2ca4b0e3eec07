"""`layerkit gradcheck` on a user's own file, as a student runs it: the real command in a
subprocess, from a directory outside the package, for every exit status and the JSON schema."""

import json
import os
import subprocess
import sys
import textwrap

from pathlib import Path

import pytest

from layerkit.cli import main

ROOT = Path(__file__).resolve().parents[1]      # the layerkit under test, not an installed one

USER_FILE = textwrap.dedent('''
    import numpy as np

    class Scale:
        """y = w * x elementwise, w of shape (D,); ``bug`` flips the sign of dw."""

        def __init__(self, size, bug=False, dtype=np.float64):
            self.params = {"w": np.linspace(0.5, 1.5, size).astype(dtype)}
            self.grads = {"w": np.zeros(size, dtype)}
            self.bug = bug

        def forward(self, x):
            self.x = x
            return self.params["w"] * x

        def backward(self, dy):
            dw = (dy * self.x).sum(axis=0)
            self.grads["w"] += -dw if self.bug else dw
            return dy * self.params["w"]

    class Product:
        """Two inputs: y = a * b, backward returns (da, db)."""
        params, grads = {}, {}

        def forward(self, a, b):
            self.a, self.b = a, b
            return a * b

        def backward(self, dy):
            return dy * self.b, dy * self.a

    class Raises:
        params, grads = {}, {}

        def forward(self, x):
            return x.reshape(7, 7)

        def backward(self, dy):
            return dy

    class NoBackward:
        params = {}

        def forward(self, x):
            return x
''')


def run(args, cwd):
    env = dict(os.environ, NO_COLOR="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "layerkit", "gradcheck", *args], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "my_layers.py").write_text(USER_FILE)
    return tmp_path


def test_correct_user_layer_exits_0(workdir):
    r = run(["my_layers.py:Scale", "--init", '{"size": 3}', "--input-shape", "4,3"], workdir)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all passed" in r.stdout and "my_layers.py:Scale" in r.stdout
    assert "\033[" not in r.stdout                      # no colour when not on a terminal


def test_wrong_user_layer_exits_1_and_names_the_mistake(workdir):
    r = run(["my_layers.py:Scale", "--init", '{"size": 3, "bug": true}', "--input-shape", "4,3"],
            workdir)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAIL: sign flipped" in r.stdout
    assert "grads['w'] is the negative of the numeric gradient" in r.stdout
    assert "FAILED: my_layers.py:Scale" in r.stdout


def test_module_reference_and_two_inputs(workdir):
    r = run(["my_layers:Product", "--input-shape", "2,3", "--input-shape", "2,3", "--json"],
            workdir)
    assert r.returncode == 0, r.stdout + r.stderr
    checks = json.loads(r.stdout)["checks"]
    assert [[t["name"] for t in c["tensors"]] for c in checks] == [["a", "b"], ["a", "b"]]


@pytest.mark.parametrize("args, message", [
    (["nowhere.py:Scale", "--input-shape", "2"], "no file 'nowhere.py'"),
    (["my_layers.py:Scal", "--input-shape", "2"], "has no class or function 'Scal'; defined there: Scale"),
    (["my_layers.py:Scale", "--init", "{size: 3}", "--input-shape", "2,3"], "--init is not valid JSON"),
    (["my_layers.py:Scale", "--init", '{"sise": 3}', "--input-shape", "2,3"],
     "cannot build Scale from --init"),
    (["my_layers.py:Scale", "--init", '{"size": 3}'], "Scale: say what to feed forward with --shape NAME=d1,d2"),
    (["my_layers.py:Scale", "--init", '{"size": 3}', "--input-shape", "2,x"],
     "--input-shape takes positive sizes"),
    (["my_layers.py:Raises", "--input-shape", "2,3"],
     "Raises.forward raised ValueError: cannot reshape"),
    (["my_layers.py:NoBackward", "--input-shape", "2,3"],
     "NoBackward does not follow the Layer contract: missing backward, grads"),
    (["no_such_module:Thing", "--input-shape", "2"], "cannot import module 'no_such_module'"),
    (["Conv9D", "--input-shape", "2"], "no built-in layer named 'Conv9D'"),
    (["my_layers.py"], "name the class or function to check: my_layers.py:Name (defined in "
                       "my_layers.py: Scale, Product, Raises, NoBackward)"),
    (["Conv2D", "--init", '{"in_channels": 2, "out_channels": 3, "kernel_size": 3}',
      "--input-shape", "1,3,7,7"], "Conv2D.forward raised ValueError: Conv2D(2, 3, kernel_size=3): "
                                   "expected x of shape (N, 2, H, W), got (1, 3, 7, 7) (run again"),
])
def test_usage_errors_exit_2_in_one_paragraph(workdir, args, message):
    r = run(args, workdir)
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in r.stderr and "object at 0x" not in r.stderr
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1


def test_colour_only_when_asked():
    from layerkit import ReLU
    from layerkit.check import format_table, gradcheck
    import numpy as np
    report = gradcheck(ReLU(), np.array([[0.5, -0.5]]))
    coloured = format_table([("ReLU", "", report)], colour=True)
    assert "\033[32m" in coloured and "\033[" not in format_table([("ReLU", "", report)])


def test_traceback_on_request(workdir):
    r = run(["my_layers.py:Raises", "--input-shape", "2,3", "--traceback"], workdir)
    assert r.returncode == 2 and "Traceback" in r.stderr and "x.reshape(7, 7)" in r.stderr


def test_json_schema(workdir):
    r = run(["my_layers.py:Scale", "--init", '{"size": 3, "bug": true}', "--input-shape", "4,3",
             "--json"], workdir)
    assert r.returncode == 1
    data = json.loads(r.stdout)
    assert data["schema"] == "layerkit.gradcheck/2" and data["passed"] is False
    assert data["error"] is None and data["dtype"] == "float64" and data["tol"] == 1e-7
    check, near_zero = data["checks"]
    assert (check["draw"], near_zero["draw"]) == (1, 2)
    assert check["format"] == "layer contract" and check["notes"] == []
    assert {"name", "config", "layer", "passed", "dtype", "tol", "eps", "problems",
            "tensors"} <= set(check)
    x, w = check["tensors"]
    assert set(w) >= {"name", "shape", "status", "max_rel_error", "worst", "analytic", "numeric",
                      "n_coords", "n_directions", "n_kinks", "pattern", "diagnosis",
                      "worst_elements"}
    assert (x["status"], w["status"], w["pattern"], w["shape"]) == ("pass", "fail", "sign flipped", [3])
    e = w["worst_elements"][0]
    assert e["analytic"] == pytest.approx(-e["numeric"]) and e["rel_error"] == pytest.approx(2)


def test_json_usage_error(workdir):
    r = run(["my_layers.py:Nope", "--input-shape", "2", "--json"], workdir)
    data = json.loads(r.stdout)
    assert r.returncode == 2 and data["passed"] is False and "no class or function 'Nope'" in data["error"]["message"]


def test_builtin_with_init_and_input_shape(capsys):
    init = '{"in_channels": 2, "out_channels": 3, "kernel_size": 3, "stride": 2}'
    assert main(["gradcheck", "Conv2D", "--init", init, "--input-shape", "1,2,7,7"]) == 0
    out = capsys.readouterr().out
    assert "stride=2" in out and "weight" in out and "all passed" in out


def test_builtin_integer_input(capsys):
    init = '{"num_embeddings": 6, "embedding_dim": 3}'
    code = main(["gradcheck", "Embedding", "--init", init, "--input-shape", "2,5",
                 "--input-dtype", "int"])
    out = capsys.readouterr().out
    assert code == 0 and "weight" in out


def test_float32_check_of_builtins(capsys):
    assert main(["gradcheck", "Linear", "Tanh", "Conv2D", "--dtype", "float32"]) == 0
    assert "float32" in capsys.readouterr().out


def test_verbose_lists_every_element(capsys):
    init = '{"in_features": 2, "out_features": 2}'
    assert main(["gradcheck", "Linear", "--init", init, "--input-shape", "3,2", "--verbose"]) == 0
    out = capsys.readouterr().out
    assert out.count("(2, 1)") >= 1 and "gradient of weight (2, 2): pass" in out


def test_max_coords_samples_large_tensors(capsys):
    init = '{"in_features": 20, "out_features": 10}'
    assert main(["gradcheck", "Linear", "--init", init, "--input-shape", "3,20", "--json",
                 "--max-coords", "8"]) == 0
    data = json.loads(capsys.readouterr().out)
    w = next(t for t in data["checks"][0]["tensors"] if t["name"] == "weight")
    assert (w["n_coords"], w["n_directions"]) == (8, 4)


def test_init_without_layer_is_a_usage_error(capsys):
    assert main(["gradcheck", "--init", "{}"]) == 2
    assert "need a layer to build" in capsys.readouterr().err
