"""`layerkit template NAME`: every skeleton runs, an unfinished one is reported as "not
implemented yet", and a correct solution (written here, as a student would) passes the very
command the template's own "Check it:" line prints."""

import importlib.util
import inspect
import json
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from layerkit.check import templates
from layerkit.cli import main

SOLUTIONS = {
    "linear": '''
        def forward(self, x):
            self.x = x
            return x @ self.params["weight"].T + self.params["bias"]

        def backward(self, dy):
            self.grads["weight"] += dy.T @ self.x
            self.grads["bias"] += dy.sum(axis=0)
            return dy @ self.params["weight"]
    ''',
    "relu": '''
        def forward(self, x):
            self.x = x
            return np.maximum(x, 0)

        def backward(self, dy):
            return dy * (self.x > 0)
    ''',
    "softmax": '''
        def forward(self, x):
            e = np.exp(x - x.max(axis=-1, keepdims=True))
            self.p = e / e.sum(axis=-1, keepdims=True)
            return self.p

        def backward(self, dy):
            return self.p * (dy - (dy * self.p).sum(axis=-1, keepdims=True))
    ''',
    "conv2d": '''
        def _windows(self):
            K, s = self.kernel_size, self.stride
            for i in range(self.out_shape[0]):
                for j in range(self.out_shape[1]):
                    yield i, j, (slice(None), slice(None), slice(i * s, i * s + K),
                                 slice(j * s, j * s + K))

        def forward(self, x):
            P, K, s = self.padding, self.kernel_size, self.stride
            self.xp = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))
            H, W = self.xp.shape[2:]
            self.out_shape = ((H - K) // s + 1, (W - K) // s + 1)
            w, b = self.params["weight"], self.params["bias"]
            y = np.zeros((x.shape[0], w.shape[0]) + self.out_shape)
            for i, j, win in self._windows():
                y[:, :, i, j] = np.einsum("ncpq,ocpq->no", self.xp[win], w) + b
            return y

        def backward(self, dy):
            w, P = self.params["weight"], self.padding
            dxp = np.zeros_like(self.xp)
            for i, j, win in self._windows():
                self.grads["weight"] += np.einsum("no,ncpq->ocpq", dy[:, :, i, j], self.xp[win])
                dxp[win] += np.einsum("no,ocpq->ncpq", dy[:, :, i, j], w)
            self.grads["bias"] += dy.sum(axis=(0, 2, 3))
            H, W = dxp.shape[2:]
            return dxp[:, :, P:H - P, P:W - P]
    ''',
    "maxpool2d": '''
        def forward(self, x):
            N, C, H, W = x.shape
            K = self.kernel_size
            self.shape = x.shape
            win = (x.reshape(N, C, H // K, K, W // K, K).transpose(0, 1, 2, 4, 3, 5)
                   .reshape(N, C, H // K, W // K, K * K))
            self.arg = win.argmax(axis=-1)[..., None]
            return np.take_along_axis(win, self.arg, axis=-1)[..., 0]

        def backward(self, dy):
            N, C, H, W = self.shape
            K = self.kernel_size
            dwin = np.zeros((N, C, H // K, W // K, K * K))
            np.put_along_axis(dwin, self.arg, dy[..., None], axis=-1)
            return (dwin.reshape(N, C, H // K, W // K, K, K).transpose(0, 1, 2, 4, 3, 5)
                    .reshape(N, C, H, W))
    ''',
    "rnn": '''
        def forward(self, x):
            N, T, _ = x.shape
            H = self.params["weight_hh"].shape[0]
            self.x = x
            self.h = np.zeros((N, T + 1, H))         # self.h[:, t + 1] is h_t; h_{-1} = 0
            for t in range(T):
                a = (x[:, t] @ self.params["weight_ih"].T
                     + self.h[:, t] @ self.params["weight_hh"].T + self.params["bias"])
                self.h[:, t + 1] = np.tanh(a)
            return self.h[:, 1:].copy()

        def backward(self, dy):
            dx = np.zeros_like(self.x)
            g_next = np.zeros_like(self.h[:, 0])
            for t in reversed(range(self.x.shape[1])):
                da = (dy[:, t] + g_next) * (1 - self.h[:, t + 1] ** 2)
                self.grads["weight_ih"] += da.T @ self.x[:, t]
                self.grads["weight_hh"] += da.T @ self.h[:, t]
                self.grads["bias"] += da.sum(axis=0)
                dx[:, t] = da @ self.params["weight_ih"]
                g_next = da @ self.params["weight_hh"]
            return dx
    ''',
    "lstm": '''
        def forward(self, x):
            N, T, _ = x.shape
            H = self.params["weight_hh"].shape[1]
            sig = lambda a: 0.5 * (1 + np.tanh(a / 2))
            self.x = x
            self.h = np.zeros((N, T + 1, H))
            self.c = np.zeros((N, T + 1, H))
            self.gates = np.zeros((N, T, 4, H))
            for t in range(T):
                a = (x[:, t] @ self.params["weight_ih"].T
                     + self.h[:, t] @ self.params["weight_hh"].T + self.params["bias"])
                i, f, g, o = sig(a[:, :H]), sig(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), sig(a[:, 3 * H:])
                self.gates[:, t] = np.stack([i, f, g, o], axis=1)
                self.c[:, t + 1] = f * self.c[:, t] + i * g
                self.h[:, t + 1] = o * np.tanh(self.c[:, t + 1])
            return self.h[:, 1:].copy()

        def backward(self, dy):
            dx = np.zeros_like(self.x)
            dh_next = np.zeros_like(self.h[:, 0])
            dc_next = np.zeros_like(self.c[:, 0])
            for t in reversed(range(self.x.shape[1])):
                i, f, g, o = (self.gates[:, t, k] for k in range(4))
                tc = np.tanh(self.c[:, t + 1])
                dh = dy[:, t] + dh_next
                dc = dh * o * (1 - tc ** 2) + dc_next
                da = np.concatenate([dc * g * i * (1 - i), dc * self.c[:, t] * f * (1 - f),
                                     dc * i * (1 - g ** 2), dh * tc * o * (1 - o)], axis=1)
                self.grads["weight_ih"] += da.T @ self.x[:, t]
                self.grads["weight_hh"] += da.T @ self.h[:, t]
                self.grads["bias"] += da.sum(axis=0)
                dx[:, t] = da @ self.params["weight_ih"]
                dh_next = da @ self.params["weight_hh"]
                dc_next = dc * f
            return dx
    ''',
}


def _check_command(name):
    """The template's own `Check it:` command, as a list of arguments after `layerkit`."""
    line = next(l for l in templates.source(name).splitlines() if l.startswith("Check it:"))
    args = shlex.split(line[len("Check it:"):])
    assert args[:2] == ["layerkit", "gradcheck"]
    return args[1:]


def _write(tmp_path, name):
    args = _check_command(name)
    file_name, cls = args[1].split(":")
    (tmp_path / file_name).write_text(templates.source(name))
    return args, file_name, cls


def _load(tmp_path, name):
    """The template written to a file, imported, and its class built from the `Check it:` line;
    returns (layer, input shape)."""
    args, file_name, cls = _write(tmp_path, name)
    spec = importlib.util.spec_from_file_location(f"template_{name}", tmp_path / file_name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    init = json.loads(args[args.index("--init") + 1]) if "--init" in args else {}
    shape = tuple(int(n) for n in args[args.index("--input-shape") + 1].split(","))
    return getattr(module, cls)(**init), shape


def test_every_template_is_listed(capsys):
    assert main(["template"]) == 0
    out = capsys.readouterr().out
    assert set(templates.names()) == set(SOLUTIONS)
    for name in templates.names():
        assert name in out


@pytest.mark.parametrize("name", sorted(SOLUTIONS))
def test_template_builds_its_parameters_and_leaves_forward_and_backward(tmp_path, name):
    layer, shape = _load(tmp_path, name)
    assert isinstance(layer.params, dict) and isinstance(layer.grads, dict)
    assert set(layer.params) == set(layer.grads)
    for k, p in layer.params.items():
        assert layer.grads[k].shape == p.shape and not np.any(layer.grads[k])
    x = np.random.default_rng(0).standard_normal(shape)
    with pytest.raises(NotImplementedError):
        layer.forward(x)
    with pytest.raises(NotImplementedError):
        layer.backward(x)


@pytest.mark.parametrize("name", sorted(SOLUTIONS))
def test_unfinished_template_says_forward_is_not_implemented(tmp_path, monkeypatch, capsys, name):
    args, file_name, cls = _write(tmp_path, name)
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{cls}.forward is not implemented yet" in err and file_name in err


@pytest.mark.parametrize("name", sorted(SOLUTIONS))
def test_solved_template_passes_its_own_check_command(tmp_path, monkeypatch, capsys, name):
    args, file_name, cls = _write(tmp_path, name)
    module = file_name[:-3]
    body = textwrap.indent(textwrap.dedent(SOLUTIONS[name]), "    ")
    (tmp_path / f"solved_{module}.py").write_text(
        f"import numpy as np\nfrom {module} import {cls} as Template\n\n\n"
        f"class {cls}(Template):\n{body}")
    args[1] = f"solved_{module}.py:{cls}"
    _assert_passes(args, tmp_path, monkeypatch, capsys)


def _assert_passes(args, tmp_path, monkeypatch, capsys):
    """The gradcheck command ``args`` run in ``tmp_path`` passes every check."""
    monkeypatch.chdir(tmp_path)
    code = main(args)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "all passed" in out


def test_backward_not_implemented_is_named(tmp_path, monkeypatch, capsys):
    args, file_name, cls = _write(tmp_path, "relu")
    forward_only = textwrap.indent(textwrap.dedent(SOLUTIONS["relu"]).split("def backward")[0],
                                   "    ")
    (tmp_path / "half.py").write_text(f"import numpy as np\nfrom my_relu import {cls} as T\n\n\n"
                                      f"class {cls}(T):\n{forward_only}")
    args[1] = f"half.py:{cls}"
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    assert f"{cls}.backward is not implemented yet" in capsys.readouterr().err


def test_template_command_writes_a_file_a_student_can_run(tmp_path):
    src = subprocess.run([sys.executable, "-m", "layerkit", "template", "conv2d"],
                         capture_output=True, text=True, check=True).stdout
    assert src == templates.source("conv2d")
    bad = subprocess.run([sys.executable, "-m", "layerkit", "template", "conv9d"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "no template named 'conv9d'" in bad.stderr


# -- the course styles -------------------------------------------------------------------------

STYLED_SOLUTIONS = {   # (style, name) -> a solution with the template's functions or class
    ("cs231n", "linear"): '''
        def affine_forward(x, w, b):
            return x.reshape(len(x), -1) @ w + b, (x, w)

        def affine_backward(dout, cache):
            x, w = cache
            return ((dout @ w.T).reshape(x.shape), x.reshape(len(x), -1).T @ dout,
                    dout.sum(axis=0))
    ''',
    ("cs231n", "relu"): '''
        def relu_forward(x):
            return np.maximum(x, 0), x

        def relu_backward(dout, cache):
            return dout * (cache > 0)
    ''',
    ("cs231n", "softmax"): '''
        def softmax_loss(x, y):
            z = x - x.max(axis=1, keepdims=True)
            p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
            rows = np.arange(len(x))
            dx = p.copy()
            dx[rows, y] -= 1
            return -np.log(p[rows, y]).mean(), dx / len(x)
    ''',
    ("cs231n", "conv2d"): '''
        def conv_forward_naive(x, w, b, conv_param):
            s, P = conv_param["stride"], conv_param["pad"]
            F, _, HH, WW = w.shape
            xp = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))
            Ho, Wo = 1 + (xp.shape[2] - HH) // s, 1 + (xp.shape[3] - WW) // s
            out = np.zeros((len(x), F, Ho, Wo))
            for i in range(Ho):
                for j in range(Wo):
                    win = xp[:, :, i * s:i * s + HH, j * s:j * s + WW]
                    out[:, :, i, j] = np.einsum("ncpq,fcpq->nf", win, w) + b
            return out, (x, w, b, conv_param)

        def conv_backward_naive(dout, cache):
            x, w, b, conv_param = cache
            s, P = conv_param["stride"], conv_param["pad"]
            _, _, HH, WW = w.shape
            xp = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))
            dxp, dw = np.zeros_like(xp), np.zeros_like(w)
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    win = (slice(None), slice(None), slice(i * s, i * s + HH),
                           slice(j * s, j * s + WW))
                    dw += np.einsum("nf,ncpq->fcpq", dout[:, :, i, j], xp[win])
                    dxp[win] += np.einsum("nf,fcpq->ncpq", dout[:, :, i, j], w)
            H, W = x.shape[2:]
            return dxp[:, :, P:P + H, P:P + W], dw, dout.sum(axis=(0, 2, 3))
    ''',
    ("mytorch", "linear"): '''
        class Linear(Template):
            def forward(self, A):
                self.A = A
                return A @ self.W.T + np.ones((len(A), 1)) @ self.b.T

            def backward(self, dLdZ):
                self.dLdW = dLdZ.T @ self.A
                self.dLdb = dLdZ.T @ np.ones((len(dLdZ), 1))
                return dLdZ @ self.W
    ''',
    ("mytorch", "relu"): '''
        class ReLU(Template):
            def forward(self, Z):
                self.A = np.maximum(Z, 0)
                return self.A

            def backward(self, dLdA):
                return dLdA * (self.A > 0)
    ''',
}


def test_every_styled_template_has_a_solution_here():
    styled = {(s, n) for s in templates.STYLES if s != "layerkit" for n in templates.names(s)}
    assert styled == set(STYLED_SOLUTIONS)


def _write_styled(tmp_path, style, name):
    source = templates.source(name, style)
    line = next(l for l in source.splitlines() if l.startswith("Check it:"))
    args = shlex.split(line[len("Check it:"):])[1:]
    file_name, target = args[1].split(":")
    (tmp_path / file_name).write_text(source)
    return args, file_name, target


@pytest.mark.parametrize("style, name", sorted(STYLED_SOLUTIONS))
def test_unfinished_styled_template_is_not_implemented_yet(tmp_path, monkeypatch, capsys,
                                                            style, name):
    args, file_name, target = _write_styled(tmp_path, style, name)
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    what = f"{target}.forward" if style == "mytorch" else target
    assert f"{what} is not implemented yet" in err and file_name in err


@pytest.mark.parametrize("style, name", sorted(STYLED_SOLUTIONS))
def test_solved_styled_template_passes_its_own_check_command(tmp_path, monkeypatch, capsys,
                                                              style, name):
    args, file_name, target = _write_styled(tmp_path, style, name)
    module = file_name[:-3]
    monkeypatch.delitem(sys.modules, module, raising=False)  # another style's my_relu.py
    header = "import numpy as np\n"
    if style == "mytorch":
        header += f"from {module} import {target} as Template\n"
    solution = textwrap.dedent(STYLED_SOLUTIONS[style, name])
    (tmp_path / f"solved_{module}.py").write_text(header + "\n\n" + solution)
    spec = importlib.util.spec_from_file_location(f"template_{style}_{name}",
                                                  tmp_path / file_name)
    template = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(template)
    if style == "cs231n":        # the solution defines the template's functions, same arguments
        defined = {n: inspect.signature(f) for n, f in vars(template).items()
                   if inspect.isfunction(f)}
        exec(compile(header + solution, "solution", "exec"), solved := {})
        assert {n: inspect.signature(solved[n]) for n in defined} == defined
    args[1] = f"solved_{module}.py:{target}"
    _assert_passes(args, tmp_path, monkeypatch, capsys)


def test_template_styles_from_the_command_line(capsys):
    assert main(["template", "linear", "--style", "cs231n"]) == 0
    assert "def affine_backward(dout, cache):" in capsys.readouterr().out
    assert main(["template", "--list", "--style", "mytorch"]) == 0
    assert capsys.readouterr().out.split()[0] == "linear"
    assert main(["template", "lstm", "--style", "mytorch"]) == 2
    assert "no template named 'lstm' in the mytorch style; choose from linear, relu (lstm " \
           "exists in: layerkit)" in capsys.readouterr().err


def test_readme_course_commands_are_the_templates_own_check_commands():
    """The README's course-format commands are exactly templates' Check-it lines (each tested
    above on a solved template), on the files its template commands write."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("### Homework in a course's format")[1].split("```bash")[1]
    lines = block.split("```")[0].splitlines()
    checks = {line[len("Check it:"):].strip()
              for style, found in templates.STYLES.items() for name in found
              for line in templates.source(name, style).splitlines()
              if line.startswith("Check it:")}
    written = {}
    for line in lines:
        if line.startswith("layerkit template"):
            args = shlex.split(line.split("#")[0])
            style = args[args.index("--style") + 1]
            written[args[args.index(">") + 1]] = (args[2], style)
    commands = [line for line in lines if line.startswith("layerkit gradcheck")]
    assert len(commands) == 3 and set(commands) <= checks
    for command in commands:
        file_name = shlex.split(command)[2].split(":")[0]
        name, style = written[file_name]
        assert command in templates.source(name, style)
