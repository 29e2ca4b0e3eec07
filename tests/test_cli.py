import json
import subprocess
import sys

import layerkit.check.builtin as builtin
from layerkit.cli import main


def test_gradcheck_all_builtins_pass(capsys):
    assert main(["gradcheck"]) == 0
    out = capsys.readouterr().out
    assert "all passed" in out
    for name in builtin.names():
        assert name in out


def test_every_public_layer_and_loss_has_a_builtin_check():
    import layerkit as lk
    classes = {n for n in lk.__all__ if isinstance(getattr(lk, n), type)
               and (issubclass(getattr(lk, n), lk.Layer) or n in ("CrossEntropy", "MSE", "BCEWithLogits"))}
    assert classes - {"Layer", "Container"} <= set(builtin.names())


def test_gradcheck_selected_layers_json(capsys):
    assert main(["gradcheck", "Linear", "Softmax", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] is True
    assert {c["name"] for c in data["checks"]} == {"Linear", "Softmax"}
    for check in data["checks"]:
        for t in check["tensors"]:
            assert t["status"] == "pass" and t["max_rel_error"] < 1e-7


def test_gradcheck_fails_with_impossible_tolerance(capsys):
    assert main(["gradcheck", "Tanh", "--tol", "1e-30"]) == 1
    assert "FAILED: Tanh" in capsys.readouterr().out


def test_gradcheck_unknown_layer_is_usage_error(capsys):
    assert main(["gradcheck", "Conv9D"]) == 2
    assert "no built-in layer named Conv9D" in capsys.readouterr().err


def test_list_and_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "layerkit", "gradcheck", "--list"],
                         capture_output=True, text=True, check=True).stdout
    assert "Linear:" in out and "CrossEntropy:" in out
